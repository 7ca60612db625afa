"""The fake provider against the real LangChain clients (no llmledger needed).

These tests also pin down what ``usage_metadata`` / ``llm_output`` look like in
each client mode, which is what llmledger has to consume.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import anthropic
import fake_provider as fake_provider_module
import httpx2  # the transport under both SDKs here
import openai
import pytest
from fake_provider import (
    ANTHROPIC_MESSAGES,
    DEFAULT_CONTENT,
    OPENAI_CHAT,
    OPENAI_RESPONSES,
    FakeProvider,
    anthropic_usage,
    fake_provider,  # noqa: F401  (the pytest fixture)
    openai_responses_usage,
    openai_usage,
)
from langchain_anthropic import ChatAnthropic
from langchain_core.callbacks import BaseCallbackHandler, UsageMetadataCallbackHandler
from langchain_core.messages import HumanMessage
from langchain_openai import ChatOpenAI

# Not in the anthropic SDK's deprecated-model list, so no DeprecationWarning
# under -W error ("claude-sonnet-4-5[-20250929]" *is* in it).
CLAUDE = "claude-sonnet-4-6"
TIMEOUT = 5


def chat_openai(fp: FakeProvider, **kw) -> ChatOpenAI:
    kw.setdefault("model", "gpt-4o")
    return ChatOpenAI(
        base_url=fp.openai_base_url,
        api_key="test",
        max_retries=kw.pop("max_retries", 0),
        timeout=TIMEOUT,
        **kw,
    )


def chat_anthropic(fp: FakeProvider, **kw) -> ChatAnthropic:
    kw.setdefault("model", CLAUDE)
    return ChatAnthropic(
        base_url=fp.anthropic_base_url,
        api_key="test",
        max_retries=kw.pop("max_retries", 0),
        timeout=TIMEOUT,
        **kw,
    )


class EndRecorder(BaseCallbackHandler):
    """Keeps every LLMResult passed to on_llm_end (what a cost tracker sees)."""

    def __init__(self) -> None:
        self.results = []

    def on_llm_end(self, response, **kwargs) -> None:
        self.results.append(response)


def merged(chunks):
    out = chunks[0]
    for c in chunks[1:]:
        out = out + c
    return out


USAGE_CR = openai_usage(100, 20, cached_tokens=40, reasoning_tokens=5)
UM_CR = {
    "input_tokens": 100,
    "output_tokens": 20,
    "total_tokens": 120,
    "input_token_details": {"audio": 0, "cache_read": 40},
    "output_token_details": {"audio": 0, "reasoning": 5},
}


# --------------------------------------------------------------------------
# Chat Completions
# --------------------------------------------------------------------------


def test_chat_invoke_cached_and_reasoning(fake_provider):
    fp = fake_provider
    fp.set_openai(model="gpt-4o-2024-08-06", usage=USAGE_CR, content="hello there")
    rec = EndRecorder()
    msg = chat_openai(fp, callbacks=[rec]).invoke("hi")

    assert msg.content == "hello there"
    assert msg.usage_metadata == UM_CR
    assert msg.response_metadata["model_name"] == "gpt-4o-2024-08-06"
    assert msg.response_metadata["service_tier"] == "default"
    assert msg.response_metadata["token_usage"]["prompt_tokens_details"]["cached_tokens"] == 40

    (result,) = rec.results
    assert result.llm_output["model_name"] == "gpt-4o-2024-08-06"
    assert result.llm_output["token_usage"]["completion_tokens_details"]["reasoning_tokens"] == 5
    assert result.llm_output["service_tier"] == "default"
    assert result.generations[0][0].message.usage_metadata == UM_CR

    (req,) = fp.requests
    assert fp.request_count == 1
    assert req.endpoint == OPENAI_CHAT and req.path == "/v1/chat/completions"
    assert req.method == "POST" and req.status == 200 and not req.stream
    assert req.body["model"] == "gpt-4o"
    assert req.body["messages"] == [{"role": "user", "content": "hi"}]
    assert "authorization" not in req.headers and "content-type" in req.headers
    assert req.usage == USAGE_CR and req.failure is None


def test_chat_model_name_defaults_to_request_model(fake_provider):
    msg = chat_openai(fake_provider, model="gpt-4.1-mini").invoke("hi")
    assert msg.response_metadata["model_name"] == "gpt-4.1-mini"
    assert msg.content == DEFAULT_CONTENT
    assert msg.usage_metadata["input_tokens"] == 12  # DEFAULT_OPENAI_USAGE


def test_chat_generate_llm_output(fake_provider):
    fp = fake_provider
    fp.set_openai(model="gpt-4o-2024-08-06", usage=USAGE_CR)
    res = chat_openai(fp).generate([[HumanMessage("a")]])
    # generate() returns llm_output re-combined by _combine_llm_outputs: only
    # token_usage / model_name (= the *configured* model) / system_fingerprint.
    assert res.llm_output == {
        "token_usage": {
            "completion_tokens": 20,
            "prompt_tokens": 100,
            "total_tokens": 120,
            "completion_tokens_details": {
                "accepted_prediction_tokens": 0,
                "audio_tokens": 0,
                "reasoning_tokens": 5,
                "rejected_prediction_tokens": 0,
                "text_tokens": None,
            },
            "prompt_tokens_details": {
                "audio_tokens": 0,
                "cache_write_tokens": None,
                "cached_tokens": 40,
                "image_tokens": None,
                "text_tokens": None,
            },
        },
        "model_name": "gpt-4o",
        "system_fingerprint": "fp_f4ke9r0v1d",
    }
    assert res.generations[0][0].message.usage_metadata == UM_CR


@pytest.mark.filterwarnings("ignore:Unexpected type for token usage")
def test_chat_generate_two_prompts_sums_llm_output(fake_provider):
    # langchain-openai warns (UserWarning) when summing the SDK's None fields.
    fp = fake_provider
    fp.set_openai(usage=USAGE_CR)
    rec = EndRecorder()
    res = chat_openai(fp, callbacks=[rec]).generate([[HumanMessage("a")], [HumanMessage("b")]])
    assert res.llm_output["token_usage"]["prompt_tokens"] == 200
    assert res.llm_output["token_usage"]["prompt_tokens_details"]["cached_tokens"] == 80
    # ...but the callback gets one on_llm_end per prompt with that prompt's usage.
    assert [r.llm_output["token_usage"]["prompt_tokens"] for r in rec.results] == [100, 100]
    assert fp.request_count == 2


def test_chat_batch(fake_provider):
    fp = fake_provider
    fp.set_openai(model="gpt-4o-2024-08-06", usage=openai_usage(10, 3))
    cb = UsageMetadataCallbackHandler()
    out = chat_openai(fp).batch(["a", "b", "c"], config={"callbacks": [cb]})
    assert [m.content for m in out] == [DEFAULT_CONTENT] * 3
    assert cb.usage_metadata == {
        "gpt-4o-2024-08-06": {
            "input_tokens": 30,
            "output_tokens": 9,
            "total_tokens": 39,
            "input_token_details": {"audio": 0, "cache_read": 0},
            "output_token_details": {"audio": 0, "reasoning": 0},
        }
    }
    assert sorted(r.body["messages"][0]["content"] for r in fp.requests) == ["a", "b", "c"]


def test_chat_ainvoke(fake_provider):
    fp = fake_provider
    fp.set_openai(usage=USAGE_CR)

    async def go():
        # Own client, closed inside the loop: the default one is cached across
        # event loops and would leak a transport (ResourceWarning) otherwise.
        http = openai.DefaultAsyncHttpxClient()
        try:
            llm = chat_openai(fp, http_async_client=http)
            return await llm.ainvoke("hi")
        finally:
            await http.aclose()

    msg = asyncio.run(go())
    assert msg.usage_metadata == UM_CR
    assert fp.last_request.headers["x-stainless-async"].startswith("async")


def test_async_streams(fake_provider):
    fp = fake_provider
    fp.set_openai(usage=USAGE_CR)
    fp.set_anthropic(usage=ANT_USAGE)

    async def go():
        http = openai.DefaultAsyncHttpxClient()
        ant = chat_anthropic(fp)
        try:
            oai = [
                c
                async for c in chat_openai(fp, stream_usage=True, http_async_client=http).astream(
                    "hi"
                )
            ]
            amsg = await ant.ainvoke("hi")
            achunks = [c async for c in ant.astream("hi")]
        finally:
            await http.aclose()
            await ant._async_client.close()
        return oai, amsg, achunks

    oai, amsg, achunks = asyncio.run(go())
    assert merged(oai).usage_metadata == UM_CR
    assert amsg.usage_metadata["input_token_details"]["ephemeral_1h_input_tokens"] == 30
    assert merged(achunks).usage_metadata["input_token_details"] == {
        "cache_creation": 50,
        "cache_read": 100,
    }


def test_chat_stream_without_stream_usage_has_no_usage(fake_provider):
    fp = fake_provider
    fp.set_openai(usage=USAGE_CR, content="one two three")
    rec = EndRecorder()
    chunks = list(chat_openai(fp, callbacks=[rec]).stream("hi"))
    assert "".join(c.content for c in chunks) == "one two three"
    assert all(c.usage_metadata is None for c in chunks)
    # A custom base_url disables ChatOpenAI's default stream_usage=True.
    assert "stream_options" not in fp.last_request.body
    assert fp.last_request.usage is None
    (result,) = rec.results
    assert result.llm_output is None
    assert result.generations[0][0].message.usage_metadata is None
    assert result.generations[0][0].generation_info["model_name"] == "gpt-4o"


def test_chat_stream_with_stream_usage(fake_provider):
    fp = fake_provider
    fp.set_openai(model="gpt-4o-2024-08-06", usage=USAGE_CR, content="one two three")
    rec = EndRecorder()
    chunks = list(chat_openai(fp, callbacks=[rec], stream_usage=True).stream("hi"))
    assert fp.last_request.body["stream_options"] == {"include_usage": True}
    with_usage = [c for c in chunks if c.usage_metadata]
    assert len(with_usage) == 1 and with_usage[0].usage_metadata == UM_CR
    assert merged(chunks).usage_metadata == UM_CR
    (result,) = rec.results
    assert result.llm_output is None
    assert result.generations[0][0].message.usage_metadata == UM_CR
    assert result.generations[0][0].generation_info == {
        "finish_reason": "stop",
        "model_name": "gpt-4o-2024-08-06",
        "system_fingerprint": "fp_f4ke9r0v1d",
        "service_tier": "default",
    }
    assert fp.last_request.usage == USAGE_CR


def test_chat_n2(fake_provider):
    fp = fake_provider
    fp.set_openai(usage=openai_usage(10, 8), content=["first", "second"])
    res = chat_openai(fp, n=2).generate([[HumanMessage("a")]])
    gens = res.generations[0]
    assert [g.message.content for g in gens] == ["first", "second"]
    # The request-wide usage is copied onto *each* choice's message.
    assert [g.message.usage_metadata["output_tokens"] for g in gens] == [8, 8]
    assert res.llm_output["token_usage"]["completion_tokens"] == 8
    assert fp.last_request.body["n"] == 2


def test_chat_service_tier_priority(fake_provider):
    fp = fake_provider
    fp.set_openai(usage=USAGE_CR)  # service_tier echoed from the request
    msg = chat_openai(fp, service_tier="priority").invoke("hi")
    assert fp.last_request.body["service_tier"] == "priority"
    assert msg.response_metadata["service_tier"] == "priority"
    assert msg.usage_metadata == {
        "input_tokens": 100,
        "output_tokens": 20,
        "total_tokens": 120,
        "input_token_details": {"audio": 0, "priority_cache_read": 40, "priority": 60},
        "output_token_details": {"audio": 0, "priority_reasoning": 5, "priority": 15},
    }


def test_chat_scripted_service_tier_in_stream(fake_provider):
    fp = fake_provider
    fp.set_openai(usage=USAGE_CR, service_tier="flex")
    chunks = list(chat_openai(fp, stream_usage=True).stream("hi"))
    um = merged(chunks).usage_metadata
    assert um["input_token_details"] == {"audio": 0, "flex_cache_read": 40, "flex": 60}
    assert um["output_token_details"] == {"audio": 0, "flex_reasoning": 5, "flex": 15}


def test_chat_service_tier_omitted(fake_provider):
    fake_provider.set_openai(service_tier="")
    msg = chat_openai(fake_provider).invoke("hi")
    assert "service_tier" not in msg.response_metadata


def test_chat_audio_tokens(fake_provider):
    fake_provider.set_openai(
        usage=openai_usage(50, 30, audio_input_tokens=7, audio_output_tokens=9)
    )
    um = chat_openai(fake_provider).invoke("hi").usage_metadata
    assert um["input_token_details"] == {"audio": 7, "cache_read": 0}
    assert um["output_token_details"] == {"audio": 9, "reasoning": 0}


def test_chat_raw_usage_verbatim(fake_provider):
    # A minimal raw dict (e.g. an OpenAI-compatible server): no details at all.
    fake_provider.set_openai(usage={"prompt_tokens": 3, "completion_tokens": 4})
    msg = chat_openai(fake_provider).invoke("hi")
    assert msg.usage_metadata == {
        "input_tokens": 3,
        "output_tokens": 4,
        "total_tokens": 7,
        "input_token_details": {},
        "output_token_details": {},
    }
    assert fake_provider.last_request.usage == {
        "prompt_tokens": 3,
        "completion_tokens": 4,
        "total_tokens": 7,
    }


def test_queue_before_default(fake_provider):
    fp = fake_provider
    fp.set_openai(content="default")
    fp.queue_openai(content="first")
    fp.queue_openai(content="second", usage=openai_usage(1, 1))
    llm = chat_openai(fp)
    out = [llm.invoke("x") for _ in range(3)]
    assert [m.content for m in out] == ["first", "second", "default"]
    assert [m.usage_metadata["input_tokens"] for m in out] == [12, 1, 12]


# --------------------------------------------------------------------------
# Responses API
# --------------------------------------------------------------------------

RESP_USAGE = openai_responses_usage(100, 20, cached_tokens=40, reasoning_tokens=5)
UM_RESP = {
    "input_tokens": 100,
    "output_tokens": 20,
    "total_tokens": 120,
    "input_token_details": {"cache_creation": 0, "cache_read": 40},
    "output_token_details": {"reasoning": 5},
}


def test_responses_invoke(fake_provider):
    fp = fake_provider
    fp.set_openai_responses(model="gpt-5-2025-08-07", usage=RESP_USAGE, content="resp text")
    rec = EndRecorder()
    msg = chat_openai(fp, model="gpt-5", use_responses_api=True, callbacks=[rec]).invoke("hi")
    assert fp.last_request.endpoint == OPENAI_RESPONSES
    assert fp.last_request.body["model"] == "gpt-5"
    assert msg.text == "resp text"
    assert msg.usage_metadata == UM_RESP
    assert msg.response_metadata["model_name"] == "gpt-5-2025-08-07"
    (result,) = rec.results
    assert result.llm_output is None  # Responses path never sets llm_output
    assert result.generations[0][0].message.usage_metadata == UM_RESP


def test_responses_stream(fake_provider):
    fp = fake_provider
    fp.set_openai_responses(usage=RESP_USAGE, content="a b c")
    rec = EndRecorder()
    llm = chat_openai(fp, model="gpt-5", use_responses_api=True, callbacks=[rec])
    chunks = list(llm.stream("hi"))
    assert fp.last_request.stream
    assert merged(chunks).text == "a b c"
    with_usage = [c for c in chunks if c.usage_metadata]
    assert len(with_usage) == 1 and with_usage[0].usage_metadata == UM_RESP
    (result,) = rec.results
    assert result.llm_output is None
    assert result.generations[0][0].message.usage_metadata == UM_RESP


def test_responses_priority(fake_provider):
    fake_provider.set_openai_responses(usage=RESP_USAGE)
    msg = chat_openai(fake_provider, use_responses_api=True, service_tier="priority").invoke("hi")
    assert msg.usage_metadata["input_token_details"] == {
        "priority_cache_read": 40,
        "priority_cache_creation": 0,
        "priority": 60,
    }
    assert msg.usage_metadata["output_token_details"] == {"priority_reasoning": 5, "priority": 15}


# --------------------------------------------------------------------------
# Anthropic
# --------------------------------------------------------------------------

ANT_USAGE = anthropic_usage(
    10, 5, cache_read_input_tokens=100, ephemeral_5m_input_tokens=20, ephemeral_1h_input_tokens=30
)


def test_anthropic_invoke_cache_split(fake_provider):
    fp = fake_provider
    fp.set_anthropic(model="claude-sonnet-4-5-20250929", usage=ANT_USAGE, content="hi there")
    rec = EndRecorder()
    msg = chat_anthropic(fp, callbacks=[rec]).invoke("hi")
    assert msg.content == "hi there"
    expected = {
        "input_tokens": 160,  # 10 + 100 read + 50 written
        "output_tokens": 5,
        "total_tokens": 165,
        "input_token_details": {
            "cache_read": 100,
            "cache_creation": 0,  # zeroed because the 5m/1h split is present
            "ephemeral_5m_input_tokens": 20,
            "ephemeral_1h_input_tokens": 30,
        },
    }
    assert msg.usage_metadata == expected
    (result,) = rec.results
    assert result.llm_output["model_name"] == "claude-sonnet-4-5-20250929"
    assert result.llm_output["usage"]["cache_creation_input_tokens"] == 50
    assert result.llm_output["usage"]["cache_creation"] == {
        "ephemeral_1h_input_tokens": 30,
        "ephemeral_5m_input_tokens": 20,
    }
    assert result.generations[0][0].message.usage_metadata == expected

    req = fp.last_request
    assert req.endpoint == ANTHROPIC_MESSAGES and req.body["model"] == CLAUDE
    assert "x-api-key" not in req.headers and "anthropic-version" in req.headers


def test_anthropic_cache_creation_without_split(fake_provider):
    usage = {
        "input_tokens": 10,
        "output_tokens": 5,
        "cache_creation_input_tokens": 50,
        "cache_read_input_tokens": 0,
    }
    fake_provider.set_anthropic(usage=usage)
    um = chat_anthropic(fake_provider).invoke("hi").usage_metadata
    assert um["input_tokens"] == 60
    assert um["input_token_details"] == {"cache_read": 0, "cache_creation": 50}


def test_anthropic_stream(fake_provider):
    fp = fake_provider
    fp.set_anthropic(model="claude-sonnet-4-5-20250929", usage=ANT_USAGE, content="x y z")
    rec = EndRecorder()
    chunks = list(chat_anthropic(fp, callbacks=[rec]).stream("hi"))
    assert merged(chunks).content == "x y z"
    with_usage = [c for c in chunks if c.usage_metadata]
    # Only message_delta's usage is used; it has no 5m/1h split.
    expected = {
        "input_tokens": 160,
        "output_tokens": 5,
        "total_tokens": 165,
        "input_token_details": {"cache_creation": 50, "cache_read": 100},
    }
    assert len(with_usage) == 1 and with_usage[0].usage_metadata == expected
    (result,) = rec.results
    assert result.llm_output is None
    assert result.generations[0][0].message.usage_metadata == expected
    assert result.generations[0][0].message.response_metadata["model_name"] == (
        "claude-sonnet-4-5-20250929"
    )
    assert fp.last_request.usage == {
        "input_tokens": 10,
        "cache_creation_input_tokens": 50,
        "cache_read_input_tokens": 100,
        "output_tokens": 5,
    }


def test_anthropic_stream_output_only_delta(fake_provider):
    fake_provider.set_anthropic(usage=ANT_USAGE, stream_delta_usage="output_only")
    um = merged(list(chat_anthropic(fake_provider).stream("hi"))).usage_metadata
    assert um == {
        "input_tokens": 0,
        "output_tokens": 5,
        "total_tokens": 5,
        "input_token_details": {},
    }


# --------------------------------------------------------------------------
# Failures
# --------------------------------------------------------------------------


def test_openai_429_raises(fake_provider):
    fp = fake_provider
    fp.fail_next(429)
    with pytest.raises(openai.RateLimitError) as ei:
        chat_openai(fp).invoke("hi")
    assert ei.value.status_code == 429
    assert ei.value.body["code"] == "rate_limit_exceeded"
    req = fp.last_request
    assert req.status == 429 and req.failure == "http_error" and req.usage is None
    # the failure was consumed: the next call succeeds
    assert chat_openai(fp).invoke("hi").content == DEFAULT_CONTENT
    assert fp.request_count == 2


def test_anthropic_429_and_500_raise(fake_provider):
    fp = fake_provider
    fp.fail_next(429, endpoint=ANTHROPIC_MESSAGES)
    with pytest.raises(anthropic.RateLimitError) as ei:
        chat_anthropic(fp).invoke("hi")
    assert ei.value.body["error"]["type"] == "rate_limit_error"
    fp.fail_next(500)
    with pytest.raises(anthropic.InternalServerError):
        chat_anthropic(fp).invoke("hi")


def test_endpoint_scoped_failure_skips_other_endpoints(fake_provider):
    fp = fake_provider
    fp.fail_next(500, endpoint=ANTHROPIC_MESSAGES)
    assert chat_openai(fp).invoke("hi").content == DEFAULT_CONTENT
    with pytest.raises(anthropic.InternalServerError):
        chat_anthropic(fp).invoke("hi")


def test_retry_after_failure_succeeds(fake_provider):
    fp = fake_provider
    fp.fail_next(500, times=1, retry_after=0.001)
    fp.set_openai(usage=openai_usage(10, 3))
    cb = UsageMetadataCallbackHandler()
    msg = chat_openai(fp, max_retries=1).invoke("hi", config={"callbacks": [cb]})
    assert msg.usage_metadata["input_tokens"] == 10
    assert [r.status for r in fp.requests] == [500, 200]
    assert [r.headers["x-stainless-retry-count"] for r in fp.requests] == ["0", "1"]
    assert cb.usage_metadata["gpt-4o"]["input_tokens"] == 10  # counted once


@pytest.mark.parametrize("use_responses_api", [False, True])
def test_openai_stream_drop_raises(fake_provider, use_responses_api):
    fp = fake_provider
    fp.fail_stream_after(3)
    fp.set_openai(content="one two three four five six")
    fp.set_openai_responses(content="one two three four five six")
    llm = chat_openai(fp, stream_usage=True, use_responses_api=use_responses_api)
    got = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in llm.stream("hi"):
            got.append(chunk)
    assert got  # some chunks arrived before the drop
    assert fp.last_request.failure == "stream_drop" and fp.last_request.usage is None
    # consumed: the next stream is complete
    assert merged(list(llm.stream("hi"))).usage_metadata is not None


def test_stream_failure_not_consumed_by_non_streaming_call(fake_provider):
    fp = fake_provider
    fp.fail_stream_after(1)
    assert chat_openai(fp).invoke("hi").content == DEFAULT_CONTENT
    with pytest.raises(openai.APIConnectionError):
        list(chat_openai(fp).stream("hi"))


def test_anthropic_stream_drop_raises(fake_provider):
    fp = fake_provider
    fp.fail_stream_after(4, endpoint=ANTHROPIC_MESSAGES)
    # Unlike openai, the anthropic SDK does not wrap a mid-stream transport
    # error: the raw httpx2 exception reaches the caller.
    with pytest.raises(httpx2.RemoteProtocolError, match="incomplete chunked read"):
        list(chat_anthropic(fp).stream("hi"))
    assert fp.last_request.failure == "stream_drop"


def test_stream_error_event_raises(fake_provider):
    fp = fake_provider
    fp.fail_stream_after(2, mode="error", times=3)
    with pytest.raises(openai.APIError):
        list(chat_openai(fp).stream("hi"))
    with pytest.raises(ValueError, match="server_error"):
        list(chat_openai(fp, use_responses_api=True).stream("hi"))
    with pytest.raises(anthropic.APIStatusError, match="overloaded_error"):
        list(chat_anthropic(fp).stream("hi"))
    assert [r.failure for r in fp.requests] == ["stream_error"] * 3


# --------------------------------------------------------------------------
# Plumbing
# --------------------------------------------------------------------------


def test_unknown_path_and_bad_json(fake_provider):
    fp = fake_provider

    def post(path, data, headers=None):
        req = urllib.request.Request(
            fp.base_url + path,
            data=data,
            method="POST",
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as e:
            with e:
                return e.code, json.loads(e.read())

    status, body = post("/v1/embeddings", b"{}")
    assert status == 404 and body["error"]["type"] == "invalid_request_error"
    status, body = post("/v1/nope", b"{}", {"anthropic-version": "2023-06-01"})
    assert status == 404 and body["type"] == "error"
    assert body["error"]["type"] == "not_found_error"
    status, body = post("/v1/chat/completions", b"{not json")
    assert status == 400
    assert [r.endpoint for r in fp.requests] == [None, None, OPENAI_CHAT]
    assert fp.requests_for(OPENAI_CHAT)[0].body is None


def test_reset_and_context_manager():
    with FakeProvider() as fp:
        fp.set_openai(content="scripted")
        fp.fail_next(500)
        fp.reset()
        assert chat_openai(fp).invoke("hi").content == DEFAULT_CONTENT
        assert fp.request_count == 1
        fp.clear_requests()
        assert fp.requests == [] and fp.last_request is None
        port = fp.port
    with pytest.raises(RuntimeError):
        _ = fp.port
    assert port > 0


def test_internal_bug_surfaces(monkeypatch):
    def boom(*a, **k):
        raise KeyError("oops")

    monkeypatch.setattr(fake_provider_module, "_chat_completion", boom)
    with pytest.raises(RuntimeError, match="raised internally"), FakeProvider() as fp:
        with pytest.raises(openai.InternalServerError, match="fake provider bug"):
            chat_openai(fp).invoke("hi")
        assert len(fp.errors) == 1


def test_importable_as_tests_package():
    root = Path(__file__).resolve().parent.parent
    code = (
        "import tests.fake_provider as m, json; "
        "fp = m.FakeProvider().start(); print(json.dumps(fp.openai_base_url)); fp.stop()"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert json.loads(out.stdout).endswith("/v1")
