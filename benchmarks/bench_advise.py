"""`llmledger advise` over a 1M-call SQLite ledger, next to `llmledger report` on the same file.

The ledger (written with Python's sqlite3 into a schema llmledger created, so building it
takes seconds): 1,000,000 calls over 35 days, 5 models, 1000 users, each with request
fingerprints (one of 20 shared system prompts, then a unique question; 5% exact repeats),
a third without an output cap, a tenth named as nightly work. Costs are the catalog's
(`llmledger.cost`), as the tracker records them.

Run: python benchmarks/bench_advise.py [--calls N] [--repeat R] [--ledger PATH]
Build the extension with `maturin develop --release` first (`make bench`).

Each case prints its wall time and its CPU time (user + system, every thread: the advisor reads
on a thread of its own, so its CPU time can exceed its wall time), each beside the report's.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from llmledger import CostTracker, _core, cost

MODELS = ["gpt-4o-mini", "gpt-4o", "gpt-4.1", "o4-mini", "claude-sonnet-4-6"]
PROVIDERS = ["openai", "openai", "openai", "openai", "anthropic"]
INPUT, OUTPUT = 1500, 400


def pico(d: Decimal) -> int:
    return int(d * 10**12)


def build(path: Path, n: int) -> None:
    t0 = time.perf_counter()
    CostTracker(store=path).close()  # the schema, as llmledger creates it
    costs = [cost(m, input_tokens=INPUT, output_tokens=OUTPUT) for m in MODELS]
    rng = random.Random(7)
    start = datetime.datetime(2026, 10, 1, tzinfo=datetime.UTC)
    systems = [f"{rng.getrandbits(64):016x}" for _ in range(20)]
    con = sqlite3.connect(path)
    sql = (
        "INSERT INTO calls (time, run_id, root_run_id, root_run_name, model, requested_model, "
        "provider, attribution, tags, input_tokens, output_tokens, usage_source, cost, "
        "cost_input, cost_output, cost_pico, price_entry, catalog_version, latency_s, "
        "streamed_chunks, max_tokens, request_hash, prompt_prefixes, prompt_bytes) VALUES "
        "(?, ?, ?, ?, ?, ?, ?, ?, '[\"prod\"]', ?, ?, 'provider', ?, '0', '0', ?, ?, 'bench', "
        "0.8, 0, ?, ?, ?, ?)"
    )
    rows = []
    last_request = "0"
    for i in range(n):
        k = i % len(MODELS)
        t = start + datetime.timedelta(seconds=3 * i)
        run = str(uuid.UUID(int=rng.getrandbits(128)))
        request = last_request if rng.random() < 0.05 else f"{rng.getrandbits(64):016x}"
        last_request = request
        system = systems[i % 20]
        prefixes = f"{system}:6000 {rng.getrandbits(64):016x}:6400"
        rows.append(
            (
                t.isoformat(timespec="microseconds").replace("+00:00", "Z"),
                run,
                run,
                "nightly-digest" if i % 10 == 0 else "support",
                MODELS[k],
                MODELS[k],
                PROVIDERS[k],
                json.dumps({"user_id": f"user-{i % 1000}"}),
                INPUT,
                OUTPUT,
                str(costs[k]),
                pico(costs[k]),
                f"{PROVIDERS[k]}/{MODELS[k]}",
                None if i % 3 == 0 else 1024,
                request,
                prefixes,
                6400,
            )
        )
        if len(rows) == 100_000:
            con.executemany(sql, rows)
            con.commit()
            rows.clear()
            print(f"\r  writing the ledger: {i + 1:,} / {n:,}", end="", file=sys.stderr)
    con.executemany(sql, rows)
    con.commit()
    con.close()
    print(f"\r  wrote {n:,} calls in {time.perf_counter() - t0:.1f} s to {path}", file=sys.stderr)


def cpu_seconds() -> float:
    """CPU time (user + system) of this process's threads and of its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed(f: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall and CPU seconds of one run of `f` (CPU: every thread's, and a subprocess's)."""
    c0, t0 = cpu_seconds(), time.perf_counter()
    out = f()
    return time.perf_counter() - t0, cpu_seconds() - c0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--ledger", help="reuse (or create) this SQLite ledger")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        path = Path(args.ledger) if args.ledger else Path(d) / "advise.db"
        if not path.exists():
            build(path, args.calls)
        n = _core.ledger_report(path, by=[])["totals"]["calls"]

        def cli(*a: str) -> Callable[[], str]:
            cmd = [sys.executable, "-m", "llmledger.cli", *a, str(path)]
            return lambda: subprocess.run(cmd, check=True, capture_output=True, text=True).stdout

        cases = [
            (
                "ledger_report(by=['model']) in process",
                lambda: _core.ledger_report(path, by=["model"]),
            ),
            ("ledger_advise() in process", lambda: _core.ledger_advise(path)),
            ("`llmledger report --by model`", cli("report", "--by", "model")),
            ("`llmledger advise`", cli("advise")),
        ]
        # The repeats take turns, so a slow spell of the shared machine weighs on all cases.
        runs: dict[str, list[tuple[float, float, Any]]] = {name: [] for name, _ in cases}
        for _ in range(args.repeat):
            for name, f in cases:
                runs[name].append(timed(f))
        wall = {k: statistics.median(r[0] for r in v) for k, v in runs.items()}
        cpu = {k: statistics.median(r[1] for r in v) for k, v in runs.items()}
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"{n:,}-call SQLite ledger, median of {args.repeat} (load average {load})")
        print(f"{'':<42} {'wall s':>7} {'x report':>9} {'CPU s':>7} {'x report':>9}")
        for name in runs:
            ref = (
                "`llmledger report --by model`"
                if name.startswith("`")
                else "ledger_report(by=['model']) in process"
            )
            print(
                f"{name:<42} {wall[name]:>7.2f} {wall[name] / wall[ref]:>9.2f}"
                f" {cpu[name]:>7.2f} {cpu[name] / cpu[ref]:>9.2f}"
            )
        advice = runs["ledger_advise() in process"][-1][2]
        print(
            "\nfindings:", ", ".join(f"{f['rule']} ${f['saving_usd']}" for f in advice["findings"])
        )


if __name__ == "__main__":
    main()
