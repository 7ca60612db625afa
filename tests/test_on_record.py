"""`CostTracker(on_record=fn)`: run code after each call is recorded, in the hook's thread,
with fresh totals; exceptions logged, never raised."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from llmledger import Budget, BudgetExceededError, CostTracker, track_costs
from llmledger.testing import UsageFakeChatModel

USAGE = {"input_tokens": 1000, "output_tokens": 100, "total_tokens": 1100}


def llm() -> UsageFakeChatModel:
    return UsageFakeChatModel(model="gpt-4o-mini", usage=USAGE)


class Seen:
    """An on_record hook noting what it was called with, where, and what totals it saw."""

    def __init__(self) -> None:
        self.tracker: CostTracker | None = None
        self.records: list[dict[str, Any]] = []
        self.threads: list[int] = []
        self.calls_seen: list[int] = []
        self.own_recorded: list[bool] = []
        self.in_loop: list[bool] = []

    def __call__(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        self.threads.append(threading.get_ident())
        assert self.tracker is not None
        self.calls_seen.append(self.tracker.totals()["calls"])
        self.own_recorded.append(record["run_id"] in {r["run_id"] for r in self.tracker.records()})
        try:
            asyncio.get_running_loop()
            self.in_loop.append(True)
        except RuntimeError:
            self.in_loop.append(False)


def tracker_with(seen: Seen, **kwargs: Any) -> CostTracker:
    t = CostTracker(on_record=seen, **kwargs)
    seen.tracker = t
    return t


def test_called_with_the_record_after_the_totals() -> None:
    seen = Seen()
    t = tracker_with(seen)
    for user in ["alice", "bob"]:
        llm().invoke("hi", config={"callbacks": [t], "metadata": {"user_id": user}})
    assert seen.records == t.records()
    assert [r["attribution"]["user_id"] for r in seen.records] == ["alice", "bob"]
    assert seen.calls_seen == [1, 2]  # the totals already counted the call
    assert seen.threads == [threading.get_ident()] * 2


def test_a_handler_listed_before_the_tracker_sees_stale_totals() -> None:
    """Why on_record is the supported way: a second handler runs before or after the tracker
    depending on its place in the list."""
    t = CostTracker()
    stale: list[int] = []

    class Before(BaseCallbackHandler):
        def on_llm_end(self, response: Any, **kwargs: Any) -> None:
            stale.append(t.totals()["calls"])

    seen = Seen()
    t2 = tracker_with(seen)
    llm().invoke("hi", config={"callbacks": [Before(), t, t2]})
    assert stale == [0]
    assert seen.calls_seen == [1]


def test_exceptions_are_logged_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    def boom(record: dict[str, Any]) -> None:
        raise KeyError("no such field")

    t = CostTracker(on_record=boom)
    with caplog.at_level(logging.ERROR, logger="llmledger"):
        out = llm().invoke("hi", config={"callbacks": [t]})
    assert out.content == "ok" and t.totals()["calls"] == 1
    [rec] = [r for r in caplog.records if "on_record" in r.getMessage()]
    assert "KeyError: 'no such field'" in rec.getMessage()
    assert rec.exc_info is not None and rec.exc_info[0] is KeyError  # with its traceback


def test_threads_of_a_batch_each_call_once() -> None:
    seen = Seen()
    t = tracker_with(seen)
    llm().batch(["q"] * 32, config={"callbacks": [t], "max_concurrency": 8})
    assert len(seen.records) == t.totals()["calls"] == 32
    assert {r["run_id"] for r in seen.records} == {r["run_id"] for r in t.records()}
    assert threading.get_ident() not in seen.threads  # the pool's threads ran the hooks
    # Other threads may record between a call's recording and its hook: each hook sees its
    # own call counted, and the last one sees them all.
    assert all(seen.own_recorded) and max(seen.calls_seen) == 32


def test_async_ainvoke_and_abatch() -> None:
    seen = Seen()
    t = tracker_with(seen)

    async def run() -> None:
        await llm().ainvoke("hi", config={"callbacks": [t]})
        await llm().abatch(["a", "b", "c"], config={"callbacks": [t]})
        await asyncio.gather(*(llm().ainvoke("x", config={"callbacks": [t]}) for _ in range(4)))

    asyncio.run(run())
    assert len(seen.records) == t.totals()["calls"] == 8
    assert seen.records == t.records()
    assert all(seen.in_loop)  # run_inline: in the event loop's thread, no executor hop


def test_track_costs_on_record() -> None:
    got: list[str] = []
    with track_costs(on_record=lambda r: got.append(r["model"])) as cost:
        llm().invoke("hi")
    assert got == ["gpt-4o-mini"] and cost.successful_requests == 1


def test_refused_calls_have_no_record_and_bad_hooks_are_refused() -> None:
    seen = Seen()
    t = tracker_with(
        seen,
        prices={"gpt-4o-mini": {"input": "1", "output": "1"}},
        budgets=[Budget.daily("0.000001")],
    )
    with pytest.raises(BudgetExceededError):
        llm().invoke("hi", config={"callbacks": [t]})
    assert seen.records == [] and t.blocked_calls == 1
    with pytest.raises(TypeError, match="on_record= must be a callable"):
        CostTracker(on_record="print")  # type: ignore[arg-type]


def test_a_tracker_holding_its_owners_on_record_is_collected() -> None:
    """`on_record=self.method` is a cycle through the Rust object: the collector breaks it."""
    import gc
    import weakref

    class App:
        def __init__(self) -> None:
            self.seen: list[str] = []
            self.tracker = CostTracker(on_record=self.record)

        def record(self, r: dict[str, Any]) -> None:
            self.seen.append(r["model"])

    app = App()
    llm().invoke("hi", config={"callbacks": [app.tracker]})
    assert app.seen == ["gpt-4o-mini"]
    app_ref, tracker_ref = weakref.ref(app), weakref.ref(app.tracker)
    del app
    gc.collect()
    assert app_ref() is None and tracker_ref() is None
