"""Soak: millions of tracked calls over threads into a SQLite ledger with three budgets.

Each call is what LangChain hands a tracker for one ChatOpenAI call: `on_chat_model_start`
with four chat messages, `max_tokens`, metadata (1,000 users, their sessions) and tags, then
`on_llm_end` with the realistic LLMResult of `bench_on_llm_end.py`, under three budgets
(daily global, monthly per user, rolling 15 minutes per model) whose limits the run never
reaches, so every call is reserved, settled and recorded. Threads share one tracker.

It samples the process's resident memory as it goes and prints its growth, then checks:
- every call is in the ledger, once (count, distinct run ids, and the sum of the run ids as
  128-bit integers against the sum of the ids the calls used), and none was dropped;
- the tracker's totals (calls, tokens by kind, cost) equal the ledger's sums, exactly
  (integer token sums, and the decimal cost strings summed as `Decimal`s);
- every budget reservation was settled, and each budget's spend is the tracker's total.
It exits 1 if a check fails.

Run ids: by default each call's run id is a UUIDv7, as LangChain's callback manager makes them
(`langchain_core.utils.uuid.uuid7`, time-ordered), so the ledger's unique run-id index grows at
its end. `--run-ids uuid4` uses random ids instead (older LangChain versions, or ids an
application makes itself): each insert then lands at a random place in an index that outgrows
SQLite's page cache after a few million rows, and the writer's rate falls (measured in
docs/ledger.md); the run shows whether the writer still keeps up.

Memory: by default the tracker keeps no per-call records in memory (`max_records=0`), as a
long-running service with a durable ledger should (it is what `track_costs` does for
`LLMLEDGER_LEDGER`): the records are in the ledger, totals and budgets in memory, so resident
memory must stay flat however many calls are made. `--max-records none` keeps every record in
memory (`CostTracker`'s default, for scripts and notebooks), which grows with the calls by
design; the run then reports how much per call.

Run: python benchmarks/soak.py [--calls N] [--threads T] [--max-records none|N]
Build the extension with `maturin develop --release` first (`make soak`).
"""

from __future__ import annotations

import argparse
import gc
import os
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench_budgets import KW, MESSAGES
from bench_on_llm_end import realistic_result
from langchain_core.utils.uuid import uuid7
from llmledger import Budget, CostTracker

USERS = 1000
# How run ids are made: as LangChain's callback manager does (time-ordered), or at random.
RUN_IDS: dict[str, Callable[[], uuid.UUID]] = {"uuid7": uuid7, "uuid4": uuid.uuid4}
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """The process's resident memory now."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def budgets() -> list[Budget]:
    """bench_budgets.py's three budgets, with limits no soak reaches (~$0.0004 a call)."""
    return [
        Budget.daily(10_000_000),
        Budget.monthly(1_000_000, per="user_id"),
        Budget(10_000_000, window="rolling:15m", per="model"),
    ]


def start_kwargs() -> list[dict[str, Any]]:
    """One start's keyword arguments per user (their metadata differs, nothing else)."""
    out = []
    for u in range(USERS):
        meta = {**KW["metadata"], "user_id": f"user-{u}", "session_id": f"s-{u % 97}"}
        out.append({**KW, "metadata": meta})
    return out


class Progress:
    """Calls done per thread (each thread writes its own slot), and memory samples."""

    def __init__(self, threads: int) -> None:
        self.done = [0] * threads
        self.samples: list[tuple[float, int, int]] = []  # (seconds, calls, rss)
        self.stop = threading.Event()

    def calls(self) -> int:
        return sum(self.done)

    def sample(self, t0: float) -> None:
        self.samples.append((time.perf_counter() - t0, self.calls(), rss_bytes()))

    def sampler(self, t0: float, every: float) -> None:
        while not self.stop.wait(every):
            self.sample(t0)


