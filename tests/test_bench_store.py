"""The store benchmark runs once, tiny, so it keeps working (figures are not asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parent.parent / "benchmarks" / "bench_store.py"


def test_bench_store_runs(tmp_path: Path, postgres_url: str) -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH), "--calls", "300", "--sync-calls", "30"]
        + ["--ledger-calls", "2000", "--repeat", "1", "--ledger", str(tmp_path / "b.db")]
        + ["--postgres", postgres_url],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "records/s" in out.stdout and "ledger_report(by=['model'])" in out.stdout
    assert "PostgreSQL, batch" in out.stdout and "PostgreSQL, sync" in out.stdout
