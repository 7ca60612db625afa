"""The HTML report, in a real headless Chromium: it loads with no console error and no network
request, every chart draws, and its figures equal `llmledger report --format json`'s."""

from __future__ import annotations

import importlib.util
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from browser import browser_page
from llmledger.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _synthetic() -> Any:
    spec = importlib.util.spec_from_file_location(
        "synthetic_ledger", ROOT / "scripts/synthetic_ledger.py"
    )
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["synthetic_ledger"] = mod
    spec.loader.exec_module(mod)
    return mod


synthetic = _synthetic()


@pytest.fixture(params=["jsonl", "db"])
def ledger(
    request: pytest.FixtureRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Path:
    path = synthetic.write(tmp_path / "costs.jsonl", calls=600, days=2)
    if request.param == "db":
        db = tmp_path / "costs.db"
        assert main(["import", str(path), "--into", str(db)]) == 0
        path = db
    capsys.readouterr()
    return path


def _json_report(ledger: Path, by: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["report", str(ledger), "--by", by, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def _cost_text(t: dict[str, Any]) -> str:
    if t["unpriced_calls"] and t["unpriced_calls"] >= t["calls"]:
        return "unknown"
    return ("\u2265 " if t["unpriced_calls"] else "") + "$" + t["cost"]


PAGE_FIGURES = """() => {
  const cells = (tr) => [...tr.children].map((td) => td.textContent.trim());
  const canvases = [...document.querySelectorAll('.chart canvas')].map((c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let inked = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) inked++;
    return inked;
  });
  return {
    ready: document.body.getAttribute('data-ready'),
    cost: document.querySelector('[data-field=cost]').textContent,
    calls: document.querySelector('.card [data-field=calls]').textContent,
    rows: [...document.querySelectorAll('#table-by tbody tr[data-row]')].map(cells),
    total: cells(document.querySelector('#table-by tfoot tr')),
    header: cells(document.querySelector('#table-by thead tr')),
    canvases,
    roots: document.querySelectorAll('#table-roots tbody tr').length,
    calls_rows: document.querySelectorAll('#table-calls tbody tr').length,
    budgets: document.querySelectorAll('#budgets .budget').length,
  };
}"""


def test_html_report_in_chromium_equals_json(
    ledger: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.html"
    assert (
        main(
            [
                "report",
                str(ledger),
                "--by",
                "node",
                "--format",
                "html",
                "-o",
                str(out),
                "--budget",
                "5/day",
            ]
        )
        == 0
    )
    capsys.readouterr()
    expected = _json_report(ledger, "node", capsys)
    page_text = out.read_text()
    assert "<script src" not in page_text and "<link" not in page_text, "everything inline"
    errors: list[str] = []
    requests: list[str] = []
    url = out.as_uri()
    with browser_page(tmp_path / "profile") as page:
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url) if r.url != url else None)
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']", timeout=10_000)
        figures = page.evaluate(PAGE_FIGURES)
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    assert errors == []
    assert requests == [], "the page fetched something"
    assert shot.stat().st_size > 10_000
    # Both charts drew (stacked spend bars; token lines): real ink on each canvas.
    assert len(figures["canvases"]) == 2 and all(n > 2000 for n in figures["canvases"]), figures[
        "canvases"
    ]
    t = expected["totals"]
    assert figures["cost"] == _cost_text(t)
    assert figures["calls"] == f"{t['calls']:,}"
    assert figures["header"][0] == "node"
    assert len(figures["rows"]) == len(expected["rows"]) > 3
    for cells, row in zip(figures["rows"], expected["rows"], strict=True):
        assert cells[0] == (row["node"] or "-")
        assert cells[1] == f"{row['calls']:,}"
        assert cells[2] == f"{row['input_tokens']:,}"
        assert cells[7] == _cost_text(row), "to the last digit"
    assert figures["total"][7] == _cost_text(t)
    assert figures["roots"] == 10 and figures["calls_rows"] == 10
    assert figures["budgets"] == 1


def test_html_report_stays_small_for_many_groups(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Aggregates only: the size follows buckets and top lists, not calls; at most 1000 rows.
    path = synthetic.write(tmp_path / "costs.jsonl", calls=20_000, days=30)
    out = tmp_path / "r.html"
    assert (
        main(["report", str(path), "--by", "root_run_id", "--format", "html", "-o", str(out)]) == 0
    )
    capsys.readouterr()
    size = out.stat().st_size
    assert size < 1_000_000, size
    data = out.read_text()
    assert '"rows_omitted": ' in data and '"rows_omitted": 0' not in data


def test_html_needs_an_output_file(ledger: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(ledger), "--format", "html"]) == 2
    assert "--format html needs -o FILE" in capsys.readouterr().err


def _in(code: str, amount: str | None) -> str:
    if amount is None:
        return "unknown"
    whole, _, frac = amount.partition(".")
    return f"{code} {whole}.{frac.ljust(2, '0')}"


def _in_text(t: dict[str, Any]) -> str:
    # As `_cost_text`: a group of unpriced calls only costs "unknown", in any currency.
    if t["unpriced_calls"] and t["unpriced_calls"] >= t["calls"]:
        return "unknown"
    return ("\u2265 " if t["unpriced_calls"] else "") + _in("CNY", t["converted_cost"])


CURRENCY_FIGURES = """() => {
  const cells = (tr) => [...tr.children].map((td) => td.textContent.trim());
  return {
    ready: document.body.getAttribute('data-ready'),
    subtitle: document.getElementById('subtitle').textContent,
    note: document.querySelector('.card.wide .n').textContent,
    header: cells(document.querySelector('#table-by thead tr')),
    rows: [...document.querySelectorAll('#table-by tbody tr[data-row]')].map(cells),
    total: cells(document.querySelector('#table-by tfoot tr')),
    roots_header: cells(document.querySelector('#table-roots thead tr')),
    roots: [...document.querySelectorAll('#table-roots tbody tr')].map(cells),
    calls_header: cells(document.querySelector('#table-calls thead tr')),
    calls: [...document.querySelectorAll('#table-calls tbody tr')].map(cells),
    footer: document.getElementById('footer').textContent,
    spend_sub: document.getElementById('spend-sub').textContent,
    avg_note: document.querySelector('[data-field=avg_cost]').nextElementSibling.textContent,
  };
}"""


def test_html_report_in_cny_names_the_rate_and_converts_exactly(
    ledger: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from decimal import Decimal

    out = tmp_path / "report-cny.html"
    args = ["report", str(ledger), "--by", "model", "--currency", "CNY", "--rate", "7.12"]
    assert main([*args, "--format", "html", "-o", str(out)]) == 0
    capsys.readouterr()
    assert main([*args, "--format", "json"]) == 0
    expected = json.loads(capsys.readouterr().out)
    with browser_page(tmp_path / "profile") as page:
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(out.as_uri())
        page.wait_for_selector("body[data-ready='1']", timeout=10_000)
        f = page.evaluate(CURRENCY_FIGURES)
        # The spend chart's legend follows the cursor: hover the middle of its plot.
        box = page.locator("#chart-spend .u-over").bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        legend = page.evaluate(SPEND_LEGEND)
        shot = tmp_path / "report-cny.png"
        page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    assert errors == []
    label = "Amounts in CNY at 7.12 CNY per USD (the rate given; the ledger is in USD)"
    assert label in f["subtitle"]
    assert "7.12 CNY per USD" in f["footer"]
    t = expected["totals"]
    assert f["note"].startswith(_in_text(t) + " at 7.12 CNY per USD")
    # The by-table: a CNY column beside the USD one, the core's own conversion, every row.
    assert f["header"][7:9] == ["cost (USD)", "cost (CNY)"]
    assert len(f["rows"]) == len(expected["rows"]) > 1
    for cells, row in zip(f["rows"], expected["rows"], strict=True):
        assert Decimal(row["converted_cost"]) == Decimal(row["cost"]) * Decimal("7.12")
        assert cells[8] == _in_text(row)
    assert f["total"][8] == _in_text(t)
    # Root runs and the most expensive calls: each USD amount times the rate, exactly.
    assert f["roots_header"][3:5] == ["cost (USD)", "cost (CNY)"]
    assert f["calls_header"][4:6] == ["cost (USD)", "cost (CNY)"]
    for cells in [*[r[3:5] for r in f["roots"]], *[c[4:6] for c in f["calls"]]]:
        usd, cny = (c.removeprefix("\u2265 ") for c in cells)
        if usd == cny == "unknown":
            continue
        assert usd.startswith("$") and cny.startswith("CNY ")
        assert Decimal(cny[4:]) == Decimal(usd[1:]) * Decimal("7.12")
    assert len(f["roots"]) == 10 and len(f["calls"]) == 10
    # The spend chart is in CNY too: its subtitle names the rate, its series are the core's
    # exact conversion of the USD series, and the legend shows them in CNY.
    assert "in CNY at 7.12 CNY per USD" in f["spend_sub"]
    data = _page_data(out)
    series = data["digest"]["series"]
    assert len(series["converted_cost"]) == len(series["cost"]) > 1
    for usd_row, cny_row in zip(series["cost"], series["converted_cost"], strict=True):
        assert [Decimal(c) for c in cny_row] == [Decimal(u) * Decimal("7.12") for u in usd_row]
    avg = data["digest"]["totals"]
    assert Decimal(avg["converted_avg_cost"]) == Decimal(avg["avg_cost"]) * Decimal("7.12")
    assert f["avg_note"].endswith(_in("CNY", avg["converted_avg_cost"]))
    # Legend rows: the x value (time), then one per key, drawn last key first.
    values = legend[1:]
    assert len(values) == len(series["keys"])
    assert all(v.startswith("CNY ") for v in values), legend
    for v, row in zip(values, reversed(series["converted_cost"]), strict=True):
        shown = {f"CNY {Decimal(c).quantize(Decimal('0.0001'))}" for c in row}
        assert v in shown, (v, sorted(shown)[:5])


# The legend's values of the spend bars (the unpriced-calls markers, when drawn, apart).
SPEND_LEGEND = """() => [...document.querySelectorAll('#chart-spend .u-legend .u-series')]
  .filter((tr) => !tr.querySelector('.u-label').textContent.startsWith('unpriced'))
  .map((tr) => tr.querySelector('.u-value').textContent.trim())"""


def _page_data(page: Path) -> dict[str, Any]:
    text = page.read_text()
    start = text.index('id="llmledger-data">') + len('id="llmledger-data">')
    return json.loads(text[start : text.index("</script>", start)].replace("<\\/", "</"))


def test_html_report_charts_in_usd_say_so(
    ledger: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.html"
    assert main(["report", str(ledger), "--format", "html", "-o", str(out)]) == 0
    capsys.readouterr()
    assert "converted_cost" not in _page_data(out)["digest"]["series"]
    with browser_page(tmp_path / "profile") as page:
        page.goto(out.as_uri())
        page.wait_for_selector("body[data-ready='1']", timeout=10_000)
        box = page.locator("#chart-spend .u-over").bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        legend = page.evaluate(SPEND_LEGEND)
        sub = page.evaluate("() => document.getElementById('spend-sub').textContent")
    assert "in USD" in sub
    assert all(v.startswith("$") for v in legend[1:]), legend


def test_html_report_currency_needs_a_rate(
    ledger: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.html"
    args = ["report", str(ledger), "--currency", "CNY", "--format", "html", "-o", str(out)]
    assert main(args) != 0
    assert "currency and rate go together" in capsys.readouterr().err
    assert not out.exists()


CHART_SCALES = """() => window.llmledgerCharts.map((u) => ({
  x: [u.scales.x.min, u.scales.x.max], y: [u.scales.y.min, u.scales.y.max],
}))"""


def test_html_report_charts_of_one_hour_start_at_zero_and_span_the_hour(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Regression: with every call in one hour, the spend chart's y axis ran from just under
    # the bucket's total to just over it (a stacked bar cut above 0: a 3% model drawn as
    # most of the bar), and the tokens chart's time axis spanned years.
    from llmledger import CostTracker
    from llmledger.testing import UsageFakeChatModel

    db = tmp_path / "hour.db"
    t = CostTracker(store=db)
    for i in range(12):
        model = "gpt-4o-mini" if i % 3 == 0 else "gpt-4o"
        UsageFakeChatModel(model=model).invoke(f"hello {i}", config={"callbacks": [t]})
    t.close()
    out = tmp_path / "hour.html"
    assert main(["report", str(db), "--by", "model", "--format", "html", "-o", str(out)]) == 0
    capsys.readouterr()
    bucket = float(_page_data(out)["digest"]["series"]["t"][0])
    with browser_page(tmp_path / "profile") as page:
        page.goto(out.as_uri())
        page.wait_for_selector("body[data-ready='1']", timeout=10_000)
        scales = page.evaluate(CHART_SCALES)
        shot = tmp_path / "hour.png"
        page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    assert len(scales) == 2
    for s in scales:
        assert s["x"] == [bucket - 1800, bucket + 1800], s
        assert s["y"][0] == 0 and s["y"][1] > 0, s


UNPRICED_MARKERS = """() => {
  const u = window.llmledgerCharts[0];
  const i = u.series.findIndex((s) => s.label.startsWith('unpriced'));
  return i < 0 ? null : { data: u.data[i], scale: [u.scales.n.min, u.scales.n.max],
    sub: document.getElementById('spend-sub').textContent };
}"""


def test_html_report_marks_buckets_of_unpriced_calls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Regression: an hour of only unpriced calls drew as an empty bar, as if it cost nothing.
    import datetime as dt

    from llmledger import CostTracker
    from llmledger.testing import UsageFakeChatModel

    now = [dt.datetime(2026, 12, 1, 10, 5, tzinfo=dt.UTC)]
    db = tmp_path / "unpriced.db"
    t = CostTracker(store=db, clock=lambda: now[0])
    for i in range(4):
        UsageFakeChatModel(model="gpt-4o").invoke(f"hello {i}", config={"callbacks": [t]})
    now[0] = dt.datetime(2026, 12, 1, 11, 5, tzinfo=dt.UTC)
    for i in range(3):
        UsageFakeChatModel(model="acme-model-not-in-any-catalog").invoke(
            f"hi {i}", config={"callbacks": [t]}
        )
    t.close()
    out = tmp_path / "unpriced.html"
    assert main(["report", str(db), "--by", "model", "--format", "html", "-o", str(out)]) == 0
    capsys.readouterr()
    series = _page_data(out)["digest"]["series"]
    assert series["unpriced"] == [0, 3]
    assert all(Decimal(row[1]) == 0 for row in series["cost"])  # the bars say $0 there
    with browser_page(tmp_path / "profile") as page:
        page.goto(out.as_uri())
        page.wait_for_selector("body[data-ready='1']", timeout=10_000)
        m = page.evaluate(UNPRICED_MARKERS)
        roots = page.evaluate(
            "() => [...document.querySelectorAll('#table-roots tbody tr')]"
            ".map((tr) => tr.children[0].textContent.trim())"
        )
        shot = tmp_path / "unpriced.png"
        page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    assert m is not None, "no unpriced-calls markers"
    assert m["data"] == [None, 3]
    assert m["scale"][0] == 0 and m["scale"][1] > 3
    assert "3 unpriced calls (right axis), not in the bars" in m["sub"]
    # Regression: root runs were named by their run id's first 8 digits, which LangChain's
    # UUIDv7 ids share within a minute: seven runs, one name.
    assert len(roots) == 7 and len(set(roots)) == 7, roots


def test_html_report_without_unpriced_calls_draws_no_markers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from llmledger import CostTracker
    from llmledger.testing import UsageFakeChatModel

    db = tmp_path / "priced.db"
    t = CostTracker(store=db)
    UsageFakeChatModel(model="gpt-4o").invoke("hello", config={"callbacks": [t]})
    t.close()
    out = tmp_path / "priced.html"
    assert main(["report", str(db), "--format", "html", "-o", str(out)]) == 0
    capsys.readouterr()
    with browser_page(tmp_path / "profile") as page:
        page.goto(out.as_uri())
        page.wait_for_selector("body[data-ready='1']", timeout=10_000)
        assert page.evaluate(UNPRICED_MARKERS) is None
