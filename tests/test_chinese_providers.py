"""The platforms Chinese developers call: DeepSeek (the real `ChatDeepSeek`, langchain-deepseek,
its HTTP answered by an `httpx.MockTransport` with DeepSeek's documented chat-completion JSON),
priced by the call's own UTC time where its prices depend on the time of day; and the
`ls_provider` names of the other platforms' LangChain integrations (langchain-community's
`ChatTongyi` reports `tongyi`, `ChatZhipuAI` `zhipuai`, `MoonshotChat` `moonshot`,
`MiniMaxChat` `minimax`, `QianfanChatEndpoint` `qianfanchatendpoint`), each finding its own
host's entries and never another host's price."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import httpx
import pytest
from langchain_deepseek import ChatDeepSeek
from llmledger import CostTracker, price
from llmledger.testing import UsageFakeChatModel

M = Decimal(1_000_000)


def one_call(model: str, ls_provider: str, usage: dict[str, Any]) -> dict[str, Any]:
    """The record of one call of `model` at `ls_provider` that reports `usage`."""
    t = CostTracker()
    UsageFakeChatModel(model=model, provider=ls_provider, usage=usage).invoke(
        "x", config={"callbacks": [t]}
    )
    (rec,) = t.records()
    return rec


# DeepSeek's usage object (api-docs.deepseek.com, "Create Chat Completion"): cache hits are
# prompt_cache_hit_tokens (also prompt_tokens_details.cached_tokens), both parts of
# prompt_tokens.
DEEPSEEK_USAGE = {
    "prompt_tokens": 10_000,
    "completion_tokens": 1_000,
    "total_tokens": 11_000,
    "prompt_tokens_details": {"cached_tokens": 6_000},
    "prompt_cache_hit_tokens": 6_000,
    "prompt_cache_miss_tokens": 4_000,
}


def chat_deepseek() -> ChatDeepSeek:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path.endswith("/chat/completions")
        return httpx.Response(
            200,
            json={
                "id": "930c60df-bf64-41c9-a88e-3ec75f81e00e",
                "object": "chat.completion",
                "created": 1764000000,
                "model": "deepseek-chat",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "你好"},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": DEEPSEEK_USAGE,
                "system_fingerprint": "fp_ffc7281d48_prod0820_fp8_kvcache",
            },
        )

    return ChatDeepSeek(
        model="deepseek-chat",
        api_key="sk-test",
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        max_retries=0,
    )


@pytest.mark.parametrize(
    ("hour", "minute", "prices"),
    [
        # deepseek-chat (genai-prices 0.2.3, from DeepSeek's pricing page): $0.27 input,
        # $0.07 cache hit, $1.10 output per 1M from 00:30 to 16:30 UTC; half that
        # ($0.135 / $0.035 / $0.55) in the off-peak hours 16:30 to 00:30 UTC.
        (12, 0, ("0.27", "0.07", "1.1")),
        (16, 29, ("0.27", "0.07", "1.1")),
        (16, 30, ("0.135", "0.035", "0.55")),
        (0, 15, ("0.135", "0.035", "0.55")),
    ],
)
def test_chat_deepseek_priced_by_the_calls_utc_time(
    hour: int, minute: int, prices: tuple[str, str, str]
) -> None:
    at = dt.datetime(2026, 11, 30, hour, minute, tzinfo=dt.UTC)
    t = CostTracker(clock=lambda: at)
    chat_deepseek().invoke("hi", config={"callbacks": [t]})
    (rec,) = t.records()
    assert rec["provider"] == "deepseek"
    assert rec["price_entry"] == "deepseek/deepseek-chat"
    assert (rec["input_tokens"], rec["cache_read_tokens"]) == (10_000, 6_000)
    inp, cached, out = (Decimal(p) for p in prices)
    assert rec["cost"] == (4_000 * inp + 6_000 * cached + 1_000 * out) / M
    assert rec["price_notes"] is None


@pytest.mark.parametrize(
    ("ls_provider", "model", "key"),
    [
        ("moonshot", "kimi-k2-0905-preview", "moonshot/kimi-k2-0905-preview"),
        ("moonshot", "moonshot-v1-8k", "moonshot/moonshot-v1-8k"),
        ("zhipuai", "glm-4-plus", "zhipuai/glm-4-plus"),
        ("zai", "glm-4.6", "zai/glm-4.6"),
        ("tongyi", "qwen-plus", "dashscope/qwen-plus"),
        ("minimax", "minimax-m1", "minimax/minimax-m1"),
        ("deepseek", "deepseek-reasoner", "deepseek/deepseek-reasoner"),
    ],
)
def test_each_platforms_ls_provider_finds_its_own_entry(
    ls_provider: str, model: str, key: str
) -> None:
    entry = price(model, ls_provider)
    assert entry is not None and entry["key"] == key
    usage: dict[str, Any] = {"input_tokens": 1_000, "output_tokens": 100, "total_tokens": 1_100}
    # At noon UTC: no time-of-day window (DeepSeek's off-peak hours) is in force.
    noon = dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC)
    t = CostTracker(clock=lambda: noon)
    UsageFakeChatModel(model=model, provider=ls_provider, usage=usage).invoke(
        "x", config={"callbacks": [t]}
    )
    (rec,) = t.records()
    want = (1_000 * entry["prices"]["input"] + 100 * entry["prices"]["output"]) / M
    assert (rec["price_entry"], rec["cost"]) == (key, want)


@pytest.mark.parametrize(
    ("ls_provider", "model"),
    [
        # Z.ai's GLM-4.6 is not Zhipu's (bigmodel.cn bills its own, in CNY) ...
        ("zhipuai", "glm-4.6"),
        # ... and a platform the catalog has no entry of lends none to another host.
        ("qianfanchatendpoint", "ernie-4.0-8k"),
        ("volcenginemaas", "doubao-pro-32k"),
        ("tongyi", "deepseek-r1"),
    ],
)
def test_unlisted_models_stay_unknown(ls_provider: str, model: str) -> None:
    assert price(model, ls_provider) is None


@pytest.mark.parametrize(
    ("model", "ls_provider", "tokens", "prices", "want"),
    [
        # platform.kimi.ai pricing (genai-prices 0.2.3): kimi-k2-0905-preview $0.60 input,
        # $0.15 cache hit, $2.50 output per 1M.
        ("kimi-k2-0905-preview", "moonshot", (10_000, 8_000), ("0.6", "0.15", "2.5"), "0.0049"),
        # qwen3-max: 40,000 input tokens are its 32K-128K tier ($2.4 input, $12 output), the
        # 30,000 implicit-cache hits at 20% of that tier's input price (Model Studio).
        ("qwen3-max", "tongyi", (40_000, 30_000), ("2.4", "0.48", "12"), "0.0504"),
    ],
)
def test_cached_tokens_at_the_published_price(
    model: str,
    ls_provider: str,
    tokens: tuple[int, int],
    prices: tuple[str, str, str],
    want: str,
) -> None:
    inp, cached = tokens
    usage = {
        "input_tokens": inp,
        "output_tokens": 1_000,
        "total_tokens": inp + 1_000,
        "input_token_details": {"cache_read": cached},
    }
    rec = one_call(model, ls_provider, usage)
    p_in, p_cached, p_out = map(Decimal, prices)
    expected = ((inp - cached) * p_in + cached * p_cached + 1_000 * p_out) / M
    assert rec["cost"] == expected == Decimal(want)


@pytest.mark.parametrize(
    ("input_tokens", "prices"),
    [
        # Model Studio (international) qwen3-max, via LiteLLM 1.109.1's tiered_pricing: the
        # request's input tokens choose one tier for all its tokens, 0 < n <= 32K: $1.2 input
        # / $6 output per 1M; 32K < n <= 128K: $2.4 / $12; above 128K: $3 / $15.
        (10_000, ("1.2", "6")),
        (32_000, ("1.2", "6")),
        (32_001, ("2.4", "12")),
        (128_000, ("2.4", "12")),
        (200_000, ("3", "15")),
    ],
)
def test_qwen3_max_priced_by_the_requests_input_tier(
    input_tokens: int, prices: tuple[str, str]
) -> None:
    usage = {
        "input_tokens": input_tokens,
        "output_tokens": 1_000,
        "total_tokens": input_tokens + 1_000,
    }
    rec = one_call("qwen3-max", "tongyi", usage)
    inp, out = map(Decimal, prices)
    assert rec["price_entry"] == "dashscope/qwen3-max"
    assert rec["cost"] == (input_tokens * inp + 1_000 * out) / M
    assert rec["price_notes"] is None


class TongyiShaped(UsageFakeChatModel):
    """What langchain-community 0.4.2's `ChatTongyi` hands LangChain: no `usage_metadata`,
    DashScope's native usage in `generation_info["token_usage"]`, `llm_output` with the model
    name only (`_chat_generation_from_qwen_resp`). The real class needs the dashscope SDK."""

    def _generate(self, *args: Any, **kwargs: Any) -> Any:
        from langchain_core.messages import AIMessage
        from langchain_core.outputs import ChatGeneration, ChatResult

        gen = ChatGeneration(
            message=AIMessage(content="你好"),
            generation_info={
                "finish_reason": "stop",
                "request_id": "67aec2b5-72bf-96a4-ae29-5bfebd2e7305",
                "token_usage": {
                    "input_tokens": 10_000,
                    "output_tokens": 1_000,
                    "total_tokens": 11_000,
                    "prompt_tokens_details": {"cached_tokens": 8_000},
                },
            },
        )
        return ChatResult(generations=[gen], llm_output={"model_name": self.model})


def assert_qwen_plus_cached(rec: dict[str, Any]) -> None:
    """A qwen-plus call of 10,000 input tokens (8,000 cached) and 1,000 output, as
    DashScope reports it, priced by the catalog (also used by test_provider_sdks)."""
    assert rec["price_entry"] == "dashscope/qwen-plus"
    assert (rec["input_tokens"], rec["cache_read_tokens"], rec["output_tokens"]) == (
        10_000,
        8_000,
        1_000,
    )
    # LiteLLM 1.109.1's DashScope (international) qwen-plus: $0.40 / 1M input, $1.20 / 1M
    # output, no cached price in the catalog: cached tokens at Model Studio's documented
    # implicit-cache price, 20% of the input price (context-cache page, checked 2026-12-03),
    # flagged.
    want = (2_000 * Decimal("0.4") + 8_000 * Decimal("0.08") + 1_000 * Decimal("1.2")) / M
    assert rec["cost"] == want == Decimal("0.00264")
    assert rec["price_notes"].startswith(
        "cache_read_tokens at 20% of the input price: Model Studio's documented implicit-cache"
    )


def test_tongyi_native_usage_with_cached_tokens() -> None:
    t = CostTracker()
    TongyiShaped(model="qwen-plus", provider="tongyi").invoke("x", config={"callbacks": [t]})
    (rec,) = t.records()
    assert_qwen_plus_cached(rec)


def test_chat_qwen_reports_openai_and_finds_dashscope() -> None:
    # langchain-qwq's ChatQwen subclasses BaseChatOpenAI, whose ls_provider is "openai":
    # the maker's (DashScope's) entry is found as for any OpenAI-compatible endpoint.
    entry = price("qwen-plus", "openai")
    assert entry is not None and entry["key"] == "dashscope/qwen-plus"


def test_dashscope_qwen_doc_turbo_at_its_hand_checked_price() -> None:
    # Alibaba Cloud Model Studio's qwen-doc-turbo page (China (Beijing), USD, checked
    # 2026-12-03): $0.087 input, $0.144 output, $0.109 explicit cache creation per 1M. No USD
    # price for implicit cache hits: cached tokens are billed at the input price and flagged.
    entry = price("qwen-doc-turbo", "tongyi")
    assert entry is not None and entry["key"] == "dashscope/qwen-doc-turbo"
    assert entry["source"] == "https://www.alibabacloud.com/help/zh/model-studio/qwen-doc-turbo"
    assert entry["checked"] == "2026-12-03"
    usage = {
        "input_tokens": 10_000,
        "output_tokens": 1_000,
        "total_tokens": 11_000,
        "input_token_details": {"cache_creation": 2_000, "cache_read": 3_000},
    }
    rec = one_call("qwen-doc-turbo", "tongyi", usage)
    # The request created cache, so it used Model Studio's explicit cache: its hits at 10% of
    # the input price (context-cache page, checked 2026-12-03), 0.0087 (the page rounds to
    # $0.009).
    want = (
        5_000 * Decimal("0.087")
        + 2_000 * Decimal("0.109")
        + 3_000 * Decimal("0.0087")
        + 1_000 * Decimal("0.144")
    ) / M
    assert rec["cost"] == want
    assert rec["price_notes"].startswith(
        "cache_read_tokens at 10% of the input price: Model Studio's documented explicit-cache"
    )
