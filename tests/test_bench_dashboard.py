"""The dashboard benchmark runs once, tiny, so it keeps working (figures are not asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parent.parent / "benchmarks" / "bench_dashboard.py"


def test_bench_dashboard_runs(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH), "--calls", "3000", "--repeat", "1", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "html report" in out.stdout and "\njsonl " in out.stdout and "\ndb " in out.stdout
