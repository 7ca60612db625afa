"""A start reads each message's fields from its instance `__dict__` only where that is what
`getattr` gives (src/py/tokens/fields.rs): classes that override `__getattribute__`, define a
property or a slot named like a field, or replace `__dict__` are read through `getattr`, and
a field missing from the `__dict__` falls back to `getattr`. Each case is checked against the
same message as a plain LangChain message: counts, and the request fingerprints a ledger
stores, must agree."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from llmledger import Budget, CostTracker, count_message_tokens

TEXT = "What does a cost ledger for LLM calls record, and for whom?"
OTHER = "Something else entirely, longer than the first text by a few words."


class PropertyContent:
    """A message object whose `content` is a property while its `__dict__` holds another
    text under that name: `getattr` gives the property's."""

    def __init__(self, content: str) -> None:
        self.__dict__.update(type="human", name=None, content=content)

    @property
    def content(self) -> str:
        return OTHER


class CustomGetattribute(HumanMessage):
    """Overrides `__getattribute__`: every read goes through it."""

    def __getattribute__(self, name: str) -> Any:
        if name == "content":
            return OTHER
        return super().__getattribute__(name)


class Slotted:
    """No `__dict__`: fields are slots (data descriptors)."""

    __slots__ = ("content", "name", "type")

    def __init__(self, content: str) -> None:
        self.type = "human"
        self.name = None
        self.content = content


class ClassAttributes:
    """Fields partly on the class: `type` is a class attribute, not in the `__dict__`."""

    type = "human"
    name = None

    def __init__(self, content: str) -> None:
        self.content = content


def tokens(messages: list[Any]) -> int:
    return count_message_tokens(messages, "gpt-4o")


def test_a_plain_message_and_a_dict_count_alike() -> None:
    assert tokens([HumanMessage(TEXT)]) == tokens([{"role": "user", "content": TEXT}])
    assert tokens([SystemMessage(TEXT), AIMessage(OTHER, name="bot")]) == tokens(
        [
            {"role": "system", "content": TEXT},
            {"role": "assistant", "content": OTHER, "name": "bot"},
        ]
    )


def test_a_property_named_like_a_field_wins_over_the_dict() -> None:
    m = PropertyContent(TEXT)
    assert m.__dict__["content"] == TEXT and m.content == OTHER
    assert tokens([m]) == tokens([HumanMessage(OTHER)]) != tokens([HumanMessage(TEXT)])


def test_an_overridden_getattribute_is_honoured() -> None:
    m = CustomGetattribute(TEXT)
    assert m.content == OTHER
    assert tokens([m]) == tokens([HumanMessage(OTHER)])


def test_a_slotted_object_is_read_through_getattr() -> None:
    assert tokens([Slotted(TEXT)]) == tokens([HumanMessage(TEXT)])


def test_a_field_missing_from_the_dict_falls_back_to_getattr() -> None:
    assert tokens([ClassAttributes(TEXT)]) == tokens([HumanMessage(TEXT)])


def test_a_class_checked_once_keeps_its_verdict_per_class() -> None:
    # Interleaving the classes: the verdict remembered for one is never another's.
    mixed = [HumanMessage(TEXT), PropertyContent(TEXT), CustomGetattribute(TEXT), Slotted(TEXT)]
    plain = [HumanMessage(TEXT), HumanMessage(OTHER), HumanMessage(OTHER), HumanMessage(TEXT)]
    for _ in range(3):
        assert tokens(mixed) == tokens(plain)


def test_many_classes_beyond_those_remembered_still_count_right() -> None:
    # More classes than the reader remembers (64): the rest are read through getattr.
    classes = [type(f"Human{i}", (HumanMessage,), {}) for i in range(80)]
    for cls in classes:
        assert tokens([cls(TEXT)]) == tokens([HumanMessage(TEXT)])


def test_a_message_built_without_validation_is_read_right() -> None:
    # model_construct skips validation: the fields given are in the __dict__, defaults too.
    m = HumanMessage.model_construct(content=TEXT)
    assert tokens([m]) == tokens([HumanMessage(TEXT)])


def _result() -> LLMResult:
    msg = AIMessage(
        "ok", usage_metadata={"input_tokens": 10, "output_tokens": 2, "total_tokens": 12}
    )
    return LLMResult(
        generations=[[ChatGeneration(message=msg)]], llm_output={"model_name": "gpt-4o"}
    )


def _fingerprints(tmp_path: Path, prompt: list[BaseMessage | Any], **kw: Any) -> tuple[Any, ...]:
    ledger = tmp_path / f"{uuid.uuid4().hex}.jsonl"
    Path(str(ledger) + ".key").write_text("00112233445566778899aabbccddeeff")
    records: list[dict[str, Any]] = []
    t = CostTracker(store=ledger, on_record=records.append, **kw)
    rid = uuid.uuid4()
    t.on_chat_model_start({}, [prompt], run_id=rid, invocation_params={"model": "gpt-4o"})
    t.on_llm_end(_result(), run_id=rid)
    t.close()
    r = records[-1]
    return (r["request_hash"], r["prompt_bytes"], r["prompt_prefixes"])


@pytest.mark.parametrize("budgeted", [False, True])
def test_fingerprints_read_the_same_fields_as_getattr(tmp_path: Path, budgeted: bool) -> None:
    kw: dict[str, Any] = {"budgets": [Budget.daily(100)]} if budgeted else {}
    odd = [PropertyContent(TEXT), CustomGetattribute(TEXT), Slotted(TEXT), ClassAttributes(TEXT)]
    plain = [HumanMessage(OTHER), HumanMessage(OTHER), HumanMessage(TEXT), HumanMessage(TEXT)]
    got = _fingerprints(tmp_path, odd, **kw)
    assert got[0] is not None
    assert got == _fingerprints(tmp_path, plain, **kw)
    assert got != _fingerprints(tmp_path, [HumanMessage(TEXT)] * 4, **kw)
