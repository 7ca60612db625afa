"""The advisor benchmark runs once, tiny, so it keeps working (figures are not asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parent.parent / "benchmarks" / "bench_advise.py"


def test_bench_advise_runs(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH), "--calls", "2000", "--repeat", "1"]
        + ["--ledger", str(tmp_path / "a.db")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "ledger_advise() in process" in out.stdout
    assert "prompt_caching" in out.stdout and "duplicate_requests" in out.stdout
