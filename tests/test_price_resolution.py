"""`price()` and `cost()` answer exactly as a tracked call is priced, with or without
`ls_provider`; `llmledger prices MODEL` shows the same model at other hosts."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from langchain_core.language_models import LangSmithParams
from langchain_core.outputs import ChatResult
from llmledger import CostTracker, cost, price
from llmledger._core import price_hosts
from llmledger.cli import main
from llmledger.testing import UsageFakeChatModel

USAGE = {"input_tokens": 10_000, "output_tokens": 2_000, "total_tokens": 12_000}

NAMES = [
    "claude-3-opus",
    "claude-3-opus-20240229",
    "gpt-4o",
    "gpt-4o-2024-08-06",
    "llama-3.1-8b-instant",
    "anthropic.claude-3-opus-20240229-v1:0",
    "gemini-2.5-pro",
    "gpt-35-turbo",
    "acme-unknown-7b",
]
PROVIDERS = [None, "anthropic", "openai", "google_vertexai", "amazon_bedrock", "groq", "azure"]


class Fake(UsageFakeChatModel):
    """A chat model whose `ls_provider` is `provider`, or absent when it is None."""

    provider: str | None = None  # type: ignore[assignment]
    tier: str | None = None

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(ls_model_name=self.model, ls_model_type="chat")
        if self.provider is not None:
            params["ls_provider"] = self.provider
        return params

    def _generate(self, *args: Any, **kwargs: Any) -> ChatResult:
        result = super()._generate(*args, **kwargs)
        if self.tier is not None:
            result.generations[0].message.response_metadata["service_tier"] = self.tier
        return result


@pytest.mark.parametrize("provider", PROVIDERS)
def test_price_and_cost_resolve_as_a_call_does(provider: str | None) -> None:
    t = CostTracker()
    for name in NAMES:
        Fake(model=name, provider=provider, usage=USAGE).invoke("x", config={"callbacks": [t]})
    for name, rec in zip(NAMES, t.records(), strict=True):
        entry = price(name, provider)
        assert rec["price_entry"] == (entry["key"] if entry else None), (name, provider)
        assert rec["cost"] == cost(name, 10_000, 2_000, provider=provider), (name, provider)
    assert t.unpriced_calls >= 1  # acme-unknown-7b everywhere


def test_claude_3_opus_without_and_with_anthropic() -> None:
    # Only hosts list the bare name: without ls_provider it is the first host's entry ...
    assert price("claude-3-opus")["key"] == "vertex/claude-3-opus"  # type: ignore[index]
    # ... and a ChatAnthropic call of it (ls_provider="anthropic") is unpriced, as price says.
    assert price("claude-3-opus", "anthropic") is None
    assert cost("claude-3-opus", 1, 1, provider="anthropic") is None
    keys = [e["key"] for e in price_hosts("claude-3-opus")]
    assert keys[0] == "vertex/claude-3-opus"
    assert set(keys) == {"vertex/claude-3-opus", "openrouter/claude-3-opus"}
    assert [e["key"] for e in price_hosts("gpt-4o")][:1] == ["openai/gpt-4o"]
    assert "azure/gpt-4o" in [e["key"] for e in price_hosts("gpt-4o")]
    assert price_hosts("acme-unknown-7b") == []


def test_service_tier_is_priced_the_same_way(caplog: pytest.LogCaptureFixture) -> None:
    """A tier that is not a catalog variant (OpenAI's `scale`, `default`) is standard prices
    for a call; `cost()` used to warn that the entry has no such prices."""
    t = CostTracker()
    with caplog.at_level(logging.WARNING, logger="llmledger"):
        for tier in ["scale", "default", "priority", "flex"]:
            Fake(model="gpt-5", provider="openai", usage=USAGE, tier=tier).invoke(
                "x", config={"callbacks": [t]}
            )
            got = cost("gpt-5", 10_000, 2_000, provider="openai", service_tier=tier)
            assert got == t.records()[-1]["cost"], tier
    assert cost("gpt-5", 10_000, 2_000, service_tier="scale") == cost("gpt-5", 10_000, 2_000)
    assert not [r for r in caplog.records if "prices in the catalog" in r.getMessage()]


def test_cli_prices_shows_other_hosts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prices", "claude-3-opus"]) == 0
    out = capsys.readouterr().out
    assert "'claude-3-opus' at each host" in out
    lines = [x.split() for x in out.splitlines()]
    assert ["(no", "ls_provider)", "vertex/claude-3-opus", "15", "75"] in lines
    assert ["openrouter", "openrouter/claude-3-opus", "15", "75"] in lines
    assert "else no price: its calls are unpriced" in out
