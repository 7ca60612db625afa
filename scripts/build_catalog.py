#!/usr/bin/env python3
"""Regenerate the bundled price catalog (src/catalog/prices.json) from the maintained datasets.

Sources, in order of precedence (a name priced by an earlier source wins at its provider):
  1. src/catalog/hand_checked.json: entries checked by hand against the provider's own page.
  2. genai-prices (pydantic/genai-prices, MIT), pinned 0.2.3: the installed package's data
     (`genai_prices.data.providers`): ids, prices, long-context tiers, date-effective prices,
     batch / flex / priority variants, context windows.
  3. LiteLLM (BerriAI/litellm, MIT), pinned 1.109.1: its bundled
     `litellm/model_prices_and_context_window_backup.json` (flat per-token fields).
Only facts are taken (model ids, prices, context and output limits); the licenses are in
THIRD_PARTY_NOTICES. llmledger itself never reads these packages nor the network: the file this
script writes is committed and is the source of truth.

Set-up (a scratch venv; none of this is a dependency of llmledger):
    python -m venv /tmp/catalog-venv
    /tmp/catalog-venv/bin/pip install -r scripts/requirements-catalog.txt
    /tmp/catalog-venv/bin/python scripts/build_catalog.py
LiteLLM is large; instead of installing it, `pip download --no-deps litellm==1.109.1` and pass
the wheel: `--litellm litellm-1.109.1-....whl` (or the extracted JSON with --litellm-version).

Output: every entry on one line, sorted by provider rank then id, so a re-run with the same
inputs gives no diff. The script prints every price disagreement above 1% between sources for
the same name at the same provider, then coverage per provider. `--check` exits 1 if the
committed file differs from what would be written.

Mapping into llmledger's schema (docs/catalog.md):
  - provider = the host that bills the call (bedrock, vertex, azure, groq, together, fireworks,
    openrouter, ...), not the model's maker.
  - ids are lower-cased; genai-prices' `equals` match clauses become aliases (its prefix /
    substring / regex clauses are not copied: llmledger never matches fuzzily).
  - a dimension a source does not price is left out (never a made-up 0); a source's explicit 0
    is kept. Entries without an output price are kept only for embedding models (output "0":
    embeddings produce no output tokens); models priced only per second / image / request are
    skipped.
  - dimensions llmledger cannot bill (web searches, per-request fees, image tokens, time-of-day
    discounts) are named in the entry's notes.
  - max_output_tokens (a response's output limit; budgets reserve it when a request sets no
    max_tokens): a hand-checked entry's own value, else LiteLLM's `max_output_tokens` for the
    same provider and id (genai-prices has no such field, so its entries take LiteLLM's; a
    hand-checked entry that takes LiteLLM's says so in its notes). LiteLLM's `max_tokens` is
    never read: older maps used it for the input limit of some models and the output limit of
    others (the pinned map no longer has it). A limit above the entry's context_window (the
    sources disagree, or context_window counts input only) is kept as the source states it:
    lowering it could make a budget reserve too little; the entry's notes say so.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import importlib.util
import json
import re
import sys
import zipfile
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

# The catalog schema's price fields, as the checker validates them (same directory).
from check_catalog import PRICE_FIELDS

ROOT = Path(__file__).resolve().parent.parent
HAND_CHECKED = ROOT / "src" / "catalog" / "hand_checked.json"
OUTPUT = ROOT / "src" / "catalog" / "prices.json"

# The dataset versions this catalog was built from, and the day they were read. Raise both
# together (and re-run) when updating; the script refuses other versions unless told.
GENAI_PRICES_VERSION = "0.2.3"
LITELLM_VERSION = "1.109.1"
CHECKED = "2026-11-23"
CATALOG_VERSION = "2026.12.03"

# Provider order: the first entry of a name is the one used when no provider is known, so the
# model makers come first, then the hosts.
PROVIDER_RANK = [
    "openai",
    "anthropic",
    "google",
    "mistral",
    "deepseek",
    "xai",
    "cohere",
    "dashscope",
    "moonshot",
    "zhipuai",
    "zai",
    "minimax",
    "qianfan",
    "volcengine",
    "azure",
    "bedrock",
    "vertex",
    "groq",
    "together",
    "fireworks",
    "openrouter",
]

GENAI_PROVIDERS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "google": "google",
    "mistral": "mistral",
    "deepseek": "deepseek",
    "x-ai": "xai",
    "cohere": "cohere",
    "azure": "azure",
    "aws": "bedrock",
    "groq": "groq",
    "together": "together",
    "fireworks": "fireworks",
    "openrouter": "openrouter",
    "moonshotai": "moonshot",
    "zhipuai": "zhipuai",
    "zai": "zai",
    "minimax": "minimax",
}

# LiteLLM `litellm_provider` -> (our provider, key prefixes to remove).
LITELLM_PROVIDERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "openai": ("openai", ("openai/",)),
    "text-completion-openai": ("openai", ("openai/", "text-completion-openai/")),
    "anthropic": ("anthropic", ("anthropic/",)),
    "gemini": ("google", ("gemini/",)),
    "vertex_ai": ("vertex", ("vertex_ai/",)),
    "vertex_ai-language-models": ("vertex", ("vertex_ai/",)),
    "vertex_ai-anthropic_models": ("vertex", ("vertex_ai/",)),
    "vertex_ai-llama_models": ("vertex", ("vertex_ai/",)),
    "vertex_ai-mistral_models": ("vertex", ("vertex_ai/",)),
    "vertex_ai-deepseek_models": ("vertex", ("vertex_ai/",)),
    "vertex_ai-qwen_models": ("vertex", ("vertex_ai/",)),
    "vertex_ai-openai_models": ("vertex", ("vertex_ai/",)),
    "vertex_ai-ai21_models": ("vertex", ("vertex_ai/",)),
    "vertex_ai-embedding-models": ("vertex", ("vertex_ai/",)),
    "vertex_ai-text-models": ("vertex", ("vertex_ai/",)),
    "azure": ("azure", ("azure/",)),
    "azure_text": ("azure", ("azure_text/", "azure/")),
    "azure_ai": ("azure", ("azure_ai/",)),
    "bedrock": ("bedrock", ("bedrock/",)),
    "bedrock_converse": ("bedrock", ("bedrock/", "bedrock_converse/")),
    "mistral": ("mistral", ("mistral/",)),
    "codestral": ("mistral", ("codestral/",)),
    "deepseek": ("deepseek", ("deepseek/",)),
    "xai": ("xai", ("xai/",)),
    "cohere": ("cohere", ("cohere/",)),
    "cohere_chat": ("cohere", ("cohere_chat/", "cohere/")),
    "groq": ("groq", ("groq/",)),
    "together_ai": ("together", ("together_ai/",)),
    "fireworks_ai": ("fireworks", ("fireworks_ai/",)),
    "fireworks_ai-embedding-models": ("fireworks", ("fireworks_ai/",)),
    "openrouter": ("openrouter", ("openrouter/",)),
    "dashscope": ("dashscope", ("dashscope/",)),
    "moonshot": ("moonshot", ("moonshot/",)),
    "zai": ("zai", ("zai/",)),
    "minimax": ("minimax", ("minimax/",)),
    "volcengine": ("volcengine", ("volcengine/",)),
}
# Providers whose LiteLLM entries list 0 for prices LiteLLM does not know (volcengine's
# `deepseek-v3-2-251201` at 0/0): a 0 there is unknown, never free, and the entry is skipped.
LITELLM_ZERO_IS_UNKNOWN = {"volcengine"}
LITELLM_MODES = {"chat", "completion", "embedding", "responses", None}

GENAI_KEYS = {
    "input_mtok": "input",
    "output_mtok": "output",
    "cache_read_mtok": "cache_read",
    "cache_write_mtok": "cache_write",
    "cache_write_1h_mtok": "cache_write_1h",
    "output_reasoning_mtok": "reasoning",
    "input_audio_mtok": "input_audio",
    "output_audio_mtok": "output_audio",
}
# genai-prices variant contexts -> our variant names.
GENAI_VARIANTS = {
    "batch": {"processing": "batch"},
    "flex": {"service_tier": "flex"},
    "priority": {"service_tier": "priority"},
}
LITELLM_BASES = {
    "input_cost_per_token": "input",
    "output_cost_per_token": "output",
    "cache_read_input_token_cost": "cache_read",
    "cache_creation_input_token_cost": "cache_write",
    "cache_creation_input_token_cost_above_1hr": "cache_write_1h",
    "output_cost_per_reasoning_token": "reasoning",
    "input_cost_per_audio_token": "input_audio",
    "output_cost_per_audio_token": "output_audio",
}
LITELLM_KEY = re.compile(
    r"^(?P<base>"
    + "|".join(sorted(map(re.escape, LITELLM_BASES), key=len, reverse=True))
    + r")(?:_above_(?P<above>\d+)k_tokens)?(?:_(?P<variant>batches|priority|flex))?$"
)
LITELLM_VARIANTS = {None: None, "batches": "batch", "priority": "priority", "flex": "flex"}
MILLION = Decimal(1_000_000)
# The largest token limit the catalog accepts (src/catalog/schema.rs MAX_TOKEN_COUNT).
MAX_TOKEN_COUNT = 2**53 - 1


def token_count(v: Any) -> int | None:
    """A source's token limit if it is a positive integer the catalog accepts, else None."""
    if isinstance(v, bool) or not isinstance(v, int) or not 0 < v <= MAX_TOKEN_COUNT:
        return None
    return v


