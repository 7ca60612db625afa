"""A local fake of the OpenAI and Anthropic HTTP APIs for offline tests.

Only the standard library is needed. The server speaks enough of the real wire
formats that the real SDKs (``openai``, ``anthropic``) and the LangChain
wrappers on top of them (``ChatOpenAI``, ``ChatAnthropic``) parse the answers
exactly as they would parse the real providers' answers.

Quick start::

    from fake_provider import FakeProvider, openai_usage

    with FakeProvider() as fp:
        fp.set_openai(usage=openai_usage(100, 20, cached_tokens=40))
        llm = ChatOpenAI(model="gpt-4o", base_url=fp.openai_base_url,
                         api_key="test", max_retries=0)
        msg = llm.invoke("hi")
        assert msg.usage_metadata["input_token_details"]["cache_read"] == 40
        assert fp.request_count == 1

As a pytest fixture (put ``from fake_provider import fake_provider`` in a
``conftest.py``; ``pytest`` is imported lazily, only when present)::

    def test_x(fake_provider):
        fake_provider.set_anthropic(content="hi")

Endpoints (anything after ``?`` in the path is ignored)
--------------------------------------------------------
``POST /v1/chat/completions``  (endpoint name ``"openai.chat"``)
    JSON ``chat.completion``; honours the request's ``n``. With
    ``"stream": true`` it sends SSE ``chat.completion.chunk`` events: one
    role chunk per choice, one content chunk per word, one ``finish_reason``
    chunk per choice, then -- only when the request has
    ``stream_options.include_usage`` true, like the real API -- a final chunk
    with ``choices: []`` and ``usage``, then ``data: [DONE]``. When
    ``include_usage`` is on, every earlier chunk carries ``"usage": null``.
``POST /v1/responses``  (``"openai.responses"``)
    JSON ``response`` object; with streaming the SSE events ``response.created``,
    ``response.in_progress``, ``response.output_item.added``,
    ``response.content_part.added``, ``response.output_text.delta`` (one per
    word), ``response.output_text.done``, ``response.content_part.done``,
    ``response.output_item.done``, ``response.completed`` (which carries usage).
``POST /v1/messages``  (``"anthropic.messages"``)
    JSON ``message``; with streaming the SSE events ``message_start`` (full
    usage, ``output_tokens`` 1), ``content_block_start``, ``ping``,
    ``content_block_delta`` (one per word), ``content_block_stop``,
    ``message_delta`` (usage, see ``stream_delta_usage``), ``message_stop``.
Anything else answers 404 with an OpenAI-shaped error body, or an
Anthropic-shaped one when the request has an ``anthropic-version`` header.

Streams use ``Transfer-Encoding: chunked`` with one HTTP chunk per SSE event,
like the real APIs, so an aborted stream is detected by the client.

Scripting responses
-------------------
Each endpoint has a *default* script plus a FIFO *queue* of one-shot scripts;
a request takes the head of its queue if there is one, else the default.
``set_*`` replaces the default entirely (arguments left out go back to the
built-in defaults, they are not merged with the previous default);
``queue_*`` takes the same arguments and appends a one-shot script.

``set_openai(*, content=DEFAULT_CONTENT, model=None, usage=None, n=None,
service_tier=None, system_fingerprint=DEFAULT_FINGERPRINT,
finish_reason="stop")`` / ``queue_openai(...)``
    For ``/v1/chat/completions``. ``usage`` is a raw OpenAI chat usage dict,
    sent verbatim (deep-copied) except that ``total_tokens`` is filled in when
    missing; ``None`` means ``DEFAULT_OPENAI_USAGE``. ``content`` is a string,
    or a list of strings (one per choice, cycled). ``n`` forces the number of
    choices, else the request's ``n`` (default 1) is used.
``set_openai_responses(*, content=DEFAULT_CONTENT, model=None, usage=None,
service_tier=None)`` / ``queue_openai_responses(...)``
    For ``/v1/responses``. ``usage`` is a raw Responses usage dict
    (``input_tokens``, ``input_tokens_details``, ``output_tokens``,
    ``output_tokens_details``, ``total_tokens``), verbatim except
    ``total_tokens`` filled in when missing; ``None`` means
    ``DEFAULT_RESPONSES_USAGE``.
``set_anthropic(*, content=DEFAULT_CONTENT, model=None, usage=None,
stop_reason="end_turn", stream_delta_usage="cumulative")`` /
``queue_anthropic(...)``
    For ``/v1/messages``. ``usage`` is a raw Anthropic usage dict, sent
    verbatim in the JSON response and in ``message_start`` (there with
    ``output_tokens`` set to 1); ``None`` means ``DEFAULT_ANTHROPIC_USAGE``.
    The ``message_delta`` event carries, for ``stream_delta_usage=
    "cumulative"`` (the official API), ``input_tokens``,
    ``cache_creation_input_tokens``, ``cache_read_input_tokens``,
    ``output_tokens`` (and ``output_tokens_details`` / ``server_tool_use`` if
    scripted) -- but never the ``cache_creation`` 5m/1h breakdown, which the
    real API only sends in ``message_start``. ``"output_only"`` sends just
    ``output_tokens`` (as some Anthropic-compatible gateways such as Bedrock
    proxies do).

The built-in default usages are ``openai_usage(12, 6)``,
``openai_responses_usage(12, 6)`` and ``anthropic_usage(12, 6)`` (12 input and
6 output tokens, every detail field present and 0).

Model name in responses: the scripted ``model``, else the request's ``model``.

``service_tier`` (OpenAI): the scripted value; else the request's
``service_tier`` ("auto" becomes "default"); else ``"default"`` -- the real
API always sends one. Pass ``service_tier=""`` to omit the field.

Usage builders return complete, realistic raw usage dicts:
``openai_usage(prompt_tokens, completion_tokens, *, cached_tokens=0,
reasoning_tokens=0, audio_input_tokens=0, audio_output_tokens=0,
cache_write_tokens=None, accepted_prediction_tokens=0,
rejected_prediction_tokens=0)``,
``openai_responses_usage(input_tokens, output_tokens, *, cached_tokens=0,
reasoning_tokens=0, cache_write_tokens=0)``,
``anthropic_usage(input_tokens, output_tokens, *, cache_read_input_tokens=0,
ephemeral_5m_input_tokens=0, ephemeral_1h_input_tokens=0,
service_tier="standard")`` (``cache_creation_input_tokens`` is the 5m+1h sum).

Failures
--------
``fail_next(status=429, times=1, *, endpoint=None, message=None, body=None,
retry_after=None)``
    The next ``times`` requests (to ``endpoint`` if given, else to any
    endpoint) get HTTP ``status`` with a provider-shaped JSON error body
    (``body`` overrides it). ``retry_after`` (seconds) adds ``retry-after``
    and ``retry-after-ms`` headers; the SDKs honour them when retrying, so a
    tiny value keeps retry tests fast.
``fail_stream_after(k_chunks, times=1, *, endpoint=None, mode="drop")``
    The next ``times`` *streaming* requests (non-streaming ones do not consume
    it) send ``k_chunks`` complete SSE events (counting every event listed
    above, ``ping`` and ``[DONE]`` included) and then, with ``mode="drop"``,
    abort the connection in the middle of the chunked body (the client raises
    ``APIConnectionError``); with ``mode="error"``, send a provider-shaped
    in-stream error event and end the body cleanly (the SDK raises
    ``APIError`` / ``APIStatusError``, the Responses path a ``ValueError``).
    ``k_chunks`` should be smaller than the number of events in the stream.

Failures are checked before scripts and do not consume a script.

Inspection
----------
``fp.requests``: a snapshot ``list[RecordedRequest]`` (thread-safe copy), in
arrival order; a request is recorded before its answer is written, so it is
visible as soon as the client call returns. ``RecordedRequest`` has
``method``, ``path`` (no query), ``query``, ``endpoint`` (``"openai.chat"``,
``"openai.responses"``, ``"anthropic.messages"`` or ``None``), ``headers``
(lower-cased names; ``authorization``, ``x-api-key``, ``api-key``,
``proxy-authorization`` and ``cookie`` removed), ``body`` (parsed JSON, or
``None``), ``stream`` (bool), ``status`` (HTTP status sent), ``usage`` (the
raw usage dict the answer carried, ``None`` if it carried none, e.g. a stream
without ``include_usage``, an error, or an aborted stream that never got
there; for Anthropic streams it is the ``message_delta`` usage) and
``failure`` (``None``, ``"http_error"``, ``"stream_drop"`` or
``"stream_error"``).
``fp.request_count``, ``fp.last_request``, ``fp.requests_for(endpoint)``,
``fp.clear_requests()``, ``fp.reset()`` (clears scripts, queues, failures and
requests). ``fp.errors`` lists unexpected exceptions raised inside the fake
itself (bugs); leaving the ``with`` block raises if there are any and no
other exception is already propagating.

Other members: ``FakeProvider(host="127.0.0.1", port=0)``, ``start()``,
``stop()`` (idempotent), ``port``, ``base_url`` (``http://127.0.0.1:PORT``),
``openai_base_url`` (``base_url + "/v1"``), ``anthropic_base_url``
(``base_url``).

Not modelled: tool calls, logprobs, refusals, reasoning output items,
request validation (e.g. a missing ``max_tokens``), authentication.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "ANTHROPIC_MESSAGES",
    "DEFAULT_ANTHROPIC_USAGE",
    "DEFAULT_CONTENT",
    "DEFAULT_OPENAI_USAGE",
    "DEFAULT_RESPONSES_USAGE",
    "ENDPOINTS",
    "OPENAI_CHAT",
    "OPENAI_RESPONSES",
    "FakeProvider",
    "RecordedRequest",
    "anthropic_usage",
    "fake_provider",
    "openai_responses_usage",
    "openai_usage",
]

OPENAI_CHAT = "openai.chat"
OPENAI_RESPONSES = "openai.responses"
ANTHROPIC_MESSAGES = "anthropic.messages"
ENDPOINTS = (OPENAI_CHAT, OPENAI_RESPONSES, ANTHROPIC_MESSAGES)

_ROUTES = {
    "/v1/chat/completions": OPENAI_CHAT,
    "/v1/responses": OPENAI_RESPONSES,
    "/v1/messages": ANTHROPIC_MESSAGES,
}

DEFAULT_CONTENT = "Hello from the fake provider."
DEFAULT_FINGERPRINT = "fp_f4ke9r0v1d"
_REDACTED_HEADERS = frozenset(
    {"authorization", "x-api-key", "api-key", "proxy-authorization", "cookie"}
)


# --------------------------------------------------------------------------
# Usage builders
# --------------------------------------------------------------------------


def openai_usage(
    prompt_tokens: int,
    completion_tokens: int,
    *,
    cached_tokens: int = 0,
    reasoning_tokens: int = 0,
    audio_input_tokens: int = 0,
    audio_output_tokens: int = 0,
    cache_write_tokens: int | None = None,
    accepted_prediction_tokens: int = 0,
    rejected_prediction_tokens: int = 0,
) -> dict[str, Any]:
    """A complete raw Chat Completions ``usage`` dict, shaped like the real API's."""
    prompt_details: dict[str, Any] = {
        "cached_tokens": cached_tokens,
        "audio_tokens": audio_input_tokens,
    }
    if cache_write_tokens is not None:
        prompt_details["cache_write_tokens"] = cache_write_tokens
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": {
            "reasoning_tokens": reasoning_tokens,
            "audio_tokens": audio_output_tokens,
            "accepted_prediction_tokens": accepted_prediction_tokens,
            "rejected_prediction_tokens": rejected_prediction_tokens,
        },
    }


