"""The request fingerprints a tracker stores, pinned for a fixed ledger key: how the start hook
reads and hashes the prompt may change (issue 17: no copy of the text), what is stored may not
(the advisor compares these hashes across calls, processes and hosts of one ledger)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from llmledger import Budget, CostTracker

KEY = "0123456789abcdeffedcba9876543210"
TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]


def result() -> LLMResult:
    usage = {"input_tokens": 10, "output_tokens": 2, "total_tokens": 12}
    msg = AIMessage("ok", usage_metadata=usage)  # type: ignore[arg-type]
    return LLMResult(generations=[[ChatGeneration(message=msg)]])


def prompts() -> list[tuple[str, Any, dict[str, Any]]]:
    long_text = "long system prompt, r\u00e9p\u00e9t\u00e9 \U0001f600 " * 3000  # about 130 KB
    chat = [
        SystemMessage("You are terse."),
        HumanMessage("Find the caf\u00e9", name="ana"),
        AIMessage(
            "",
            tool_calls=[{"name": "lookup", "args": {"q": "caf\u00e9", "n": 2}, "id": "c1"}],
        ),
        ToolMessage("found: 3", tool_call_id="c1"),
        HumanMessage(
            content=[
                {"type": "text", "text": "and this?"},
                {"type": "image_url", "image_url": {"url": "http://x/a.png", "detail": "low"}},
                {"type": "image_url", "image_url": {"url": "http://x/b.png"}},
                {"type": "thinking", "thinking": "skipped"},
            ]
        ),
    ]
    dicts = [
        {"role": "system", "content": "dict form"},
        {"role": "user", "name": "", "content": "q"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"function": {"name": "f", "arguments": '{"a":1}'}}],
        },
        ("human", "a tuple"),
        "a bare string",
    ]
    params = {"model": "gpt-4o-mini", "temperature": 0.2, "max_tokens": 100}
    return [
        ("chat", [chat], {**params, "tools": TOOLS}),
        ("dicts", [dicts], params),
        ("two lists", [[SystemMessage("a")], [HumanMessage("b"), HumanMessage("")]], params),
        ("long", [[SystemMessage(long_text), HumanMessage("q")]], params),
        ("text", ["complete this", "and this \u00e9"], {"model": "gpt-3.5-turbo-instruct"}),
    ]


# request_hash, prompt_bytes, prompt_prefixes: as stored by the build before issue 17's change.
PINNED: dict[str, tuple[str, int, str]] = {
    "chat": (
        "798d637275064ca7",
        149,
        "8a75c7328d09565c:79 5a8f76ecf15bb420:93 0703616153ff7052:107 efee001399d6da2d:132 "
        "3c70e62c764c2f95:140 7e63f90b7313de82:149",
    ),
    "dicts": (
        "21cf5aefe7d7c575",
        38,
        "ae4224955ca67e95:9 dd0736dc0ceccba4:10 6238748b476e4b63:18 9fe40acf5433b958:25 "
        "a11b03e074ce399d:38",
    ),
    "two lists": (
        "11c176964d9dcdfe",
        2,
        "82f381b39a262806:1 8bfc1538b27eeed2:2 cc74367bfd42c4b0:2",
    ),
    "long": ("f52ccabf74c92e31", 105001, "51d63f476df220db:105000 c6149ac97ed820ba:105001"),
    "text": ("5c2f6efa976bdd18", 24, "9ecce842dd203d84:13 2648db5db79b5802:24"),
}


def fingerprints(tmp_path: Path, **kw: Any) -> dict[str, tuple[str | None, int | None, str | None]]:
    ledger = tmp_path / "pin.jsonl"
    Path(str(ledger) + ".key").write_text(KEY)
    records: list[dict[str, Any]] = []
    t = CostTracker(store=ledger, on_record=records.append, **kw)
    out = {}
    for name, inputs, params in prompts():
        rid = uuid.uuid4()
        hook = t.on_llm_start if isinstance(inputs[0], str) else t.on_chat_model_start
        hook({}, inputs, run_id=rid, parent_run_id=None, invocation_params=params)
        t.on_llm_end(result(), run_id=rid, parent_run_id=None)
        r = records[-1]
        out[name] = (r["request_hash"], r["prompt_bytes"], r["prompt_prefixes"])
    t.close()
    return out


def test_pinned_fingerprints(tmp_path: Path) -> None:
    assert fingerprints(tmp_path) == PINNED


@pytest.mark.parametrize("estimate", [True, False])
def test_same_fingerprints_with_and_without_estimates(tmp_path: Path, estimate: bool) -> None:
    # Estimates on: the prompt is held by reference; off: it is not held at all. With a budget
    # it is counted at start. The stored hashes are the same in every case.
    assert fingerprints(tmp_path, estimate=estimate) == PINNED


def test_same_fingerprints_with_a_budget(tmp_path: Path) -> None:
    assert fingerprints(tmp_path, budgets=[Budget.daily(1000)]) == PINNED
