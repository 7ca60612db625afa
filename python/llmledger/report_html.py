"""The HTML report: one self-contained file (scripts, styles and data inline; no network at
view time), filled with the core's aggregates as JSON. Presentation only: every amount is the
core's exact decimal, shown as `llmledger report --format json` prints it.

Example:
    >>> from llmledger.report_html import ledger_html
    >>> html = ledger_html("costs.db", by=["user_id"])  # doctest: +SKIP
"""

from __future__ import annotations

import datetime
import html as _html
import json
import os
import re
from collections.abc import Sequence
from decimal import Decimal
from importlib import resources
from typing import Any

from llmledger import _core

__all__ = ["ledger_html", "summary_html", "tracker_html", "write_html"]


def _json_default(o: Any) -> str:
    # The same conversion `llmledger report --format json` uses, so both agree to the digit.
    if isinstance(o, Decimal):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def _asset(name: str) -> str:
    return resources.files("llmledger").joinpath(name).read_text(encoding="utf-8")


def _script_safe(text: str) -> str:
    # Inside <script>, "</" could close the element early; "<!--" could open a comment.
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


# Group-by rows drawn in the table; the rest are counted (all are in `--format json`), so a
# report by a dimension of a million values stays small.
MAX_ROWS = 1000


def _in_currency(
    report: dict[str, Any], digest_json: str, currency: str | None, rate: Any
) -> tuple[dict[str, Any], str, dict[str, Any] | None]:
    """Adds `converted_cost` (the core's exact conversion) to the digest's root runs and
    calls, and to the report's totals and rows where the core has not; the spend chart's
    series (`series["converted_cost"]`, the same shape as `series["cost"]`) and the average
    call's cost (`totals["converted_avg_cost"]`) too. The ledger's USD amounts are kept as
    they are."""
    if currency is None and rate is None:
        return report, digest_json, None
    if currency is None or rate is None:
        raise ValueError(
            'currency and rate go together: currency="CNY", rate="7.12" (units per USD)'
        )
    digest = json.loads(digest_json)
    items = [report["totals"], *report["rows"], *digest["roots"], *digest["top_calls"]]
    view = _core.currency_view([i.get("cost") for i in items], currency, rate)
    for item, amount in zip(items, view["amounts"], strict=True):
        item.setdefault("converted_cost", amount)
    # The charts: every bucket's amount converted by the core, one call for all of them.
    series = digest["series"]
    flat = [a for row in series["cost"] for a in row] + [digest["totals"].get("avg_cost")]
    amounts = iter(_core.currency_view(flat, currency, rate)["amounts"])
    series["converted_cost"] = [[next(amounts) for _ in row] for row in series["cost"]]
    digest["totals"]["converted_avg_cost"] = next(amounts)
    meta = {"code": view["code"], "rate": view["rate"], "label": view["label"]}
    return report, json.dumps(digest, default=_json_default), meta


def _render(
    report: dict[str, Any],
    digest_json: str,
    *,
    title: str,
    source: str,
    currency: str | None = None,
    rate: Any = None,
) -> str:
    report, digest_json, money = _in_currency(report, digest_json, currency, rate)
    rows = report["rows"]
    report = {**report, "rows": rows[:MAX_ROWS], "rows_omitted": max(0, len(rows) - MAX_ROWS)}
    stack_by = (report["by"] or ["model"])[0]
    data = (
        '{"report": '
        + json.dumps(report, default=_json_default)
        + ', "digest": '
        + digest_json
        + ", "
        + json.dumps(
            {
                "source": source,
                "stack_by": stack_by,
                "currency": money,
                "version": _core.__version__,
                "catalog_version": _core.catalog_version(),
                "generated": datetime.datetime.now(datetime.timezone.utc).strftime(
                    "%Y-%m-%d %H:%M UTC"
                ),
            },
            default=_json_default,
        )[1:]
    )
    parts = {
        "/*__UPLOT_CSS__*/": _asset("_vendor/uplot/uPlot.min.css"),
        "/*__UPLOT_JS__*/": _script_safe(_asset("_vendor/uplot/uPlot.iife.min.js")),
        "__TITLE__": _html.escape(title),
        "__DATA__": _script_safe(data),
    }
    # One pass: text put in (data, the library) is never searched for placeholders.
    pattern = "|".join(re.escape(k) for k in parts)
    return re.sub(pattern, lambda m: parts[m.group(0)], _asset("_report.html"))


