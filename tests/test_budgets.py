"""Budgets stop a call before it spends: reservation at start, settlement at end, stream cuts,
alerts to the logger, a callable and a webhook. Real ChatOpenAI against the local fake
server, LangChain fakes, 16 racing threads, an injectable clock, and a ledger shared across
restarts."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fake_provider import FakeProvider, openai_usage
from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.outputs import ChatResult
from llmledger import (
    Budget,
    BudgetAlert,
    BudgetExceededError,
    CostTracker,
    LlmLedgerError,
    cost,
    count_message_tokens,
    price,
)
from llmledger.testing import UsageFakeChatModel
from test_real_clients import chat_openai

UTC = dt.timezone.utc


class Clock:
    """A hand-moved clock for `CostTracker(clock=...)`."""

    def __init__(self, t: str) -> None:
        self.t = dt.datetime.fromisoformat(t)

    def __call__(self) -> dt.datetime:
        return self.t

    def advance(self, **kw: float) -> None:
        self.t += dt.timedelta(**kw)


def fake(model: str = "budget-model", **kw: Any) -> UsageFakeChatModel:
    kw.setdefault("responses", ["fine"])
    return UsageFakeChatModel(model=model, provider="acme", **kw)


def usage(i: int, o: int) -> dict[str, int]:
    return {"input_tokens": i, "output_tokens": o, "total_tokens": i + o}


# $1 per 1M input tokens, $2 per 1M output tokens: exact, easy numbers.
PRICES = {"budget-model": {"input": "1", "output": "2"}}


def prompt_tokens(text: str, model: str = "budget-model") -> int:
    return count_message_tokens([HumanMessage(text)], model)


# ---- the Budget object ---------------------------------------------------------------


def test_budget_constructors_and_fields() -> None:
    b = Budget.monthly(500, per="user_id", tz="Europe/Berlin", alert_at=(0.9, 0.5))
    assert b.limit == Decimal(500)
    assert b.window == "month (Europe/Berlin)"
    assert b.per == "user_id"
    assert b.alert_at == (Decimal("0.5"), Decimal("0.9"))
    assert b.action == "block" and not b.cut_streams
    assert b.name == "month (Europe/Berlin) per user_id"
    assert repr(b) == "Budget(500, window='month', tz='Europe/Berlin', per='user_id')"
    assert repr(Budget(2, window="rolling:15m", per="model")) == (
        "Budget(2, window='rolling:15m', per='model')"
    )
    assert Budget.hourly("1.50").limit == Decimal("1.5")
    # A float is read through its repr: 0.1 is exactly one tenth, not 0.1000000000000000055.
    assert Budget.daily(0.1).limit == Decimal("0.1")
    assert Budget.daily(Decimal("10"), scope="tag").per == "tag"
    assert Budget.lifetime(3).window == "lifetime"
    assert Budget.weekly(3).window == "week"
    assert Budget(1, "rolling:2h", action="alert").action == "alert"
    assert Budget(1, name="ops").name == "ops"
    assert Budget.daily(1, alert_at=()).alert_at == ()


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"limit": 0}, ValueError, "must be positive"),
        ({"limit": -5}, ValueError, "must be positive"),
        ({"limit": True}, TypeError, "not a bool"),
        ({"limit": "ten"}, ValueError, "'ten'"),
        ({"limit": float("nan")}, ValueError, "nan"),
        ({"limit": [1]}, TypeError, "list"),
        ({"limit": 1, "window": "fortnight"}, ValueError, "fortnight"),
        ({"limit": 1, "window": "day", "tz": "Mars/Olympus"}, ValueError, "Mars/Olympus"),
        ({"limit": 1, "window": "rolling:15m", "tz": "UTC"}, ValueError, "rolling"),
        ({"limit": 1, "action": "stop"}, ValueError, "'stop'"),
        ({"limit": 1, "alert_at": (0.5, 11)}, ValueError, "11"),
        ({"limit": 1, "alert_at": "0.5"}, TypeError, "sequence"),
        ({"limit": 1, "per": "user_id", "scope": "model"}, ValueError, "disagree"),
        ({"limit": 1, "action": "alert", "cut_streams": True}, ValueError, "cut_streams"),
    ],
)
def test_bad_budgets_say_what_is_wrong(kwargs: dict[str, Any], error: type, words: str) -> None:
    with pytest.raises(error, match=None) as e:
        Budget(**kwargs)
    assert words.lower() in str(e.value).lower()


def test_bad_tracker_budget_arguments() -> None:
    with pytest.raises(TypeError, match="llmledger.Budget"):
        CostTracker(budgets=[10])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="on_alert must be a callable"):
        CostTracker(budgets=[Budget.daily(1)], on_alert="print")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="http") as e:
        CostTracker(alert_webhook="hooks.slack.com/services/T000/B000/SECRETTOKEN")
    assert "SECRETTOKEN" not in str(e.value)
    with pytest.raises(ValueError, match="no budgets"):
        CostTracker().reset_budget()
    # A single Budget is accepted as well as a list; duplicate names are made unique.
    t = CostTracker(budgets=[Budget.daily(1), Budget.daily(2)])
    assert [b["budget"] for b in t.budgets()] == ["day", "day #2"]
    assert CostTracker(budgets=Budget.daily(1)).budgets()[0]["limit"] == Decimal(1)


# ---- reserve before, settle after ----------------------------------------------------


def test_exhausted_budget_refuses_the_next_call_before_it_runs() -> None:
    llm = fake(usage=usage(400, 100))
    alerts: list[BudgetAlert] = []
    t = CostTracker(prices=PRICES, budgets=[Budget.daily("0.0012")], on_alert=alerts.append)
    cfg = {"callbacks": [t]}
    llm.invoke("go", config=cfg)  # $0.0006
    llm.invoke("go", config=cfg)  # $0.0012: exactly at the limit is allowed
    assert t.total_cost == Decimal("0.0012")
    with pytest.raises(BudgetExceededError) as e:
        llm.invoke("go", config=cfg)
    err = e.value
    assert isinstance(err, LlmLedgerError)
    assert (err.budget, err.scope, err.value) == ("day", "global", None)
    assert err.limit == Decimal("0.0012") and err.spent == Decimal("0.0012")
    assert err.reserved == 0
    # The estimate: the prompt, counted; no max_tokens and no output limit -> prompt only.
    assert err.requested == Decimal(prompt_tokens("go")) / 1_000_000
    assert err.window == "day"
    assert err.resets_at is not None and err.resets_at.tzinfo is not None
    assert "budget 'day' (global)" in str(err) and "$0.0012 limit" in str(err)
    assert llm.index == 2  # the model was not called a third time
    assert t.successful_requests == 2 and t.failed_requests == 0
    assert t.blocked_calls == 1
    assert "Blocked Requests (budget): 1" in str(t)
    assert t._core.open_runs == 0  # nothing of the refused run is kept
    [state] = t.budgets()
    assert state["spent"] == Decimal("0.0012") and state["reserved"] == 0
    assert state["remaining"] == 0 and state["percent"] == 100
    assert [(a.kind, a.percent) for a in alerts] == [
        ("threshold", 50),
        ("threshold", 100),
        ("blocked", 100),
    ]
    # A second refusal in the same window does not alert again.
    with pytest.raises(BudgetExceededError):
        llm.invoke("go", config=cfg)
    assert len(alerts) == 3 and t.blocked_calls == 2
    t.reset()  # forgets records, totals and the blocked count; the budget keeps its window
    assert t.blocked_calls == 0 and t.total_cost == 0
    assert t.budgets()[0]["spent"] == Decimal("0.0012")


def test_real_openai_client_is_stopped_before_any_request(fake_provider: FakeProvider) -> None:
    fake_provider.set_openai(usage=openai_usage(12, 6))
    llm = chat_openai(fake_provider, model="gpt-4o-mini", max_tokens=10)
    # One call is 12 x $0.15 + 6 x $0.60 per 1M = $0.0000054; the reservation is the prompt
    # counted plus max_tokens=10 of output.
    t = CostTracker(budgets=[Budget.daily("0.00001")])
    llm.invoke("hi", config={"callbacks": [t]})
    assert fake_provider.request_count == 1
    assert t.total_cost == Decimal("0.0000054")
    with pytest.raises(BudgetExceededError) as e:
        llm.invoke("hi", config={"callbacks": [t]})
    assert fake_provider.request_count == 1  # nothing reached the server
    expected = cost(
        "gpt-4o-mini",
        input_tokens=count_message_tokens([HumanMessage("hi")], "gpt-4o-mini"),
        output_tokens=10,
    )
    assert e.value.requested == expected
    assert e.value.spent == Decimal("0.0000054")


def test_max_tokens_bounds_the_reservation(fake_provider: FakeProvider) -> None:
    # max_tokens=4000 of gpt-4o output is $0.04: more than the whole $0.01 budget, so even the
    # first call is refused; with max_tokens=100 it passes.
    t = CostTracker(budgets=[Budget.daily("0.01")])
    with pytest.raises(BudgetExceededError) as e:
        chat_openai(fake_provider, max_tokens=4000).invoke("hi", config={"callbacks": [t]})
    assert e.value.requested > Decimal("0.04")
    assert fake_provider.request_count == 0
    chat_openai(fake_provider, max_tokens=100).invoke("hi", config={"callbacks": [t]})
    assert fake_provider.request_count == 1
    # n=3 completions reserve three times the output.
    t2 = CostTracker(budgets=[Budget.daily("0.0105")])
    with pytest.raises(BudgetExceededError) as e:
        chat_openai(fake_provider, max_tokens=400, n=3).invoke("hi", config={"callbacks": [t2]})
    prompt = count_message_tokens([HumanMessage("hi")], "gpt-4o")
    assert e.value.requested == cost("gpt-4o", input_tokens=prompt, output_tokens=1200)
    # Without max_tokens, the model's output limit from the catalog bounds the output.
    limit = price("gpt-4o")["max_output_tokens"]
    assert limit == 16_384
    with pytest.raises(BudgetExceededError) as e:
        chat_openai(fake_provider).invoke("hi", config={"callbacks": [t2]})
    assert e.value.requested == cost("gpt-4o", input_tokens=prompt, output_tokens=limit)
    assert fake_provider.request_count == 1


def test_async_calls_are_refused_too(fake_provider: FakeProvider) -> None:
    import openai

    t = CostTracker(budgets=[Budget.daily("0.00001")])

    async def main() -> None:
        client = openai.DefaultAsyncHttpxClient()
        llm = chat_openai(
            fake_provider, model="gpt-4o-mini", max_tokens=10, http_async_client=client
        )
        try:
            await llm.ainvoke("hi", config={"callbacks": [t]})
            with pytest.raises(BudgetExceededError):
                await llm.ainvoke("hi", config={"callbacks": [t]})
        finally:
            await client.aclose()
            await asyncio.sleep(0.05)

    asyncio.run(main())
    assert fake_provider.request_count == 1
    assert t.blocked_calls == 1


def test_reservation_is_held_in_flight_and_settled_to_the_real_cost() -> None:
    seen: list[dict[str, Any]] = []

    class Watching(UsageFakeChatModel):
        def _generate(self, messages: list[BaseMessage], *a: Any, **kw: Any) -> ChatResult:
            seen.extend(t.budgets())
            return super()._generate(messages, *a, **kw)

    t = CostTracker(prices=PRICES, budgets=[Budget.daily(1)])
    llm = Watching(model="budget-model", provider="acme", usage=usage(10, 5))
    llm.invoke("go", config={"callbacks": [t]}, max_tokens=50)
    prompt = prompt_tokens("go")
    assert seen[0]["reserved"] == Decimal(prompt + 50 * 2) / 1_000_000
    [after] = t.budgets()
    assert after["reserved"] == 0
    assert after["spent"] == Decimal(10 + 5 * 2) / 1_000_000 == t.total_cost


def test_a_failed_call_releases_its_reservation() -> None:
    class Failing(UsageFakeChatModel):
        def _generate(self, *a: Any, **kw: Any) -> ChatResult:
            raise RuntimeError("provider down")

    t = CostTracker(prices=PRICES, budgets=[Budget.daily(1)])
    with pytest.raises(RuntimeError, match="provider down"):
        Failing(model="budget-model").invoke("go", config={"callbacks": [t]}, max_tokens=50)
    [state] = t.budgets()
    assert state["reserved"] == 0 and state["spent"] == 0
    assert t.failed_requests == 1


def test_unknown_model_reserves_nothing_and_is_not_charged(ledger_log: Any) -> None:
    t = CostTracker(budgets=[Budget.daily("0.001")])
    fake("mystery-model-9", usage=usage(10, 10)).invoke("go", config={"callbacks": [t]})
    [state] = t.budgets()
    assert state["spent"] == 0 and state["reserved"] == 0
    assert t.unpriced_calls == 1
    assert "no price for model 'mystery-model-9'" in ledger_log.text


def test_per_user_budgets_and_the_anonymous_bucket() -> None:
    llm = fake(usage=usage(500, 0))  # $0.0005 a call
    t = CostTracker(prices=PRICES, attribute=(), budgets=[Budget.daily("0.001", per="team")])
    call = lambda team: llm.invoke(  # noqa: E731
        "go", config={"callbacks": [t], "metadata": {"team": team} if team else {}}
    )
    call("red")
    call("red")
    with pytest.raises(BudgetExceededError) as e:
        call("red")
    assert (e.value.scope, e.value.value) == ("team", "red")
    assert "per team = 'red'" in str(e.value)
    call("blue")  # blue has its own budget
    call(None)
    call(None)
    with pytest.raises(BudgetExceededError) as e:
        call(None)  # calls without the key share one capped bucket
    assert e.value.value is None and "(none)" in str(e.value)
    # The key is captured for attribution even though `attribute=()`.
    assert {r["attribution"].get("team") for r in t.records()} == {"red", "blue", None}
    rows = {(s["value"], s["spent"]) for s in t.budgets()}
    assert rows == {
        (None, Decimal("0.001")),
        ("blue", Decimal("0.0005")),
        ("red", Decimal("0.001")),
    }


def test_per_model_budget_counts_by_the_requested_model(fake_provider: FakeProvider) -> None:
    # The server answers with a dated snapshot; the budget is for the name asked for.
    fake_provider.set_openai(model="gpt-4o-mini-2024-07-18")
    t = CostTracker(budgets=[Budget.daily(1, per="model")])
    chat_openai(fake_provider, model="gpt-4o-mini", max_tokens=5).invoke(
        "hi", config={"callbacks": [t]}
    )
    [state] = t.budgets()
    assert state["value"] == "gpt-4o-mini" and state["spent"] == t.total_cost > 0
    [rec] = t.records()
    assert (rec["model"], rec["requested_model"]) == ("gpt-4o-mini-2024-07-18", "gpt-4o-mini")


def test_alert_only_budgets_never_block() -> None:
    alerts: list[BudgetAlert] = []
    t = CostTracker(
        prices=PRICES,
        budgets=[Budget.daily("0.001", action="alert", alert_at=(1, 2))],
        on_alert=alerts.append,
    )
    llm = fake(usage=usage(1000, 0))  # $0.001 a call
    for _ in range(3):
        llm.invoke("go", config={"callbacks": [t]})
    assert t.total_cost == Decimal("0.003") and t.blocked_calls == 0
    assert [(a.kind, a.threshold, a.action) for a in alerts] == [
        ("threshold", 1, "alert"),
        ("threshold", 2, "alert"),
    ]
    assert t.budgets()[0]["remaining"] == 0 and t.budgets()[0]["percent"] == 300


def test_when_one_tracker_refuses_the_others_release_what_they_reserved() -> None:
    from llmledger import track_costs

    llm = fake(usage=usage(1000, 0))
    roomy = CostTracker(prices=PRICES, budgets=[Budget.daily(1)])
    tight = CostTracker(prices=PRICES, budgets=[Budget.daily("0.001")])
    llm.invoke("go", config={"callbacks": [roomy, tight]})
    with pytest.raises(BudgetExceededError):
        llm.invoke("go", config={"callbacks": [roomy, tight]})
    # `roomy` admitted the refused call first; it holds nothing for it and did not count it.
    assert roomy.budgets()[0]["reserved"] == 0 and roomy.successful_requests == 1
    assert roomy._core.open_runs == 0
    # The same through nested track_costs() blocks.
    with track_costs(prices=PRICES, budgets=[Budget.daily(1)]) as outer:
        with track_costs(prices=PRICES, budgets=[Budget.daily("0.001")]) as inner:
            llm.invoke("go")
            with pytest.raises(BudgetExceededError):
                llm.invoke("go")
        llm.invoke("go")  # outside the inner block only the outer budget applies
    assert inner.successful_requests == 1 and inner.blocked_calls == 1
    assert outer.successful_requests == 2 and outer.budgets()[0]["reserved"] == 0
    assert outer.budgets()[0]["spent"] == Decimal("0.002")


# ---- concurrency -----------------------------------------------------------------------


def test_sixteen_threads_racing_never_overrun_an_exact_budget() -> None:
    prompt = prompt_tokens("race")
    out = 20
    per_call = Decimal(prompt + out * 2) / 1_000_000  # estimate == real cost: exact
    barrier = threading.Barrier(16)

    class Slow(UsageFakeChatModel):
        def _generate(self, *a: Any, **kw: Any) -> ChatResult:
            time.sleep(0.05)  # every admitted call is in flight while the others try
            return super()._generate(*a, **kw)

    llm = Slow(model="budget-model", provider="acme", usage=usage(prompt, out))
    limit = per_call * 5 + per_call / 2
    t = CostTracker(prices=PRICES, budgets=[Budget.lifetime(limit)])
    results: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        try:
            llm.invoke("race", config={"callbacks": [t]}, max_tokens=out)
            r = "ok"
        except BudgetExceededError:
            r = "blocked"
        with lock:
            results.append(r)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert results.count("ok") == 5 and results.count("blocked") == 11
    assert t.total_cost == per_call * 5 <= limit
    [state] = t.budgets()
    assert state["spent"] == per_call * 5 and state["reserved"] == 0
    assert t.blocked_calls == 11


# ---- streams -----------------------------------------------------------------------------


def test_cut_streams_stops_a_stream_that_overruns_and_charges_what_it_generated() -> None:
    prices = {"stream-model": {"input": "0", "output": "1000"}}  # $0.001 per output token
    llm = fake("stream-model", responses=[" ".join(["word"] * 200)], stream_usage=False)
    t = CostTracker(prices=prices, budgets=[Budget.daily("0.01", cut_streams=True)])
    got: list[str] = []
    with pytest.raises(BudgetExceededError) as e:
        for chunk in llm.stream("go", config={"callbacks": [t]}):
            got.append(str(chunk.content))
    # Ten one-token chunks fit in $0.01; the eleventh pushed the stream past the limit.
    assert len(got) == 10
    assert "budget 'day'" in str(e.value)
    [rec] = t.records()
    assert rec["error"].startswith("BudgetExceededError")
    assert rec["usage_source"] == "estimated"
    assert rec["output_tokens"] == 11
    assert rec["cost"] == Decimal("0.011")
    [state] = t.budgets()
    assert state["spent"] == Decimal("0.011") and state["reserved"] == 0
    with pytest.raises(BudgetExceededError):  # the budget is spent: the next call is refused
        llm.invoke("go", config={"callbacks": [t]})


def test_streams_are_not_cut_without_cut_streams() -> None:
    prices = {"stream-model": {"input": "0", "output": "1000"}}
    llm = fake("stream-model", responses=[" ".join(["word"] * 50)], stream_usage=False)
    t = CostTracker(prices=prices, budgets=[Budget.daily("0.01")])
    chunks = list(llm.stream("go", config={"callbacks": [t]}))
    assert len(chunks) > 50
    assert t.records()[0]["output_tokens"] == 50
    assert t.budgets()[0]["spent"] == Decimal("0.05")  # over: the next call is refused
    with pytest.raises(BudgetExceededError):
        llm.invoke("go", config={"callbacks": [t]})


# ---- windows and the clock -----------------------------------------------------------------


def test_daily_window_rolls_over_by_itself_in_its_time_zone() -> None:
    clock = Clock("2026-11-23T04:59:00+00:00")  # 23:59 in New York
    llm = fake(usage=usage(1000, 0))  # $0.001
    t = CostTracker(
        prices=PRICES, budgets=[Budget.daily("0.001", tz="America/New_York")], clock=clock
    )
    llm.invoke("go", config={"callbacks": [t]})
    with pytest.raises(BudgetExceededError) as e:
        llm.invoke("go", config={"callbacks": [t]})
    assert e.value.resets_at == dt.datetime(2026, 11, 23, 5, 0, tzinfo=UTC)
    clock.advance(minutes=1)  # midnight in New York: a new day, no reset needed
    llm.invoke("go", config={"callbacks": [t]})
    [state] = t.budgets()
    assert state["spent"] == Decimal("0.001")
    assert state["window_start"] == dt.datetime(2026, 11, 23, 5, 0, tzinfo=UTC)
    assert t.records()[-1]["time"] == "2026-11-23T05:00:00.000000Z"  # records follow the clock


def test_rolling_window_lets_old_spend_go() -> None:
    clock = Clock("2026-11-23T10:00:00+00:00")
    llm = fake(usage=usage(1000, 0))
    t = CostTracker(prices=PRICES, budgets=[Budget("0.002", "rolling:15m")], clock=clock)
    llm.invoke("go", config={"callbacks": [t]})
    clock.advance(minutes=10)
    llm.invoke("go", config={"callbacks": [t]})
    with pytest.raises(BudgetExceededError) as e:
        llm.invoke("go", config={"callbacks": [t]})
    assert e.value.resets_at == dt.datetime(2026, 11, 23, 10, 15, tzinfo=UTC)
    clock.advance(minutes=5, seconds=1)  # the first call left the window
    llm.invoke("go", config={"callbacks": [t]})


def test_reset_budget_is_for_operators() -> None:
    llm = fake(usage=usage(1000, 0))
    t = CostTracker(prices=PRICES, budgets=[Budget.daily("0.001", per="user_id", name="users")])
    cfg = {"callbacks": [t], "metadata": {"user_id": "ann"}}
    llm.invoke("go", config=cfg)
    with pytest.raises(BudgetExceededError):
        llm.invoke("go", config=cfg)
    with pytest.raises(ValueError, match="no budget named 'nope'.*'users'"):
        t.reset_budget("nope")
    assert t.reset_budget("users", "ann") == 1
    llm.invoke("go", config=cfg)


def test_a_broken_clock_is_logged_and_the_system_clock_used(ledger_log: Any) -> None:
    t = CostTracker(prices=PRICES, budgets=[Budget.daily(1)], clock=lambda: "noon")
    fake(usage=usage(10, 0)).invoke("go", config={"callbacks": [t]})
    assert t.successful_requests == 1
    assert "clock() must return a timezone-aware datetime" in ledger_log.text
    recorded = dt.datetime.fromisoformat(t.records()[0]["time"].replace("Z", "+00:00"))
    assert abs(recorded - dt.datetime.now(UTC)) < dt.timedelta(minutes=5)


# ---- restart and shared ledgers ----------------------------------------------------------------


def test_a_restart_resumes_the_window_from_the_ledger(tmp_path: Path) -> None:
    db = tmp_path / "costs.db"
    clock = Clock("2026-11-23T10:00:00+00:00")
    llm = fake(usage=usage(1000, 0))
    alerts: list[BudgetAlert] = []

    def tracker() -> CostTracker:
        return CostTracker(
            prices=PRICES,
            store=db,
            budgets=[Budget.daily("0.003"), Budget.daily("0.002", per="model")],
            clock=clock,
            on_alert=alerts.append,
        )

    t = tracker()
    llm.invoke("go", config={"callbacks": [t]})
    llm.invoke("go", config={"callbacks": [t]})
    t.close()
    assert len(alerts) == 3  # 50% of day; 50% and 100% of the per-model budget
    restarted = tracker()
    states = {(s["budget"], s["value"]): s["spent"] for s in restarted.budgets()}
    assert states == {
        ("day", None): Decimal("0.002"),
        ("day per model", "budget-model"): Decimal("0.002"),
    }
    with pytest.raises(BudgetExceededError) as e:
        llm.invoke("go", config={"callbacks": [restarted]})
    assert e.value.budget == "day per model"
    assert [a.kind for a in alerts[3:]] == ["blocked"]  # thresholds already fired: not again
    restarted.close()
    # Tomorrow the window starts afresh: yesterday's records are not loaded.
    clock.advance(days=1)
    assert all(s["spent"] == 0 for s in tracker().budgets())


# ---- alert sinks -----------------------------------------------------------------------------


class Hook:
    """A local webhook receiver; `gate` holds every answer until it is set."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.received = threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                n = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(n))
                if gate is not None:
                    gate.wait(10)
                hook.bodies.append(body)
                hook.paths.append(self.path)
                hook.received.set()
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *a: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/T0/B0/SECRET"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.close()


