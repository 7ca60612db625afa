"""A model served by a local runtime (Ollama, llama.cpp, vLLM, ...) costs no API fee: its
calls are recorded at $0 with `price_entry` `local:<runtime>` and counted apart in the
totals, unless the user's `prices=` gives the model a price. A vendor's API price is never
borrowed for a model of the same name at another host.

The Ollama tests drive the real `ChatOllama` (langchain-ollama), its HTTP answered by an
`httpx.MockTransport` with Ollama's documented `/api/chat` response."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
from langchain_ollama import ChatOllama
from llmledger import CostTracker, price
from llmledger.testing import UsageFakeChatModel

# Ollama's /api/chat answer (docs/api.md, "Chat request (streaming)": the last object).
OLLAMA_DONE = {
    "created_at": "2026-11-30T10:00:00.000000Z",
    "message": {"role": "assistant", "content": ""},
    "done": True,
    "done_reason": "stop",
    "total_duration": 4883583458,
    "load_duration": 1334875,
    "prompt_eval_count": 26,
    "prompt_eval_duration": 342546000,
    "eval_count": 282,
    "eval_duration": 4535599000,
}


def ollama_transport(model: str) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/chat"
        body = json.loads(request.content)
        first = {
            "model": model,
            "created_at": "2026-11-30T10:00:00.000000Z",
            "message": {"role": "assistant", "content": "Hello there"},
            "done": False,
        }
        last = {"model": model, **OLLAMA_DONE}
        if body.get("stream", True):
            lines = "\n".join(json.dumps(x) for x in (first, last)) + "\n"
            return httpx.Response(200, text=lines, headers={"content-type": "application/x-ndjson"})
        last["message"] = first["message"]
        return httpx.Response(200, json=last)

    return httpx.MockTransport(handler)


def chat_ollama(model: str) -> ChatOllama:
    return ChatOllama(model=model, client_kwargs={"transport": ollama_transport(model)})


@pytest.mark.parametrize(
    "model", ["deepseek-r1", "mistral-small", "codestral", "mistral-large", "deepseek-v3"]
)
def test_chat_ollama_is_recorded_as_local_at_zero(model: str) -> None:
    # Each of these names has an API price at its maker (DeepSeek, Mistral) in the catalog.
    assert price(model) is not None
    t = CostTracker()
    chat_ollama(model).invoke("hi", config={"callbacks": [t]})
    (rec,) = t.records()
    assert rec["provider"] == "ollama"
    assert (rec["input_tokens"], rec["output_tokens"]) == (26, 282)
    assert rec["cost"] == Decimal(0)
    assert rec["price_entry"] == "local:ollama"
    assert rec["unpriced_reason"] is None
    totals = t.totals()
    assert totals["local_calls"] == 1
    assert totals["unpriced_calls"] == 0
    assert totals["cost"] == Decimal(0)


def test_chat_ollama_stream_is_local_too() -> None:
    t = CostTracker()
    chunks = list(chat_ollama("deepseek-r1").stream("hi", config={"callbacks": [t]}))
    assert chunks
    (rec,) = t.records()
    assert (rec["price_entry"], rec["cost"]) == ("local:ollama", Decimal(0))


def test_a_user_price_prices_a_local_model() -> None:
    # Their GPU's cost per token, say.
    t = CostTracker(prices={"deepseek-r1": {"input": "0.10", "output": "0.40"}})
    chat_ollama("deepseek-r1").invoke("hi", config={"callbacks": [t]})
    (rec,) = t.records()
    assert rec["price_entry"] == "override:*/deepseek-r1"
    assert rec["cost"] == Decimal("0.0000026") + Decimal("0.0001128")
    assert t.totals()["local_calls"] == 0


class ChatLlamaCpp(UsageFakeChatModel):
    """Named as langchain-community's llama.cpp client: the class names the runtime."""


@pytest.mark.parametrize(
    ("cls", "ls_provider", "entry"),
    [
        (UsageFakeChatModel, "ollama", "local:ollama"),
        (UsageFakeChatModel, "vllm", "local:vllm"),
        (UsageFakeChatModel, "lmstudio", "local:lmstudio"),
        (UsageFakeChatModel, "llamacpp", "local:llamacpp"),
        # The client class decides when ls_provider names no runtime.
        (ChatLlamaCpp, "llama-cpp-python", "local:llamacpp"),
    ],
)
def test_local_runtimes_by_ls_provider_and_client_class(
    cls: type[UsageFakeChatModel], ls_provider: str, entry: str
) -> None:
    usage: dict[str, Any] = {"input_tokens": 1000, "output_tokens": 100, "total_tokens": 1100}
    t = CostTracker()
    cls(model="deepseek-chat", provider=ls_provider, usage=usage).invoke(
        "x", config={"callbacks": [t]}
    )
    (rec,) = t.records()
    assert (rec["price_entry"], rec["cost"]) == (entry, Decimal(0))


@pytest.mark.parametrize("host", ["acme-cloud", "dashscope", "huggingface"])
def test_another_host_never_borrows_a_vendors_price(host: str) -> None:
    # An unknown host's 'deepseek-chat' or 'mistral-small' is unpriced, not DeepSeek's or
    # Mistral's API price ...
    for model in ["deepseek-chat", "mistral-small", "codestral"]:
        assert price(model, host) is None, (model, host)
    t = CostTracker()
    UsageFakeChatModel(
        model="mistral-small",
        provider=host,
        usage={"input_tokens": 10, "output_tokens": 1, "total_tokens": 11},
    ).invoke("x", config={"callbacks": [t]})
    (rec,) = t.records()
    assert rec["cost"] is None and rec["price_entry"] is None
    assert t.totals()["unpriced_calls"] == 1


def test_hosts_that_bill_list_prices_still_find_the_maker() -> None:
    # ... while ChatOpenAI pointed at DeepSeek's API (ls_provider 'openai') and Azure's
    # OpenAI models keep the maker's entry.
    assert price("deepseek-chat", "openai")["key"] == "deepseek/deepseek-chat"
    assert price("deepseek-chat", "deepseek")["key"] == "deepseek/deepseek-chat"
    assert price("mistral-small", "mistralai") is not None