def dec(d: Decimal) -> str:
    """A price as a plain decimal string ("2.5", "0.075", "0")."""
    s = format(d.normalize(), "f")
    return "0" if Decimal(s) == 0 else s


def embedding_like(model_id: str) -> bool:
    return "embed" in model_id


def sort_key(e: dict[str, Any]) -> tuple[int, str, str]:
    p = e["provider"]
    rank = PROVIDER_RANK.index(p) if p in PROVIDER_RANK else len(PROVIDER_RANK)
    return (rank, p, e["id"])


# -- genai-prices ----------------------------------------------------------------------------
# A dated preview name (`gemini-2.5-flash-preview-05-20`): the text of a genai-prices
# `contains` / `starts_with` clause shaped like this is one exact name the clause matches,
# kept as an alias (the clause itself, fuzzy, is not copied). Only previews: a dated
# snapshot of a released model (Bedrock's `us.anthropic.claude-...-20250929`, Azure's
# `o4-mini-2025-04-16`) often has a richer entry of its own (batch, 1-hour cache, tiers)
# that such an alias would shadow.
SNAPSHOT_NAME = re.compile(r"^[a-z][a-z0-9.:-]*-preview-(\d{2}-\d{2}|\d{4}-\d{2}-\d{2}|\d{8})$")


