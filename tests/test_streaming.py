"""Calls whose response reports no usage are counted, priced and marked estimated; calls
that report usage keep the provider's numbers. Real clients against the local fake server,
sync and async, and LangChain's fake models."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest
from fake_provider import FakeProvider, anthropic_usage, openai_usage
from langchain_core.caches import InMemoryCache
from langchain_core.globals import set_llm_cache
from langchain_core.language_models.fake import FakeListLLM
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from llmledger import CostTracker, cost, count_message_tokens, count_tokens
from test_real_clients import chat_anthropic, chat_openai

CONTENT = "The ledger counts every token of this streamed answer, exactly once."

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "The city."}},
            "required": ["city"],
        },
    },
}


def _astream_openai(fp: FakeProvider, prompt: str, t: CostTracker, **kw: Any) -> str:
    async def main() -> str:
        client = openai.DefaultAsyncHttpxClient()
        llm = chat_openai(fp, http_async_client=client, **kw)
        try:
            return await _astream_text(llm, prompt, t)
        finally:
            await client.aclose()
            await asyncio.sleep(0.05)  # let closed transports finish before the loop ends

    return asyncio.run(main())


def _astream_anthropic(llm: Any, prompt: str, t: CostTracker) -> str:
    async def main() -> str:
        try:
            return await _astream_text(llm, prompt, t)
        finally:
            await llm._async_client.close()
            await asyncio.sleep(0.05)

    return asyncio.run(main())


async def _astream_text(llm: Any, prompt: str, t: CostTracker) -> str:
    return "".join([str(c.content) async for c in llm.astream(prompt, config={"callbacks": [t]})])


def _stream_text(llm: Any, prompt: str, t: CostTracker) -> str:
    return "".join(str(c.content) for c in llm.stream(prompt, config={"callbacks": [t]}))


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_openai_stream_without_usage_is_estimated(fake_provider: FakeProvider, mode: str) -> None:
    fake_provider.set_openai(content=CONTENT)
    t = CostTracker()
    prompt = "Summarise the ledger in one sentence."
    if mode == "sync":
        text = _stream_text(chat_openai(fake_provider), prompt, t)
    else:
        text = _astream_openai(fake_provider, prompt, t)
    assert text == CONTENT
    assert fake_provider.requests[-1].usage is None  # the server really reported nothing
    rec = t.records()[0]
    assert rec["usage_source"] == "estimated"
    assert rec["estimated_by"] == "o200k_base"
    expected_in = count_message_tokens([HumanMessage(prompt)], model="gpt-4o")
    expected_out = count_tokens(CONTENT, model="gpt-4o")
    assert (rec["input_tokens"], rec["output_tokens"]) == (expected_in, expected_out)
    assert rec["cost"] == cost("gpt-4o", input_tokens=expected_in, output_tokens=expected_out)
    assert t.total_cost == rec["cost"] and t.total_cost > 0
    assert (t.estimated_calls, t.unpriced_calls, t.successful_requests) == (1, 0, 1)
    assert "Estimated-Usage Requests: 1" in str(t)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_openai_stream_with_usage_keeps_the_provider_numbers(
    fake_provider: FakeProvider, mode: str
) -> None:
    fake_provider.set_openai(content=CONTENT, usage=openai_usage(321, 17))
    t = CostTracker()
    if mode == "sync":
        _stream_text(chat_openai(fake_provider, stream_usage=True), "q", t)
    else:
        _astream_openai(fake_provider, "q", t, stream_usage=True)
    rec = t.records()[0]
    assert rec["usage_source"] == "provider" and rec["estimated_by"] is None
    assert (rec["input_tokens"], rec["output_tokens"]) == (321, 17)
    assert t.estimated_calls == 0


def test_openai_stream_with_tools_counts_the_definitions(fake_provider: FakeProvider) -> None:
    fake_provider.set_openai(content=CONTENT)
    t = CostTracker()
    llm = chat_openai(fake_provider).bind_tools([WEATHER_TOOL])
    _stream_text(llm, "Weather in Paris?", t)
    rec = t.records()[0]
    assert rec["usage_source"] == "estimated"
    with_tools = count_message_tokens([HumanMessage("Weather in Paris?")], tools=[WEATHER_TOOL])
    assert rec["input_tokens"] == with_tools
    assert with_tools > count_message_tokens([HumanMessage("Weather in Paris?")])


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_anthropic_stream_without_usage_is_an_estimate(
    fake_provider: FakeProvider, mode: str
) -> None:
    fake_provider.set_anthropic(content=CONTENT, usage=anthropic_usage(40, 12))
    t = CostTracker()
    llm = chat_anthropic(fake_provider, stream_usage=False)
    if mode == "sync":
        _stream_text(llm, "hello claude", t)
    else:
        _astream_anthropic(llm, "hello claude", t)
    rec = t.records()[0]
    assert rec["usage_source"] == "estimated"
    assert rec["estimated_by"] == "estimate for Claude: o200k_base x 1.20"
    expected_in = count_message_tokens([HumanMessage("hello claude")], model="claude-sonnet-4-6")
    expected_out = count_tokens(CONTENT, model="claude-sonnet-4-6")
    assert (rec["input_tokens"], rec["output_tokens"]) == (expected_in, expected_out)
    assert rec["cost"] == cost(
        "claude-sonnet-4-6", input_tokens=expected_in, output_tokens=expected_out
    )


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_anthropic_stream_with_usage_is_the_truth(fake_provider: FakeProvider, mode: str) -> None:
    fake_provider.set_anthropic(content=CONTENT, usage=anthropic_usage(40, 12))
    t = CostTracker()
    llm = chat_anthropic(fake_provider)
    if mode == "sync":
        _stream_text(llm, "q", t)
    else:
        _astream_anthropic(llm, "q", t)
    rec = t.records()[0]
    assert rec["usage_source"] == "provider"
    assert (rec["input_tokens"], rec["output_tokens"]) == (40, 12)


def test_stream_failing_half_way_records_what_was_generated(fake_provider: FakeProvider) -> None:
    fake_provider.set_openai(content=CONTENT)
    # Role chunk, then one chunk per word: the connection drops after three words.
    fake_provider.fail_stream_after(4)
    t = CostTracker()
    received: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        for c in chat_openai(fake_provider).stream("q", config={"callbacks": [t]}):
            received.append(str(c.content))
    got = "".join(received)
    assert got and got != CONTENT
    rec = t.records()[0]
    assert rec["error"] and "ConnectionError: Connection error." in rec["error"]
    assert rec["usage_source"] == "estimated"
    assert rec["output_tokens"] == count_tokens(got)
    assert rec["input_tokens"] == count_message_tokens([HumanMessage("q")])
    assert rec["cost"] == cost(
        "gpt-4o", input_tokens=rec["input_tokens"], output_tokens=rec["output_tokens"]
    )
    assert (t.failed_requests, t.estimated_calls) == (1, 1)
    assert t.total_cost == rec["cost"]


def test_error_before_any_output_is_not_billed(fake_provider: FakeProvider) -> None:
    fake_provider.fail_next(status=500)
    t = CostTracker()
    with pytest.raises(openai.InternalServerError):
        _stream_text(chat_openai(fake_provider), "q", t)
    rec = t.records()[0]
    assert rec["usage_source"] == "none" and rec["input_tokens"] == 0
    assert t.total_cost == 0 and t.unpriced_calls == 0 and t.estimated_calls == 0


# ---- LangChain's fake models (no usage at all) ----------------------------------------------


def _fake_chat(text: str) -> GenericFakeChatModel:
    return GenericFakeChatModel(
        messages=iter([AIMessage(text)]), metadata={"ls_model_name": "gpt-4o-mini"}
    )


def test_fake_chat_model_invoke_and_stream_are_estimated() -> None:
    t = CostTracker()
    msgs = [HumanMessage("What does the ledger store?")]
    _fake_chat(CONTENT).invoke(msgs, config={"callbacks": [t]})
    streamed = "".join(
        str(c.content) for c in _fake_chat(CONTENT).stream(msgs, config={"callbacks": [t]})
    )
    assert streamed == CONTENT
    a, b = t.records()
    assert a["model"] == b["model"] == "gpt-4o-mini"
    assert a["usage_source"] == b["usage_source"] == "estimated"
    assert a["input_tokens"] == b["input_tokens"] == count_message_tokens(msgs, model="gpt-4o-mini")
    assert a["output_tokens"] == b["output_tokens"] == count_tokens(CONTENT)
    assert b["streamed_chunks"] > 1
    assert t.estimated_calls == 2


def test_plain_llm_without_usage_is_estimated() -> None:
    t = CostTracker()
    # ls_provider "openai": the class alone would report "fakelist", a host without prices.
    llm = FakeListLLM(
        responses=["forty two"],
        metadata={"ls_model_name": "gpt-3.5-turbo-instruct", "ls_provider": "openai"},
    )
    llm.invoke("What is six times seven?", config={"callbacks": [t]})
    rec = t.records()[0]
    assert rec["usage_source"] == "estimated"
    # A completion prompt has no chat overhead.
    assert rec["input_tokens"] == count_tokens("What is six times seven?", model="gpt-3.5-turbo")
    assert rec["output_tokens"] == count_tokens("forty two", model="gpt-3.5-turbo")
    assert rec["cost"] == cost(
        "gpt-3.5-turbo-instruct",
        input_tokens=rec["input_tokens"],
        output_tokens=rec["output_tokens"],
    )


def test_estimates_can_be_turned_off() -> None:
    t = CostTracker(estimate=False)
    _fake_chat(CONTENT).invoke("q", config={"callbacks": [t]})
    rec = t.records()[0]
    assert rec["usage_source"] == "none" and rec["cost"] is None
    assert (t.unpriced_calls, t.estimated_calls) == (1, 0)


def test_llm_cache_hits_are_not_estimated() -> None:
    set_llm_cache(InMemoryCache())
    try:
        t = CostTracker()
        llm = GenericFakeChatModel(
            messages=iter([AIMessage("a"), AIMessage("b")]), metadata={"ls_model_name": "gpt-4o"}
        )
        llm.invoke("same prompt", config={"callbacks": [t]})
        llm.invoke("same prompt", config={"callbacks": [t]})
    finally:
        set_llm_cache(None)
    first, second = t.records()
    assert first["usage_source"] == "estimated"
    assert second["usage_source"] == "cache" and second["cost"] == 0
    assert t.estimated_calls == 1 and t.llm_cache_hits == 1


def test_unknown_model_estimate_is_still_unpriced_not_zero() -> None:
    t = CostTracker()
    GenericFakeChatModel(
        messages=iter([AIMessage("x")]), metadata={"ls_model_name": "nobody-knows-this-model"}
    ).invoke("q", config={"callbacks": [t]})
    rec = t.records()[0]
    assert rec["usage_source"] == "estimated" and rec["input_tokens"] > 0
    assert rec["cost"] is None and t.unpriced_calls == 1
