"""`CostTracker(metrics="otel")`: the OpenTelemetry SDK's InMemoryMetricReader sees the GenAI
semantic conventions' names, units, attributes and values, for OpenAI and Anthropic calls made
through the real clients against the local fake provider."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fake_provider import FakeProvider, anthropic_usage, openai_usage
from langchain_anthropic import ChatAnthropic
from langchain_openai import ChatOpenAI
from llmledger import CostTracker, OtelMetrics
from llmledger.otel import SEMCONV_SCHEMA_URL
from llmledger.testing import UsageFakeChatModel
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader


def setup(**kw: Any) -> tuple[CostTracker, InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    tracker = CostTracker(metrics=OtelMetrics(meter_provider=MeterProvider([reader]), **kw))
    return tracker, reader


def points(reader: InMemoryMetricReader) -> dict[str, tuple[str, list[HistogramDataPoint]]]:
    """Metric name -> (unit, data points), from one collection."""
    data = reader.get_metrics_data()
    assert data is not None
    out: dict[str, tuple[str, list[Any]]] = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            assert sm.scope.name == "llmledger"
            assert sm.schema_url == SEMCONV_SCHEMA_URL
            for m in sm.metrics:
                out[m.name] = (m.unit, list(m.data.data_points))
    return out


def by_type(pts: list[HistogramDataPoint]) -> dict[tuple[str, str], HistogramDataPoint]:
    return {
        (str(p.attributes["gen_ai.provider.name"]), str(p.attributes["gen_ai.token.type"])): p
        for p in pts
    }


def test_openai_and_anthropic_through_real_clients(fake_provider: FakeProvider) -> None:
    fake_provider.set_openai(
        model="o4-mini-2025-04-16",
        usage=openai_usage(10_000, 2_000, cached_tokens=6_000, reasoning_tokens=1_200),
    )
    fake_provider.set_anthropic(
        model="claude-sonnet-4-6",
        usage=anthropic_usage(
            1_000, 300, cache_read_input_tokens=4_000, ephemeral_5m_input_tokens=500
        ),
    )
    t, reader = setup()
    cfg: Any = {"callbacks": [t]}
    ChatOpenAI(
        model="o4-mini", base_url=fake_provider.openai_base_url, api_key="test", max_retries=0
    ).invoke("hi", config=cfg)
    ChatAnthropic(  # type: ignore[call-arg]
        model="claude-sonnet-4-6",
        base_url=fake_provider.anthropic_base_url,
        api_key="test",
        max_retries=0,
    ).invoke("hi", config=cfg)
    got = points(reader)
    unit, tok = got["gen_ai.client.token.usage"]
    assert unit == "{token}"
    tokens = by_type(tok)
    # Input counts every input token (cached included), output every output token
    # (reasoning included); the parts are their own token types.
    assert {k: (p.count, p.sum) for k, p in tokens.items()} == {
        ("openai", "input"): (1, 10_000),
        ("openai", "output"): (1, 2_000),
        ("openai", "cache_read"): (1, 6_000),
        ("openai", "reasoning"): (1, 1_200),
        ("anthropic", "input"): (1, 5_500),
        ("anthropic", "output"): (1, 300),
        ("anthropic", "cache_read"): (1, 4_000),
        ("anthropic", "cache_creation"): (1, 500),
    }
    assert t.prompt_tokens == 15_500 and t.completion_tokens == 2_300
    oa = tokens[("openai", "input")].attributes
    assert dict(oa) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "o4-mini",
        "gen_ai.response.model": "o4-mini-2025-04-16",
        "gen_ai.token.type": "input",
    }
    assert tokens[("anthropic", "input")].attributes["gen_ai.request.model"] == "claude-sonnet-4-6"
    unit, dur = got["gen_ai.client.operation.duration"]
    assert unit == "s"
    assert sorted(str(p.attributes["gen_ai.provider.name"]) for p in dur) == [
        "anthropic",
        "openai",
    ]
    assert all(p.count == 1 and p.sum > 0 and "error.type" not in p.attributes for p in dur)
    unit, cost = got["gen_ai.client.operation.cost"]
    assert unit == "USD"
    by_provider = {p.attributes["gen_ai.provider.name"]: p.sum for p in cost}
    exact = {r["provider"]: r["cost"] for r in t.records()}
    assert by_provider == {k: float(v) for k, v in exact.items()}
    # A second collection sees the same cumulative histograms, nothing twice.
    again = by_type(points(reader)["gen_ai.client.token.usage"][1])
    assert again[("openai", "input")].sum == 10_000


def test_failed_call_has_error_type_and_unknown_cost_is_not_zero() -> None:
    class Boom(Exception):
        pass

    class Failing(UsageFakeChatModel):
        def _generate(self, *a: Any, **kw: Any) -> Any:
            raise Boom("no")

    t, reader = setup()
    with pytest.raises(Boom):
        Failing(model="gpt-4o", usage={}).invoke("hi", config={"callbacks": [t]})
    usage = {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
    UsageFakeChatModel(model="no-such-model-x", usage=usage).invoke("hi", config={"callbacks": [t]})
    got = points(reader)
    dur = got["gen_ai.client.operation.duration"][1]
    errors = [p for p in dur if "error.type" in p.attributes]
    assert len(errors) == 1 and errors[0].attributes["error.type"] == "Boom"
    # The unpriced call is not recorded as $0: no cost point at all.
    assert "gen_ai.client.operation.cost" not in got
    assert t.unpriced_calls == 1


def test_observations_past_the_bound_are_dropped_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    t, reader = setup(max_observations=3)
    usage = {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
    for _ in range(5):
        UsageFakeChatModel(model="gpt-4o", usage=usage).invoke("hi", config={"callbacks": [t]})
    with caplog.at_level(logging.WARNING, logger="llmledger"):
        got = points(reader)
    inputs = [
        p
        for p in got["gen_ai.client.token.usage"][1]
        if p.attributes["gen_ai.token.type"] == "input"
    ]
    assert inputs[0].count == 3
    assert "2 calls were not recorded" in caplog.text


def test_two_trackers_on_one_provider_and_a_dropped_trackers_calls_are_kept() -> None:
    import gc

    reader = InMemoryMetricReader()
    provider = MeterProvider([reader])
    usage = {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
    kept = CostTracker(metrics=OtelMetrics(meter_provider=provider))
    UsageFakeChatModel(model="gpt-4o", usage=usage).invoke("hi", config={"callbacks": [kept]})
    # A short-lived tracker (one per request, say), gone before the next collection.
    short = CostTracker(metrics=OtelMetrics(meter_provider=provider))
    UsageFakeChatModel(model="gpt-4o", usage=usage).invoke("hi", config={"callbacks": [short]})
    del short
    gc.collect()
    got = by_type(points(reader)["gen_ai.client.token.usage"][1])
    assert (got[("openai", "input")].count, got[("openai", "input")].sum) == (2, 20)
    # The gone tracker's adapter was let go once its calls were recorded.
    from llmledger.otel import _Meter

    assert len(_Meter.of(provider).adapters) == 1


def test_operation_name_is_text_completion_for_completion_models() -> None:
    """A completion model (LangChain's `on_llm_start`, text prompts) is `text_completion`; a
    chat model is `chat`, as the GenAI conventions name the two operations."""
    from langchain_core.language_models.fake import FakeListLLM

    t, reader = setup()
    FakeListLLM(responses=["four words of output"]).invoke("a prompt", config={"callbacks": [t]})
    UsageFakeChatModel(model="gpt-4o-mini").invoke("hi", config={"callbacks": [t]})
    dur = points(reader)["gen_ai.client.operation.duration"][1]
    ops = sorted(str(p.attributes["gen_ai.operation.name"]) for p in dur)
    assert ops == ["chat", "text_completion"]
    assert all(p.count == 1 for p in dur)
