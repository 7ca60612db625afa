"""The price catalog from Python: price(), cost(), overrides, files, LangChain's table."""

from __future__ import annotations

import datetime
import json
import warnings
from decimal import Decimal
from pathlib import Path

import llmledger
import pytest
from llmledger import CostTracker, PriceCatalogError, cost, price


def test_price_shows_entry_and_provenance() -> None:
    e = price("gpt-4o")
    assert e is not None
    assert e["key"] == "openai/gpt-4o"
    assert e["prices"]["input"] == Decimal("2.5") and e["prices"]["output"] == Decimal(10)
    assert e["source"].startswith("https://")
    assert e["checked"] and e["catalog_version"] == llmledger.catalog_version()
    assert price("anthropic:claude-3-5-haiku-20241022")["provider"] == "anthropic"  # type: ignore[index]


@pytest.mark.parametrize(
    "name", ["gpt-4o-minix", "gpt4o", "claude", "gemini", "o3-minix", "gpt-4o-mini-2"]
)
def test_near_misses_are_unknown(name: str) -> None:
    assert price(name) is None
    assert cost(name, input_tokens=10, output_tokens=10) is None


def test_cost_inclusive_convention_and_validation() -> None:
    assert cost("gpt-4o", input_tokens=1_000_000, cache_read_tokens=1_000_000) == Decimal("1.25")
    with pytest.raises(ValueError, match="input_tokens includes cached"):
        cost("gpt-4o", input_tokens=10, cache_read_tokens=20)


def test_date_effective_price_cut() -> None:
    kw = dict(input_tokens=1_000_000, output_tokens=1_000_000)
    assert cost("o3", date=datetime.date(2025, 6, 1), **kw) == Decimal(50)
    assert cost("o3", date=datetime.date(2025, 6, 10), **kw) == Decimal(10)


def test_long_context_tier_is_a_cliff() -> None:
    below = cost("gemini-2.5-pro", input_tokens=200_000, output_tokens=1_000)
    above = cost("gemini-2.5-pro", input_tokens=200_001, output_tokens=1_000)
    assert below is not None and above is not None
    assert above / below > Decimal("1.8")


def test_batch_variant() -> None:
    kw = dict(input_tokens=1_000_000, output_tokens=1_000_000)
    assert cost("claude-3-5-haiku-20241022", service_tier="batch", **kw) * 2 == cost(
        "claude-3-5-haiku-20241022", **kw
    )


def test_fine_tunes_and_azure(tmp_path: Path) -> None:
    ft = price("ft:gpt-4o-mini-2024-07-18:acme:support:abc123")
    assert ft is not None and ft["id"] == "ft:gpt-4o-mini-2024-07-18"
    assert price("gpt-35-turbo")["provider"] == "azure"  # type: ignore[index]
    assert price("gpt-4o", provider="azure_openai") is not None


def test_price_file_json_and_toml(tmp_path: Path) -> None:
    j = tmp_path / "p.json"
    j.write_text(
        json.dumps(
            {
                "models": [
                    {
                        "id": "in-house-7b",
                        "provider": "vllm",
                        "prices": [{"input": "0.01", "output": "0.02"}],
                    }
                ]
            }
        )
    )
    tml = tmp_path / "p.toml"
    tml.write_text('["gpt-4o"]\ninput = "1"\noutput = "1"\n')
    assert cost("in-house-7b", input_tokens=1_000_000, prices=str(j)) == Decimal("0.01")
    assert cost("gpt-4o", input_tokens=1_000_000, output_tokens=1_000_000, prices=tml) == Decimal(2)
    t = CostTracker(prices=tml)
    assert t.catalog_version.endswith("+overrides")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ('{"m": {"input": "x", "output": "1"}}', "'m': 'input' is not a decimal"),
        ('{"m": {"input": "1"}}', "'output' price is required"),
        ('{"m": {"cached": "1", "input": "1", "output": "1"}}', "unknown field 'cached'"),
        ("{", "not valid JSON"),
    ],
)
def test_malformed_price_file_is_rejected_naming_entry_and_field(
    tmp_path: Path, content: str, needle: str
) -> None:
    f = tmp_path / "bad.json"
    f.write_text(content)
    with pytest.raises(PriceCatalogError, match=needle) as ei:
        CostTracker(prices=f)
    assert "bad.json" in str(ei.value)
    with pytest.raises(PriceCatalogError):
        CostTracker(prices={"m": {"input": "nope", "output": "1"}})
    assert issubclass(PriceCatalogError, llmledger.LlmLedgerError)


def test_missing_price_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PriceCatalogError, match="no-such.json"):
        CostTracker(prices=tmp_path / "no-such.json")