def ledger_html(
    ledger: str | os.PathLike[str],
    *,
    by: Sequence[str] = ("model",),
    since: str | None = None,
    until: str | None = None,
    budgets: Sequence[str] = (),
    title: str | None = None,
    currency: str | None = None,
    rate: Decimal | int | str | None = None,
) -> str:
    """The HTML report of a ledger file (SQLite or JSONL), as text. With `currency` and
    `rate` (units per USD, exact: `"7.12"`) costs are also shown in that currency, and the
    page names the rate; the ledger's amounts stay USD."""
    by = list(by)
    rep = _core.ledger_report(ledger, by=by, since=since, until=until, currency=currency, rate=rate)
    report = {
        "ledger": rep["path"],
        "since": since,
        "until": until,
        "by": by,
        "totals": rep["totals"],
        "rows": rep["rows"],
    }
    digest = _core.ledger_digest(
        ledger,
        by=by or ["model"],
        budgets=list(budgets),
        since=since,
        until=until,
    )
    name = os.path.basename(os.fspath(ledger))
    return _render(
        report,
        digest,
        title=title or f"LLM costs: {name}",
        source=rep["path"],
        currency=currency,
        rate=rate,
    )


def tracker_html(
    tracker: Any,
    *,
    by: Sequence[str] = ("model",),
    budgets: Sequence[str] = (),
    title: str = "LLM costs",
    currency: str | None = None,
    rate: Decimal | int | str | None = None,
) -> str:
    """The HTML report of the calls a tracker (`CostTracker` or `_core.Tracker`) recorded;
    `currency` and `rate` as for `ledger_html`."""
    core = getattr(tracker, "_core", tracker)
    by = list(by)
    report = {
        "ledger": None,
        "since": None,
        "until": None,
        "by": by,
        "totals": core.totals(),
        "rows": core.summary(by) if by else [],
    }
    follower = _core.LedgerFollower.of_tracker(core, by=by or ["model"], budgets=list(budgets))
    follower.poll()
    return _render(
        report, follower.view(), title=title, source="this process", currency=currency, rate=rate
    )


def write_html(page: str, path: str | os.PathLike[str]) -> None:
    """Writes a report page to `path` (UTF-8)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)


def summary_html(tracker: Any) -> str:
    """A compact HTML summary of a tracker (what Jupyter shows for it)."""
    core = getattr(tracker, "_core", tracker)
    t = core.totals()
    rows = core.summary(["model"])[:5]
    esc = _html.escape
    unpriced = int(t["unpriced_calls"])
    cost = f"${t['cost']}" + (f" (+{unpriced} unpriced)" if unpriced else "")
    cells = "".join(
        f"<tr><td style='text-align:left'>{esc(str(r['model'] or '-'))}</td>"
        f"<td>{r['calls']:,}</td><td>{r['total_tokens']:,}</td><td>${esc(str(r['cost']))}</td></tr>"
        for r in rows
    )
    return (
        "<div class='llmledger-summary' style='font-family:system-ui,sans-serif'>"
        f"<b>llmledger</b>: {t['calls']:,} calls, {t['total_tokens']:,} tokens "
        f"({t['input_tokens']:,} in, {t['cache_read_tokens']:,} cached, "
        f"{t['output_tokens']:,} out), <b>{esc(cost)}</b>"
        + (
            "<table><thead><tr><th style='text-align:left'>model</th><th>calls</th>"
            f"<th>tokens</th><th>cost (USD)</th></tr></thead><tbody>{cells}</tbody></table>"
            if rows
            else ""
        )
        + "</div>"
    )
