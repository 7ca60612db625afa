"""The `llmledger` command line."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal

import pytest
from llmledger.cli import main


def test_prices_one_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prices", "gpt-4o"]) == 0
    out = capsys.readouterr().out
    assert "openai/gpt-4o" in out and "2.5" in out and "https://" in out


def test_prices_search_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prices", "claude", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert len(entries) > 5 and all(
        "claude" in e["id"] or any("claude" in a for a in e["aliases"]) for e in entries
    )
    assert main(["prices", "no-such-model-zzz"]) == 1


def test_cost_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "gpt-4o", "--input", "1000000", "--cached", "1000000"]) == 0
    assert Decimal(capsys.readouterr().out.strip()) == Decimal("1.25")
    assert main(["cost", "mystery-model", "--input", "5"]) == 1


def test_console_script_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "llmledger.cli", "prices", "o3"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "openai/o3" in out.stdout