def test_webhook_receives_slack_compatible_alerts(hook: Hook, ledger_log: Any) -> None:
    t = CostTracker(
        prices=PRICES, budgets=[Budget.daily("0.002", per="user_id")], alert_webhook=hook.url
    )
    llm = fake(usage=usage(1000, 0))
    cfg = {"callbacks": [t], "metadata": {"user_id": "ann"}}
    llm.invoke("go", config=cfg)
    llm.invoke("go", config=cfg)
    t.flush()
    assert [b["event"] for b in hook.bodies] == ["threshold", "threshold"]
    first = hook.bodies[0]
    assert first["text"].startswith(
        "llmledger budget 'day per user_id' (user_id = 'ann') reached 50%"
    )
    assert first["budget"] == "day per user_id" and first["scope"] == "user_id"
    assert first["value"] == "ann" and first["threshold"] == "0.5" and first["percent"] == "50"
    assert first["spent"] == "0.001" and first["limit"] == "0.002" and first["window"] == "day"
    assert hook.paths[0] == "/services/T0/B0/SECRET"
    assert t.alert_info() == {
        "target": hook.url.split("/services")[0],
        "sent": 2,
        "failed": 0,
        "dropped": 0,
    }
    # The logger has the alert text, and never the webhook's secret path.
    assert "reached 100%" in ledger_log.text
    assert "SECRET" not in ledger_log.text
    t.close()