def genai_equals(match: Any) -> list[str]:
    """The exact names in a genai-prices match clause (ORs of equals), and the dated snapshot
    names its `contains` / `starts_with` clauses spell out in full; fuzzy matching dropped."""
    from genai_prices import types as t

    if isinstance(match, t.ClauseEquals):
        return [match.equals.lower()]
    if isinstance(match, (t.ClauseContains, t.ClauseStartsWith)):
        text = match.contains if isinstance(match, t.ClauseContains) else match.starts_with
        return [text.lower()] if SNAPSHOT_NAME.match(text.lower()) else []
    if isinstance(match, t.ClauseOr):
        return [n for c in match.or_ for n in genai_equals(c)]
    return []


def genai_standard_at(model: Any, when: dt.datetime) -> Any:
    """genai-prices' standard prices at `when` (date and UTC time of day): the last
    conditional price whose constraint is active, as `ModelInfo.get_prices` picks it."""
    if not isinstance(model.prices, list):
        return model.prices
    for cp in reversed(model.prices):
        if cp.constraint is None or cp.constraint.active(when):
            return cp.prices
    return model.prices[0].prices


def tod_boundaries(model: Any) -> list[int]:
    """The minutes of the day (UTC) where a genai-prices time-of-day price starts or ends."""
    from genai_prices import types as t

    out = {0}
    for cp in model.prices if isinstance(model.prices, list) else []:
        c = cp.constraint
        if isinstance(c, t.TimeOfDateConstraint):
            for tm in (c.start_time, c.end_time):
                out.add(tm.hour * 60 + tm.minute)
    return sorted(out)


def hhmm(minute: int) -> str:
    return f"{minute // 60 % 24:02d}:{minute % 60:02d}"


