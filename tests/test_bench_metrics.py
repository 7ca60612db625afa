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


def test_bench_label_cap_runs() -> None:
    bench = BENCH.parent / "bench_label_cap.py"
    out = subprocess.run(
        [sys.executable, str(bench), "--users", "500", "--calls", "5000", "--check", "200"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    for policy in ("first-N", "promote", "oracle"):
        assert out.stdout.count(policy) == 2, out.stdout