def test_a_stuck_webhook_never_holds_up_calls() -> None:
    gate = threading.Event()
    h = Hook(gate)
    try:
        t = CostTracker(
            prices=PRICES,
            budgets=[Budget.daily("0.001", alert_at=(0.1, 0.2, 0.3))],
            alert_webhook=h.url,
        )
        llm = fake(usage=usage(100, 0))
        for _ in range(5):  # 10%, 20%, 30%... each call fires an alert
            llm.invoke("go", config={"callbacks": [t]})
        # Every call has returned while the webhook has answered nothing.
        assert t.successful_requests == 5 and h.bodies == []
        gate.set()
        t.flush()
        assert [b["percent"] for b in h.bodies] == ["10", "20", "30"]
        t.close()
    finally:
        gate.set()
        h.close()


def test_a_dead_webhook_is_logged_not_raised(ledger_log: Any) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens there
    t = CostTracker(
        prices=PRICES,
        budgets=[Budget.daily("0.001")],
        alert_webhook=f"http://127.0.0.1:{port}/hook/SECRET",
    )
    fake(usage=usage(1000, 0)).invoke("go", config={"callbacks": [t]})
    assert t.successful_requests == 1
    t.flush()  # retries (0.5 + 1 + 2 s) then gives up
    # One call crossed 50%, 80% and 100% at once: one alert, for the highest.
    assert t.alert_info() == {
        "target": f"http://127.0.0.1:{port}",
        "sent": 0,
        "failed": 1,
        "dropped": 0,
    }
    assert f"127.0.0.1:{port}" in ledger_log.text and "SECRET" not in ledger_log.text
    t.close()


