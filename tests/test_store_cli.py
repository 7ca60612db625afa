"""`llmledger report / export / import` over SQLite and JSONL ledgers, with exact figures."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from llmledger import CostTracker, cost
from llmledger.cli import main
from llmledger.testing import UsageFakeChatModel

# gpt-4o-mini: $0.15 in, $0.60 out per 1M tokens; gpt-4o: $2.50 in, $10 out.
ALICE_MINI = cost("gpt-4o-mini", input_tokens=1000, output_tokens=100)
BOB_4O = cost("gpt-4o", input_tokens=2000, output_tokens=300)


def line(time: str, user: str, model: str, inp: int, out: int) -> str:
    c = cost(model, input_tokens=inp, output_tokens=out)
    return json.dumps(
        {
            "time": time,
            "run_id": str(uuid.uuid4()),
            "model": model,
            "provider": "openai",
            "attribution": {"user_id": user},
            "tags": ["prod"],
            "input_tokens": inp,
            "output_tokens": out,
            "usage_source": "provider",
            "cost": str(c),
        }
    )


@pytest.fixture
def jsonl(tmp_path: Path) -> Path:
    """A JSONL ledger: alice 2 mini calls in October, bob 1 gpt-4o call in November, and one
    line that does not parse."""
    path = tmp_path / "costs.jsonl"
    path.write_text(
        "\n".join(
            [
                line("2026-10-05T10:00:00Z", "alice", "gpt-4o-mini", 1000, 100),
                line("2026-10-20T10:00:00Z", "alice", "gpt-4o-mini", 1000, 100),
                "{this line is broken",
                line("2026-11-02T10:00:00Z", "bob", "gpt-4o", 2000, 300),
            ]
        )
        + "\n"
    )
    return path


@pytest.fixture
def db(jsonl: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    path = tmp_path / "costs.db"
    assert main(["import", str(jsonl), "--into", str(path)]) == 0
    capsys.readouterr()
    return path


def test_import_is_idempotent_and_reports_counts(
    jsonl: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    into = tmp_path / "into.db"
    assert main(["import", str(jsonl), "--into", str(into)]) == 0
    out, err = capsys.readouterr()
    assert "3 records read, 3 added, 0 already present, 1 bad lines skipped" in out
    assert "costs.jsonl:3:" in err
    assert main(["import", str(jsonl), "--into", str(into)]) == 0
    assert "3 records read, 0 added, 3 already present" in capsys.readouterr().out


@pytest.mark.parametrize("which", ["jsonl", "db"])
def test_report_table_has_summary_lines_and_group_rows(
    which: str, jsonl: Path, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = jsonl if which == "jsonl" else db
    assert main(["report", str(path), "--by", "user_id,model"]) == 0
    out = capsys.readouterr().out
    total = 2 * ALICE_MINI + BOB_4O
    assert "Tokens Used: 4500\n\tPrompt Tokens: 4000\n" in out
    assert "Successful Requests: 3\n" in out
    assert f"Total Cost (USD): ${total}" in out
    rows = [r for r in out.splitlines() if r.startswith(("alice", "bob", "TOTAL"))]
    assert rows[0].split()[:3] == ["bob", "gpt-4o", "1"]  # most expensive first
    assert rows[0].split()[-2] == f"${BOB_4O}"
    assert rows[1].split()[:3] == ["alice", "gpt-4o-mini", "2"]
    assert rows[1].split()[-2] == f"${2 * ALICE_MINI}"
    assert rows[2].split()[-2] == f"${total}"


@pytest.mark.parametrize("which", ["jsonl", "db"])
def test_report_json_and_time_window(
    which: str, jsonl: Path, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = jsonl if which == "jsonl" else db
    assert (
        main(
            [
                "report",
                str(path),
                "--by",
                "user_id",
                "--since",
                "2026-10-10",
                "--until",
                "2026-11-02",
                "--format",
                "json",
            ]
        )
        == 0
    )
    rep = json.loads(capsys.readouterr().out)
    # The second alice call and bob's (--until's date includes that whole day).
    assert rep["totals"]["calls"] == 2
    assert Decimal(rep["totals"]["cost"]) == ALICE_MINI + BOB_4O
    assert {r["user_id"]: Decimal(r["cost"]) for r in rep["rows"]} == {
        "alice": ALICE_MINI,
        "bob": BOB_4O,
    }


def test_report_csv(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(db), "--by", "model", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["model"], r["calls"], Decimal(r["cost"])) for r in rows] == [
        ("gpt-4o", "1", BOB_4O),
        ("gpt-4o-mini", "2", 2 * ALICE_MINI),
    ]


def test_report_totals_only_and_tag(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(db), "--by", ""]) == 0
    out = capsys.readouterr().out
    assert "Successful Requests: 3" in out and "TOTAL" not in out
    assert main(["report", str(db), "--by", "tag", "--format", "json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert [(r["tag"], r["calls"]) for r in rep["rows"]] == [("prod", 3)]


def test_export_csv_and_jsonl(db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_csv = tmp_path / "out.csv"
    assert main(["export", str(db), "--format", "csv", "-o", str(out_csv)]) == 0
    assert "exported 3 records" in capsys.readouterr().err
    with out_csv.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert sum(Decimal(r["cost"]) for r in rows) == 2 * ALICE_MINI + BOB_4O
    assert json.loads(rows[0]["attribution"]) == {"user_id": "alice"}
    assert main(["export", str(db), "--format", "jsonl", "--since", "2026-11-01"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["model"] == "gpt-4o"


def test_tracker_ledger_reported_by_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "live.db"
    t = CostTracker(store=path, durability="sync")
    llm = UsageFakeChatModel(model="gpt-4o-mini")
    for user in ["x", "y", "x"]:
        llm.invoke("hello", config={"callbacks": [t], "metadata": {"user_id": user}})
    t.close()
    assert main(["report", str(path), "--by", "user_id"]) == 0
    out = capsys.readouterr().out
    # The same summary lines the tracker prints.
    assert str(t) in out


def test_errors_exit_2_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "nope.db")]) == 2
    assert "nope.db: no such file" in capsys.readouterr().err
    (tmp_path / "x.jsonl").write_text("")
    assert main(["report", str(tmp_path / "x.jsonl"), "--since", "yesterday"]) == 2
    assert "'yesterday' is not a time" in capsys.readouterr().err


def test_piped_output_is_plain(db: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "llmledger.cli", "report", str(db), "--by", "model"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "\x1b" not in out.stdout + out.stderr  # no colour, no progress when piped
    assert "gpt-4o-mini" in out.stdout