def work(
    tracker: CostTracker,
    index: int,
    calls: int,
    progress: Progress,
    id_sums: list[int],
    kwargs: list[dict[str, Any]],
    barrier: threading.Barrier,
    new_id: Callable[[], uuid.UUID],
) -> None:
    """`calls` calls of one thread; the sum of their run ids goes to `id_sums[index]`."""
    result = realistic_result()
    start = tracker.on_chat_model_start
    end = tracker.on_llm_end
    total = 0
    barrier.wait()
    for i in range(calls):
        rid = new_id()
        total += rid.int
        start({}, MESSAGES, run_id=rid, parent_run_id=None, **kwargs[(i * 7 + index) % USERS])
        end(result, run_id=rid, parent_run_id=None, tags=["prod"])
        if i % 1024 == 1023:
            progress.done[index] = i + 1
    progress.done[index] = calls
    id_sums[index] = total


def run(args: argparse.Namespace, ledger: Path) -> tuple[CostTracker, int, Progress, float]:
    """Makes the calls; returns the tracker, the sum of every run id, samples, seconds."""
    tracker = CostTracker(store=str(ledger), budgets=budgets(), max_records=args.max_records)
    per = [
        args.calls // args.threads + (i < args.calls % args.threads) for i in range(args.threads)
    ]
    progress = Progress(args.threads)
    id_sums = [0] * args.threads
    kwargs = start_kwargs()
    barrier = threading.Barrier(args.threads + 1)
    threads = [
        threading.Thread(
            target=work,
            args=(tracker, i, n, progress, id_sums, kwargs, barrier, RUN_IDS[args.run_ids]),
            daemon=True,
        )
        for i, n in enumerate(per)
    ]
    for t in threads:
        t.start()
    gc.collect()
    t0 = time.perf_counter()
    progress.sample(t0)
    barrier.wait()
    sampler = threading.Thread(target=progress.sampler, args=(t0, args.sample_every), daemon=True)
    sampler.start()
    for t in threads:
        t.join()
    tracker.flush()
    seconds = time.perf_counter() - t0
    progress.stop.set()
    sampler.join()
    progress.sample(t0)
    return tracker, sum(id_sums) % (1 << 128), progress, seconds