def openai_responses_usage(
    input_tokens: int,
    output_tokens: int,
    *,
    cached_tokens: int = 0,
    reasoning_tokens: int = 0,
    cache_write_tokens: int = 0,
) -> dict[str, Any]:
    """A complete raw Responses API ``usage`` dict.

    ``cache_write_tokens`` is a required field in the installed SDK's
    ``InputTokensDetails`` model, so it is always present (0 by default).
    """
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {
            "cached_tokens": cached_tokens,
            "cache_write_tokens": cache_write_tokens,
        },
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
        "total_tokens": input_tokens + output_tokens,
    }


def anthropic_usage(
    input_tokens: int,
    output_tokens: int,
    *,
    cache_read_input_tokens: int = 0,
    ephemeral_5m_input_tokens: int = 0,
    ephemeral_1h_input_tokens: int = 0,
    service_tier: str | None = "standard",
) -> dict[str, Any]:
    """A complete raw Anthropic ``usage`` dict.

    ``input_tokens`` excludes cached tokens, as in the real API;
    ``cache_creation_input_tokens`` is the sum of the 5m and 1h writes.
    """
    usage: dict[str, Any] = {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": ephemeral_5m_input_tokens + ephemeral_1h_input_tokens,
        "cache_read_input_tokens": cache_read_input_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": ephemeral_5m_input_tokens,
            "ephemeral_1h_input_tokens": ephemeral_1h_input_tokens,
        },
        "output_tokens": output_tokens,
    }
    if service_tier is not None:
        usage["service_tier"] = service_tier
    return usage


