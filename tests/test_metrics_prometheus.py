"""`CostTracker(metrics="prometheus")`: a real prometheus_client registry, scraped as text and
parsed back; values equal the tracker's exact totals, labels as documented, the cap holds."""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from decimal import Decimal
from typing import Any

import prometheus_client
import pytest
from langchain_core.outputs import ChatResult
from llmledger import Budget, BudgetExceededError, CostTracker, PrometheusMetrics
from llmledger.testing import UsageFakeChatModel
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

USAGE = {
    "input_tokens": 1000,
    "output_tokens": 300,
    "total_tokens": 1300,
    "input_token_details": {"cache_read": 400, "cache_creation": 100},
    "output_token_details": {"reasoning": 120},
}


def llm(model: str = "gpt-4o-mini", usage: dict[str, Any] = USAGE) -> UsageFakeChatModel:
    return UsageFakeChatModel(model=model, usage=usage)


class Failing(UsageFakeChatModel):
    def _generate(self, *a: Any, **kw: Any) -> ChatResult:
        raise RuntimeError("boom")


def scrape(registry: CollectorRegistry) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Sample name -> [(labels, value)], from the text exposition."""
    text = generate_latest(registry).decode()
    out: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[s.name].append((dict(s.labels), s.value))
    return out


def total(samples: list[tuple[dict[str, str], float]], **match: str) -> float:
    return sum(v for labels, v in samples if all(labels.get(k) == x for k, x in match.items()))


def test_values_equal_the_trackers_exact_totals() -> None:
    registry = CollectorRegistry()
    t = CostTracker(metrics=PrometheusMetrics(registry=registry, labels=["feature"]))
    for model, feature in [("gpt-4o-mini", "chat"), ("gpt-4o", "search"), ("gpt-4o", "chat")]:
        llm(model).invoke("hi", config={"callbacks": [t], "metadata": {"feature": feature}})
    llm("no-such-model-x").invoke("hi", config={"callbacks": [t]})
    m = scrape(registry)
    # Cost: the float of the exact decimal, per series and in sum.
    assert total(m["llmledger_cost_usd_total"]) == pytest.approx(float(t.total_cost), rel=1e-12)
    by_model: dict[str, Decimal] = defaultdict(Decimal)
    for r in t.records():
        if r["cost"] is not None:
            by_model[r["model"]] += r["cost"]
    for model, exact in by_model.items():
        assert total(m["llmledger_cost_usd_total"], model=model) == float(exact)
    tok = m["llmledger_tokens_total"]
    assert total(tok, type="input") == t.prompt_tokens == 4000
    assert total(tok, type="cached") == t.prompt_tokens_cached == 1600
    assert total(tok, type="cache_write") == t.cache_write_tokens == 400
    assert total(tok, type="output") == t.completion_tokens == 1200
    assert total(tok, type="reasoning") == t.reasoning_tokens == 480
    calls = m["llmledger_calls_total"]
    assert total(calls, status="ok", usage_source="provider") == 4
    assert total(m["llmledger_unpriced_calls_total"]) == t.unpriced_calls == 1
    assert total(m["llmledger_unpriced_calls_total"], model="no-such-model-x") == 1
    # Labels as documented: model, provider, then the extra ones; "" for a missing value.
    labels = {tuple(sorted(lb.items())) for lb, _ in m["llmledger_cost_usd_total"]}
    assert (("feature", "search"), ("model", "gpt-4o"), ("provider", "openai")) in labels
    assert (("feature", ""), ("model", "no-such-model-x"), ("provider", "openai")) in labels
    # Durations: every call's start was seen.
    assert total(m["llmledger_call_duration_seconds_count"]) == 4
    inf = total(m["llmledger_call_duration_seconds_bucket"], le="+Inf")
    assert inf == 4
    assert total(m["llmledger_call_duration_seconds_sum"]) > 0


def test_failed_and_refused_calls_are_counted_by_status() -> None:
    registry = CollectorRegistry()
    t = CostTracker(
        metrics=PrometheusMetrics(registry=registry),
        budgets=[Budget.daily("0.165", per="user_id")],
    )
    cfg = {"callbacks": [t], "metadata": {"user_id": "u1"}}
    llm("gpt-4o").invoke("hi", config=cfg)
    with pytest.raises(BudgetExceededError):
        llm("gpt-4o").invoke("hi", config=cfg)
    failing = Failing(model="gpt-4o", usage=USAGE)
    with pytest.raises(RuntimeError):
        failing.invoke("hi", config={"callbacks": [t], "metadata": {"user_id": "u2"}})
    m = scrape(registry)
    calls = m["llmledger_calls_total"]
    assert total(calls, status="ok") == 1
    assert total(calls, status="refused", usage_source="none") == t.blocked_calls == 1
    assert total(calls, status="error") == t.failed_requests == 1
    # Budget gauges, per budget and scope value, from the tracker's exact state.
    states = {s["value"]: s for s in t.budgets()}
    for gauge, key in [
        ("llmledger_budget_limit_usd", "limit"),
        ("llmledger_budget_spent_usd", "spent"),
        ("llmledger_budget_reserved_usd", "reserved"),
        ("llmledger_budget_remaining_usd", "remaining"),
    ]:
        got = {lb["value"]: v for lb, v in m[gauge]}
        assert got == {v: float(s[key]) for v, s in states.items()}, gauge
    ends = {lb["value"]: v for lb, v in m["llmledger_budget_window_end_timestamp_seconds"]}
    assert ends["u1"] == states["u1"]["resets_at"].timestamp()
    assert {lb["scope"] for lb, _ in m["llmledger_budget_limit_usd"]} == {"user_id"}


def test_cap_holds_with_10000_distinct_user_ids() -> None:
    registry = CollectorRegistry()
    t = CostTracker(
        metrics=PrometheusMetrics(registry=registry, labels=["user_id"], top_n=5),
        max_records=0,
    )
    model = llm()
    for i in range(10_000):
        model.invoke("hi", config={"callbacks": [t], "metadata": {"user_id": f"u{i}"}})
    m = scrape(registry)
    users = {lb["user_id"] for lb, _ in m["llmledger_cost_usd_total"]}
    assert users == {"u0", "u1", "u2", "u3", "u4", "other"}
    assert total(m["llmledger_calls_total"], user_id="other") == 9_995
    assert total(m["llmledger_calls_total"]) == 10_000
    assert total(m["llmledger_cost_usd_total"]) == pytest.approx(float(t.total_cost), rel=1e-9)
    # Every family stays within the cap: model x provider x user_id series at most.
    assert len(m["llmledger_tokens_total"]) == 6 * 5


def test_default_registry_by_name_and_a_second_collector_is_refused() -> None:
    t = CostTracker(metrics="prometheus")
    try:
        llm().invoke("hi", config={"callbacks": [t]})
        text = generate_latest(prometheus_client.REGISTRY).decode()
        assert 'llmledger_calls_total{model="gpt-4o-mini",provider="openai"' in text
        with pytest.raises(ValueError, match="another llmledger collector"):
            CostTracker(metrics="prometheus")
    finally:
        for a in t._metric_adapters:
            a.unregister()
    assert b"llmledger_calls_total" not in generate_latest(prometheus_client.REGISTRY)


def test_bad_labels_are_refused() -> None:
    with pytest.raises(ValueError, match="clash"):
        PrometheusMetrics(registry=CollectorRegistry(), labels=["status"])
    with pytest.raises(ValueError, match="tag"):
        PrometheusMetrics(registry=CollectorRegistry(), labels=["tag"])
    with pytest.raises(ValueError, match="metrics="):
        CostTracker(metrics="statsd")
    adapter = PrometheusMetrics(registry=CollectorRegistry())
    CostTracker(metrics=adapter)
    with pytest.raises(ValueError, match="already exports"):
        CostTracker(metrics=adapter)


def test_off_by_default_imports_nothing() -> None:
    # (LangChain's tracing client may import opentelemetry itself: llmledger's adapter not.)
    code = (
        "import sys\n"
        "from llmledger import CostTracker\n"
        "from llmledger.testing import UsageFakeChatModel\n"
        "t = CostTracker()\n"
        "UsageFakeChatModel(model='gpt-4o', usage={'input_tokens': 1, 'output_tokens': 1,"
        " 'total_tokens': 2}).invoke('hi', config={'callbacks': [t]})\n"
        "mods = ('prometheus_client', 'llmledger.prometheus', 'llmledger.otel')\n"
        "bad = [m for m in sys.modules if m.startswith(mods)]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_threads_lose_nothing_and_scrapes_run_alongside() -> None:
    import threading

    registry = CollectorRegistry()
    t = CostTracker(metrics=PrometheusMetrics(registry=registry, labels=["user_id"]))
    model = llm()
    stop = threading.Event()
    scraped: list[float] = []

    def scraper() -> None:
        while not stop.is_set():
            scraped.append(total(scrape(registry)["llmledger_calls_total"]))

    def work(k: int) -> None:
        for i in range(250):
            model.invoke("hi", config={"callbacks": [t], "metadata": {"user_id": f"u{k}-{i % 3}"}})

    s = threading.Thread(target=scraper)
    s.start()
    workers = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    stop.set()
    s.join()
    m = scrape(registry)
    assert total(m["llmledger_calls_total"]) == t.successful_requests == 1500
    assert total(m["llmledger_cost_usd_total"]) == pytest.approx(float(t.total_cost), rel=1e-12)
    assert scraped == sorted(scraped)  # counters only went up while calls came in