def genai_day(
    model: Any, day: dt.date, dropped: set[str]
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The standard prices of `day` and its time-of-day windows: the day is cut at every
    time-of-day boundary, each segment priced by genai-prices' own rule; the price in force
    the most minutes is the standard one, and every maximal run of segments at another price
    becomes a window (UTC)."""
    bounds = tod_boundaries(model)
    segs = []
    for i, start in enumerate(bounds):
        end = bounds[i + 1] if i + 1 < len(bounds) else 24 * 60
        when = dt.datetime.combine(day, dt.time(start // 60, start % 60), tzinfo=dt.UTC)
        segs.append((start, end, genai_tiered(genai_standard_at(model, when), model.id, dropped)))
    minutes: dict[str, int] = {}
    for start, end, p in segs:
        k = json.dumps(p, sort_keys=True)
        minutes[k] = minutes.get(k, 0) + end - start
    # Most minutes wins; a tie goes to the price at noon (the day's "daytime" price).
    noon = next(p for s, e, p in segs if s <= 12 * 60 < e)
    best = max(minutes, key=lambda k: (minutes[k], k == json.dumps(noon, sort_keys=True)))
    standard = next(p for _, _, p in segs if json.dumps(p, sort_keys=True) == best)
    runs: list[list[Any]] = []
    for start, end, p in segs:
        if p == standard:
            continue
        if runs and runs[-1][1] == start and runs[-1][2] == p:
            runs[-1][1] = end
        else:
            runs.append([start, end, p])
    # A run ending at midnight and one starting there are one window.
    if len(runs) > 1 and runs[-1][1] == 24 * 60 and runs[0][0] == 0 and runs[0][2] == runs[-1][2]:
        runs[0][0] = runs.pop()[0]
    windows = [{"start": hhmm(s), "end": hhmm(e), **p} for s, e, p in runs if p is not None]
    return standard, windows


def genai_prices_at(model: Any, when: dt.datetime, context: dict[str, str] | None) -> Any:
    """genai-prices' own resolution (ModelInfo.get_prices), minus time-of-day prices."""
    from copy import copy

    from genai_prices import types as t

    standard = genai_standard_at(model, when)
    if not context:
        return standard
    overrides: dict[str, Any] = {}
    for v in model.price_variants or ():
        if isinstance(v.constraint, t.StartDateConstraint) and not v.constraint.active(when):
            continue
        if v.constraint is not None and not isinstance(v.constraint, t.StartDateConstraint):
            continue
        if not all(context.get(k) == val for k, val in v.when.items()):
            continue
        for k, price in v.prices.__dict__.items():
            if price is not None:
                overrides.setdefault(k, price)
    if not overrides:
        return None
    resolved = copy(standard)
    resolved.__dict__.update(overrides)
    return resolved


def genai_tiered(mp: Any, model_id: str, dropped: set[str]) -> dict[str, Any] | None:
    """A genai-prices ModelPrice as one of our tiered price sets (None: not a token-priced model)."""
    from genai_prices import types as t

    flat: dict[str, Decimal] = {}
    tiered: dict[str, Any] = {}
    for key, value in mp.__dict__.items():
        if value is None or key.startswith("_"):
            continue
        field = GENAI_KEYS.get(key)
        if field is None:
            dropped.add(key)
            continue
        if isinstance(value, t.TieredPrices):
            tiered[field] = value
        else:
            flat[field] = value
    base = dict(flat)
    for f, tp in tiered.items():
        base[f] = tp.base
    if "input" not in base:
        return None
    if "output" not in base:
        if not embedding_like(model_id):
            return None
        base["output"] = Decimal(0)
    out: dict[str, Any] = {f: dec(base[f]) for f in PRICE_FIELDS if f in base}
    thresholds = sorted({tier.start for tp in tiered.values() for tier in tp.tiers})
    tiers = []
    for above in thresholds:
        s = dict(base)
        for f, tp in tiered.items():
            for tier in tp.tiers:
                if tier.start <= above:
                    s[f] = tier.price
        tiers.append({"above": above, **{f: dec(s[f]) for f in PRICE_FIELDS if f in s}})
    if tiers:
        out["tiers"] = tiers
    return out


def genai_versions(model: Any, dropped: set[str], notes: list[str]) -> list[dict[str, Any]] | None:
    from genai_prices import types as t

    dates: set[dt.date] = set()
    conds = model.prices if isinstance(model.prices, list) else []
    for cp in conds:
        if isinstance(cp.constraint, t.StartDateConstraint):
            dates.add(cp.constraint.start_date)
        elif isinstance(cp.constraint, t.TimeOfDateConstraint):
            notes.append(
                "time-of-day prices: the windows (UTC) are genai-prices' off-peak and peak hours"
            )
    for v in model.price_variants or ():
        if isinstance(v.constraint, t.StartDateConstraint):
            dates.add(v.constraint.start_date)
    starts: list[dt.date | None] = [None, *sorted(dates)]
    versions: list[dict[str, Any]] = []
    for start in starts:
        when = dt.datetime.combine(start or dt.date(1970, 1, 1), dt.time(12), tzinfo=dt.UTC)
        std, windows = genai_day(model, start or dt.date(1970, 1, 1), dropped)
        if std is None:
            return None
        variants = {}
        for name, ctx in GENAI_VARIANTS.items():
            mp = genai_prices_at(model, when, ctx)
            if mp is None and name == "priority":
                mp = genai_prices_at(model, when, {"service_tier": "fast"})
            if mp is None:
                continue
            v = genai_tiered(mp, model.id, dropped)
            if v is not None and v != std:
                variants[name] = v
        version = dict(std)
        if variants:
            version["variants"] = variants
        if windows:
            version["windows"] = windows
        if versions and {k: v for k, v in versions[-1].items() if k != "from"} == version:
            continue
        if start is not None:
            version = {"from": start.isoformat(), **version}
        versions.append(version)
    return versions


def load_genai(version: str) -> list[dict[str, Any]]:
    from genai_prices.data import providers

    out = []
    for p in providers:
        ours = GENAI_PROVIDERS.get(p.id)
        if ours is None:
            continue
        # A snapshot name spelled out by a fuzzy clause never takes another model's id.
        ids = {m.id.lower() for m in p.models}
        for m in p.models:
            provider = ours
            mid = m.id.lower()
            # genai-prices' `google` provider holds the Claude (and MaaS) models Vertex AI bills.
            if ours == "google" and (mid.startswith("claude") or mid.endswith("-maas")):
                provider = "vertex"
            dropped: set[str] = set()
            notes: list[str] = []
            versions = genai_versions(m, dropped, notes)
            if versions is None:
                continue
            if dropped:
                notes.append(
                    "genai-prices also prices "
                    + ", ".join(sorted(dropped))
                    + " (not modelled by llmledger)"
                )
            e: dict[str, Any] = {
                "id": mid,
                "provider": provider,
                "aliases": sorted(
                    {n for n in genai_equals(m.match) if n != mid and (n not in ids or n == mid)}
                ),
                "source": f"genai-prices {version}",
                "checked": CHECKED,
            }
            if m.context_window:
                e["context_window"] = int(m.context_window)
            if notes:
                e["notes"] = "; ".join(sorted(set(notes)))
            e["prices"] = versions
            out.append(e)
    return out


# -- LiteLLM ---------------------------------------------------------------------------------
def litellm_id(key: str, provider: str, prefixes: tuple[str, ...]) -> str | None:
    k = key.lower()
    for pre in prefixes:
        if k.startswith(pre):
            k = k[len(pre) :]
            break
    if provider == "fireworks":
        k = k.removeprefix("accounts/fireworks/models/")
    if provider in ("bedrock", "azure", "openai", "anthropic", "google", "mistral", "xai"):
        # Region-, data-zone- or size-specific keys (bedrock/us-east-1/..., azure/eu/...,
        # low/1024-x-1024/...): not a model id an application sends.
        if "/" in k:
            return None
    return k or None


def litellm_set(fields: dict[str, Decimal], model_id: str) -> dict[str, Any] | None:
    if "input" not in fields:
        return None
    if "output" not in fields:
        if not embedding_like(model_id):
            return None
        fields = {**fields, "output": Decimal(0)}
    return {f: dec(fields[f]) for f in PRICE_FIELDS if f in fields}


def litellm_entry(key: str, v: dict[str, Any], version: str) -> dict[str, Any] | None:
    lp = v.get("litellm_provider")
    if lp not in LITELLM_PROVIDERS or v.get("mode") not in LITELLM_MODES:
        return None
    provider, prefixes = LITELLM_PROVIDERS[lp]
    mid = litellm_id(key, provider, prefixes)
    if mid is None:
        return None
    if "tiered_pricing" in v:
        return litellm_range_entry(v, mid, provider, version)
    # (variant, above) -> field -> price
    parts: dict[tuple[str | None, int | None], dict[str, Decimal]] = {}
    for k, raw in v.items():
        m = LITELLM_KEY.match(k)
        if not m or not isinstance(raw, (int, float)) or isinstance(raw, bool):
            continue
        above = int(m["above"]) * 1000 if m["above"] else None
        variant = LITELLM_VARIANTS[m["variant"]]
        price = (Decimal(repr(float(raw))) * MILLION).normalize()
        parts.setdefault((variant, above), {})[LITELLM_BASES[m["base"]]] = price

    def tiered(variant: str | None) -> dict[str, Any] | None:
        base_fields = parts.get((variant, None), {})
        if variant is not None:
            # A variant listing only some fields: the rest are not billed apart in that mode.
            pass
        base = litellm_set(base_fields, mid)
        if base is None:
            return None
        tiers = []
        for (var, above), fs in sorted(parts.items(), key=lambda kv: kv[0][1] or 0):
            if var != variant or above is None:
                continue
            ts = litellm_set({**base_fields, **fs}, mid)
            if ts is not None:
                tiers.append({"above": above, **ts})
        if tiers:
            base["tiers"] = tiers
        return base

    std = tiered(None)
    if std is None:
        return None
    if provider in LITELLM_ZERO_IS_UNKNOWN and Decimal(std["input"]) == 0:
        return None
    variants = {}
    for name in ("batch", "flex", "priority"):
        t = tiered(name)
        if t is not None and t != std:
            variants[name] = t
    version_prices = dict(std)
    if variants:
        version_prices["variants"] = variants
    return litellm_made(mid, provider, version, v, version_prices)


def litellm_made(
    mid: str, provider: str, version: str, v: dict[str, Any], prices: dict[str, Any]
) -> dict[str, Any]:
    """The catalog entry of LiteLLM's `v`, priced `prices` (one version)."""
    e: dict[str, Any] = {
        "id": mid,
        "provider": provider,
        "aliases": [],
        "source": f"litellm {version}",
        "checked": CHECKED,
    }
    ctx = v.get("max_input_tokens")
    if isinstance(ctx, int) and ctx > 0:
        e["context_window"] = ctx
    out = token_count(v.get("max_output_tokens"))
    if out is not None:
        e["max_output_tokens"] = out
    e["prices"] = [prices]
    return e


def litellm_range_entry(
    v: dict[str, Any], mid: str, provider: str, version: str
) -> dict[str, Any] | None:
    """An entry from LiteLLM's `tiered_pricing` (DashScope's and Volcengine's models): ranges of
    a request's input tokens, `[start, end]`, each with a full price set. LiteLLM bills them all
    or nothing (litellm_core_utils/llm_cost_calc/tiered_pricing.py: the range with
    `start < input_tokens <= end` prices every token of the request, above the last range the
    last one), which is the catalog's cliff tier: the first range, starting at 0, is the base
    and each later range a tier `above` its start. A table that is not contiguous from 0, or
    prices anything else (per query), is skipped."""
    ranges = []
    for t in v["tiered_pricing"]:
        r = t.get("range")
        if not (
            isinstance(r, list) and len(r) == 2 and all(isinstance(x, (int, float)) for x in r)
        ):
            return None
        fields = {}
        for k, raw in t.items():
            if k == "range":
                continue
            if k not in LITELLM_BASES or not isinstance(raw, (int, float)) or isinstance(raw, bool):
                return None
            fields[LITELLM_BASES[k]] = (Decimal(repr(float(raw))) * MILLION).normalize()
        ranges.append((Decimal(repr(float(r[0]))), Decimal(repr(float(r[1]))), fields))
    ranges.sort(key=lambda x: x[0])
    if not ranges or ranges[0][0] != 0:
        return None
    if any(a[1] != b[0] for a, b in zip(ranges, ranges[1:], strict=False)):
        return None
    base = litellm_set(ranges[0][2], mid)
    if base is None:
        return None
    tiers = []
    for start, _, fields in ranges[1:]:
        ts = litellm_set(fields, mid)
        if ts is None or start != start.to_integral_value():
            return None
        tiers.append({"above": int(start), **ts})
    if tiers:
        base["tiers"] = tiers
    if provider in LITELLM_ZERO_IS_UNKNOWN and Decimal(base["input"]) == 0:
        return None
    return litellm_made(mid, provider, version, v, base)


def read_litellm(path: Path | None, version: str | None) -> tuple[dict[str, Any], str]:
    if path is None:
        spec = importlib.util.find_spec("litellm")  # locates the package without importing it
        if spec is None or not spec.submodule_search_locations:
            sys.exit(
                "LiteLLM not found: pip install -r scripts/requirements-catalog.txt, or pass "
                "--litellm PATH (its wheel, or model_prices_and_context_window_backup.json)"
            )
        path = Path(next(iter(spec.submodule_search_locations)))
        path = path / "model_prices_and_context_window_backup.json"
        version = version or importlib.metadata.version("litellm")
    if path.suffix == ".whl":
        m = re.match(r"litellm-([^-]+)-", path.name)
        version = version or (m[1] if m else None)
        with zipfile.ZipFile(path) as z:
            data = json.loads(z.read("litellm/model_prices_and_context_window_backup.json"))
    else:
        data = json.loads(path.read_text(encoding="utf-8"))
    if not version:
        sys.exit("--litellm-version is required with a bare JSON file")
    return data, version


def load_litellm(data: dict[str, Any], version: str) -> list[dict[str, Any]]:
    out = []
    for key in sorted(data):
        if key == "sample_spec" or not isinstance(data[key], dict):
            continue
        e = litellm_entry(key, data[key], version)
        if e is not None:
            out.append(e)
    return out


# -- output limits ---------------------------------------------------------------------------
def fill_output_limits(
    entries: list[dict[str, Any]], litellm: list[dict[str, Any]], note: str | None = None
) -> int:
    """Gives each entry without `max_output_tokens` LiteLLM's limit for the same provider and
    id (the first LiteLLM entry of that id, as in the merge), or failing that for its aliases
    when they all agree; `note` is added to the notes of each entry filled. Returns how many
    entries were filled."""
    limits: dict[tuple[str, str], int] = {}
    for e in litellm:
        if "max_output_tokens" in e:
            limits.setdefault((e["provider"], e["id"]), e["max_output_tokens"])
    filled = 0
    for e in entries:
        if "max_output_tokens" in e:
            continue
        limit = limits.get((e["provider"], e["id"]))
        if limit is None:
            found = {limits.get((e["provider"], a)) for a in e.get("aliases", [])} - {None}
            limit = found.pop() if len(found) == 1 else None
        if limit is not None:
            e["max_output_tokens"] = limit
            if note:
                add_note(e, note)
            filled += 1
    return filled


def add_note(e: dict[str, Any], note: str) -> None:
    e["notes"] = f"{e['notes'].rstrip()} {note}" if e.get("notes") else note


def note_limits_above_window(entries: list[dict[str, Any]]) -> list[str]:
    """Notes every entry whose max_output_tokens exceeds its context_window (kept as stated:
    a lower bound could make a budget reserve too little). Returns the entries' keys."""
    flagged = []
    for e in entries:
        out, window = e.get("max_output_tokens"), e.get("context_window")
        if out is not None and window is not None and out > window:
            add_note(
                e,
                f"max_output_tokens ({out}) exceeds context_window ({window}): the sources "
                "disagree or the window counts input only; both are kept as stated.",
            )
            flagged.append(f"{e['provider']}/{e['id']}")
    return flagged


# -- merge -----------------------------------------------------------------------------------
def current(e: dict[str, Any], today: dt.date) -> dict[str, Any]:
    best = e["prices"][0]
    for v in e["prices"]:
        if "from" not in v or dt.date.fromisoformat(v["from"]) <= today:
            best = v
    return best


def disagreements(a: dict[str, Any], b: dict[str, Any], today: dt.date) -> list[str]:
    pa, pb = current(a, today), current(b, today)
    out = []
    for f in ("input", "output", "cache_read", "cache_write", "cache_write_1h"):
        if f in pa and f in pb:
            x, y = Decimal(pa[f]), Decimal(pb[f])
            if x == y:
                continue
            rel = abs(x - y) / max(x, y)
            if rel > Decimal("0.01"):
                out.append(f"{f} {x} vs {y} ({rel * 100:.1f}%)")
    return out


def merge(
    layers: list[tuple[str, list[dict[str, Any]]]], today: dt.date
) -> tuple[list[dict[str, Any]], list[str]]:
    """Entries of every layer; a name (id or alias) at a provider belongs to the first layer
    (then the first entry) that has it. An entry whose id is taken is dropped; aliases taken
    are removed. Every name two sources price differently by more than 1% is reported."""
    owner: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
    kept: list[dict[str, Any]] = []
    report: set[str] = set()
    for layer, entries in layers:
        for e in entries:
            names = [e["id"], *e.get("aliases", [])]
            for n in names:
                prev = owner.get((e["provider"], n))
                if prev is not None and prev[0] != layer:
                    for d in disagreements(prev[1], e, today):
                        report.add(
                            f"{e['provider']}/{n}: {prev[0]} ({prev[1]['id']}) vs {layer} "
                            f"({e['id']}): {d}"
                        )
            if (e["provider"], e["id"]) in owner:
                continue
            e = dict(e)
            e["aliases"] = sorted(
                {a for a in e.get("aliases", []) if (e["provider"], a) not in owner} - {e["id"]}
            )
            for n in [e["id"], *e["aliases"]]:
                owner[(e["provider"], n)] = (layer, e)
            kept.append(e)
    return sorted(kept, key=sort_key), sorted(report)


ENTRY_ORDER = (
    "id",
    "provider",
    "aliases",
    "source",
    "checked",
    "context_window",
    "max_output_tokens",
    "notes",
    "prices",
)


def render(entries: list[dict[str, Any]]) -> str:
    lines = []
    for e in entries:
        ordered = {k: e[k] for k in ENTRY_ORDER if k in e and (k != "aliases" or e[k])}
        lines.append("    " + json.dumps(ordered, ensure_ascii=False, separators=(", ", ": ")))
    return (
        "{\n"
        f'  "version": "{CATALOG_VERSION}",\n'
        '  "currency": "USD",\n'
        '  "models": [\n' + ",\n".join(lines) + "\n  ]\n}\n"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--litellm", type=Path, help="LiteLLM wheel or its price JSON")
    ap.add_argument("--litellm-version", help="version of a bare LiteLLM JSON file")
    ap.add_argument("--output", type=Path, default=OUTPUT)
    ap.add_argument("--check", action="store_true", help="exit 1 if the output would change")
    ap.add_argument("--allow-other-versions", action="store_true")
    ap.add_argument("--quiet", action="store_true", help="do not list disagreements")
    args = ap.parse_args(argv)

    genai_version = importlib.metadata.version("genai-prices")
    litellm_data, litellm_version = read_litellm(args.litellm, args.litellm_version)
    pinned = (genai_version, litellm_version) == (GENAI_PRICES_VERSION, LITELLM_VERSION)
    if not pinned and not args.allow_other_versions:
        sys.exit(
            f"found genai-prices {genai_version}, litellm {litellm_version}; pinned "
            f"{GENAI_PRICES_VERSION}, {LITELLM_VERSION}: update the pins (and CHECKED) in this "
            "script, or pass --allow-other-versions"
        )
    hand = json.loads(HAND_CHECKED.read_text(encoding="utf-8"))["models"]
    today = dt.date.fromisoformat(CHECKED)
    genai = load_genai(genai_version)
    litellm = load_litellm(litellm_data, litellm_version)
    fill_output_limits(
        hand,
        litellm,
        f"max_output_tokens is LiteLLM {litellm_version}'s, not part of the hand check.",
    )
    fill_output_limits(genai, litellm)
    entries, report = merge(
        [
            ("hand-checked", hand),
            (f"genai-prices {genai_version}", genai),
            (f"litellm {litellm_version}", litellm),
        ],
        today,
    )
    above_window = note_limits_above_window(entries)
    text = render(entries)
    if not args.quiet:
        print(f"Disagreements above 1% between sources ({len(report)}), prices in force {today}:")
        for line in report:
            print("  " + line)
    counts = Counter(e["provider"] for e in entries)
    sources = Counter(
        e["source"].split(":")[0] if "//" not in e["source"] else "hand-checked" for e in entries
    )
    print(f"{len(entries)} entries: " + ", ".join(f"{p} {n}" for p, n in sorted(counts.items())))
    print("by source: " + ", ".join(f"{s} {n}" for s, n in sorted(sources.items())))
    limited = Counter(
        "hand-checked"
        if "//" in e["source"] and "not part of the hand check" not in e.get("notes", "")
        else "litellm"
        for e in entries
        if "max_output_tokens" in e
    )
    print(
        f"max_output_tokens: {sum(limited.values())} entries ("
        + ", ".join(f"{s} {n}" for s, n in sorted(limited.items()))
        + f"); above context_window, kept and noted: {', '.join(above_window) or 'none'}"
    )
    if args.check:
        same = args.output.exists() and args.output.read_text(encoding="utf-8") == text
        print(f"{args.output}: {'up to date' if same else 'WOULD CHANGE'}")
        return 0 if same else 1
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
