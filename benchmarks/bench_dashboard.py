"""The HTML report and the live dashboard over a big ledger, next to `llmledger report` on the
same file: a synthetic ledger of N calls (default 1,000,000; 30 days, 5 models, 8 users, 6
graph nodes; scripts/synthetic_ledger.py) as JSONL and as SQLite, then for each:

- `llmledger report LEDGER --by model` (the core's group-by; in process),
- the HTML report (`report --format html`: the group-by plus the digest pass, written), and
  the file's size,
- the dashboard (`watch`): the first refresh (reads the whole ledger), one refresh with nothing
  new, and one after another process appended 1,000 calls (the incremental read).

Run: python benchmarks/bench_dashboard.py [--calls N] [--dir DIR] [--repeat R]
Build the extension with `maturin develop --release` first (`make bench`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import synthetic_ledger  # noqa: E402
from llmledger import _core  # noqa: E402
from llmledger.report_html import ledger_html, write_html  # noqa: E402


def timed(f: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def ledgers(calls: int, where: Path) -> list[Path]:
    jsonl = where / f"dash-{calls}.jsonl"
    db = where / f"dash-{calls}.db"
    if not jsonl.exists():
        t0 = time.perf_counter()
        synthetic_ledger.write(jsonl, calls, days=30)
        print(f"wrote {jsonl} ({time.perf_counter() - t0:.1f} s)")
    if not db.exists():
        stats = _core.ledger_import(jsonl, db)
        print(f"imported {stats['added']:,} calls into {db}")
    return [jsonl, db]


def refreshes(ledger: Path, more: str) -> tuple[float, float, float, float]:
    """First refresh, an idle one, one after 1,000 appended calls; the view alone."""
    f = _core.LedgerFollower(ledger, by=["model", "user_id", "node"], budgets=["500/day"])

    def refresh() -> None:
        f.poll()
        json.loads(f.view())

    first = timed(refresh, 1)
    idle = timed(refresh, 5)
    if ledger.suffix == ".jsonl":
        with open(ledger, "a", encoding="utf-8") as out:
            out.write(more)
    else:
        tmp = ledger.with_suffix(".more.jsonl")
        tmp.write_text(more)
        _core.ledger_import(tmp, ledger)
        tmp.unlink()
    t0 = time.perf_counter()
    n = f.poll()
    json.loads(f.view())
    appended = time.perf_counter() - t0
    assert n == 1000, n
    view = timed(lambda: json.loads(f.view()), 5)
    return first, idle, appended, view


def row(ledger: Path, where: Path, repeat: int) -> None:
    rep = timed(lambda: _core.ledger_report(ledger, by=["model"]), repeat)
    out = where / f"{ledger.name}.html"

    def html() -> None:
        write_html(ledger_html(ledger, by=["model"], budgets=["500/day"]), out)

    h = timed(html, repeat)
    size = out.stat().st_size
    more = "\n".join(synthetic_ledger.lines(1000, 0.01, seed=time.time_ns())) + "\n"
    first, idle, appended, view = refreshes(ledger, more)
    print(
        f"{ledger.suffix[1:]:8} {rep:>16.2f} s {h:>10.2f} s {h / rep:>6.2f} "
        f"{size / 1e3:>7.0f} kB {first:>10.2f} s {idle * 1e3:>6.1f} ms "
        f"{appended * 1e3:>6.1f} ms {view * 1e3:>6.1f} ms"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=1_000_000)
    p.add_argument("--dir", help="keep (and reuse) the ledgers here")
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(a.dir or tmp)
        where.mkdir(parents=True, exist_ok=True)
        print(f"{a.calls:,} calls; median of {a.repeat} runs (refreshes: see below)\n")
        print(
            f"{'ledger':8} {'report --by model':>18} {'html report':>12} {'ratio':>6} "
            f"{'html size':>10} {'1st refresh':>12} {'idle':>9} {'+1000':>9} {'view':>9}"
        )
        for ledger in ledgers(a.calls, where):
            row(ledger, where, a.repeat)
        print(
            "\n1st refresh: the dashboard's first poll reads the whole ledger; idle: a refresh "
            "with nothing new; +1000: the refresh after 1,000 calls were appended; view: "
            "building the figures alone (top lists, series, budgets)."
        )


if __name__ == "__main__":
    main()
