"""The `llmledger` command line: look up prices and price a usage from a terminal.

Examples:
    llmledger prices gpt-4o                  # every price dimension, tiers, variants, versions
    llmledger prices claude --json           # entries whose names contain the text, for tools
    llmledger prices --provider groq --all   # one provider's entries, one line each
    llmledger prices --stale 180             # entries not checked against a source in 180 days
    llmledger cost gpt-4o --input 12000 --cached 8000 --output 800
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from llmledger import _core

_PRICE_FIELDS = (
    "input",
    "cache_read",
    "cache_write",
    "cache_write_1h",
    "output",
    "reasoning",
    "input_audio",
    "output_audio",
)


def _json_default(o: Any) -> str:
    if isinstance(o, Decimal):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def _print_table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    print(line.rstrip())
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def _price_cells(p: dict[str, Any]) -> list[str]:
    return [str(p[f]) if f in p else "-" for f in _PRICE_FIELDS]


def _tiered_rows(label: str, t: dict[str, Any]) -> list[list[str]]:
    rows = [[label, *_price_cells(t)]]
    for tier in t.get("tiers", []):
        rows.append([f"{label} >{tier['above']}", *_price_cells(tier)])
    return rows


def _print_entry(e: dict[str, Any]) -> None:
    """One entry with every price dimension: each date-effective version, its long-context
    tiers and its batch / flex / priority variants."""
    print(e["key"] + (f"  (aliases: {', '.join(e['aliases'])})" if e["aliases"] else ""))
    facts = [f"source: {e['source'] or '-'}", f"checked: {e['checked'] or '-'}"]
    if e.get("context_window"):
        facts.append(f"context window: {e['context_window']}")
    print("  " + "; ".join(facts))
    if e["notes"]:
        print(f"  notes: {e['notes']}")
    rows: list[list[str]] = []
    for v in e["versions"]:
        since = f"from {v['from']}" if v["from"] else "since first"
        current = " (in force)" if v["from"] == e["effective_from"] else ""
        rows.extend(_tiered_rows(f"{since}{current}", v))
        for name, t in sorted(v["variants"].items()):
            rows.extend(_tiered_rows(f"  {name}", t))
    _print_table([["  " + r[0], *r[1:]] for r in rows], ["  prices", *_PRICE_FIELDS])
    print()


def _stale(entries: list[dict[str, Any]], days: int) -> list[dict[str, Any]]:
    cutoff = datetime.date.today() - datetime.timedelta(days=days)
    return [
        e
        for e in entries
        if e["checked"] is None or datetime.date.fromisoformat(e["checked"]) < cutoff
    ]


def _cmd_prices(args: argparse.Namespace) -> int:
    detailed = bool(args.model) and not args.all
    if args.model and not args.all:
        entry = _core.price(args.model, args.provider, prices=args.prices)
        if entry is None:
            # Not a single model: list entries whose names contain the text.
            needle = args.model.lower()
            entries = [
                e
                for e in _core.catalog_entries(prices=args.prices)
                if needle in e["id"] or any(needle in a for a in e["aliases"])
            ]
            if args.provider:
                entries = [e for e in entries if e["provider"] == args.provider]
            if not entries:
                print(f"llmledger: no price for '{args.model}'", file=sys.stderr)
                return 1
        else:
            entries = [entry]
    else:
        entries = _core.catalog_entries(prices=args.prices)
        if args.provider:
            entries = [e for e in entries if e["provider"] == args.provider]
    if args.stale is not None:
        entries = _stale(entries, args.stale)
        detailed = False
    if args.json:
        json.dump(entries, sys.stdout, default=_json_default, indent=2)
        print()
        return 0
    if args.stale is not None:
        print(f"{len(entries)} entries not checked in the last {args.stale} days")
        if not entries:
            return 0
    if detailed:
        for e in entries:
            _print_entry(e)
        print(f"USD per 1M tokens; catalog {_core.catalog_version()}")
        return 0
    rows = []
    for e in entries:
        rows.append(
            [e["key"]]
            + _price_cells(e["prices"])
            + [",".join(sorted(e["variants"])) or "-", e["checked"] or "-", e["source"] or "-"]
        )
    _print_table(rows, ["entry", *_PRICE_FIELDS, "variants", "checked", "source"])
    print(f"\nUSD per 1M tokens; catalog {_core.catalog_version()}")
    return 0


def _cmd_cost(args: argparse.Namespace) -> int:
    amount = _core.cost(
        args.model,
        input_tokens=args.input,
        output_tokens=args.output,
        cache_read_tokens=args.cached,
        cache_write_tokens=args.cache_write,
        reasoning_tokens=args.reasoning,
        provider=args.provider,
        service_tier=args.service_tier,
        prices=args.prices,
    )
    if amount is None:
        print(f"llmledger: cost unknown: no price for '{args.model}'", file=sys.stderr)
        return 1
    print(amount)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `llmledger` command."""
    parser = argparse.ArgumentParser(prog="llmledger", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=_core.__version__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prices", help="show catalog entries (USD per 1M tokens)")
    p.add_argument("model", nargs="?", help="a model name, or text to search entry names for")
    p.add_argument(
        "--provider", help="prefer this provider's entry (with --all or a search: only its)"
    )
    p.add_argument("--prices", help="a JSON or TOML price file layered on the catalog")
    p.add_argument("--all", action="store_true", help="list every entry, one line each")
    p.add_argument(
        "--stale",
        type=int,
        metavar="DAYS",
        help="only entries whose prices were not checked in the last DAYS days",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_prices)

    c = sub.add_parser("cost", help="price a usage exactly")
    c.add_argument("model")
    c.add_argument("--input", type=int, default=0, help="input tokens, cached included")
    c.add_argument("--output", type=int, default=0, help="output tokens, reasoning included")
    c.add_argument("--cached", type=int, default=0, help="input tokens read from cache")
    c.add_argument("--cache-write", type=int, default=0, help="input tokens written to cache")
    c.add_argument("--reasoning", type=int, default=0, help="reasoning tokens")
    c.add_argument("--provider")
    c.add_argument("--service-tier", help="flex, priority or batch")
    c.add_argument("--prices", help="a JSON or TOML price file layered on the catalog")
    c.set_defaults(func=_cmd_cost)

    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except _core.LlmLedgerError as e:
        print(f"llmledger: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`llmledger prices --all | head`): stop quietly, and keep the
        # interpreter's final flush of stdout from raising again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
