"""Totals a dashboard needs (first and last call, latency, calls per kind, average cost), the
same from a tracker and from its ledger, and one label for a missing attribution value."""

from __future__ import annotations

import datetime
import itertools
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from langchain_core.caches import InMemoryCache
from llmledger import CostTracker, _core, cost
from llmledger.cli import main
from llmledger.testing import UsageFakeChatModel

T0 = datetime.datetime(2026, 11, 2, 9, 0, tzinfo=datetime.timezone.utc)


def stepping_clock() -> object:
    """Each reading is one minute after the previous one."""
    ticks = itertools.count()
    return lambda: T0 + datetime.timedelta(minutes=next(ticks))


def usage(i: int, o: int) -> dict[str, int]:
    return {"input_tokens": i, "output_tokens": o, "total_tokens": i + o}


def mixed_calls(t: CostTracker) -> None:
    """Two priced calls, an unpriced one, an LLM-cache hit, an estimated stream, a failure."""
    cb = {"callbacks": [t], "metadata": {"user_id": "alice"}}
    UsageFakeChatModel(model="gpt-4o-mini", usage=usage(1000, 100)).invoke("x", config=cb)
    UsageFakeChatModel(model="gpt-4o", usage=usage(2000, 300)).invoke(
        "x", config={"callbacks": [t]}
    )
    UsageFakeChatModel(model="acme-unknown-1", usage=usage(5, 5)).invoke("x", config=cb)
    cached = UsageFakeChatModel(model="gpt-4o-mini", usage=usage(50, 5), cache=InMemoryCache())
    cached.invoke("same", config=cb)
    cached.invoke("same", config=cb)
    list(UsageFakeChatModel(model="gpt-4o", stream_usage=False).stream("a b", config=cb))
    run_id = uuid.uuid4()
    t.on_chat_model_start({}, [[]], run_id=run_id)
    t.on_llm_error(RuntimeError("boom"), run_id=run_id)


def test_tracker_totals_have_dashboard_fields() -> None:
    t = CostTracker(clock=stepping_clock())
    mixed_calls(t)
    tot = t.totals()
    recs = t.records()
    assert tot["calls"] == len(recs) == 7
    assert tot["calls_by_usage_source"] == {"provider": 4, "estimated": 1, "cache": 1, "none": 1}
    assert tot["unpriced_calls"] == 1 and tot["priced_calls"] == 6
    priced = [r["cost"] for r in recs if r["cost"] is not None]
    assert tot["cost"] == sum(priced) and len(priced) == 5  # + the failure that billed nothing
    assert tot["average_cost"] == (tot["cost"] / 6).quantize(Decimal("1e-12")).normalize()
    assert tot["first_call"] == recs[0]["time"] and tot["last_call"] == recs[-1]["time"]
    assert tot["first_call"] < tot["last_call"]
    assert tot["timed_calls"] == 7
    assert tot["latency_s_sum"] == pytest.approx(sum(r["latency_s"] for r in recs), abs=1e-5)
    assert tot["latency_s_sum"] > 0
    # Each summary row has them too.
    by_user = {r["user_id"]: r for r in t.summary(by=["user_id"])}
    assert by_user["alice"]["calls"] == 5 and by_user[None]["calls"] == 2
    assert by_user[None]["first_call"] == recs[1]["time"]


def test_empty_totals() -> None:
    tot = CostTracker().totals()
    assert tot["first_call"] is None and tot["last_call"] is None
    assert tot["average_cost"] is None and tot["latency_s_sum"] == 0.0
    assert tot["calls_by_usage_source"] == {"provider": 0, "estimated": 0, "cache": 0, "none": 0}


def test_average_cost_is_exact_to_the_pico_dollar() -> None:
    t = CostTracker()
    for n in (1, 1, 2):
        UsageFakeChatModel(model="gpt-4o", usage=usage(n, 0)).invoke("x", config={"callbacks": [t]})
    # $2.50 per 1M input tokens: 4 tokens cost $0.00001, a third of that per call.
    assert t.totals()["cost"] == cost("gpt-4o", input_tokens=4) == Decimal("0.00001")
    assert t.totals()["average_cost"] == Decimal("0.000003333333")


@pytest.mark.parametrize("name", ["costs.db", "costs.jsonl"])
def test_ledger_totals_equal_the_trackers(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    t = CostTracker(store=path, clock=stepping_clock())
    mixed_calls(t)
    t.close()
    rep = _core.ledger_report(path, by=["user_id", "model"])
    assert rep["totals"] == t.totals()
    mine = sorted(t.summary(by=["user_id", "model"]), key=repr)
    assert sorted(rep["rows"], key=repr) == mine


def test_missing_value_is_one_label_in_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "costs.db"
    t = CostTracker(store=path)
    mixed_calls(t)
    t.close()
    assert {r["user_id"] for r in t.summary(by="user_id")} == {"alice", None}
    line = next(x for x in t.report(by="user_id").splitlines() if x.startswith("(none)"))
    assert line.split()[1] == "2"
    assert main(["report", str(path), "--by", "user_id"]) == 0
    out = capsys.readouterr().out
    assert any(x.startswith("(none) ") for x in out.splitlines()), out
    assert not any(x.startswith("- ") for x in out.splitlines())
