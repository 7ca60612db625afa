"""The metrics benchmark runs once, tiny, so it keeps working (figures are not asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parent.parent / "benchmarks" / "bench_metrics.py"


def test_bench_metrics_runs() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH), "--events", "256", "--repeat", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "metrics='otel'" in out.stdout and "OpenLIT-style on_record" in out.stdout
    # The OpenLIT-style hook must really run (an exception in it would be logged, not raised).
    assert "on_record raised" not in out.stderr, out.stderr
