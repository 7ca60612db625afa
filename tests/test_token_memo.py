"""The token memo (each message counted once per process), counting without the GIL, and the
start hook that holds the prompt by reference instead of copying it."""

from __future__ import annotations

import gc
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import llmledger
import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from llmledger import Budget, CostTracker, count_message_tokens, count_tokens, token_memo


@pytest.fixture
def memo_size() -> Iterator[Callable[[int], None]]:
    """Resizes the process's memo for a test, and puts the default back after it."""
    default = token_memo()["max_messages"]
    yield lambda n: token_memo(max_messages=n) and None
    token_memo(max_messages=default)


def conversation(tag: str) -> list[Any]:
    """Every form of message the reader takes, each with text unique to `tag`."""
    return [
        SystemMessage(f"You are terse. {tag}"),
        HumanMessage(f"What is the weather in Paris? {tag}", name="alice"),
        AIMessage(
            "",
            tool_calls=[{"name": "weather", "args": {"city": f"Paris {tag}"}, "id": "c1"}],
        ),
        ToolMessage(f"sunny {tag}", tool_call_id="c1"),
        AIMessage(
            [
                {"type": "text", "text": f"Sunny. {tag}"},
                {"type": "tool_use", "name": "log", "input": {"n": 1}, "id": "t1"},
            ]
        ),
        HumanMessage(
            [
                {"type": "text", "text": f"And this picture? {tag}"},
                {"type": "image_url", "image_url": {"url": "http://x/y.png", "detail": "low"}},
            ]
        ),
        {
            "role": "assistant",
            "content": f"dict {tag}",
            "name": "bot",
            "tool_calls": [{"function": {"name": "f", "arguments": '{"a": 1}'}}],
        },
        ("human", f"a tuple {tag}"),
        f"a plain string {tag}",
    ]


def test_memo_counts_equal_uncached_counts(memo_size: Callable[[int], None]) -> None:
    tag = uuid.uuid4().hex
    msgs = conversation(tag)
    for model in ["gpt-4o", "gpt-4", "gpt-3.5-turbo-0301", "claude-sonnet-4-5"]:
        memo_size(0)
        want = count_message_tokens(msgs, model)
        prefixes = [count_message_tokens(msgs[:n], model) for n in range(len(msgs))]
        memo_size(65_536)
        assert count_message_tokens(msgs, model) == want, model
        assert count_message_tokens(msgs, model) == want, model
        assert [count_message_tokens(msgs[:n], model) for n in range(len(msgs))] == prefixes


def test_each_form_of_message_is_found_again() -> None:
    """A message counted once is found in the memo the next time, whatever its form (the key
    hashed from the Python objects equals the key of the copy that was counted)."""
    msgs = conversation(uuid.uuid4().hex)
    count_message_tokens(msgs, "gpt-4o")
    before = token_memo()
    again = count_message_tokens(msgs, "gpt-4o")
    after = token_memo()
    assert after["hits"] - before["hits"] == len(msgs)
    assert after["misses"] == before["misses"], "nothing was tokenized again"
    assert again == count_message_tokens(msgs, "gpt-4o")
    # A new turn: only it is counted.
    count_message_tokens([*msgs, HumanMessage("one more")], "gpt-4o")
    assert token_memo()["misses"] - after["misses"] <= 1


def test_memory_stays_within_the_bound(memo_size: Callable[[int], None]) -> None:
    memo_size(1000)
    info = token_memo()
    assert (info["max_messages"], info["max_bytes"]) == (1000, 24_000)
    tag = uuid.uuid4().hex
    for batch in range(100):
        count_message_tokens([f"{tag} {batch} {i}" for i in range(100)], "gpt-4o")
    info = token_memo()
    assert 900 <= info["messages"] <= 1000, info
    assert info["bytes"] == 24_000
    with pytest.raises(OverflowError):
        token_memo(max_messages=-1)


def _runs_during(call: Callable[[], object]) -> tuple[float, float]:
    """When another Python thread first ran, and how long `call` took, both from its start.

    The other thread is released just before `call` and must take the GIL to run: it runs
    during `call` only if `call` lets the GIL go (a switch forced by the interpreter cannot
    interrupt Rust code holding it)."""
    go = threading.Event()
    first: list[float] = []

    def other() -> None:
        go.wait()
        first.append(time.perf_counter())

    t = threading.Thread(target=other)
    t.start()
    time.sleep(0.05)
    go.set()
    t0 = time.perf_counter()
    call()
    t1 = time.perf_counter()
    t.join()
    return first[0] - t0, t1 - t0


def _long_prompt() -> str:
    """A 400 KB prompt the memo has never seen."""
    return uuid.uuid4().hex + " " + ("The ledger records every call, exactly. " * 10_000)[:400_000]


def _no_usage(text: str = "an answer") -> LLMResult:
    return LLMResult(generations=[[ChatGeneration(message=AIMessage(text))]])


START = {
    "invocation_params": {"model": "gpt-4o", "max_tokens": 100},
    "metadata": {"ls_provider": "openai"},
}


def _counting(
    where: str, t: CostTracker, prompt: list[list[Any]], rid: uuid.UUID
) -> Callable[[], object]:
    """The call that counts `prompt`: `count_message_tokens`, a budgeted start, or the end of
    a call whose response reports no usage."""
    if where == "count_message_tokens":
        return lambda: count_message_tokens(prompt[0], "gpt-4o")
    if where == "budgeted start":
        return lambda: t.on_chat_model_start({}, prompt, run_id=rid, **START)
    return lambda: t.on_llm_end(_no_usage(), run_id=rid)