def report_memory(progress: Progress, calls: int) -> None:
    samples = progress.samples
    mib = 1 << 20
    print("\nresident memory (MiB) as the calls went:")
    step = max(1, len(samples) // 12)
    for s, n, rss in samples[::step] + ([samples[-1]] if (len(samples) - 1) % step else []):
        print(f"  {s:8.1f} s  {n:>11,} calls  {rss / mib:9.1f}")
    # Growth after the first tenth of the calls (caches, the SQLite page cache and the
    # allocator's arenas have filled by then) to the end.
    warm = next((x for x in samples if x[1] >= calls // 10), samples[0])
    last = samples[-1]
    peak = max(x[2] for x in samples)
    grown = last[2] - warm[2]
    per_call = grown / max(1, last[1] - warm[1])
    print(
        f"growth from {warm[1]:,} calls to {last[1]:,}: {grown / mib:+.1f} MiB "
        f"({per_call:+.1f} bytes per call); peak {peak / mib:.1f} MiB"
    )


def ledger_sums(ledger: Path) -> dict[str, Any]:
    """Counts and exact sums of the ledger, read with Python's own sqlite3."""
    db = sqlite3.connect(ledger)
    row = db.execute(
        "SELECT count(*), count(DISTINCT run_id), sum(input_tokens), sum(cache_read_tokens), "
        "sum(output_tokens), sum(reasoning_tokens), count(cost) FROM calls"
    ).fetchone()
    cost = Decimal(0)
    id_sum = 0
    for run_id, c in db.execute("SELECT run_id, cost FROM calls"):
        id_sum += uuid.UUID(run_id).int
        if c is not None:
            cost += Decimal(c)
    db.close()
    keys = ("calls", "distinct", "input", "cache_read", "output", "reasoning", "priced")
    return {**dict(zip(keys, row, strict=True)), "cost": cost, "id_sum": id_sum % (1 << 128)}


def check(tracker: CostTracker, id_sum: int, ledger: Path, calls: int) -> list[str]:
    """The failed checks (empty: all passed), each printed as it is made."""
    failed: list[str] = []

    def expect(what: str, ok: bool, detail: str) -> None:
        print(f"  {'ok  ' if ok else 'FAIL'} {what}: {detail}")
        if not ok:
            failed.append(what)

    info = tracker.store_info() or {}
    s = ledger_sums(ledger)
    print("\nchecks:")
    expect(
        "no record dropped or failed",
        not info.get("dropped") and not info.get("failed"),
        f"written {info.get('written')}, dropped {info.get('dropped')}, failed {info.get('failed')}",
    )
    expect(
        "every call in the ledger once",
        s["calls"] == s["distinct"] == calls,
        f"{s['calls']:,} rows, {s['distinct']:,} distinct run ids, {calls:,} calls",
    )
    expect(
        "the ledger's run ids are the calls'",
        s["id_sum"] == id_sum,
        "sum of run ids as 128-bit integers " + ("matches" if s["id_sum"] == id_sum else "differs"),
    )
    expect(
        "calls", tracker.successful_requests == calls, f"tracker {tracker.successful_requests:,}"
    )
    totals = {
        "input": tracker.prompt_tokens,
        "cache_read": tracker.prompt_tokens_cached,
        "output": tracker.completion_tokens,
        "reasoning": tracker.reasoning_tokens,
        "priced": calls - tracker.unpriced_calls,
    }
    for k, v in totals.items():
        expect(
            f"{k} tokens" if k != "priced" else "priced calls",
            v == s[k],
            f"tracker {v:,}, ledger {s[k]:,}",
        )
    expect(
        "cost",
        tracker.total_cost == s["cost"] and s["cost"] > 0,
        f"tracker {tracker.total_cost}, ledger {s['cost']} (exact decimals)",
    )
    states = tracker.budgets()
    expect(
        "every reservation settled",
        all(b["reserved"] == 0 for b in states),
        f"{len(states)} budget scopes",
    )
    for name in {b["budget"] for b in states}:
        scopes = [b for b in states if b["budget"] == name]
        spent = sum((b["spent"] for b in scopes), Decimal(0))
        if len({b["window_start"] for b in scopes}) == 1 and "rolling" not in str(
            scopes[0]["window"]
        ):
            expect(
                f"budget {name} spent the total",
                spent == tracker.total_cost,
                f"{spent} over {len(scopes)} scopes",
            )
    return failed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=10_000_000)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument(
        "--max-records",
        type=lambda s: None if s == "none" else int(s),
        default=0,
        help="records kept in memory: 0 (default), N, or none (all)",
    )
    ap.add_argument(
        "--run-ids",
        choices=sorted(RUN_IDS),
        default="uuid7",
        help="uuid7 (LangChain's, time-ordered; default) or uuid4 (random)",
    )
    ap.add_argument("--sample-every", type=float, default=5.0, help="seconds between samples")
    ap.add_argument("--ledger", type=Path, help="the SQLite ledger (default: a temporary file)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ledger = args.ledger or Path(tmp) / "soak.db"
        if ledger.exists():
            sys.exit(f"{ledger} exists: the soak checks a ledger of its own calls only")
        print(
            f"soak: {args.calls:,} calls, {args.threads} threads, SQLite ledger {ledger}, "
            f"3 budgets, max_records={args.max_records}, run ids {args.run_ids}"
        )
        tracker, id_sum, progress, seconds = run(args, ledger)
        print(
            f"{args.calls:,} calls in {seconds:.1f} s ({args.calls / seconds:,.0f} calls/s, "
            f"flush included); ledger {ledger.stat().st_size / (1 << 20):,.0f} MiB"
        )
        report_memory(progress, args.calls)
        failed = check(tracker, id_sum, ledger, args.calls)
        tracker.close()
    print("\nsoak: " + ("all checks passed" if not failed else f"FAILED: {', '.join(failed)}"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
