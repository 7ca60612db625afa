"""Usage details an integration drops from `usage_metadata` are read from the provider's raw
usage (`llm_output` / `response_metadata`), per field, counted once, and the record's
`usage_notes` says where they came from.

The real `ChatMistralAI` (langchain-mistralai) is driven through an `httpx.MockTransport`
answering with Mistral's documented chat-completions JSON; other integrations' shapes are
checked with a fake chat model that reproduces exactly what the integration hands LangChain."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_mistralai import ChatMistralAI
from llmledger import CostTracker
from llmledger.testing import UsageFakeChatModel

# Mistral's pricing page (mistral-medium-latest = Mistral Medium 3.5): $1.50 / 1M input,
# $0.15 / 1M cached input, $7.50 / 1M output.
MEDIUM_IN, MEDIUM_CACHED, MEDIUM_OUT = Decimal("1.5"), Decimal("0.15"), Decimal("7.5")
M = Decimal(1_000_000)


def mistral_answer(usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "cmpl-e5cc70bb28c444948073e77776eb30ef",
        "object": "chat.completion",
        "created": 1764000000,
        "model": "mistral-medium-latest",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Bonjour", "tool_calls": None},
                "finish_reason": "stop",
            }
        ],
        "usage": usage,
    }


def chat_mistral(usage: dict[str, Any]) -> ChatMistralAI:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/chat/completions"
        return httpx.Response(200, json=mistral_answer(usage))

    client = httpx.Client(
        base_url="https://api.mistral.ai/v1", transport=httpx.MockTransport(handler)
    )
    return ChatMistralAI(model="mistral-medium-latest", api_key="test-key", client=client)


def test_mistral_cached_tokens_from_llm_output() -> None:
    usage = {
        "prompt_tokens": 10_000,
        "completion_tokens": 500,
        "total_tokens": 10_500,
        "prompt_tokens_details": {"cached_tokens": 8_000},
    }
    t = CostTracker()
    msg = chat_mistral(usage).invoke("hi", config={"callbacks": [t]})
    # What the integration itself hands LangChain: no input_token_details.
    assert msg.usage_metadata == {
        "input_tokens": 10_000,
        "output_tokens": 500,
        "total_tokens": 10_500,
    }
    (rec,) = t.records()
    assert rec["price_entry"] == "mistral/mistral-medium-latest"
    assert (rec["input_tokens"], rec["cache_read_tokens"]) == (10_000, 8_000)
    assert rec["usage_notes"] == "cache_read_tokens from llm_output.token_usage"
    expected = (2_000 * MEDIUM_IN + 8_000 * MEDIUM_CACHED + 500 * MEDIUM_OUT) / M
    assert expected == Decimal("0.00795")
    assert rec["cost"] == expected


def test_mistral_without_cache_has_no_notes() -> None:
    usage = {"prompt_tokens": 10_000, "completion_tokens": 500, "total_tokens": 10_500}
    t = CostTracker()
    chat_mistral(usage).invoke("hi", config={"callbacks": [t]})
    (rec,) = t.records()
    assert rec["usage_notes"] is None
    assert rec["cost"] == Decimal("0.01875")


class RawUsageChat(UsageFakeChatModel):
    """Hands LangChain `usage` as `usage_metadata` and `raw` where the integration puts the
    provider's own usage (`llm_output` or `response_metadata`)."""

    raw: dict[str, Any] = {}
    raw_in: str = "llm_output"

    def _generate(self, *args: Any, **kwargs: Any) -> ChatResult:
        msg = AIMessage(
            content="ok",
            usage_metadata=self.usage,  # type: ignore[arg-type]
            response_metadata={"model_name": self.model},
        )
        llm_output = None
        if self.raw_in == "llm_output":
            llm_output = {"token_usage": self.raw, "model_name": self.model}
        else:
            msg.response_metadata["token_usage"] = self.raw
        return ChatResult(generations=[ChatGeneration(message=msg)], llm_output=llm_output)


def run(chat: UsageFakeChatModel) -> dict[str, Any]:
    t = CostTracker()
    chat.invoke("x", config={"callbacks": [t]})
    (rec,) = t.records()
    return rec


def test_reasoning_and_cache_from_response_metadata_counted_once() -> None:
    # deepseek-reasoner at DeepSeek: cache hits as `prompt_cache_hit_tokens`, reasoning in
    # completion_tokens_details, in response_metadata only.
    raw = {
        "prompt_tokens": 1_000,
        "completion_tokens": 300,
        "total_tokens": 1_300,
        "prompt_cache_hit_tokens": 600,
        "prompt_cache_miss_tokens": 400,
        "completion_tokens_details": {"reasoning_tokens": 200},
    }
    rec = run(
        RawUsageChat(
            model="deepseek-reasoner",
            provider="deepseek",
            usage={"input_tokens": 1_000, "output_tokens": 300, "total_tokens": 1_300},
            raw=raw,
            raw_in="response_metadata",
        )
    )
    assert (rec["cache_read_tokens"], rec["reasoning_tokens"]) == (600, 200)
    assert rec["usage_notes"] == (
        "cache_read_tokens,reasoning_tokens from response_metadata.token_usage"
    )
    # Counted once: the totals are the provider's, not raised by the details.
    assert (rec["input_tokens"], rec["output_tokens"]) == (1_000, 300)


def test_details_usage_metadata_has_are_never_replaced() -> None:
    raw = {
        "prompt_tokens": 1_000,
        "completion_tokens": 10,
        "prompt_tokens_details": {"cached_tokens": 900},
    }
    usage = {
        "input_tokens": 1_000,
        "output_tokens": 10,
        "total_tokens": 1_010,
        "input_token_details": {"cache_read": 500},
    }
    rec = run(RawUsageChat(model="gpt-4o", usage=usage, raw=raw))
    assert rec["cache_read_tokens"] == 500
    assert rec["usage_notes"] is None


def test_raw_usage_of_another_count_is_not_mixed_in() -> None:
    # The raw usage counts other tokens than usage_metadata (another convention, or a whole
    # batch): none of its details are taken.
    raw = {
        "prompt_tokens": 4_000,
        "completion_tokens": 10,
        "prompt_tokens_details": {"cached_tokens": 3_000},
    }
    usage = {"input_tokens": 1_000, "output_tokens": 10, "total_tokens": 1_010}
    rec = run(RawUsageChat(model="gpt-4o", usage=usage, raw=raw))
    assert rec["cache_read_tokens"] == 0 and rec["usage_notes"] is None


def test_moonshot_top_level_cached_tokens() -> None:
    raw = {
        "prompt_tokens": 2_000,
        "completion_tokens": 100,
        "total_tokens": 2_100,
        "cached_tokens": 1_500,
    }
    usage = {"input_tokens": 2_000, "output_tokens": 100, "total_tokens": 2_100}
    rec = run(RawUsageChat(model="gpt-4o", usage=usage, raw=raw))
    assert rec["cache_read_tokens"] == 1_500
    assert rec["usage_notes"] == "cache_read_tokens from llm_output.token_usage"