@pytest.mark.parametrize("where", ["count_message_tokens", "budgeted start", "estimate at end"])
def test_other_threads_run_while_a_long_prompt_is_counted(where: str) -> None:
    """Holding the GIL, the other thread can only run after the count (`ran_after` about
    `took`); releasing it, the other thread runs while the count goes on. A loaded machine
    may wake the other thread late: three tries, each with a prompt never seen."""
    seen = []
    for _ in range(3):
        prompt = [[HumanMessage(_long_prompt())]]
        t = CostTracker(budgets=[Budget.daily(1000)] if where == "budgeted start" else None)
        rid = uuid.uuid4()
        if where == "estimate at end":
            t.on_chat_model_start({}, prompt, run_id=rid, **START)
        ran_after, took = _runs_during(_counting(where, t, prompt, rid))
        seen.append((round(ran_after, 4), round(took, 4)))
        if where == "estimate at end":
            assert t.records()[0]["input_tokens"] == count_message_tokens(prompt[0], "gpt-4o")
        if took - ran_after > 0.005:
            return
    pytest.fail(f"the other thread never ran during a count: (ran after, count took) {seen}")


class Messages(list):  # type: ignore[type-arg]
    """A list LangChain could pass, that can be weakly referenced."""


def _start(t: CostTracker, msgs: list[Any], **kw: Any) -> uuid.UUID:
    rid = uuid.uuid4()
    t.on_chat_model_start({}, Messages([msgs]), run_id=rid, **{**START, **kw})
    return rid


@pytest.mark.parametrize("budgeted", [False, True])
def test_estimates_without_usage_stay_exact(budgeted: bool) -> None:
    msgs = conversation(uuid.uuid4().hex)
    t = CostTracker(budgets=[Budget.daily(1000)] if budgeted else None)
    rid = _start(t, msgs)
    t.on_llm_end(_no_usage("four words of output"), run_id=rid)
    r = t.records()[0]
    assert r["usage_source"] == "estimated"
    assert r["input_tokens"] == count_message_tokens(msgs, "gpt-4o")
    assert r["output_tokens"] == count_tokens("four words of output", "gpt-4o")
    # The response's model is the one counted for (o200k for gpt-4o, cl100k for gpt-4).
    rid = _start(t, msgs, invocation_params={"model": "gpt-4"})
    t.on_llm_end(_no_usage(), run_id=rid)
    assert t.records()[1]["input_tokens"] == count_message_tokens(msgs, "gpt-4")


def test_the_prompt_is_held_by_reference_and_let_go_at_the_end() -> None:
    t = CostTracker()
    refs = []
    for ending in ["usage", "no usage", "error"]:
        inputs = Messages([[HumanMessage(f"hello {uuid.uuid4()}")]])
        refs.append(weakref.ref(inputs))
        rid = uuid.uuid4()
        t.on_chat_model_start({}, inputs, run_id=rid, **START)
        assert t._core.held_prompts == 1
        before = token_memo()
        if ending == "usage":
            msg = AIMessage(
                "hi", usage_metadata={"input_tokens": 7, "output_tokens": 1, "total_tokens": 8}
            )
            t.on_llm_end(LLMResult(generations=[[ChatGeneration(message=msg)]]), run_id=rid)
            # Usage was reported: the prompt was never read.
            after = token_memo()
            assert (after["hits"], after["misses"]) == (before["hits"], before["misses"])
        elif ending == "no usage":
            t.on_llm_end(_no_usage(), run_id=rid)
        else:
            t.on_llm_error(RuntimeError("429"), run_id=rid)
        del inputs
        assert t._core.held_prompts == 0
        assert refs[-1]() is None, ending
    assert [r["usage_source"] for r in t.records()] == ["provider", "estimated", "none"]


def test_no_prompt_is_held_without_estimates_or_with_budgets() -> None:
    for t in [CostTracker(estimate=False), CostTracker(budgets=[Budget.daily(10)])]:
        inputs = Messages([[HumanMessage("hello")]])
        ref = weakref.ref(inputs)
        t.on_chat_model_start({}, inputs, run_id=uuid.uuid4(), **START)
        del inputs
        assert t._core.held_prompts == 0
        assert ref() is None


def test_many_calls_leave_nothing_held() -> None:
    t = CostTracker()
    refs = []
    for i in range(5000):
        inputs = Messages([[HumanMessage(f"turn {i}")]])
        if i % 100 == 0:
            refs.append(weakref.ref(inputs))
        rid = uuid.uuid4()
        t.on_chat_model_start({}, inputs, run_id=rid, **START)
        t.on_llm_end(_no_usage(), run_id=rid)
    del inputs
    assert t._core.held_prompts == 0
    assert t._core.open_runs == 0
    assert all(r() is None for r in refs)
    assert t.totals()["estimated_calls"] == 5000


def test_a_held_prompt_referring_to_its_tracker_is_collected() -> None:
    """A run whose end never comes, whose messages refer back to the tracker: a cycle through
    the Rust object, which the garbage collector must see and break."""

    class App:
        def __init__(self) -> None:
            self.tracker = CostTracker()

    app = App()
    inputs = Messages([[HumanMessage("hi", additional_kwargs={"app": app})]])
    app.tracker.on_chat_model_start({}, inputs, run_id=uuid.uuid4(), **START)
    assert app.tracker._core.held_prompts == 1
    refs = [weakref.ref(app), weakref.ref(app.tracker), weakref.ref(inputs)]
    del app, inputs
    gc.collect()
    assert [r() for r in refs] == [None, None, None]


def test_token_memo_is_exported() -> None:
    assert llmledger.token_memo is token_memo
    info = token_memo()
    assert set(info) == {"max_messages", "messages", "bytes", "max_bytes", "hits", "misses"}
    assert info["max_bytes"] == 24 * info["max_messages"]