def test_on_alert_that_raises_is_logged_and_the_call_goes_on(ledger_log: Any) -> None:
    def broken(alert: BudgetAlert) -> None:
        raise RuntimeError("pager offline")

    t = CostTracker(prices=PRICES, budgets=[Budget.daily("0.001")], on_alert=broken)
    msg = fake(usage=usage(1000, 0)).invoke("go", config={"callbacks": [t]})
    assert msg.content == "fine"
    assert "on_alert raised" in ledger_log.text and "pager offline" in ledger_log.text
    assert any(
        r.levelno == logging.WARNING and "reached 100%" in r.getMessage()
        for r in ledger_log.records
    )


def test_alert_object_fields() -> None:
    clock = Clock("2026-11-23T10:00:00+00:00")
    got: list[BudgetAlert] = []
    t = CostTracker(
        prices=PRICES,
        budgets=[Budget.daily("0.001", alert_at=(0.8,))],
        on_alert=got.append,
        clock=clock,
    )
    fake(usage=usage(900, 0)).invoke("go", config={"callbacks": [t]})
    [a] = got
    assert (a.kind, a.budget, a.scope, a.value) == ("threshold", "day", "global", None)
    assert (a.threshold, a.percent, a.spent, a.limit) == (
        Decimal("0.8"),
        Decimal(80),
        Decimal("0.0009"),
        Decimal("0.001"),
    )
    assert a.reserved == 0 and a.window == "day" and a.action == "block"
    assert a.time == clock.t
    assert a.resets_at == dt.datetime(2026, 11, 24, tzinfo=UTC)
    assert str(a) == a.text and "reached 80%" in a.text
    body = json.loads(a.to_json())
    assert body["text"] == a.text and body["time"] == "2026-11-23T10:00:00Z"


