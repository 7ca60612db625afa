"""The real LangChain classes of Fireworks (langchain-fireworks' `ChatFireworks`), Zhipu
(langchain-community's `ChatZhipuAI`) and Moonshot (langchain-community's `MoonshotChat`),
each driven through its own code against the local fake provider (`fake_provider.py`, an HTTP
server on 127.0.0.1 speaking the OpenAI-compatible chat-completion JSON these platforms all
document), invoked through LangChain with a tracker. Expected costs are written from each
host's published prices as the catalog carries them.

langchain-community's `ChatTongyi` (the `dashscope` SDK) and `QianfanChatEndpoint` (the
`qianfan` SDK and its OAuth token step) are driven through their SDKs in
`test_provider_sdks.py`."""

from __future__ import annotations

from decimal import Decimal

import openai
import pytest
from fake_provider import FakeProvider, openai_usage
from langchain_community.chat_models import ChatZhipuAI, MoonshotChat
from langchain_fireworks import ChatFireworks
from llmledger import CostTracker

M = Decimal(1_000_000)


def test_chat_fireworks_cached_tokens_at_fireworks_documented_discount(
    fake_provider: FakeProvider,
) -> None:
    # Fireworks reports OpenAI's usage shape, cached tokens in prompt_tokens_details.
    fake_provider.set_openai(usage=openai_usage(10_000, 1_000, cached_tokens=8_000))
    llm = ChatFireworks(
        model="accounts/fireworks/models/deepseek-v3p1",
        api_key="fw-test",
        # The Fireworks SDK adds /v1/chat/completions to its base (api.fireworks.ai/inference).
        base_url=fake_provider.base_url,
        max_retries=0,
    )
    t = CostTracker()
    llm.invoke("hi", config={"callbacks": [t]})
    assert fake_provider.request_count == 1
    (rec,) = t.records()
    assert rec["provider"] == "fireworks"
    assert rec["price_entry"] == "fireworks/deepseek-v3p1"
    assert (rec["input_tokens"], rec["cache_read_tokens"], rec["output_tokens"]) == (
        10_000,
        8_000,
        1_000,
    )
    # LiteLLM 1.109.1's fireworks deepseek-v3p1: $0.56 input, $1.68 output per 1M; no cached
    # price there, so Fireworks' documented default (cached tokens at 50% of the input price,
    # docs.fireworks.ai/guides/prompt-caching) applies, and the record says so.
    want = (2_000 * Decimal("0.56") + 8_000 * Decimal("0.28") + 1_000 * Decimal("1.68")) / M
    assert rec["cost"] == want
    assert rec["price_notes"] is not None and "50%" in rec["price_notes"]


def test_chat_fireworks_streamed_usage(fake_provider: FakeProvider) -> None:
    fake_provider.set_openai(usage=openai_usage(1_000, 200))
    llm = ChatFireworks(
        model="accounts/fireworks/models/deepseek-v3p1",
        api_key="fw-test",
        # The Fireworks SDK adds /v1/chat/completions to its base (api.fireworks.ai/inference).
        base_url=fake_provider.base_url,
        max_retries=0,
        stream_usage=True,
    )
    t = CostTracker()
    text = "".join(str(c.content) for c in llm.stream("hi", config={"callbacks": [t]}))
    assert text
    (rec,) = t.records()
    assert rec["usage_source"] == "provider"
    assert (rec["input_tokens"], rec["output_tokens"]) == (1_000, 200)
    assert rec["cost"] == (1_000 * Decimal("0.56") + 200 * Decimal("1.68")) / M


def test_chat_zhipuai_glm_4_plus_with_cached_tokens(fake_provider: FakeProvider) -> None:
    # bigmodel.cn's chat-completion usage: prompt_tokens (cache hits included),
    # prompt_tokens_details.cached_tokens, completion_tokens.
    fake_provider.set_openai(
        model="glm-4-plus", usage=openai_usage(10_000, 1_000, cached_tokens=4_000)
    )
    llm = ChatZhipuAI(
        model="glm-4-plus",
        # ChatZhipuAI signs "<id>.<secret>" keys into a JWT (HS256: a 32-byte secret at least).
        api_key="test-id." + "s" * 32,
        api_base=fake_provider.openai_base_url + "/chat/completions",
    )
    t = CostTracker()
    llm.invoke("你好", config={"callbacks": [t]})
    assert fake_provider.request_count == 1
    (rec,) = t.records()
    assert rec["provider"] == "zhipuai"
    assert rec["price_entry"] == "zhipuai/glm-4-plus"
    assert (rec["input_tokens"], rec["cache_read_tokens"], rec["output_tokens"]) == (
        10_000,
        4_000,
        1_000,
    )
    # genai-prices 0.2.3's zhipuai glm-4-plus (its USD conversion of bigmodel.cn's CNY
    # price): $0.69 input, $0.345 cache hit, $0.69 output per 1M.
    want = (6_000 * Decimal("0.69") + 4_000 * Decimal("0.345") + 1_000 * Decimal("0.69")) / M
    assert rec["cost"] == want
    assert rec["price_notes"] is None


# The class's own code (langchain-community's legacy ChatOpenAI) calls pydantic's `.dict()`.
@pytest.mark.filterwarnings("ignore:The `dict` method is deprecated:DeprecationWarning")
def test_moonshot_chat_kimi_k2_with_cached_tokens(fake_provider: FakeProvider) -> None:
    # Moonshot's chat-completion usage: prompt_tokens (cache hits included) and
    # cached_tokens, OpenAI-shaped.
    fake_provider.set_openai(
        model="kimi-k2-0905-preview", usage=openai_usage(10_000, 1_000, cached_tokens=8_000)
    )
    # MoonshotChat (langchain-community 0.4.2) builds its OpenAI client from
    # MOONSHOT_SERVICE_URL_BASE and ignores a `base_url` argument, so the client (the
    # openai SDK, as the class itself would make it) is handed in, pointed at the fake.
    with openai.OpenAI(api_key="sk-test", base_url=fake_provider.openai_base_url) as client:
        llm = MoonshotChat(
            model="kimi-k2-0905-preview",
            api_key="sk-test",
            client=client.chat.completions,
            max_retries=0,
        )
        t = CostTracker()
        llm.invoke("你好", config={"callbacks": [t]})
    assert fake_provider.request_count == 1
    (rec,) = t.records()
    assert rec["provider"] == "moonshot"
    assert rec["price_entry"] == "moonshot/kimi-k2-0905-preview"
    assert (rec["input_tokens"], rec["cache_read_tokens"], rec["output_tokens"]) == (
        10_000,
        8_000,
        1_000,
    )
    # platform.kimi.ai (genai-prices 0.2.3): $0.60 input, $0.15 cache hit, $2.50 output per 1M.
    want = (2_000 * Decimal("0.6") + 8_000 * Decimal("0.15") + 1_000 * Decimal("2.5")) / M
    assert rec["cost"] == want == Decimal("0.0049")
