"""The soak (benchmarks/soak.py) runs once, tiny, so it keeps working: its own checks (every
call in the ledger once, the tracker's totals equal to the ledger's exact sums, budgets
settled) must pass. Memory figures are printed, not asserted."""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
from pathlib import Path

SOAK = Path(__file__).parent.parent / "benchmarks" / "soak.py"


def test_soak_runs_and_its_checks_pass(tmp_path: Path) -> None:
    ledger = tmp_path / "soak.db"
    out = subprocess.run(
        [sys.executable, str(SOAK), "--calls", "3000", "--threads", "4"]
        + ["--sample-every", "0.2", "--ledger", str(ledger)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "soak: all checks passed" in out.stdout
    assert "every call in the ledger once: 3,000 rows, 3,000 distinct run ids" in out.stdout
    assert "FAIL" not in out.stdout and "bytes per call" in out.stdout
    assert ledger.exists()


def test_soak_fails_on_a_ledger_it_did_not_write(tmp_path: Path) -> None:
    ledger = tmp_path / "soak.db"
    ledger.write_bytes(b"")
    out = subprocess.run(
        [sys.executable, str(SOAK), "--calls", "10", "--ledger", str(ledger)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode != 0 and "exists" in out.stderr


def test_soak_checks_catch_a_missing_record(tmp_path: Path) -> None:
    sys.path.insert(0, str(SOAK.parent))
    try:
        import soak
    finally:
        sys.path.remove(str(SOAK.parent))
    ledger = tmp_path / "soak.db"
    args = argparse.Namespace(
        calls=200, threads=2, max_records=0, sample_every=1.0, run_ids="uuid4"
    )
    tracker, id_sum, _, _ = soak.run(args, ledger)
    assert soak.check(tracker, id_sum, ledger, 200) == []
    db = sqlite3.connect(ledger)
    with db:
        db.execute("DELETE FROM calls WHERE id = (SELECT max(id) FROM calls)")
    db.close()
    failed = soak.check(tracker, id_sum, ledger, 200)
    tracker.close()
    assert "every call in the ledger once" in failed
    assert "the ledger's run ids are the calls'" in failed and "cost" in failed
