"""The `llmledger` command line: look up prices, price a usage, read a durable ledger.

Examples:
    llmledger prices gpt-4o                  # every price dimension, tiers, variants, versions
    llmledger prices claude --json           # entries whose names contain the text, for tools
    llmledger prices --provider groq --all   # one provider's entries, one line each
    llmledger prices --stale 180             # entries not checked against a source in 180 days
    llmledger cost gpt-4o --input 12000 --cached 8000 --output 800
    llmledger report costs.db --by user_id,model --since 7d
    llmledger report costs.db --by node --format html -o report.html
    llmledger watch costs.db --by model,user_id --budget 10/day
    llmledger advise costs.db --since 30d    # what to change, with the dollars it saves
    llmledger export costs.db --format csv -o costs.csv
    llmledger import costs.jsonl --into costs.db
    llmledger metrics costs.db --port 9464 --labels feature
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from llmledger import _core

# As llmledger.context.LEDGER_ENV (not imported: it loads LangChain, and the CLI starts fast).
LEDGER_ENV = "LLMLEDGER_LEDGER"

# The catalog schema's price fields, in the core's order.
_PRICE_FIELDS: tuple[str, ...] = _core.PRICE_FIELDS


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
    if e.get("max_output_tokens"):
        facts.append(f"max output tokens: {e['max_output_tokens']}")
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


def _print_hosts(model: str, prices: str | None) -> None:
    """`model` at every host that lists it, and which entry a call without `ls_provider`
    gets: the entry `llmledger.price(model)` answers with may be another host's."""
    hosts = _core.price_hosts(model, prices=prices)
    if not hosts:
        return

    def row(label: str, e: dict[str, Any]) -> list[str]:
        return [label, e["key"], str(e["prices"]["input"]), str(e["prices"]["output"])]

    rows = [row("(no ls_provider)", hosts[0])] + [row(e["provider"] or "*", e) for e in hosts]
    print(f"'{model}' at each host (a call's ls_provider picks that host's entry):")
    _print_table(
        [["  " + r[0], *r[1:]] for r in rows], ["  ls_provider", "entry", "input", "output"]
    )
    print(
        "  Another ls_provider gets the entry of the model's maker when one is listed above\n"
        "  (openai, anthropic, google, ...), else no price: its calls are unpriced.\n"
    )


def _stale(entries: list[dict[str, Any]], days: int) -> list[dict[str, Any]]:
    cutoff = datetime.date.today() - datetime.timedelta(days=days)
    return [
        e
        for e in entries
        if e["checked"] is None or datetime.date.fromisoformat(e["checked"]) < cutoff
    ]


def _cmd_prices(args: argparse.Namespace) -> int:
    detailed = bool(args.model) and not args.all
    exact = False  # the model named one entry (not a search)
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
                print(
                    f"llmledger: no price for '{args.model}'"
                    + _did_you_mean(args.model, args.provider, args.prices),
                    file=sys.stderr,
                )
                return 1
        else:
            entries = [entry]
            exact = True
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
        if exact:
            _print_hosts(args.model, args.prices)
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


def _did_you_mean(model: str, provider: str | None, prices: str | None) -> str:
    """` (did you mean 'gpt-4o'?)` from the catalog's nearest ids, or an empty string."""
    near = _core.suggest_models(model, provider, prices=prices)
    if not near:
        return ""
    return " (did you mean " + " or ".join(f"'{n}'" for n in near) + "?)"


# The cost components in print order, with their labels.
_COMPONENTS = (
    ("input", "input (uncached)"),
    ("cache_read", "cache reads"),
    ("cache_write", "cache writes"),
    ("output", "output"),
    ("reasoning", "reasoning (priced apart)"),
    ("audio", "audio"),
)


