"""The `llmledger` command line."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from llmledger.cli import main


def test_prices_one_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prices", "gpt-4o"]) == 0
    out = capsys.readouterr().out
    assert "openai/gpt-4o" in out and "2.5" in out and "https://" in out


def test_prices_shows_output_limit(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prices", "gpt-4o"]) == 0
    assert "max output tokens: 16384" in capsys.readouterr().out
    assert main(["prices", "gpt-4o", "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["max_output_tokens"] == 16384


def test_prices_search_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prices", "claude", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert len(entries) > 5 and all(
        "claude" in e["id"] or any("claude" in a for a in e["aliases"]) for e in entries
    )
    assert main(["prices", "no-such-model-zzz"]) == 1


def test_cost_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "gpt-4o", "--input", "1000000", "--cached", "1000000", "--json"]) == 0
    assert Decimal(json.loads(capsys.readouterr().out)["total"]) == Decimal("1.25")
    assert main(["cost", "mystery-model", "--input", "5"]) == 1


def test_console_script_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "llmledger.cli", "prices", "o3"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "openai/o3" in out.stdout


def test_prices_shows_every_dimension_tiers_variants_versions(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["prices", "o3"]) == 0
    out = capsys.readouterr().out
    assert "from 2025-06-10 (in force)" in out and "since first" in out  # both versions
    assert "batch" in out and "flex" in out and "priority" in out
    assert "cache_write_1h" in out and "output_audio" in out  # every column
    assert main(["prices", "gemini-2.5-pro", "--provider", "google"]) == 0
    assert ">200000" in capsys.readouterr().out  # the long-context tier


def test_prices_json_has_versions_with_variants(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prices", "o3", "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert [v["from"] for v in entry["versions"]] == [None, "2025-06-10"]
    assert entry["versions"][1]["variants"]["batch"]["input"] == "1"
    assert entry["source"].startswith("https://") and entry["checked"]


def test_prices_provider_filter(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prices", "--all", "--provider", "groq", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert len(entries) > 10 and {e["provider"] for e in entries} == {"groq"}


def test_prices_stale(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "p.json"
    f.write_text(
        json.dumps(
            {
                "old-model": {"input": "1", "output": "2", "checked": "2020-01-01"},
                "new-model": {"input": "1", "output": "2", "checked": date.today().isoformat()},
                "unchecked-model": {"input": "1", "output": "2"},
            }
        )
    )
    assert main(["prices", "--stale", "180", "--prices", str(f), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    # An entry with no checked date is stale too.
    assert {e["id"] for e in listed if e["override"]} == {"old-model", "unchecked-model"}
    cutoff = date.fromordinal(date.today().toordinal() - 180).isoformat()
    assert all(e["checked"] is None or e["checked"] < cutoff for e in listed)
    assert main(["prices", "--stale", "180", "--prices", str(f)]) == 0
    out = capsys.readouterr().out
    assert "entries not checked in the last 180 days" in out
    assert "old-model" in out and "new-model" not in out
    assert main(["prices", "--stale", "100000"]) == 0
    assert "0 entries" in capsys.readouterr().out


def test_output_piped_into_a_reader_that_stops_early() -> None:
    # Regression: `llmledger prices --all | head -1` printed a BrokenPipeError traceback.
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmledger.cli", "prices", "--all"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # the reader goes away after one line
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 0
    assert b"entry" in first
    assert "Traceback" not in err and "BrokenPipe" not in err
