"""The LangChain classes whose transport is a vendor SDK, driven through their real code:
langchain-community's `ChatTongyi` (the `dashscope` SDK) and `QianfanChatEndpoint` (the
`qianfan` SDK, its OAuth access-token step included), each pointed at a small HTTP server on
127.0.0.1 that answers with the provider's documented JSON (and server-sent events when
streaming), invoked and streamed through LangChain with a tracker.

Wire formats, read from the installed SDKs: DashScope's text-generation endpoint is
`POST {base_http_api_url}/services/aigc/text-generation/generation`; its answer is
`{"request_id", "output": {"choices": [...]}, "usage": {...}}`, streamed as SSE `data:` lines
of the same object when the request carries `X-DashScope-SSE: enable`. Qianfan's chat is
`POST {BASE_URL}/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/<endpoint>?access_token=...`, after
`POST {BASE_URL}/oauth/2.0/token` trades the API key and secret key for the token; its
answer is `{"id", "result", "usage": {"prompt_tokens", ...}}`, streamed as SSE chunks with
`is_end`."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from llmledger import CostTracker
from test_chinese_providers import assert_qwen_plus_cached

dashscope = pytest.importorskip("dashscope")
qianfan = pytest.importorskip("qianfan")

from langchain_community.chat_models import ChatTongyi, QianfanChatEndpoint  # noqa: E402

M = Decimal(1_000_000)

# DashScope text-generation usage (Model Studio API reference, result_format "message"):
# input_tokens includes the cached tokens counted in prompt_tokens_details.cached_tokens.
DASHSCOPE_USAGE = {
    "input_tokens": 10_000,
    "output_tokens": 1_000,
    "total_tokens": 11_000,
    "prompt_tokens_details": {"cached_tokens": 8_000},
}
# Qianfan ERNIE chat usage (Qianfan API reference, ERNIE-4.0-8K).
QIANFAN_USAGE = {"prompt_tokens": 2_000, "completion_tokens": 300, "total_tokens": 2_300}
# Streamed, each chunk's usage is the answer's running total, not a delta: prompt_tokens on
# every chunk, completion_tokens growing to the whole answer's on the last (`is_end: true`)
# chunk. The in-between figures are illustrative; the last chunk's are the call's.
QIANFAN_STREAM_USAGE = [
    {"prompt_tokens": 2_000, "completion_tokens": 150, "total_tokens": 2_150},
    QIANFAN_USAGE,
]


def _dashscope_body(content: str, finish: str, usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "request_id": "67aec2b5-72bf-96a4-ae29-5bfebd2e7305",
        "output": {
            "choices": [
                {"finish_reason": finish, "message": {"role": "assistant", "content": content}}
            ]
        },
        "usage": usage,
    }


def _qianfan_body(
    result: str, *, end: bool, sentence: int = 0, usage: dict[str, int] = QIANFAN_USAGE
) -> dict[str, Any]:
    return {
        "id": "as-7848zeqn1c",
        "object": "chat.completion",
        "created": 1764000000,
        "sentence_id": sentence,
        "is_end": end,
        "is_truncated": False,
        "result": result,
        "need_clear_history": False,
        "usage": usage,
    }


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self.server.requests.append((self.path, body))
        if self.path.startswith("/oauth/2.0/token"):
            self._json({"access_token": "24.test-token", "expires_in": 2592000})
        elif self.path.endswith("/services/aigc/text-generation/generation"):
            if self.headers.get("X-DashScope-SSE") == "enable":
                # incremental_output: each event carries only its new text; usage grows.
                parts = [("你", "null", 1), ("好", "stop", 1_000)]
                events = [
                    _dashscope_body(text, finish, {**DASHSCOPE_USAGE, "output_tokens": out})
                    for text, finish, out in parts
                ]
                self._sse(
                    [f"id:{i}\nevent:result\n:HTTP_STATUS/200\ndata:" for i in range(2)],
                    events,
                )
            else:
                self._json(_dashscope_body("你好", "stop", DASHSCOPE_USAGE))
        elif "/wenxinworkshop/chat/" in self.path:
            assert "access_token=24.test-token" in self.path
            if body.get("stream"):
                first, last = QIANFAN_STREAM_USAGE
                events = [
                    _qianfan_body("你", end=False, usage=first),
                    _qianfan_body("好", end=True, sentence=1, usage=last),
                ]
                self._sse(["data: "] * 2, events)
            else:
                self._json(_qianfan_body("你好", end=True))
        else:
            self.send_error(404)

    def _json(self, obj: dict[str, Any]) -> None:
        data = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _sse(self, prefixes: list[str], events: list[dict[str, Any]]) -> None:
        data = "".join(p + json.dumps(e) + "\n\n" for p, e in zip(prefixes, events, strict=True))
        raw = data.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream;charset=UTF-8")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    requests: list[tuple[str, Any]]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Server]:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.requests = []
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join()


def _base(srv: _Server) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}"


def _tongyi(srv: _Server, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> ChatTongyi:
    # The SDK's documented way to choose its endpoint (also DASHSCOPE_HTTP_BASE_URL at import).
    monkeypatch.setattr(dashscope, "base_http_api_url", _base(srv) + "/api/v1")
    return ChatTongyi(model="qwen-plus", api_key="sk-test", max_retries=1, **kw)


def _assert_qwen_plus_record(rec: dict[str, Any]) -> None:
    assert rec["provider"] == "tongyi"
    assert rec["usage_source"] == "provider"
    assert_qwen_plus_cached(rec)


def test_chat_tongyi_invoke_through_the_dashscope_sdk(
    server: _Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    llm = _tongyi(server, monkeypatch)
    t = CostTracker()
    assert llm.invoke("你好", config={"callbacks": [t]}).content == "你好"
    ((path, body),) = server.requests
    assert path == "/api/v1/services/aigc/text-generation/generation"
    assert body["model"] == "qwen-plus"
    (rec,) = t.records()
    _assert_qwen_plus_record(rec)


def test_chat_tongyi_stream_through_the_dashscope_sdk(
    server: _Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    llm = _tongyi(server, monkeypatch)
    t = CostTracker()
    text = "".join(str(c.content) for c in llm.stream("你好", config={"callbacks": [t]}))
    assert text == "你好"
    (rec,) = t.records()
    # The last event's usage (the whole call's), counted once.
    _assert_qwen_plus_record(rec)


def _qianfan(
    srv: _Server, monkeypatch: pytest.MonkeyPatch, ak: str, **kw: Any
) -> QianfanChatEndpoint:
    # The SDK's own configuration (QIANFAN_BASE_URL, read once into its global config): the
    # OAuth token step reads the global config, the chat client also takes it per client
    # through init_kwargs. A fresh key pair per test: the SDK caches access tokens by
    # (ak, sk) for the process.
    monkeypatch.setattr(qianfan.get_config(), "BASE_URL", _base(srv))
    return QianfanChatEndpoint(
        model="ERNIE-4.0-8K",
        api_key=ak,
        secret_key="sk-test",
        init_kwargs={"base_url": _base(srv)},
        **kw,
    )


def _assert_ernie_record(rec: dict[str, Any]) -> None:
    assert rec["provider"] == "qianfanchatendpoint"
    assert rec["usage_source"] == "provider"
    assert (rec["input_tokens"], rec["output_tokens"]) == (2_000, 300)
    # No USD price for ERNIE-4.0-8K from Baidu was found (Qianfan bills in CNY; the qianfan
    # 0.4.12.3 SDK's own model table gives 0.12 / 0.12 per 1k tokens with no currency):
    # the call stays unpriced, never borrowed from another host.
    assert rec["cost"] is None
    assert rec["price_entry"] is None


def test_qianfan_invoke_through_the_qianfan_sdk_with_its_oauth_step(
    server: _Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    llm = _qianfan(server, monkeypatch, "ak-invoke")
    t = CostTracker()
    assert llm.invoke("你好", config={"callbacks": [t]}).content == "你好"
    paths = [p for p, _ in server.requests]
    assert paths[0].startswith("/oauth/2.0/token")
    assert paths[1].startswith("/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/completions_pro?")
    (rec,) = t.records()
    _assert_ernie_record(rec)


LAST_CHUNK_NOTE = "usage of the last stream chunk (the integration's chunks carry running totals)"


def _assert_ernie_stream_record(rec: dict[str, Any]) -> None:
    # QianfanChatEndpoint (langchain-community 0.4.2) gives every stream chunk the
    # usage_metadata of Qianfan's chunk usage, the answer's running total, and LangChain adds
    # the chunks' usage up (4,000 / 450 tokens here): the tracker keeps the last chunk's.
    _assert_ernie_record(rec)
    assert rec["streamed_chunks"] >= 2
    assert rec["usage_notes"] == LAST_CHUNK_NOTE


def test_qianfan_stream_through_the_qianfan_sdk(
    server: _Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    llm = _qianfan(server, monkeypatch, "ak-stream")
    t = CostTracker()
    text = "".join(str(c.content) for c in llm.stream("你好", config={"callbacks": [t]}))
    assert text == "你好"
    (rec,) = t.records()
    _assert_ernie_stream_record(rec)


def test_qianfan_streaming_invoke_counts_the_call_once(
    server: _Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    llm = _qianfan(server, monkeypatch, "ak-streaming-invoke", streaming=True)
    t = CostTracker()
    assert llm.invoke("你好", config={"callbacks": [t]}).content == "你好"
    # `streaming=True` with invoke: langchain-core runs the class's _stream and adds the
    # chunks up itself (the class's own _generate, which keeps the last chunk's usage, is not
    # reached): the same running totals as `.stream()`.
    assert server.requests[-1][1]["stream"] is True
    (rec,) = t.records()
    _assert_ernie_stream_record(rec)


def test_qianfan_astream_counts_the_call_once_without_estimates(
    server: _Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The async stream (the SDK's aiohttp client), with estimates off: no stream text is
    # kept, the chunks' usage is still read.
    llm = _qianfan(server, monkeypatch, "ak-astream")
    t = CostTracker(estimate=False)

    async def main() -> str:
        parts = [str(c.content) async for c in llm.astream("你好", config={"callbacks": [t]})]
        await asyncio.sleep(0.05)  # let closed transports finish before the loop ends
        return "".join(parts)

    assert asyncio.run(main()) == "你好"
    (rec,) = t.records()
    _assert_ernie_stream_record(rec)


class _HouseQianfan(QianfanChatEndpoint):
    """An application's own subclass: another class name and `ls_provider`
    (`_houseqianfan`), the same `_llm_type`."""


def test_a_qianfan_subclass_stream_counts_the_call_once(
    server: _Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(qianfan.get_config(), "BASE_URL", _base(server))
    llm = _HouseQianfan(
        model="ERNIE-4.0-8K",
        api_key="ak-subclass",
        secret_key="sk-test",
        init_kwargs={"base_url": _base(server)},
    )
    t = CostTracker()
    assert "".join(str(c.content) for c in llm.stream("你好", config={"callbacks": [t]})) == "你好"
    (rec,) = t.records()
    assert (rec["input_tokens"], rec["output_tokens"]) == (2_000, 300)
    assert rec["usage_notes"] == LAST_CHUNK_NOTE