def _cmd_cost(args: argparse.Namespace) -> int:
    priced = _core.cost_breakdown(
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
    if priced is None:
        print(
            f"llmledger: cost unknown: no price for '{args.model}'"
            + _did_you_mean(args.model, args.provider, args.prices),
            file=sys.stderr,
        )
        return 1
    if args.json:
        json.dump(priced, sys.stdout, default=_json_default, indent=2)
        print()
        return 0
    parts = priced["components"]
    rows = [[label, str(parts[k])] for k, label in _COMPONENTS if parts[k]]
    rows.append(["total", str(priced["total"])])
    tier = f", {args.service_tier} tier" if args.service_tier else ""
    print(f"{priced['total']} USD  ({priced['price_entry']}{tier}; exact)")
    _print_table(rows, ["component", "USD"])
    return 0


# ---- ledger commands ---------------------------------------------------------------------


class _Progress:
    """Progress of a long read on stderr, only when stderr is a terminal."""

    def __init__(self, path: str, verb: str) -> None:
        self.enabled = sys.stderr.isatty()
        self.verb = verb
        self.shown = False
        self.last = 0.0
        self.size = 0
        self.bytes = False
        if self.enabled:
            try:
                with open(path, "rb") as f:
                    self.bytes = f.read(16) != b"SQLite format 3\x00"
                self.size = os.path.getsize(path)
            except OSError:
                self.enabled = False

    def __call__(self, n: int) -> None:
        now = time.monotonic()
        if not self.enabled or now - self.last < 0.2:
            return
        self.last = now
        if self.bytes and self.size:
            text = (
                f"{self.verb} {n / 1e6:,.1f} of {self.size / 1e6:,.1f} MB ({100 * n // self.size}%)"
            )
        else:
            text = f"{self.verb} {n:,} records"
        sys.stderr.write(f"\r\x1b[Kllmledger: {text}")
        sys.stderr.flush()
        self.shown = True

    def done(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def _dims(by: str | None) -> list[str]:
    return [d.strip() for d in (by or "").split(",") if d.strip()]


def _flat(totals: dict[str, Any]) -> dict[str, Any]:
    """Totals as CSV cells: a nested count (`calls_by_usage_source`) becomes one column per
    key (`calls_by_usage_source.provider`, ...); None an empty cell."""
    out: dict[str, Any] = {}
    for k, v in totals.items():
        if isinstance(v, dict):
            out.update({f"{k}.{sub}": x for sub, x in v.items()})
        else:
            out[k] = "" if v is None else v
    return out


def _cmd_report_html(args: argparse.Namespace, by: list[str]) -> int:
    from llmledger.report_html import ledger_html, write_html

    if not args.output:
        raise ValueError("--format html needs -o FILE (the report is one self-contained file)")
    page = ledger_html(
        args.ledger,
        by=by,
        since=args.since,
        until=args.until,
        budgets=args.budget or [],
        currency=args.currency,
        rate=args.rate,
    )
    write_html(page, args.output)
    print(f"llmledger: wrote {args.output} ({len(page.encode()) / 1e3:,.0f} kB)", file=sys.stderr)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    by = _dims(args.by)
    if args.format == "html":
        return _cmd_report_html(args, by)
    progress = _Progress(args.ledger, "reading")
    try:
        rep = _core.ledger_report(
            args.ledger,
            by=by,
            since=args.since,
            until=args.until,
            progress=progress,
            currency=args.currency,
            rate=args.rate,
        )
    finally:
        progress.done()
    if args.format == "json":
        out = {
            "ledger": rep["path"],
            "since": args.since,
            "until": args.until,
            "by": by,
            "currency": (
                {"code": rep["totals"]["currency"], "rate": rep["totals"]["rate"]}
                if args.currency
                else None
            ),
            "totals": rep["totals"],
            "rows": rep["rows"],
        }
        json.dump(out, sys.stdout, default=_json_default, indent=2)
        print()
    elif args.format == "csv":
        w = csv.writer(sys.stdout, lineterminator="\n")
        # The columns are the core's totals, in its order: one list of them, the core's.
        columns = list(_flat(rep["totals"]))
        w.writerow([*by, *columns])
        rows = rep["rows"] if by else [rep["totals"]]
        for r in rows:
            cells = _flat(r)
            w.writerow([("" if r[d] is None else r[d]) for d in by] + [cells[c] for c in columns])
    else:
        window = ""
        if args.since or args.until:
            window = f" ({args.since or 'start'} .. {args.until or 'now'})"
        print(f"Ledger: {rep['path']}{window}")
        print(rep["summary_text"])
        if rep["table"] is not None:
            print()
            print(rep["table"])
    return 0


def _cmd_watch(args: argparse.Namespace) -> int:
    from llmledger.watch import watch

    if args.refresh <= 0:
        raise ValueError("--refresh must be a positive number of seconds")
    follower = _core.LedgerFollower(
        args.ledger, by=_dims(args.by), budgets=args.budget or [], since=args.since
    )
    return watch(
        follower,
        title=args.ledger,
        refresh=args.refresh,
        count=args.count,
        currency=args.currency,
        rate=args.rate,
    )


def _usd(amount: str) -> str:
    """`$1.2345` for an exact decimal string (at least two decimals, nothing rounded)."""
    d = Decimal(amount)
    return f"${d:.2f}" if d == d.quantize(Decimal("0.01")) else f"${d}"


def _pct(share: str) -> str:
    return f"{Decimal(share) * 100:.1f}%"


def _observed(w: dict[str, Any]) -> str:
    days = Decimal(w["days_observed"])
    span = "1 day (or less)" if days == 1 else f"{days} days"
    return f"{w['calls']:,} calls, {_usd(w['spend_usd'])} spent over {span}"


def _advice_text(advice: dict[str, Any], ledger: str) -> str:
    w = advice["window"]
    lines = [f"llmledger advise {ledger}: {_observed(w)}; monthly = 30 days at that rate"]
    findings = advice["findings"]
    if not findings:
        lines.append("no findings: nothing to change that the ledger's calls show.")
    for i, f in enumerate(findings, 1):
        lines.append("")
        if Decimal(f["saving_usd"]) > 0:
            money = (
                f"saves {_usd(f['saving_usd'])} ({_pct(f['share_of_spend'])} of spend), "
                f"about {_usd(f['monthly_saving_usd'])} a month"
            )
        else:
            money = "no saving computed"
        lines.append(f"{i}. [{f['rule']}] {money}")
        lines.append(f"   {f['title']}")
        scope = ", ".join(f"{k}={v}" for k, v in f["scope"].items())
        lines.append(f"   scope: {scope}; calls: {f['calls']:,}")
        lines.append(f"   do: {f['action']}")
        lines.append(f"   check: {f['caveat']}")
    return "\n".join(lines)


def _advice_markdown(advice: dict[str, Any], ledger: str) -> str:
    w = advice["window"]
    lines = [
        f"## llmledger advice: `{ledger}`",
        "",
        f"{_observed(w)}; monthly figures are 30 days at that rate.",
        "",
    ]
    if not advice["findings"]:
        lines.append("No findings.")
        return "\n".join(lines)
    lines += [
        "| # | rule | saving | monthly | share | calls | finding |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for i, f in enumerate(advice["findings"], 1):
        title = f["title"].replace("|", "\\|")
        lines.append(
            f"| {i} | `{f['rule']}` | {_usd(f['saving_usd'])} | "
            f"{_usd(f['monthly_saving_usd'])} | {_pct(f['share_of_spend'])} | {f['calls']:,} | "
            f"{title} |"
        )
    lines.append("")
    for i, f in enumerate(advice["findings"], 1):
        scope = ", ".join(f"`{k}={v}`" for k, v in f["scope"].items())
        lines += [
            f"### {i}. `{f['rule']}`: {_usd(f['saving_usd'])}",
            "",
            f"{f['title']}",
            "",
            f"- **scope**: {scope}",
            f"- **do**: {f['action']}",
            f"- **check**: {f['caveat']}",
            "",
        ]
    return "\n".join(lines).rstrip()


def _cmd_advise(args: argparse.Namespace) -> int:
    progress = _Progress(args.ledger, "reading")
    try:
        advice = _core.ledger_advise(
            args.ledger,
            since=args.since,
            until=args.until,
            min_saving=args.min_saving,
            prices=args.prices,
            batch_keywords=args.batch_keyword or [],
            progress=progress,
        )
    finally:
        progress.done()
    if args.format == "json":
        json.dump({"ledger": args.ledger, **advice}, sys.stdout, indent=2)
        print()
    elif args.format == "markdown":
        print(_advice_markdown(advice, args.ledger))
    else:
        print(_advice_text(advice, args.ledger))
    return 0


def _cmd_metrics(args: argparse.Namespace) -> int:
    try:
        from prometheus_client import CollectorRegistry, start_http_server
    except ImportError:
        raise ValueError(
            "llmledger metrics needs prometheus_client: pip install 'llmledger[prometheus]'"
        ) from None
    from llmledger.prometheus import PrometheusMetrics

    ledger = args.ledger or os.environ.get(LEDGER_ENV, "").strip()
    if not ledger:
        raise ValueError(
            f"llmledger metrics needs a ledger: a path (costs.db, costs.jsonl) or a "
            f"postgresql:// URL, or {LEDGER_ENV} in the environment"
        )
    registry = CollectorRegistry()
    metrics = PrometheusMetrics.of_ledger(
        ledger,
        registry=registry,
        labels=_dims(args.labels),
        top_n=args.top,
        budgets=args.budget or [],
    )
    metrics._metrics.poll()  # read what is there now, so the first scrape is quick
    server, thread = start_http_server(args.port, addr=args.host, registry=registry)
    port = server.server_port
    print(
        f"llmledger: serving http://{args.host}:{port}/metrics for {metrics._metrics.ledger}",
        file=sys.stderr,
    )
    sys.stderr.flush()
    try:
        while thread.is_alive():
            thread.join(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    progress = _Progress(args.ledger, "exporting")
    out = open(args.output, "w", encoding="utf-8", newline="") if args.output else sys.stdout
    try:
        n = _core.ledger_export(
            args.ledger,
            args.format,
            out.write,
            since=args.since,
            until=args.until,
            progress=progress,
        )
    finally:
        progress.done()
        if args.output:
            out.close()
        else:
            out.flush()
    if args.output:
        print(f"llmledger: exported {n} records to {args.output}", file=sys.stderr)
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    progress = _Progress(args.source, "importing")
    try:
        stats = _core.ledger_import(args.source, args.into, progress=progress)
    finally:
        progress.done()
    print(
        f"{args.source} -> {args.into}: {stats['read']} records read, {stats['added']} added, "
        f"{stats['already_present']} already present, {stats['bad_lines']} bad lines skipped"
    )
    return 0


def _setup_logging() -> None:
    """Ledger warnings (bad lines, with their numbers) go to stderr."""
    log = logging.getLogger("llmledger")
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("llmledger: warning: %(message)s"))
        log.addHandler(handler)
        log.propagate = False


# The module docstring's examples, shown by `llmledger --help`.
_EXAMPLES = "examples:\n" + __doc__.split("Examples:\n", 1)[1].rstrip()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `llmledger` command."""
    parser = argparse.ArgumentParser(
        prog="llmledger",
        description=__doc__.splitlines()[0],
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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

    c = sub.add_parser(
        "cost",
        help="price a usage exactly (USD, with its components)",
        description="The exact cost of one call's usage, in USD, split by component. Token "
        "counts follow LangChain: --input includes --cached and --cache-write tokens, --output "
        "includes --reasoning tokens.",
        epilog="example: llmledger cost gpt-4o --input 12000 --cached 8000 --output 800",
    )
    c.add_argument("model", help="a model name as LangChain reports it (gpt-4o, claude-...)")
    c.add_argument(
        "--input", type=int, default=0, metavar="N", help="input tokens, cached included"
    )
    c.add_argument(
        "--output", type=int, default=0, metavar="N", help="output tokens, reasoning included"
    )
    c.add_argument(
        "--cached", type=int, default=0, metavar="N", help="of --input: read from a prompt cache"
    )
    c.add_argument(
        "--cache-write",
        type=int,
        default=0,
        metavar="N",
        help="of --input: written to a prompt cache",
    )
    c.add_argument(
        "--reasoning", type=int, default=0, metavar="N", help="of --output: reasoning tokens"
    )
    c.add_argument(
        "--provider",
        help="the host whose price applies (openai, azure, bedrock, ...; default: the maker's)",
    )
    c.add_argument(
        "--service-tier", help="price at this tier: flex, priority or batch (default: standard)"
    )
    c.add_argument("--prices", help="a JSON or TOML price file layered on the catalog")
    c.add_argument("--json", action="store_true", help="machine-readable output")
    c.set_defaults(func=_cmd_cost)

    window = argparse.ArgumentParser(add_help=False)
    window.add_argument(
        "--since", help="first time included: 7d, 24h, 30m, 2w back from now, 2026-11-01, or ISO"
    )
    window.add_argument("--until", help="first time excluded (a bare date includes that whole day)")

    r = sub.add_parser(
        "report",
        parents=[window],
        help="totals and group-by tables of a ledger (.db or .jsonl)",
        description="Totals (the tracker's summary lines) and a group-by table of a ledger.",
    )
    r.add_argument("ledger", help="a SQLite (.db) or JSONL ledger, or a postgresql:// URL")
    r.add_argument(
        "--by",
        default="model",
        help="comma-separated dimensions or metadata keys (default: model; '' for totals only)",
    )
    r.add_argument("--format", choices=("table", "json", "csv", "html"), default="table")
    r.add_argument(
        "--currency",
        help="also show costs in this currency (CNY, EUR, ...) at --rate; the ledger stays USD",
    )
    r.add_argument(
        "--rate", help="units of --currency per USD, as an exact decimal (7.12)", default=None
    )
    r.add_argument("-o", "--output", help="the file --format html writes")
    r.add_argument(
        "--budget",
        action="append",
        metavar="AMOUNT/WINDOW",
        help="a budget to show in the HTML report: 10/day, 2.50/hour, 100/month (repeatable)",
    )
    r.set_defaults(func=_cmd_report)

    w = sub.add_parser(
        "watch",
        help="a live dashboard of a ledger other processes are writing (q or Ctrl-C quits)",
        description="Follows a ledger (.db or .jsonl) and redraws its figures every refresh; "
        "piped, prints one summary line per refresh. Needs rich (pip install 'llmledger[watch]').",
    )
    w.add_argument(
        "ledger",
        help="a SQLite (.db) or JSONL ledger, or a postgresql:// URL (waited for if missing)",
    )
    w.add_argument(
        "--by",
        default="model",
        help="comma-separated dimensions with a top list each (default: model)",
    )
    w.add_argument("--since", help="only calls from then on: 24h, 7d, 2026-11-01, or ISO")
    w.add_argument("--refresh", type=float, default=1.0, help="seconds between redraws (default 1)")
    w.add_argument(
        "--budget",
        action="append",
        metavar="AMOUNT/WINDOW",
        help="a budget to follow: 10/day, 2.50/hour, 100/month, 5/rolling:15m (repeatable)",
    )
    w.add_argument(
        "--currency",
        help="also show costs in this currency (CNY, EUR, ...) at --rate; the ledger stays USD",
    )
    w.add_argument("--rate", help="units of --currency per USD, as an exact decimal (7.12)")
    w.add_argument("--count", type=int, help=argparse.SUPPRESS)
    w.set_defaults(func=_cmd_watch)

    a = sub.add_parser(
        "advise",
        parents=[window],
        help="what to change, and how many dollars it saves, from a ledger's own calls",
        description="Findings ranked by the money the ledger's own calls would have saved "
        "(every figure re-priced with the catalog, exact): prompt caching, cheaper or newer "
        "models, the batch API, output caps, duplicate requests, estimated usage, unpriced "
        "models (docs/advise.md).",
    )
    a.add_argument("ledger", help="a SQLite (.db) or JSONL ledger")
    a.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    a.add_argument(
        "--min-saving",
        default="0.01",
        metavar="USD",
        help="leave out money findings saving less (default 0.01)",
    )
    a.add_argument("--prices", help="a JSON or TOML price file layered on the catalog")
    a.add_argument(
        "--batch-keyword",
        action="append",
        metavar="WORD",
        help="a word that marks batch work in root run names and tags (repeatable; adds to "
        "batch, background, nightly, offline, cron, backfill)",
    )
    a.set_defaults(func=_cmd_advise)
    m = sub.add_parser(
        "metrics",
        help="serve Prometheus /metrics computed from a ledger other processes are writing",
        description="Follows a ledger (.db, .jsonl or postgresql://) and serves its counters on "
        "/metrics: each scrape reads only the rows added since the last one, so one exporter "
        "covers every process writing the ledger. Needs prometheus_client "
        "(pip install 'llmledger[prometheus]').",
    )
    m.add_argument(
        "ledger",
        nargs="?",
        help="a SQLite (.db) or JSONL ledger, or a postgresql:// URL (waited for if missing; "
        f"default: ${LEDGER_ENV})",
    )
    m.add_argument("--port", type=int, default=9464, help="port to listen on (default 9464)")
    m.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    m.add_argument(
        "--labels",
        default="",
        help="comma-separated labels beyond model and provider (metadata keys: feature,user_id)",
    )
    m.add_argument(
        "--top",
        type=int,
        default=20,
        help="distinct values each label keeps; the rest are 'other' (default 20)",
    )
    m.add_argument(
        "--budget",
        action="append",
        metavar="LIMIT",
        help="a budget to serve as llmledger_budget_*_usd gauges, its spend computed from the "
        "ledger: 10/day, 2.50/hour, 100/month, 5/rolling:15m, 500 (repeatable; USD, UTC)",
    )
    m.set_defaults(func=_cmd_metrics)

    e = sub.add_parser("export", parents=[window], help="write a ledger's records as CSV or JSONL")
    e.add_argument("ledger", help="a SQLite (.db) or JSONL ledger, or a postgresql:// URL")
    e.add_argument("--format", choices=("csv", "jsonl"), required=True)
    e.add_argument("-o", "--output", help="write to this file (default: stdout)")
    e.set_defaults(func=_cmd_export)

    i = sub.add_parser(
        "import",
        help="copy a ledger into a SQLite ledger or PostgreSQL (idempotent: by run id)",
    )
    i.add_argument("source", help="a JSONL, SQLite or postgresql:// ledger")
    i.add_argument(
        "--into",
        required=True,
        help="the SQLite ledger or postgresql:// database (created if missing)",
    )
    i.set_defaults(func=_cmd_import)

    args = parser.parse_args(argv)
    _setup_logging()
    try:
        return int(args.func(args))
    except (_core.LlmLedgerError, ValueError) as e:
        print(f"llmledger: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `llmledger export ... | head`: the reader left; not an error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
