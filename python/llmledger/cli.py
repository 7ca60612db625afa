"""The `llmledger` command line: look up prices and price a usage from a terminal.

Examples:
    llmledger prices gpt-4o
    llmledger prices claude --json
    llmledger cost gpt-4o --input 12000 --cached 8000 --output 800
"""

from __future__ import annotations

import argparse
import json
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


def _cmd_prices(args: argparse.Namespace) -> int:
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
            if not entries:
                print(f"llmledger: no price for '{args.model}'", file=sys.stderr)
                return 1
        else:
            entries = [entry]
    else:
        entries = _core.catalog_entries(prices=args.prices)
    if args.json:
        json.dump(entries, sys.stdout, default=_json_default, indent=2)
        print()
        return 0
    rows = []
    for e in entries:
        p = e["prices"]
        rows.append(
            [e["key"]]
            + [str(p[f]) if f in p else "-" for f in _PRICE_FIELDS]
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
    p.add_argument("--provider", help="prefer this provider's entry")
    p.add_argument("--prices", help="a JSON or TOML price file layered on the catalog")
    p.add_argument("--all", action="store_true", help="list every entry")
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


if __name__ == "__main__":
    sys.exit(main())
