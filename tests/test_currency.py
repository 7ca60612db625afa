"""Costs shown in another currency at a rate the user gives (`--currency CNY --rate 7.12`,
`summary(currency=, rate=)`): exact decimals, the rate named on the output, the ledger in USD."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from llmledger import CostTracker
from llmledger.cli import main
from llmledger.testing import UsageFakeChatModel

USAGE = {"input_tokens": 10_000, "output_tokens": 500, "total_tokens": 10_500}
# gpt-4o: $2.50 / 1M input, $10 / 1M output -> $0.03 per call.
CALL_USD = Decimal("0.03")


def tracked(path: Path | None = None, calls: int = 2) -> CostTracker:
    t = CostTracker(store=str(path), durability="sync") if path else CostTracker()
    for _ in range(calls):
        UsageFakeChatModel(model="gpt-4o", usage=USAGE).invoke("x", config={"callbacks": [t]})
    return t


def test_summary_in_cny_is_exact_and_names_the_rate() -> None:
    t = tracked()
    (row,) = t.summary(by="model", currency="cny", rate="7.12")
    assert row["cost"] == 2 * CALL_USD  # USD, as always
    assert (row["currency"], row["rate"]) == ("CNY", Decimal("7.12"))
    assert row["converted_cost"] == Decimal("0.4272")
    # Without a currency nothing changes.
    assert "converted_cost" not in t.summary(by="model")[0]
    assert t.records()[0]["cost"] == CALL_USD


def test_report_in_cny_has_the_column_and_the_rate_line() -> None:
    text = tracked().report(by="model", currency="CNY", rate=Decimal("7.12"))
    assert "cost_cny" in text and "CNY 0.4272" in text
    assert text.splitlines()[-1] == (
        "Amounts in CNY at 7.12 CNY per USD (the rate given; the ledger is in USD)"
    )


@pytest.mark.parametrize(
    ("kw", "says"),
    [
        ({"currency": "CNY", "rate": 7.12}, "rate must be exact"),
        ({"currency": "CNY"}, "currency and rate go together"),
        ({"currency": "CNY", "rate": "0"}, "rate must be positive"),
        ({"currency": "yuan", "rate": "7"}, "three-letter"),
        ({"currency": "CNY", "rate": "seven"}, "not a decimal"),
    ],
)
def test_bad_currency_arguments_are_refused(kw: dict[str, object], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        tracked(calls=1).summary(by="model", **kw)  # type: ignore[arg-type]


def test_cli_report_in_cny(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "costs.db"
    tracked(db).close()
    assert main(["report", str(db), "--currency", "CNY", "--rate", "7.12"]) == 0
    out = capsys.readouterr().out
    assert "Total Cost (USD): $0.06" in out
    assert "Total Cost (CNY): CNY 0.4272" in out
    assert "Amounts in CNY at 7.12 CNY per USD" in out
    assert main(["report", str(db), "--format", "json", "--currency", "CNY", "--rate", "7.12"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["currency"] == {"code": "CNY", "rate": "7.12"}
    assert rep["totals"]["cost"] == "0.06"
    assert rep["totals"]["converted_cost"] == "0.4272"
    assert rep["rows"][0]["converted_cost"] == "0.4272"


def test_currency_view_converts_exactly_and_keeps_unknown_unknown() -> None:
    from llmledger import _core

    v = _core.currency_view(["0.06", None, Decimal("0.0000001")], "cny", "7.12")
    assert (v["code"], v["rate"]) == ("CNY", Decimal("7.12"))
    assert v["amounts"] == [Decimal("0.4272"), None, Decimal("0.000000712")]
    assert v["label"] == "Amounts in CNY at 7.12 CNY per USD (the rate given; the ledger is in USD)"
    with pytest.raises(ValueError, match="rate must be exact"):
        _core.currency_view(["1"], "CNY", 7.12)  # type: ignore[arg-type]


def test_tracker_html_report_in_cny(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    tracked().report_html(out, currency="CNY", rate="7.12")
    page = out.read_text()
    # The page's data: the core's converted total and the rate it names.
    assert '"converted_cost": "0.4272"' in page
    assert '"label": "Amounts in CNY at 7.12 CNY per USD' in page
    with pytest.raises(ValueError, match="currency and rate go together"):
        tracked(calls=1).report_html(tmp_path / "x.html", rate="7.12")
