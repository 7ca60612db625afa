"""A component priced by a fallback (cached tokens at the input price where the entry has no
cache-read price, ...) is named on the record (`price_notes`) and counted in the totals
(`fallback_priced_calls`); Fireworks' documented cached-token default applies where the
catalog lacks the model's own cached price.

The usage shape is langchain-fireworks 1.7.1's `_usage_to_metadata`: `input_token_details`
`{"cache_read": prompt_tokens_details.cached_tokens}` (its chat model needs the fireworks-ai
SDK, too heavy to install for this test)."""

from __future__ import annotations

from decimal import Decimal

from llmledger import CostTracker, cost
from llmledger.testing import UsageFakeChatModel

M = Decimal(1_000_000)
CACHED = {
    "input_tokens": 10_000,
    "output_tokens": 1_000,
    "total_tokens": 11_000,
    "input_token_details": {"cache_read": 8_000},
}


def test_fireworks_cached_tokens_at_its_documented_default_and_flagged() -> None:
    t = CostTracker()
    UsageFakeChatModel(
        model="accounts/fireworks/models/kimi-k2-instruct-0905",
        provider="fireworks",
        usage=CACHED,
    ).invoke("x", config={"callbacks": [t]})
    (rec,) = t.records()
    assert rec["price_entry"] == "fireworks/kimi-k2-instruct-0905"
    # Fireworks: $0.60 / 1M input, $2.50 / 1M output; cached prompt tokens at the default
    # 50% discount (docs.fireworks.ai/guides/prompt-caching): $0.30 / 1M.
    want = (2_000 * Decimal("0.6") + 8_000 * Decimal("0.3") + 1_000 * Decimal("2.5")) / M
    assert rec["cost"] == want == Decimal("0.0061")
    assert "Fireworks' documented default" in rec["price_notes"]
    assert t.totals()["fallback_priced_calls"] == 1
    # cost() prices it the same way.
    assert (
        cost(
            "accounts/fireworks/models/kimi-k2-instruct-0905",
            input_tokens=10_000,
            cache_read_tokens=8_000,
            output_tokens=1_000,
            provider="fireworks",
        )
        == want
    )


def test_cached_tokens_at_the_input_price_are_flagged() -> None:
    t = CostTracker(prices={"my-model": {"input": "1", "output": "2"}})
    UsageFakeChatModel(model="my-model", provider="acme", usage=CACHED).invoke(
        "x", config={"callbacks": [t]}
    )
    (rec,) = t.records()
    assert rec["cost"] == (10_000 * 1 + 1_000 * 2) / M
    assert rec["price_notes"] == "cache_read_tokens at the input price: no cache_read price"
    assert t.totals()["fallback_priced_calls"] == 1
    assert "Priced by a Fallback" in str(t)


def test_a_call_priced_by_its_own_prices_has_no_notes() -> None:
    t = CostTracker()
    UsageFakeChatModel(model="gpt-4o", provider="openai", usage=CACHED).invoke(
        "x", config={"callbacks": [t]}
    )
    (rec,) = t.records()
    assert rec["price_notes"] is None
    assert t.totals()["fallback_priced_calls"] == 0
