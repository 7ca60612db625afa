"""Real ChatOpenAI and ChatAnthropic clients against the local fake provider."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import openai
import pytest
from fake_provider import FakeProvider, anthropic_usage, openai_responses_usage, openai_usage
from langchain_anthropic import ChatAnthropic
from langchain_openai import ChatOpenAI
from llmledger import CostTracker, cost, count_tokens, track_costs


def chat_openai(fp: FakeProvider, **kw: object) -> ChatOpenAI:
    kw.setdefault("model", "gpt-4o")
    return ChatOpenAI(base_url=fp.openai_base_url, api_key="test", max_retries=0, timeout=10, **kw)  # type: ignore[arg-type]


def chat_anthropic(fp: FakeProvider, **kw: object) -> ChatAnthropic:
    kw.setdefault("model", "claude-sonnet-4-6")
    return ChatAnthropic(
        base_url=fp.anthropic_base_url, api_key="test", max_retries=0, timeout=10, **kw
    )  # type: ignore[arg-type]


def test_openai_invoke_cached_and_reasoning(fake_provider: FakeProvider) -> None:
    fake_provider.set_openai(
        model="o4-mini-2025-04-16",
        usage=openai_usage(10_000, 2_000, cached_tokens=6_000, reasoning_tokens=1_200),
    )
    t = CostTracker()
    chat_openai(fake_provider, model="o4-mini").invoke(
        "hi", config={"callbacks": [t], "metadata": {"user_id": "alice"}}
    )
    assert (t.prompt_tokens, t.prompt_tokens_cached, t.completion_tokens, t.reasoning_tokens) == (
        10_000,
        6_000,
        2_000,
        1_200,
    )
    rec = t.records()[0]
    assert rec["model"] == "o4-mini-2025-04-16"
    assert rec["provider"] == "openai"
    assert rec["attribution"] == {"user_id": "alice"}
    assert t.total_cost == cost(
        "o4-mini", input_tokens=10_000, output_tokens=2_000, cache_read_tokens=6_000
    )
    # usage appears both in usage_metadata and llm_output["token_usage"]: counted once.
    assert t.successful_requests == 1


def test_openai_batch_and_per_user_attribution(fake_provider: FakeProvider) -> None:
    fake_provider.set_openai(usage=openai_usage(100, 20))
    t = CostTracker()
    llm = chat_openai(fake_provider)
    llm.batch(
        ["a", "b", "c"],
        config=[{"callbacks": [t], "metadata": {"user_id": u}} for u in ["u1", "u2", "u1"]],
    )
    assert t.successful_requests == 3 and t.total_tokens == 360
    rows = {r["user_id"]: r for r in t.summary(by="user_id")}
    assert rows["u1"]["calls"] == 2 and rows["u2"]["calls"] == 1
    assert rows["u1"]["cost"] == 2 * cost("gpt-4o", input_tokens=100, output_tokens=20)


def test_openai_ainvoke_many(fake_provider: FakeProvider) -> None:
    fake_provider.set_openai(usage=openai_usage(50, 10))
    t = CostTracker()

    async def main() -> None:
        client = openai.DefaultAsyncHttpxClient()
        llm = chat_openai(fake_provider, http_async_client=client)
        await asyncio.gather(*(llm.ainvoke("q", config={"callbacks": [t]}) for _ in range(20)))
        await client.aclose()
        await asyncio.sleep(0.05)  # let the closed transports finish closing before the loop ends

    asyncio.run(main())
    assert t.successful_requests == 20 and t.total_tokens == 1200
    assert t.total_cost == 20 * cost("gpt-4o", input_tokens=50, output_tokens=10)


def test_openai_stream_with_usage(fake_provider: FakeProvider) -> None:
    fake_provider.set_openai(
        content="one two three four", usage=openai_usage(30, 4, cached_tokens=10)
    )
    t = CostTracker()
    text = "".join(
        str(c.content)
        for c in chat_openai(fake_provider, stream_usage=True).stream(
            "q", config={"callbacks": [t]}
        )
    )
    assert text.strip() == "one two three four"
    assert (t.prompt_tokens, t.prompt_tokens_cached, t.completion_tokens) == (30, 10, 4)
    rec = t.records()[0]
    assert rec["streamed_chunks"] >= 4
    assert rec["usage_source"] == "provider"
    assert t.total_cost == cost("gpt-4o", input_tokens=30, output_tokens=4, cache_read_tokens=10)


def test_openai_stream_without_usage_is_unpriced_not_zero(fake_provider: FakeProvider) -> None:
    # A custom base_url turns stream_usage off: the response carries no usage at all. With
    # estimates off, the call is unpriced, never $0 (test_streaming.py covers estimates).
    t = CostTracker(estimate=False)
    list(chat_openai(fake_provider).stream("q", config={"callbacks": [t]}))
    assert t.successful_requests == 1
    assert t.unpriced_calls == 1
    assert t.records()[0]["cost"] is None
    assert t.records()[0]["usage_source"] == "none"


def test_openai_n2_counts_usage_once(fake_provider: FakeProvider) -> None:
    fake_provider.set_openai(usage=openai_usage(100, 40))
    t = CostTracker()
    chat_openai(fake_provider, n=2).invoke("q", config={"callbacks": [t]})
    assert t.successful_requests == 1
    assert (t.prompt_tokens, t.completion_tokens) == (100, 40)


def test_openai_priority_tier_priced_at_priority(fake_provider: FakeProvider) -> None:
    fake_provider.set_openai(
        model="gpt-5", usage=openai_usage(10_000, 1_000, cached_tokens=4_000, reasoning_tokens=200)
    )
    t = CostTracker()
    chat_openai(fake_provider, model="gpt-5", service_tier="priority").invoke(
        "q", config={"callbacks": [t]}
    )
    rec = t.records()[0]
    assert rec["service_tier"] == "priority"
    assert (rec["input_tokens"], rec["cache_read_tokens"], rec["reasoning_tokens"]) == (
        10_000,
        4_000,
        200,
    )
    kw = dict(input_tokens=10_000, output_tokens=1_000, cache_read_tokens=4_000)
    priority = cost("gpt-5", service_tier="priority", **kw)
    assert rec["cost"] == priority
    assert priority > cost("gpt-5", **kw)


def test_openai_responses_api(fake_provider: FakeProvider) -> None:
    fake_provider.set_openai_responses(
        model="gpt-4.1-2025-04-14",
        usage=openai_responses_usage(1_000, 100, cached_tokens=600, reasoning_tokens=0),
    )
    t = CostTracker()
    llm = chat_openai(fake_provider, model="gpt-4.1", use_responses_api=True)
    llm.invoke("q", config={"callbacks": [t]})
    list(llm.stream("q", config={"callbacks": [t]}))
    assert t.successful_requests == 2
    assert (t.prompt_tokens, t.prompt_tokens_cached) == (2_000, 1_200)
    assert t.total_cost == 2 * cost(
        "gpt-4.1", input_tokens=1_000, output_tokens=100, cache_read_tokens=600
    )


def test_openai_error_recorded(fake_provider: FakeProvider) -> None:
    fake_provider.fail_next(status=429)
    t = CostTracker()
    with pytest.raises(openai.RateLimitError):
        chat_openai(fake_provider).invoke("q", config={"callbacks": [t]})
    assert t.failed_requests == 1 and t.successful_requests == 0
    assert "RateLimitError: Error code: 429" in t.records()[0]["error"]
    assert t.unpriced_calls == 0


def test_stream_failing_midway_recorded(fake_provider: FakeProvider) -> None:
    fake_provider.fail_stream_after(3)
    t = CostTracker()
    with pytest.raises(openai.APIConnectionError):
        list(chat_openai(fake_provider, stream_usage=True).stream("q", config={"callbacks": [t]}))
    assert t.failed_requests == 1
    assert t._core.open_runs == 0


def test_anthropic_invoke_cache_5m_1h(fake_provider: FakeProvider) -> None:
    fake_provider.set_anthropic(
        model="claude-sonnet-4-5-20250929",
        usage=anthropic_usage(
            1_000,
            500,
            cache_read_input_tokens=20_000,
            ephemeral_5m_input_tokens=3_000,
            ephemeral_1h_input_tokens=2_000,
        ),
    )
    t = CostTracker()
    chat_anthropic(fake_provider).invoke("q", config={"callbacks": [t]})
    rec = t.records()[0]
    # Anthropic's raw input_tokens excludes cache reads/writes; LangChain's includes them.
    assert rec["input_tokens"] == 1_000 + 20_000 + 5_000
    assert (rec["cache_read_tokens"], rec["cache_write_tokens"], rec["cache_write_1h_tokens"]) == (
        20_000,
        5_000,
        2_000,
    )
    assert rec["provider"] == "anthropic"
    expected = cost(
        "claude-sonnet-4-5-20250929",
        input_tokens=26_000,
        output_tokens=500,
        cache_read_tokens=20_000,
        cache_write_tokens=5_000,
        cache_write_1h_tokens=2_000,
    )
    assert rec["cost"] == expected
    # Price check by hand: $3 in, $0.30 read, $3.75 5m write, $6 1h write, $15 out per 1M.
    assert (
        expected
        == (
            Decimal(1_000) * 3
            + Decimal(20_000) * Decimal("0.30")
            + Decimal(3_000) * Decimal("3.75")
            + Decimal(2_000) * 6
            + Decimal(500) * 15
        )
        / 1_000_000
    )


def test_anthropic_stream_cache_without_split(fake_provider: FakeProvider) -> None:
    fake_provider.set_anthropic(
        model="claude-sonnet-4-5-20250929",
        usage=anthropic_usage(
            100, 50, cache_read_input_tokens=1_000, ephemeral_5m_input_tokens=400
        ),
    )
    t = CostTracker()
    list(chat_anthropic(fake_provider).stream("q", config={"callbacks": [t]}))
    rec = t.records()[0]
    assert (rec["input_tokens"], rec["cache_read_tokens"], rec["cache_write_tokens"]) == (
        1_500,
        1_000,
        400,
    )
    assert rec["cost"] == cost(
        "claude-sonnet-4-5",
        input_tokens=1_500,
        output_tokens=50,
        cache_read_tokens=1_000,
        cache_write_tokens=400,
    )


def test_track_costs_with_real_client(fake_provider: FakeProvider) -> None:
    fake_provider.set_openai(usage=openai_usage(10, 5))
    llm = chat_openai(fake_provider)
    with track_costs() as t:
        llm.invoke("a")
        llm.batch(["b", "c"])
    llm.invoke("after the block")
    assert t.successful_requests == 3
    assert fake_provider.request_count == 4


def test_unknown_model_from_real_client(fake_provider: FakeProvider) -> None:
    fake_provider.set_openai(model="acme-llm-v9", usage=openai_usage(10, 5))
    t = CostTracker()
    chat_openai(fake_provider, model="acme-llm-v9").invoke("q", config={"callbacks": [t]})
    assert t.unpriced_calls == 1 and t.total_tokens == 15 and t.total_cost == 0


def test_malformed_usage_from_server_is_warned_and_valid_part_kept(
    fake_provider: FakeProvider, ledger_log: pytest.LogCaptureFixture
) -> None:
    fake_provider.set_openai(
        usage={"prompt_tokens": 100, "completion_tokens": -5, "total_tokens": 95}
    )
    t = CostTracker()
    reply = chat_openai(fake_provider).invoke(
        "q", config={"callbacks": [t], "run_id": uuid.uuid4()}
    )
    assert t.successful_requests == 1
    assert t.prompt_tokens == 100
    # The bad count is not billed as 0: llmledger counts the reply's text instead.
    assert t.completion_tokens == count_tokens(str(reply.content), "gpt-4o") > 0
    rec = t.records()[0]
    assert rec["estimated_by"] == "provider+estimated:output_tokens (o200k_base)"
    assert t.totals()["malformed_usage_calls"] == 1
    assert any(
        "output_tokens" in r.getMessage() and "negative" in r.getMessage()
        for r in ledger_log.records
    )
