"""Name matching against the bundled catalog: every id form LangChain and the providers
report resolves to the entry of the host that bills it; near-misses resolve to nothing."""

from __future__ import annotations

from decimal import Decimal

import llmledger
import pytest

CASES = [
    # Bedrock: model ids, regional / global inference profiles, version suffixes, prefixes.
    (
        "anthropic.claude-3-5-sonnet-20241022-v2:0",
        None,
        "bedrock/anthropic.claude-3-5-sonnet-20241022-v2:0",
    ),
    (
        "us.anthropic.claude-3-5-sonnet-20241022-v2:0",
        "amazon_bedrock",
        "bedrock/us.anthropic.claude-3-5-sonnet-20241022-v2:0",
    ),
    (
        "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "amazon_bedrock",
        "bedrock/global.anthropic.claude-sonnet-4-5-20250929-v1:0",
    ),
    (
        "eu.anthropic.claude-sonnet-4-5-20250929-v1:0",
        None,
        "bedrock/eu.anthropic.claude-sonnet-4-5-20250929-v1:0",
    ),
    (
        "bedrock/us.anthropic.claude-3-5-haiku-20241022-v1:0",
        None,
        "bedrock/us.anthropic.claude-3-5-haiku-20241022-v1:0",
    ),
    (
        "us.meta.llama3-1-70b-instruct-v1:0",
        "amazon_bedrock",
        "bedrock/us.meta.llama3-1-70b-instruct-v1:0",
    ),
    ("amazon.nova-pro-v1:0", None, "bedrock/amazon.nova-pro-v1:0"),
    ("us.amazon.nova-pro-v1:0", "bedrock_converse", "bedrock/us.amazon.nova-pro-v1:0"),
    ("openai.gpt-oss-120b-1:0", "amazon_bedrock", "bedrock/openai.gpt-oss-120b-1:0"),
    ("amazon.titan-embed-text-v2:0", "amazon_bedrock", "bedrock/amazon.titan-embed-text-v2:0"),
    # Vertex AI: @ snapshots and @default, Model Garden paths, Gemini on Vertex vs the Gemini API.
    ("claude-sonnet-4-5@20250929", "google_anthropic_vertex", "vertex/claude-sonnet-4-5@20250929"),
    ("claude-opus-4-6@default", "google_vertexai", "vertex/claude-opus-4-6@default"),
    ("vertex_ai/claude-3-5-haiku@20241022", None, "vertex/claude-3-5-haiku@20241022"),
    (
        "meta/llama-3.1-405b-instruct-maas",
        "google_vertexai",
        "vertex/meta/llama-3.1-405b-instruct-maas",
    ),
    ("gemini-2.5-pro", "google_vertexai", "vertex/gemini-2.5-pro"),
    ("gemini-2.5-pro", "google_genai", "google/gemini-2.5-pro"),
    ("models/gemini-2.5-flash", "google_genai", "google/gemini-2.5-flash"),
    # Azure deployment names and Azure's own prices.
    ("gpt-35-turbo", None, "azure/gpt-35-turbo"),
    ("gpt-35-turbo-0125", None, "azure/gpt-35-turbo"),
    ("gpt-4o", "azure", "azure/gpt-4o"),
    ("gpt-4o", "azure_openai", "azure/gpt-4o"),
    # OpenAI fine-tunes, dated snapshots.
    ("ft:gpt-4o-mini-2024-07-18:acme::abc123", None, "openai/ft:gpt-4o-mini-2024-07-18"),
    ("ft:gpt-4.1-2025-04-14:acme:bot:xyz", "openai", "openai/ft:gpt-4.1-2025-04-14"),
    ("gpt-4o-2024-08-06", "openai", "openai/gpt-4o"),
    ("gpt-4.1-2025-04-14", None, "openai/gpt-4.1"),
    ("o3-2025-04-16", None, "openai/o3"),
    ("claude-3-5-haiku-20241022", "anthropic", "anthropic/claude-3-5-haiku-20241022"),
    ("claude-sonnet-4-5-20250929", "anthropic", "anthropic/claude-sonnet-4-5"),
    # Hosts of open models.
    ("llama-3.3-70b-versatile", "groq", "groq/llama-3.3-70b-versatile"),
    ("groq/llama-3.1-8b-instant", None, "groq/llama-3.1-8b-instant"),
    ("openai/gpt-oss-120b", "groq", "groq/openai/gpt-oss-120b"),
    (
        "meta-llama/Llama-3.3-70B-Instruct-Turbo",
        "together",
        "together/meta-llama/llama-3.3-70b-instruct-turbo",
    ),
    (
        "together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo",
        None,
        "together/meta-llama/llama-3.3-70b-instruct-turbo",
    ),
    (
        "accounts/fireworks/models/llama-v3p1-8b-instruct",
        "fireworks",
        "fireworks/llama-v3p1-8b-instruct",
    ),
    ("fireworks_ai/accounts/fireworks/models/gpt-oss-120b", None, "fireworks/gpt-oss-120b"),
    (
        "meta-llama/llama-3.1-8b-instruct",
        "openrouter",
        "openrouter/meta-llama/llama-3.1-8b-instruct",
    ),
    (
        "openrouter/meta-llama/llama-3.1-8b-instruct",
        None,
        "openrouter/meta-llama/llama-3.1-8b-instruct",
    ),
    # ChatOpenAI against OpenRouter reports ls_provider "openai" and OpenRouter's names.
    ("anthropic/claude-sonnet-4.5", "openai", "openrouter/anthropic/claude-sonnet-4.5"),
    # Model makers' own APIs.
    ("mistral-large-latest", "mistralai", "mistral/mistral-large"),
    ("mistral-small-2503", "mistralai", "mistral/mistral-small"),
    ("deepseek-chat", "deepseek", "deepseek/deepseek-chat"),
    ("grok-4", "xai", "xai/grok-4-0709"),
    ("command-a-03-2025", "cohere", "cohere/command-a"),
    ("embed-v4.0", "cohere", "cohere/embed-v4.0"),
    ("text-embedding-3-small", None, "openai/text-embedding-3-small"),
    ("gemini-embedding-001", "google_genai", "google/gemini-embedding-001"),
]


