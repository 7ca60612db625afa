#!/usr/bin/env python3
"""Validate the bundled price catalog (src/catalog/prices.json) against docs/catalog.md.

Usage:
    python scripts/check_catalog.py [path/to/prices.json] [--today YYYY-MM-DD]

Checks the schema rules (required fields, decimal strings that parse and are >= 0,
ascending tiers, ISO dates, lower-case names, no duplicate id/alias per provider), then,
when langchain_community is importable, that every model name in LangChain's
MODEL_COST_PER_1K_TOKENS resolves to an entry (suffixes mapped as below), and prints every
difference between our price (per 1M tokens) and LangChain's (per 1K tokens, x1000).

LangChain key suffixes:
    NAME-completion          output price of NAME
    NAME-cached              cache-read price of NAME
    BASE-finetuned           openai entry ft:BASE
    BASE-azure-finetuned     azure entry ft:BASE
    BASE-finetuned-legacy    openai entry ft:BASE (legacy GPT-3 fine-tunes)
    gpt-35-turbo*            azure deployment names

Exit status: 1 on schema errors or names LangChain knows that the catalog does not,
0 otherwise (price differences are reported, not errors). Only the standard library is
needed; the LangChain comparison is skipped if langchain_community is not installed.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "src" / "catalog" / "prices.json"

PRICE_FIELDS = ("input", "output", "cache_read", "cache_write", "cache_write_1h", "reasoning",
                "input_audio", "output_audio")
REQUIRED_PRICE_FIELDS = ("input", "output")
VERSION_KEYS = set(PRICE_FIELDS) | {"from", "tiers", "variants"}
TIER_KEYS = set(PRICE_FIELDS) | {"above"}
VARIANT_KEYS = set(PRICE_FIELDS) | {"tiers"}
VARIANT_NAMES = {"batch", "flex", "priority"}
ENTRY_KEYS = {"id", "provider", "aliases", "source", "checked", "notes", "prices"}
TOP_KEYS = {"version", "currency", "models"}
DECIMAL_RE = re.compile(r"^\d+(\.\d+)?$")
PROVIDER_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


class Checker:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def err(self, where: str, msg: str) -> None:
        self.errors.append(f"{where}: {msg}")

    # -- primitives --------------------------------------------------------------------
    def decimal(self, where: str, value: object) -> Decimal | None:
        if not isinstance(value, str):
            self.err(where, f"price must be a decimal string, got {type(value).__name__} {value!r}")
            return None
        if not DECIMAL_RE.match(value):
            self.err(where, f"price {value!r} is not a plain non-negative decimal string")
        try:
            d = Decimal(value)
        except InvalidOperation:
            self.err(where, f"price {value!r} does not parse as a decimal")
            return None
        if not d.is_finite() or d < 0:
            self.err(where, f"price {value!r} must be finite and >= 0")
            return None
        return d

    def iso_date(self, where: str, value: object) -> dt.date | None:
        if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            self.err(where, f"{value!r} is not an ISO date (YYYY-MM-DD)")
            return None
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            self.err(where, f"{value!r} is not a valid date")
            return None

    # -- price sets ----------------------------------------------------------------------
    def price_set(self, where: str, ps: object, allowed: set[str], *, tiers_ok: bool) -> None:
        if not isinstance(ps, dict):
            self.err(where, "price set must be an object")
            return
        for k in ps:
            if k not in allowed:
                self.err(where, f"unknown field {k!r}")
        for k in REQUIRED_PRICE_FIELDS:
            if k not in ps:
                self.err(where, f"missing required field {k!r}")
        for k in PRICE_FIELDS:
            if k in ps:
                self.decimal(f"{where}.{k}", ps[k])
        if "tiers" in ps:
            if not tiers_ok:
                self.err(where, "tiers are not allowed here")
            else:
                self.tiers(f"{where}.tiers", ps["tiers"])

    def tiers(self, where: str, tiers: object) -> None:
        if not isinstance(tiers, list) or not tiers:
            self.err(where, "tiers must be a non-empty list")
            return
        last = None
        for i, t in enumerate(tiers):
            w = f"{where}[{i}]"
            if not isinstance(t, dict):
                self.err(w, "tier must be an object")
                continue
            above = t.get("above")
            if isinstance(above, bool) or not isinstance(above, int) or above < 0:
                self.err(w, f"'above' must be a non-negative integer, got {above!r}")
            else:
                if last is not None and above <= last:
                    self.err(w, f"tiers must be strictly ascending by 'above' ({above} after {last})")
                last = above
            self.price_set(w, t, TIER_KEYS, tiers_ok=False)

    def version(self, where: str, v: object) -> None:
        if not isinstance(v, dict):
            self.err(where, "price version must be an object")
            return
        self.price_set(where, v, VERSION_KEYS, tiers_ok=True)
        if "from" in v:
            self.iso_date(f"{where}.from", v["from"])
        if "variants" in v:
            vs = v["variants"]
            if not isinstance(vs, dict) or not vs:
                self.err(f"{where}.variants", "variants must be a non-empty object")
                return
            for name, ps in vs.items():
                if name not in VARIANT_NAMES:
                    self.err(f"{where}.variants", f"unknown variant {name!r} "
                             f"(expected one of {sorted(VARIANT_NAMES)})")
                self.price_set(f"{where}.variants.{name}", ps, VARIANT_KEYS, tiers_ok=True)

    # -- entries -------------------------------------------------------------------------
    def entry(self, i: int, e: object, names: dict[tuple[str, str], str]) -> None:
        where = f"models[{i}]"
        if not isinstance(e, dict):
            self.err(where, "entry must be an object")
            return
        ident = e.get("id")
        prov = e.get("provider")
        if isinstance(ident, str) and isinstance(prov, str):
            where = f"models[{i}] {prov}/{ident}"
        for k in e:
            if k not in ENTRY_KEYS:
                self.err(where, f"unknown field {k!r}")
        for k in ("id", "provider", "source", "checked", "prices"):
            if k not in e:
                self.err(where, f"missing required field {k!r}")
        for k in ("id", "provider", "source"):
            if k in e and (not isinstance(e[k], str) or not e[k].strip()):
                self.err(where, f"{k!r} must be a non-empty string")
        if isinstance(prov, str) and not PROVIDER_RE.match(prov):
            self.err(where, f"provider {prov!r} must be a lower-case key")
        src = e.get("source")
        if isinstance(src, str) and not src.startswith(("https://", "http://")):
            self.err(where, f"source {src!r} must be a URL")
        if "checked" in e:
            self.iso_date(f"{where}.checked", e["checked"])
        if "notes" in e and not isinstance(e["notes"], str):
            self.err(where, "'notes' must be a string")
        aliases = e.get("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            self.err(where, "'aliases' must be a list of strings")
            aliases = []
        all_names = ([ident] if isinstance(ident, str) else []) + aliases
        for n in all_names:
            if n != n.lower() or n != n.strip() or not n:
                self.err(where, f"name {n!r} must be non-empty, trimmed and lower case")
            if isinstance(prov, str):
                key = (prov, n.lower())
                if key in names:
                    self.err(where, f"name {n!r} already used by {names[key]} at provider {prov!r}")
                else:
                    names[key] = f"{prov}/{ident}"
        prices = e.get("prices")
        if not isinstance(prices, list) or not prices:
            self.err(where, "'prices' must be a non-empty list")
            return
        froms: list[dt.date | None] = []
        for j, v in enumerate(prices):
            self.version(f"{where}.prices[{j}]", v)
            if isinstance(v, dict):
                f = v.get("from")
                froms.append(dt.date.fromisoformat(f) if isinstance(f, str)
                             and re.fullmatch(r"\d{4}-\d{2}-\d{2}", f) else None)
        if sum(1 for f in froms if f is None) > 1:
            self.err(where, "at most one price version may omit 'from'")
        dated = [f for f in froms if f is not None]
        if len(dated) != len(set(dated)):
            self.err(where, "two price versions share the same 'from'")

    def catalog(self, cat: object) -> None:
        if not isinstance(cat, dict):
            self.err("catalog", "top level must be an object")
            return
        for k in cat:
            if k not in TOP_KEYS:
                self.err("catalog", f"unknown top-level field {k!r}")
        if not isinstance(cat.get("version"), str) or not cat.get("version"):
            self.err("catalog", "'version' must be a non-empty string")
        if cat.get("currency") != "USD":
            self.err("catalog", f"'currency' must be 'USD', got {cat.get('currency')!r}")
        models = cat.get("models")
        if not isinstance(models, list) or not models:
            self.err("catalog", "'models' must be a non-empty list")
            return
        names: dict[tuple[str, str], str] = {}
        for i, e in enumerate(models):
            self.entry(i, e, names)


# -- lookups -----------------------------------------------------------------------------
def build_index(cat: dict) -> dict[tuple[str, str], dict]:
    idx: dict[tuple[str, str], dict] = {}
    for e in cat["models"]:
        for n in [e["id"], *e.get("aliases", [])]:
            idx.setdefault((e["provider"], n.lower()), e)
    return idx


def effective(entry: dict, day: dt.date) -> dict:
    """The price version in force on `day` (latest 'from' not after it)."""
    best, best_from = None, None
    for v in entry["prices"]:
        f = dt.date.fromisoformat(v["from"]) if "from" in v else dt.date.min
        if f <= day and (best is None or f >= best_from):
            best, best_from = v, f
    return best if best is not None else entry["prices"][0]


def map_langchain_key(key: str) -> tuple[str, str, str]:
    """LangChain MODEL_COST_PER_1K_TOKENS key -> (provider, catalog name, price field)."""
    name, field = key.lower(), "input"
    if name.endswith("-completion"):
        name, field = name[: -len("-completion")], "output"
    elif name.endswith("-cached"):
        name, field = name[: -len("-cached")], "cache_read"
    if name.endswith("-azure-finetuned"):
        return "azure", "ft:" + name[: -len("-azure-finetuned")], field
    if name.endswith("-finetuned-legacy"):
        return "openai", "ft:" + name[: -len("-finetuned-legacy")], field
    if name.endswith("-finetuned"):
        return "openai", "ft:" + name[: -len("-finetuned")], field
    if name.startswith("gpt-35-"):
        return "azure", name, field
    return "openai", name, field


def compare_langchain(cat: dict, day: dt.date) -> tuple[int, int]:
    """Returns (missing names, price differences)."""
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from langchain_community.callbacks.openai_info import MODEL_COST_PER_1K_TOKENS
    except Exception as exc:  # pragma: no cover - optional dependency
        print(f"LangChain comparison skipped: cannot import langchain_community ({exc})")
        return 0, 0
    idx = build_index(cat)
    missing: set[tuple[str, str]] = set()
    diffs: list[str] = []
    plain = set()
    for key, per_1k in sorted(MODEL_COST_PER_1K_TOKENS.items()):
        prov, name, field = map_langchain_key(key)
        plain.add((prov, name))
        entry = idx.get((prov, name))
        if entry is None:
            missing.add((prov, name))
            continue
        ours_s = effective(entry, day).get(field)
        theirs = (Decimal(str(per_1k)) * 1000).normalize()
        label = f"{key:48s} -> {prov}/{entry['id']} {field}"
        if ours_s is None:
            diffs.append(f"{label}: ours <absent> vs LangChain {theirs}")
        elif Decimal(ours_s) != theirs:
            diffs.append(f"{label}: ours {ours_s} vs LangChain {theirs} per 1M")
    print(f"LangChain MODEL_COST_PER_1K_TOKENS: {len(MODEL_COST_PER_1K_TOKENS)} keys, "
          f"{len(plain)} model names, {len(plain) - len(missing)} resolved")
    for prov, name in sorted(missing):
        print(f"  MISSING {prov}/{name}")
    if diffs:
        print(f"Price differences from LangChain ({len(diffs)}), effective {day}:")
        for line in diffs:
            print("  " + line)
    return len(missing), len(diffs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", nargs="?", default=str(DEFAULT_PATH))
    ap.add_argument("--today", default=dt.date.today().isoformat(),
                    help="date whose effective prices are compared with LangChain")
    ap.add_argument("--no-langchain", action="store_true", help="skip the LangChain comparison")
    args = ap.parse_args(argv)

    try:
        with open(args.path, encoding="utf-8") as f:
            cat = json.load(f, parse_float=lambda s: float(s))
    except (OSError, json.JSONDecodeError) as exc:
        print(f"ERROR: cannot read {args.path}: {exc}")
        return 1

    chk = Checker()
    chk.catalog(cat)
    if chk.errors:
        for e in chk.errors:
            print("ERROR " + e)
        print(f"{len(chk.errors)} schema error(s) in {args.path}")
        return 1

    counts: dict[str, int] = {}
    for e in cat["models"]:
        counts[e["provider"]] = counts.get(e["provider"], 0) + 1
    print(f"{args.path}: schema OK, version {cat['version']}, {len(cat['models'])} entries ("
          + ", ".join(f"{p} {n}" for p, n in sorted(counts.items())) + ")")

    missing = 0
    if not args.no_langchain:
        missing, _ = compare_langchain(cat, dt.date.fromisoformat(args.today))
    if missing:
        print(f"{missing} LangChain model name(s) missing from the catalog")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