def _langchain_table() -> dict[str, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from langchain_community.callbacks.openai_info import MODEL_COST_PER_1K_TOKENS
    return dict(MODEL_COST_PER_1K_TOKENS)


# Deliberate differences from LangChain's table (its number is outdated): model -> reason.
LANGCHAIN_DIFFERENCES = {
    "gpt-3.5-turbo": "the alias points at gpt-3.5-turbo-0125 ($0.50/$1.50) since 2024",
    "gpt-35-turbo": "Azure's alias follows the 0125 model ($0.50/$1.50)",
}


def test_every_langchain_model_is_priced_and_agrees() -> None:
    table = _langchain_table()
    names = {k for k in table if not k.endswith(("-completion", "-cached"))}
    mismatches = []
    for key in sorted(names):
        if key.endswith("-finetuned-legacy"):
            model, provider = "ft:" + key.removesuffix("-finetuned-legacy"), None
        elif key.endswith("-azure-finetuned"):
            model, provider = "ft:" + key.removesuffix("-azure-finetuned"), "azure"
        elif key.endswith("-finetuned"):
            model, provider = "ft:" + key.removesuffix("-finetuned"), None
        else:
            model, provider = key, ("azure" if key.startswith("gpt-35") else None)
        entry = price(model, provider)
        assert entry is not None, f"{key} ({model}) is not in the catalog"
        base = key if key in table else None
        lc_in = Decimal(str(table[base])) * 1000 if base else None
        completion = table.get(key + "-completion")
        lc_out = Decimal(str(completion)) * 1000 if completion is not None else None
        got = entry["prices"]
        if model.split(":")[0] in LANGCHAIN_DIFFERENCES or key in LANGCHAIN_DIFFERENCES:
            continue
        if lc_in is not None and got["input"] != lc_in:
            mismatches.append(f"{key}: input {got['input']} vs LangChain {lc_in}")
        if lc_out is not None and got["output"] != lc_out:
            mismatches.append(f"{key}: output {got['output']} vs LangChain {lc_out}")
    assert not mismatches, "\n".join(mismatches)


def test_bundled_catalog_passes_its_schema_check() -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, str(root / "scripts" / "check_catalog.py")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_price_shows_output_limit_next_to_context_window() -> None:
    e = price("gpt-4o")
    assert e is not None
    assert e["max_output_tokens"] == 16_384
    keys = list(e)
    assert keys.index("max_output_tokens") == keys.index("context_window") + 1
    # An entry the sources give no limit keeps None, not a made-up number.
    embedding = price("text-embedding-3-small")
    assert embedding is not None and embedding["max_output_tokens"] is None


@pytest.mark.parametrize(
    ("model", "provider", "limit"),
    [
        # Hand-checked against the providers' model documentation.
        ("gpt-4o", None, 16_384),
        ("gpt-4o-2024-05-13", None, 4_096),
        ("gpt-4.1", None, 32_768),
        ("o3", None, 100_000),
        ("o4-mini", None, 100_000),
        ("gpt-5", None, 128_000),
        ("gpt-5-pro", None, 272_000),
        ("claude-sonnet-4-20250514", None, 64_000),
        ("claude-opus-4-20250514", None, 32_000),
        ("claude-3-5-haiku-20241022", None, 8_192),
        ("gemini-2.5-pro", "google", 65_536),
        ("gemini-2.5-flash", "google", 65_536),
        ("gemini-2.0-flash", "google", 8_192),
        # Taken from LiteLLM (no hand-checked value): said so in the notes.
        ("gpt-4o-mini", None, 16_384),
    ],
)
def test_bundled_output_limits(model: str, provider: str | None, limit: int) -> None:
    e = price(model, provider)
    assert e is not None, model
    assert e["max_output_tokens"] == limit
    from_litellm = "max_output_tokens is LiteLLM" in (e["notes"] or "")
    assert from_litellm == (model == "gpt-4o-mini")


def test_override_sets_output_limit(tmp_path: Path) -> None:
    short = {"in-house-7b": {"input": "0.1", "output": "0.2", "max_output_tokens": 4096}}
    e = price("in-house-7b", prices=short)
    assert e is not None and e["override"] and e["max_output_tokens"] == 4096
    # An override replaces the bundled entry, limit included.
    t = CostTracker(prices={"gpt-4o": {"input": "1", "output": "1", "max_output_tokens": 1000}})
    entry = t.price("gpt-4o")
    assert entry is not None and entry["max_output_tokens"] == 1000
    plain = price("gpt-4o", prices={"gpt-4o": {"input": "1", "output": "1"}})
    assert plain is not None and plain["max_output_tokens"] is None
    tml = tmp_path / "p.toml"
    tml.write_text('["in-house-7b"]\ninput = "0.1"\noutput = "0.2"\nmax_output_tokens = 2048\n')
    assert price("in-house-7b", prices=tml)["max_output_tokens"] == 2048  # type: ignore[index]


@pytest.mark.parametrize("bad", [0, -1, "4096", 4096.5, True, 2**53, 10**30])
def test_bad_output_limit_is_rejected_naming_entry_and_field(bad: object) -> None:
    with pytest.raises(PriceCatalogError, match=r"'m': 'max_output_tokens' must be a positive"):
        CostTracker(prices={"m": {"input": "1", "output": "1", "max_output_tokens": bad}})