def test_budget_benchmark_runs() -> None:
    """The benchmark runs once, tiny, so it keeps working (figures are not asserted)."""
    import subprocess
    import sys

    bench = Path(__file__).parent.parent / "benchmarks" / "bench_budgets.py"
    out = subprocess.run(
        [sys.executable, str(bench), "--calls", "256", "--repeat", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "CostTracker, 3 budgets" in out.stdout and "Three budgets add" in out.stdout


def test_per_tag_and_per_root_run_budgets_through_a_chain(tmp_path: Path) -> None:
    from langchain_core.runnables import RunnableLambda

    llm = fake(usage=usage(1000, 0))  # $0.001 a call

    def twice(x: str) -> str:
        llm.invoke(x)
        llm.invoke(x)
        return x

    chain = RunnableLambda(twice).with_config(run_name="summarise")
    t = CostTracker(
        prices=PRICES,
        store=tmp_path / "costs.jsonl",
        budgets=[
            Budget.daily("0.002", per="root_run"),  # caps one invocation of the chain
            Budget.daily("0.003", per="tag"),
        ],
    )
    chain.invoke("a", config={"callbacks": [t], "tags": ["beta"]})
    with pytest.raises(BudgetExceededError) as e:
        # A new invocation has its own root-run budget, but the 'beta' tag has $0.001 left.
        chain.invoke("b", config={"callbacks": [t], "tags": ["beta"]})
    assert (e.value.scope, e.value.value) == ("tag", "beta")
    chain.invoke("c", config={"callbacks": [t], "tags": ["gamma"]})
    spent = {(s["scope"], s["value"]): s["spent"] for s in t.budgets() if s["scope"] == "tag"}
    assert spent == {("tag", "beta"): Decimal("0.003"), ("tag", "gamma"): Decimal("0.002")}
    roots = [s for s in t.budgets() if s["scope"] == "root_run"]
    assert sorted(s["spent"] for s in roots) == [
        Decimal("0.001"),
        Decimal("0.002"),
        Decimal("0.002"),
    ]
    t.close()
    # A JSONL ledger resumes the windows too.
    again = CostTracker(
        prices=PRICES, store=tmp_path / "costs.jsonl", budgets=[Budget.daily("0.003", per="tag")]
    )
    assert {s["value"]: s["spent"] for s in again.budgets()} == {
        "beta": Decimal("0.003"),
        "gamma": Decimal("0.002"),
    }
    again.close()