DEFAULT_OPENAI_USAGE = openai_usage(12, 6)
DEFAULT_RESPONSES_USAGE = openai_responses_usage(12, 6)
DEFAULT_ANTHROPIC_USAGE = anthropic_usage(12, 6)


# --------------------------------------------------------------------------
# Records and scripts
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received (see the module docstring)."""

    method: str
    path: str
    query: str
    endpoint: str | None
    headers: dict[str, str]
    body: Any
    stream: bool
    status: int
    usage: dict[str, Any] | None
    failure: str | None


@dataclass
class _Failure:
    kind: str  # "http" or "stream"
    endpoint: str | None
    remaining: int
    status: int = 0
    message: str | None = None
    body: Any = None
    retry_after: float | None = None
    k_chunks: int = 0
    mode: str = "drop"


def _fill_total(usage: dict[str, Any], inp: str, out: str) -> dict[str, Any]:
    usage = copy.deepcopy(usage)
    if "total_tokens" not in usage:
        usage["total_tokens"] = (usage.get(inp) or 0) + (usage.get(out) or 0)
    return usage


def _openai_script(
    *,
    content: str | list[str] = DEFAULT_CONTENT,
    model: str | None = None,
    usage: dict[str, Any] | None = None,
    n: int | None = None,
    service_tier: str | None = None,
    system_fingerprint: str | None = DEFAULT_FINGERPRINT,
    finish_reason: str = "stop",
) -> dict[str, Any]:
    if usage is None:
        usage = DEFAULT_OPENAI_USAGE
    if isinstance(content, str):
        content = [content]
    if not content:
        raise ValueError("content must be a string or a non-empty list of strings")
    return {
        "content": list(content),
        "model": model,
        "usage": _fill_total(usage, "prompt_tokens", "completion_tokens"),
        "n": n,
        "service_tier": service_tier,
        "system_fingerprint": system_fingerprint,
        "finish_reason": finish_reason,
    }


def _responses_script(
    *,
    content: str = DEFAULT_CONTENT,
    model: str | None = None,
    usage: dict[str, Any] | None = None,
    service_tier: str | None = None,
) -> dict[str, Any]:
    if usage is None:
        usage = DEFAULT_RESPONSES_USAGE
    return {
        "content": content,
        "model": model,
        "usage": _fill_total(usage, "input_tokens", "output_tokens"),
        "service_tier": service_tier,
    }


def _anthropic_script(
    *,
    content: str = DEFAULT_CONTENT,
    model: str | None = None,
    usage: dict[str, Any] | None = None,
    stop_reason: str = "end_turn",
    stream_delta_usage: str = "cumulative",
) -> dict[str, Any]:
    if usage is None:
        usage = DEFAULT_ANTHROPIC_USAGE
    if stream_delta_usage not in ("cumulative", "output_only"):
        raise ValueError("stream_delta_usage must be 'cumulative' or 'output_only'")
    return {
        "content": content,
        "model": model,
        "usage": copy.deepcopy(usage),
        "stop_reason": stop_reason,
        "stream_delta_usage": stream_delta_usage,
    }


_SCRIPT_BUILDERS = {
    OPENAI_CHAT: _openai_script,
    OPENAI_RESPONSES: _responses_script,
    ANTHROPIC_MESSAGES: _anthropic_script,
}


# --------------------------------------------------------------------------
# Wire-format helpers
# --------------------------------------------------------------------------


def _split_words(text: str) -> list[str]:
    """'Hello big world' -> ['Hello', ' big', ' world'] (lossless)."""
    parts = re.findall(r"\s*\S+|\s+$", text)
    return parts


def _new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


def _sse(data: Any, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


def _resolve_service_tier(scripted: str | None, body: dict[str, Any]) -> str | None:
    if scripted is not None:
        return scripted or None  # "" -> omit
    requested = body.get("service_tier")
    if isinstance(requested, str) and requested and requested != "auto":
        return requested
    return "default"


_OPENAI_ERRORS = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: (
        "invalid_request_error",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported.",
    ),
    404: (
        "invalid_request_error",
        "model_not_found",
        "The model does not exist or you do not have access to it.",
    ),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for requests. Please try again in 1ms.",
    ),
    500: (
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}

_ANTHROPIC_ERRORS = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: (
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
    ),
    404: ("not_found_error", "The requested resource could not be found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}


def _error_body(flavour: str, status: int, message: str | None) -> dict[str, Any]:
    if flavour == "anthropic":
        etype, default_msg = _ANTHROPIC_ERRORS.get(
            status, ("api_error" if status >= 500 else "invalid_request_error", "Error")
        )
        return {
            "type": "error",
            "error": {"type": etype, "message": message or default_msg},
            "request_id": _new_id("req_"),
        }
    etype, code, default_msg = _OPENAI_ERRORS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None, "Error")
    )
    return {
        "error": {
            "message": message or default_msg,
            "type": etype,
            "param": None,
            "code": code,
        }
    }


# --------------------------------------------------------------------------
# Response builders (pure functions: script + request body -> wire data)
# --------------------------------------------------------------------------


def _chat_completion(script: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    model = script["model"] or body.get("model") or "gpt-4o"
    n = script["n"] or body.get("n") or 1
    contents = list(itertools.islice(itertools.cycle(script["content"]), n))
    out: dict[str, Any] = {
        "id": _new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": i,
                "message": {
                    "role": "assistant",
                    "content": text,
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": script["finish_reason"],
            }
            for i, text in enumerate(contents)
        ],
        "usage": script["usage"],
    }
    tier = _resolve_service_tier(script["service_tier"], body)
    if tier is not None:
        out["service_tier"] = tier
    if script["system_fingerprint"] is not None:
        out["system_fingerprint"] = script["system_fingerprint"]
    return out


def _chat_completion_events(
    script: dict[str, Any], body: dict[str, Any]
) -> tuple[list[bytes], int | None]:
    """SSE events for a streamed chat completion, and the index of the usage event."""
    full = _chat_completion(script, body)
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    base: dict[str, Any] = {
        "id": full["id"],
        "object": "chat.completion.chunk",
        "created": full["created"],
        "model": full["model"],
    }
    if "service_tier" in full:
        base["service_tier"] = full["service_tier"]
    if "system_fingerprint" in full:
        base["system_fingerprint"] = full["system_fingerprint"]

    def chunk(choices: list[dict[str, Any]], usage: Any = None) -> bytes:
        data = {**base, "choices": choices}
        if include_usage:
            data["usage"] = usage
        return _sse(data)

    def choice(i: int, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"index": i, "delta": delta, "logprobs": None, "finish_reason": finish}

    events: list[bytes] = []
    for c in full["choices"]:
        i = c["index"]
        events.append(chunk([choice(i, {"role": "assistant", "content": "", "refusal": None})]))
        for piece in _split_words(c["message"]["content"] or ""):
            events.append(chunk([choice(i, {"content": piece})]))
    for c in full["choices"]:
        events.append(chunk([choice(c["index"], {}, c["finish_reason"])]))
    usage_index = None
    if include_usage:
        usage_index = len(events)
        events.append(chunk([], full["usage"]))
    events.append(_sse("[DONE]"))
    return events, usage_index


def _responses_object(
    script: dict[str, Any],
    body: dict[str, Any],
    *,
    rid: str,
    msg_id: str,
    created: int,
    completed: bool,
) -> dict[str, Any]:
    text = script["content"]
    out: dict[str, Any] = {
        "id": rid,
        "object": "response",
        "created_at": created,
        "status": "completed" if completed else "in_progress",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": script["model"] or body.get("model") or "gpt-4o",
        "output": [
            {
                "id": msg_id,
                "type": "message",
                "status": "completed",
                "content": [
                    {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
                ],
                "role": "assistant",
            }
        ]
        if completed
        else [],
        "parallel_tool_calls": True,
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": script["usage"] if completed else None,
        "user": None,
        "metadata": {},
    }
    tier = _resolve_service_tier(script["service_tier"], body)
    if tier is not None:
        out["service_tier"] = tier
    return out


def _responses_events(
    script: dict[str, Any], body: dict[str, Any]
) -> tuple[list[bytes], int | None]:
    rid, msg_id, created = _new_id("resp_"), _new_id("msg_"), int(time.time())
    in_progress = _responses_object(
        script, body, rid=rid, msg_id=msg_id, created=created, completed=False
    )
    done = _responses_object(script, body, rid=rid, msg_id=msg_id, created=created, completed=True)
    text = script["content"]
    seq = itertools.count()
    events: list[bytes] = []

    def emit(etype: str, **fields: Any) -> None:
        events.append(_sse({"type": etype, "sequence_number": next(seq), **fields}, etype))

    emit("response.created", response=in_progress)
    emit("response.in_progress", response=in_progress)
    emit(
        "response.output_item.added",
        output_index=0,
        item={
            "id": msg_id,
            "type": "message",
            "status": "in_progress",
            "content": [],
            "role": "assistant",
        },
    )
    loc = {"item_id": msg_id, "output_index": 0, "content_index": 0}
    emit(
        "response.content_part.added",
        **loc,
        part={"type": "output_text", "annotations": [], "logprobs": [], "text": ""},
    )
    for piece in _split_words(text):
        emit("response.output_text.delta", **loc, delta=piece, logprobs=[])
    emit("response.output_text.done", **loc, text=text, logprobs=[])
    emit(
        "response.content_part.done",
        **loc,
        part={"type": "output_text", "annotations": [], "logprobs": [], "text": text},
    )
    emit("response.output_item.done", output_index=0, item=done["output"][0])
    usage_index = len(events)
    emit("response.completed", response=done)
    return events, usage_index


def _anthropic_message(script: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": _new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": script["model"] or body.get("model") or "claude-sonnet-4-5",
        "content": [{"type": "text", "text": script["content"]}],
        "stop_reason": script["stop_reason"],
        "stop_sequence": None,
        "usage": script["usage"],
    }


_DELTA_USAGE_KEYS = (
    "input_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "output_tokens",
    "output_tokens_details",
    "server_tool_use",
)


def _anthropic_events(
    script: dict[str, Any], body: dict[str, Any]
) -> tuple[list[bytes], int | None, dict[str, Any]]:
    full = _anthropic_message(script, body)
    usage = full["usage"]
    start_msg = {**full, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
    if script["stream_delta_usage"] == "output_only":
        delta_usage = {"output_tokens": usage.get("output_tokens", 0)}
    else:
        delta_usage = {k: usage[k] for k in _DELTA_USAGE_KEYS if k in usage}
    events = [
        _sse({"type": "message_start", "message": start_msg}, "message_start"),
        _sse(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
            "content_block_start",
        ),
        _sse({"type": "ping"}, "ping"),
    ]
    for piece in _split_words(script["content"]):
        events.append(
            _sse(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": piece},
                },
                "content_block_delta",
            )
        )
    events.append(_sse({"type": "content_block_stop", "index": 0}, "content_block_stop"))
    usage_index = len(events)
    events.append(
        _sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": script["stop_reason"], "stop_sequence": None},
                "usage": delta_usage,
            },
            "message_delta",
        )
    )
    events.append(_sse({"type": "message_stop"}, "message_stop"))
    return events, usage_index, delta_usage


def _stream_error_event(endpoint: str, seq: int) -> bytes:
    if endpoint == ANTHROPIC_MESSAGES:
        return _sse(
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            "error",
        )
    if endpoint == OPENAI_RESPONSES:
        return _sse(
            {
                "type": "error",
                "code": "server_error",
                "message": "The server had an error while processing your request.",
                "param": None,
                "sequence_number": seq,
            },
            "error",
        )
    return _sse(_error_body("openai", 500, None))


# --------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-provider/1.0"
    sys_version = ""
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without TCP_NODELAY,
        # Nagle + the client's delayed ACK add ~40 ms to keep-alive requests.
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.server.fake._handle(self)

    do_GET = do_POST
    do_PUT = do_POST
    do_DELETE = do_POST

    # -- body ----------------------------------------------------------------

    def read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    # -- responses -----------------------------------------------------------

    def send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(payload)
        self.wfile.flush()

    def start_stream(self, headers: dict[str, str]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.flush()

    def write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def abort(self) -> None:
        """Drop the connection in the middle of the chunked body."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default listen backlog is 5: a burst of concurrent async requests
    # (tests fire 20 at once) would see connections reset under load.
    request_queue_size = 256
    fake: FakeProvider

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Wake handler threads parked on idle keep-alive connections."""
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)) or exc is None:
            return
        with self.fake._lock:
            self.fake._errors.append(exc)


# --------------------------------------------------------------------------
# The fake
# --------------------------------------------------------------------------


class FakeProvider:
    """Local fake OpenAI + Anthropic server; see the module docstring."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._requests: list[RecordedRequest] = []
        self._errors: list[BaseException] = []
        self._defaults: dict[str, dict[str, Any]] = {}
        self._queues: dict[str, list[dict[str, Any]]] = {}
        self._failures: list[_Failure] = []
        self.reset()

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> FakeProvider:
        if self._server is not None:
            return self
        server = _Server((self._host, self._port), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=f"FakeProvider:{server.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.stop()
        if exc_type is None and self._errors:
            raise RuntimeError(f"FakeProvider raised internally: {self._errors!r}") from (
                self._errors[0]
            )

    # -- addresses -----------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeProvider is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return self.base_url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.base_url

    # -- inspection ----------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._requests)

    @property
    def last_request(self) -> RecordedRequest | None:
        with self._lock:
            return self._requests[-1] if self._requests else None

    def requests_for(self, endpoint: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self._requests if r.endpoint == endpoint]

    @property
    def errors(self) -> list[BaseException]:
        with self._lock:
            return list(self._errors)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._failures.clear()
            self._defaults = {ep: build() for ep, build in _SCRIPT_BUILDERS.items()}
            self._queues = {ep: [] for ep in ENDPOINTS}

    # -- scripting -----------------------------------------------------------

    def _set(self, endpoint: str, once: bool, kwargs: dict[str, Any]) -> None:
        script = _SCRIPT_BUILDERS[endpoint](**kwargs)
        with self._lock:
            if once:
                self._queues[endpoint].append(script)
            else:
                self._defaults[endpoint] = script

    def set_openai(
        self,
        *,
        content: str | list[str] = DEFAULT_CONTENT,
        model: str | None = None,
        usage: dict[str, Any] | None = None,
        n: int | None = None,
        service_tier: str | None = None,
        system_fingerprint: str | None = DEFAULT_FINGERPRINT,
        finish_reason: str = "stop",
        _once: bool = False,
    ) -> None:
        """Default script for ``/v1/chat/completions`` (see the module docstring)."""
        self._set(
            OPENAI_CHAT,
            _once,
            dict(
                content=content,
                model=model,
                usage=usage,
                n=n,
                service_tier=service_tier,
                system_fingerprint=system_fingerprint,
                finish_reason=finish_reason,
            ),
        )

    def queue_openai(
        self,
        *,
        content: str | list[str] = DEFAULT_CONTENT,
        model: str | None = None,
        usage: dict[str, Any] | None = None,
        n: int | None = None,
        service_tier: str | None = None,
        system_fingerprint: str | None = DEFAULT_FINGERPRINT,
        finish_reason: str = "stop",
    ) -> None:
        """One-shot script for ``/v1/chat/completions``, used before the default."""
        self.set_openai(
            content=content,
            model=model,
            usage=usage,
            n=n,
            service_tier=service_tier,
            system_fingerprint=system_fingerprint,
            finish_reason=finish_reason,
            _once=True,
        )

    def set_openai_responses(
        self,
        *,
        content: str = DEFAULT_CONTENT,
        model: str | None = None,
        usage: dict[str, Any] | None = None,
        service_tier: str | None = None,
        _once: bool = False,
    ) -> None:
        """Default script for ``/v1/responses``."""
        self._set(
            OPENAI_RESPONSES,
            _once,
            dict(
                content=content,
                model=model,
                usage=usage,
                service_tier=service_tier,
            ),
        )

    def queue_openai_responses(
        self,
        *,
        content: str = DEFAULT_CONTENT,
        model: str | None = None,
        usage: dict[str, Any] | None = None,
        service_tier: str | None = None,
    ) -> None:
        """One-shot script for ``/v1/responses``."""
        self.set_openai_responses(
            content=content,
            model=model,
            usage=usage,
            service_tier=service_tier,
            _once=True,
        )

    def set_anthropic(
        self,
        *,
        content: str = DEFAULT_CONTENT,
        model: str | None = None,
        usage: dict[str, Any] | None = None,
        stop_reason: str = "end_turn",
        stream_delta_usage: str = "cumulative",
        _once: bool = False,
    ) -> None:
        """Default script for ``/v1/messages``."""
        self._set(
            ANTHROPIC_MESSAGES,
            _once,
            dict(
                content=content,
                model=model,
                usage=usage,
                stop_reason=stop_reason,
                stream_delta_usage=stream_delta_usage,
            ),
        )

    def queue_anthropic(
        self,
        *,
        content: str = DEFAULT_CONTENT,
        model: str | None = None,
        usage: dict[str, Any] | None = None,
        stop_reason: str = "end_turn",
        stream_delta_usage: str = "cumulative",
    ) -> None:
        """One-shot script for ``/v1/messages``."""
        self.set_anthropic(
            content=content,
            model=model,
            usage=usage,
            stop_reason=stop_reason,
            stream_delta_usage=stream_delta_usage,
            _once=True,
        )

    def fail_next(
        self,
        status: int = 429,
        times: int = 1,
        *,
        endpoint: str | None = None,
        message: str | None = None,
        body: Any = None,
        retry_after: float | None = None,
    ) -> None:
        _check_endpoint(endpoint)
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._failures.append(
                _Failure(
                    "http",
                    endpoint,
                    times,
                    status=status,
                    message=message,
                    body=body,
                    retry_after=retry_after,
                )
            )

    def fail_stream_after(
        self,
        k_chunks: int,
        times: int = 1,
        *,
        endpoint: str | None = None,
        mode: str = "drop",
    ) -> None:
        _check_endpoint(endpoint)
        if mode not in ("drop", "error"):
            raise ValueError("mode must be 'drop' or 'error'")
        if k_chunks < 0 or times < 1:
            raise ValueError("k_chunks must be >= 0 and times >= 1")
        with self._lock:
            self._failures.append(_Failure("stream", endpoint, times, k_chunks=k_chunks, mode=mode))

    # -- request handling (runs in server threads) -------------------------------

    def _take_failure(self, endpoint: str | None, stream: bool) -> _Failure | None:
        """Consume one matching failure; must hold the lock."""
        for f in self._failures:
            if f.endpoint is not None and f.endpoint != endpoint:
                continue
            if f.kind == "stream" and not (stream and endpoint is not None):
                continue
            f.remaining -= 1
            if f.remaining <= 0:
                self._failures.remove(f)
            return f
        return None

    def _take_script(self, endpoint: str) -> dict[str, Any]:
        queue = self._queues[endpoint]
        return queue.pop(0) if queue else self._defaults[endpoint]

    def _handle(self, h: _Handler) -> None:
        try:
            self._handle_inner(h)
        except (ConnectionError, TimeoutError):
            h.close_connection = True
        except Exception as exc:  # a bug in the fake: answer 500, remember it
            with self._lock:
                self._errors.append(exc)
            h.close_connection = True
            try:
                h.send_json(500, _error_body("openai", 500, f"fake provider bug: {exc!r}"))
            except OSError:
                pass

    def _handle_inner(self, h: _Handler) -> None:
        raw_path = h.path
        path, _, query = raw_path.partition("?")
        endpoint = _ROUTES.get(path.rstrip("/")) if h.command == "POST" else None
        headers = {k.lower(): v for k, v in h.headers.items() if k.lower() not in _REDACTED_HEADERS}
        raw = h.read_body()
        flavour = (
            "anthropic"
            if (endpoint == ANTHROPIC_MESSAGES or "anthropic-version" in headers)
            else "openai"
        )
        body: Any = None
        bad_json = False
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                bad_json = True
        stream = bool(isinstance(body, dict) and body.get("stream"))
        resp_headers = (
            {"request-id": _new_id("req_")}
            if flavour == "anthropic"
            else {"x-request-id": _new_id("req_"), "openai-processing-ms": "1"}
        )

        def record(status: int, usage: Any, failure: str | None) -> None:
            rec = RecordedRequest(
                method=h.command,
                path=path,
                query=query,
                endpoint=endpoint,
                headers=headers,
                body=body,
                stream=stream,
                status=status,
                usage=copy.deepcopy(usage),
                failure=failure,
            )
            self._requests.append(rec)

        with self._lock:
            if endpoint is None:
                record(404, None, "http_error")
                plan: Any = (
                    "error",
                    404,
                    _error_body(flavour, 404, f"Unknown request URL: {h.command} {path}"),
                    {},
                )
            elif bad_json or not isinstance(body, dict):
                record(400, None, "http_error")
                plan = (
                    "error",
                    400,
                    _error_body(flavour, 400, "We could not parse the JSON body of your request."),
                    {},
                )
            else:
                failure = self._take_failure(endpoint, stream)
                if failure is not None and failure.kind == "http":
                    record(failure.status, None, "http_error")
                    extra = {}
                    if failure.retry_after is not None:
                        extra["retry-after"] = str(max(0, round(failure.retry_after)))
                        extra["retry-after-ms"] = str(max(0, round(failure.retry_after * 1000)))
                    err = (
                        failure.body
                        if failure.body is not None
                        else _error_body(flavour, failure.status, failure.message)
                    )
                    plan = ("error", failure.status, err, extra)
                else:
                    script = self._take_script(endpoint)
                    plan = self._plan(endpoint, script, body, stream, failure, record)

        kind = plan[0]
        if kind == "error":
            _, status, err, extra = plan
            h.send_json(status, err, {**resp_headers, **extra})
        elif kind == "json":
            h.send_json(200, plan[1], resp_headers)
        else:
            _, events, failure = plan
            h.start_stream(resp_headers)
            if failure is None:
                for ev in events:
                    h.write_chunk(ev)
                h.end_stream()
            else:
                for ev in events[: failure.k_chunks]:
                    h.write_chunk(ev)
                if failure.mode == "drop":
                    h.abort()
                else:
                    h.write_chunk(_stream_error_event(endpoint, failure.k_chunks))
                    h.end_stream()

    def _plan(
        self,
        endpoint: str,
        script: dict[str, Any],
        body: dict[str, Any],
        stream: bool,
        failure: _Failure | None,
        record: Any,
    ) -> tuple[Any, ...]:
        if not stream:
            if endpoint == OPENAI_CHAT:
                data = _chat_completion(script, body)
            elif endpoint == OPENAI_RESPONSES:
                rid, mid = _new_id("resp_"), _new_id("msg_")
                data = _responses_object(
                    script, body, rid=rid, msg_id=mid, created=int(time.time()), completed=True
                )
            else:
                data = _anthropic_message(script, body)
            record(200, data.get("usage"), None)
            return ("json", data)

        if endpoint == OPENAI_CHAT:
            events, usage_index = _chat_completion_events(script, body)
            usage = script["usage"]
        elif endpoint == OPENAI_RESPONSES:
            events, usage_index = _responses_events(script, body)
            usage = script["usage"]
        else:
            events, usage_index, usage = _anthropic_events(script, body)
        reached = usage_index is not None and (failure is None or usage_index < failure.k_chunks)
        failure_name = None if failure is None else f"stream_{failure.mode}"
        record(200, usage if reached else None, failure_name)
        return ("stream", events, failure)


def _check_endpoint(endpoint: str | None) -> None:
    if endpoint is not None and endpoint not in ENDPOINTS:
        raise ValueError(f"endpoint must be one of {ENDPOINTS} or None, not {endpoint!r}")


# --------------------------------------------------------------------------
# pytest fixture (pytest is optional; the module itself is stdlib-only)
# --------------------------------------------------------------------------


def _fake_provider_fixture() -> Iterator[FakeProvider]:
    with FakeProvider() as fp:
        yield fp


try:  # pragma: no cover - depends on the environment
    import pytest as _pytest
except ImportError:  # pragma: no cover
    fake_provider = _fake_provider_fixture
else:
    fake_provider = _pytest.fixture(name="fake_provider")(_fake_provider_fixture)