@pytest.mark.parametrize(("model", "provider", "key"), CASES)
def test_id_forms_resolve_to_the_billing_hosts_entry(
    model: str, provider: str | None, key: str
) -> None:
    entry = llmledger.price(model, provider)
    assert entry is not None, model
    assert entry["key"] == key


@pytest.mark.parametrize(
    ("model", "provider"),
    [
        ("gpt-4o-minix", None),
        ("gpt4o", None),
        ("gpt-4o-mini-x", "openai"),
        ("llama-3.3-70b-versatilex", "groq"),
        ("grok-4x", None),
        ("deepseek-chatx", "deepseek"),
        ("accounts/fireworks/models/nope", None),
        ("anthropic.claude-3-5-sonnetx-v1:0", "amazon_bedrock"),
        ("meta-llama/llama-3.1-8b-instructx", "openrouter"),
        ("claude-opus-4-6@defaultx", "google_vertexai"),
        # A host that does not list a model never borrows another host's price.
        ("meta-llama/llama-3.1-8b-instruct", "groq"),
        ("llama-3.3-70b-versatile", "together"),
    ],
)
def test_near_misses_and_other_hosts_resolve_to_nothing(model: str, provider: str | None) -> None:
    assert llmledger.price(model, provider) is None
    assert llmledger.cost(model, input_tokens=100, output_tokens=10, provider=provider) is None


def test_fine_tune_is_priced_at_the_fine_tune_price() -> None:
    kw = dict(input_tokens=1_000_000, output_tokens=1_000_000)
    ft = llmledger.cost("ft:gpt-4o-mini-2024-07-18:acme:bot:abc", **kw)
    base = llmledger.cost("gpt-4o-mini-2024-07-18", **kw)
    assert ft == Decimal("1.5") and base == Decimal("0.75")


def test_bedrock_regional_profile_has_its_own_price() -> None:
    kw = dict(input_tokens=1_000_000, output_tokens=1_000_000)
    glob = llmledger.cost("global.anthropic.claude-sonnet-4-5-20250929-v1:0", **kw)
    regional = llmledger.cost("us.anthropic.claude-sonnet-4-5-20250929-v1:0", **kw)
    assert glob is not None and regional is not None and regional > glob


def test_catalog_coverage() -> None:
    entries = llmledger.catalog_entries()
    assert len(entries) >= 2000
    by_provider: dict[str, int] = {}
    for e in entries:
        by_provider[e["provider"]] = by_provider.get(e["provider"], 0) + 1
    for p in [
        "openai",
        "anthropic",
        "google",
        "vertex",
        "bedrock",
        "azure",
        "mistral",
        "deepseek",
        "xai",
        "cohere",
        "groq",
        "together",
        "fireworks",
        "openrouter",
    ]:
        assert by_provider.get(p, 0) >= 10, (p, by_provider)
    sources = {e["source"].split()[0] for e in entries if not e["source"].startswith("http")}
    assert sources == {"genai-prices", "litellm"}


@pytest.mark.parametrize(
    "name", ["gemini-2.5-flash-preview-05-20", "gemini-2.5-flash-preview-04-17"]
)
def test_preview_snapshots_genai_prices_lists_are_priced(name: str) -> None:
    # genai-prices matches these with `contains` clauses; the full names are exact aliases here.
    entry = llmledger.price(name, "google_genai")
    assert entry is not None and entry["key"] == "google/gemini-2.5-flash-preview"
    # Not a fuzzy match: a longer or other name is still unknown.
    assert llmledger.price(name + "x", "google_genai") is None
