"""The durable ledger's speed: records per second through the store, and `llmledger report`
over a ledger of 1 million calls next to the same group-by as a plain sqlite3 query.

1. Records/s: a CostTracker with `store=` gets N calls (start with metadata, then end, the
   realistic ChatOpenAI-shaped result of bench_on_llm_end.py), timed until `flush()` returns,
   for SQLite and JSONL (and PostgreSQL with --postgres URL), `durability="batch"` and
   `"sync"`, next to the same calls with no store (`store=None`).
2. Report: a 1M-call SQLite ledger (1000 users, 5 models; written through the same tracker in
   batch mode, or reused with --ledger), then `llmledger report LEDGER --by model` (in process
   and as a command, interpreter start-up included) and `--by user_id`, each next to the same
   group-by as a plain Python sqlite3 query.

   With --postgres also: --processes P processes (default 4), each with its own tracker,
   writing one PostgreSQL ledger (and, beside it, P processes each with its own SQLite
   file): the aggregate records/s, from the first process's start to the last one's flush.
   Each row also gives the CPU this process used per call (the hooks and the writer thread;
   the database server's CPU is not in it): where a store's wall time goes beyond the
   memory-only loop is its writer (JSONL, SQLite) or its writer plus the server (PostgreSQL).
   Run ids are time-ordered UUIDv7, as LangChain 1.x makes them (`--run-ids uuid4`: random
   ones, the unique run-id index's worst case).

Run: python benchmarks/bench_store.py [--calls N] [--sync-calls N] [--ledger-calls N]
     [--ledger PATH] [--repeat R] [--postgres postgresql://postgres@127.0.0.1:5432/postgres]
     [--processes P] [--run-ids uuid7|uuid4]
Build the extension with `maturin develop --release` first (`make bench`).
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from bench_on_llm_end import realistic_result  # noqa: E402
from langchain_core.utils.uuid import uuid7  # noqa: E402
from llmledger import CostTracker, _core  # noqa: E402

# LangChain 1.x's callback manager makes time-ordered UUIDv7 run ids; random v4 ids (older
# versions, or an application's own) are the ledger indexes' worst case.
RUN_IDS: dict[str, Callable[[], uuid.UUID]] = {"uuid7": uuid7, "uuid4": uuid.uuid4}

MODELS = ["gpt-4o-mini", "gpt-4o", "gpt-4.1", "o4-mini", "claude-sonnet-4-5"]


def results() -> list[Any]:
    out = []
    for m in MODELS:
        r = realistic_result()
        msg = r.generations[0][0].message
        msg.response_metadata["model_name"] = m
        r.llm_output = None
        out.append(r)
    return out


def drive(t: CostTracker, n: int, res: list[Any], run_ids: str) -> float:
    """n calls (start + end) through `t`, with run ids of the kind `run_ids`; seconds until the
    ledger has them all."""
    make = RUN_IDS[run_ids]
    ids = [make() for _ in range(n)]
    metas = [{"user_id": f"user-{i % 1000}", "session_id": f"s-{i % 97}"} for i in range(1000)]
    start_kw: dict[str, Any] = {"invocation_params": {"model": "x"}}
    t0 = time.perf_counter()
    for i, run_id in enumerate(ids):
        t.on_chat_model_start(
            {}, [[]], run_id=run_id, tags=["prod"], metadata=metas[i % 1000], **start_kw
        )
        t.on_llm_end(res[i % len(res)], run_id=run_id)
    t.flush()
    return time.perf_counter() - t0


def records_per_second(args: argparse.Namespace, tmp: Path) -> None:
    res = results()
    rows: list[tuple[str, int, float, float]] = []
    cases: list[tuple[str, str | None, str, int]] = [
        ("memory only (store=None)", None, "batch", args.calls),
        ("SQLite, batch", "b.db", "batch", args.calls),
        ("JSONL, batch", "b.jsonl", "batch", args.calls),
        ("SQLite, sync", "s.db", "sync", args.sync_calls),
        ("JSONL, sync", "s.jsonl", "sync", args.sync_calls),
    ]
    if args.postgres:
        cases += [
            ("PostgreSQL, batch", "pg", "batch", args.calls),
            ("PostgreSQL, sync", "pg", "sync", args.sync_calls),
        ]
    for label, name, durability, n in cases:
        times = []
        cpus = []
        for rep in range(args.repeat):
            store: Any = tmp / f"{rep}-{name}" if name else None
            if name == "pg":
                store = args.postgres
            t = CostTracker(store=store, durability=durability, max_records=0)
            cpu0 = time.process_time()
            times.append(drive(t, n, res, args.run_ids))
            cpus.append(time.process_time() - cpu0)
            info = t.store_info()
            t.close()
            if info is not None:
                assert info["written"] == n and info["dropped"] == 0, info
        rows.append((label, n, statistics.median(times), statistics.median(cpus)))
    if args.postgres and args.processes > 1:
        for label, kind in (("SQLite, batch", "sqlite"), ("PostgreSQL, batch", "pg")):
            times = []
            for rep in range(args.repeat):
                store = args.postgres if kind == "pg" else str(tmp / f"mp{rep}")
                times.append(processes_drive(store, kind, args.processes, args.calls, args.run_ids))
            rows.append(
                (
                    f"{label}, {args.processes} procs",
                    args.calls,
                    statistics.median(times),
                    float("nan"),
                )
            )
    base = rows[0][1] / rows[0][2]
    print(
        f"\nRecords per second through the store (median of {args.repeat}; start + end + flush; "
        f"run ids {args.run_ids})"
    )
    print(
        f"{'case':<30} {'calls':>9} {'records/s':>12} {'us/call':>9} {'cpu us/call':>12} "
        f"{'vs memory':>10}"
    )
    for label, n, secs, cpu in rows:
        rate = n / secs
        print(
            f"{label:<30} {n:>9,} {rate:>12,.0f} {1e6 / rate:>9.2f} {1e6 * cpu / n:>12.2f} "
            f"{rate / base:>10.2f}"
        )


def _one_process(store: str, n: int, run_ids: str, barrier: Any, out: Any) -> None:
    t = CostTracker(store=store, durability="batch", max_records=0)
    res = results()
    barrier.wait()
    t0 = time.time()
    drive(t, n, res, run_ids)
    t1 = time.time()
    info = t.store_info()
    t.close()
    assert info is not None and info["written"] == n and info["dropped"] == 0, info
    out.put((t0, t1))


def processes_drive(store: str, kind: str, procs: int, calls: int, run_ids: str) -> float:
    """`calls` split over `procs` processes, each with its own tracker (one PostgreSQL ledger,
    or one SQLite file each): seconds from the first start to the last flush."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(procs)
    out = ctx.Queue()
    ps = []
    for i in range(procs):
        s = store if kind == "pg" else f"{store}-{i}.db"
        ps.append(ctx.Process(target=_one_process, args=(s, calls // procs, run_ids, barrier, out)))
    for p in ps:
        p.start()
    spans = [out.get(timeout=600) for _ in ps]
    for p in ps:
        p.join()
        assert p.exitcode == 0, p.exitcode
    return max(e for _, e in spans) - min(s for s, _ in spans)


@contextlib.contextmanager
def fresh_database(server: str | None) -> Iterator[str | None]:
    """A new database on `server` (a PostgreSQL URL), dropped afterwards; None without one."""
    if not server:
        yield None
        return
    name = f"llmledger_bench_{uuid.uuid4().hex[:10]}"

    def psql(sql: str) -> None:
        subprocess.run(["psql", server, "-X", "-q", "-c", sql], check=True, capture_output=True)

    psql(f"CREATE DATABASE {name}")
    try:
        yield f"{server.rpartition('/')[0]}/{name}"
    finally:
        psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def build_ledger(path: Path, n: int) -> None:
    t0 = time.perf_counter()
    t = CostTracker(store=path, max_records=0)
    res = results()
    chunk = 100_000
    done = 0
    while done < n:
        k = min(chunk, n - done)
        drive(t, k, res, "uuid7")
        done += k
        print(f"\r  writing the ledger: {done:,} / {n:,} calls", end="", file=sys.stderr)
    t.close()
    print(f"\r  wrote {n:,} calls in {time.perf_counter() - t0:.1f} s to {path}", file=sys.stderr)


def timed(f: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times = []
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def sqlite3_group_by(path: Path, expr: str) -> dict[Any, tuple[int, int, Decimal]]:
    """The same group-by as `llmledger report`, by hand: calls, tokens and exact cost (integer
    pico-dollars summed by SQLite)."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute(
            f"SELECT {expr}, count(*), "
            "sum(CASE WHEN usage_source = 'cache' THEN 0 ELSE input_tokens END), "
            "sum(CASE WHEN usage_source = 'cache' THEN 0 ELSE output_tokens END), "
            "sum(cost_pico) FROM calls GROUP BY 1"
        ).fetchall()
    return {r[0]: (r[1], r[2] + r[3], Decimal(r[4] or 0) / 10**12) for r in rows}


TOKENS = (
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
    "input_audio_tokens",
    "output_audio_tokens",
)


def sqlite3_every_figure(path: Path, expr: str) -> list[Any]:
    """Every figure `llmledger report` prints per group (failed calls, each token kind without
    LLM-cache replays, unpriced, cache hits, estimated), by hand in SQL."""
    tokens = "".join(f"sum(CASE WHEN usage_source = 'cache' THEN 0 ELSE {c} END), " for c in TOKENS)
    empty = " AND ".join(f"{c} = 0" for c in TOKENS)
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return db.execute(
            f"SELECT {expr}, count(*), sum(error IS NULL), {tokens}sum(cost_pico), "
            f"sum(cost IS NULL AND NOT (error IS NOT NULL AND {empty})), "
            "sum(usage_source = 'cache'), sum(usage_source = 'estimated') "
            "FROM calls GROUP BY 1"
        ).fetchall()


def sqlite3_decimal_sums(path: Path) -> dict[Any, Decimal]:
    """What exact money costs without an integer column: fetch the decimal strings, sum in
    Python."""
    sums: dict[Any, Decimal] = {}
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        for model, c in db.execute("SELECT model, cost FROM calls"):
            if c is not None:
                sums[model] = sums.get(model, Decimal(0)) + Decimal(c)
    return sums


def report_speed(args: argparse.Namespace, tmp: Path) -> None:
    path = Path(args.ledger) if args.ledger else tmp / "million.db"
    if not path.exists():
        build_ledger(path, args.ledger_calls)
    n = _core.ledger_report(path, by=[])["totals"]["calls"]
    cli = [sys.executable, "-m", "llmledger.cli", "report", str(path), "--by", "model"]
    env = {**os.environ}

    def run_cli() -> str:
        return subprocess.run(cli, capture_output=True, text=True, check=True, env=env).stdout

    cases: list[tuple[str, Callable[[], Any]]] = [
        ("sqlite3 GROUP BY model (integer pico sums)", lambda: sqlite3_group_by(path, "model")),
        (
            "sqlite3 GROUP BY model, every report figure",
            lambda: sqlite3_every_figure(path, "model"),
        ),
        ("ledger_report(by=['model']) in process", lambda: _core.ledger_report(path, by=["model"])),
        ("`llmledger report --by model` (a process)", run_cli),
        (
            "sqlite3 GROUP BY user_id (json_extract)",
            lambda: sqlite3_group_by(path, "json_extract(attribution, '$.user_id')"),
        ),
        (
            "ledger_report(by=['user_id']) in process",
            lambda: _core.ledger_report(path, by=["user_id"]),
        ),
        ("sqlite3 + Python Decimal sums of cost text", lambda: sqlite3_decimal_sums(path)),
    ]
    results_: dict[str, tuple[float, Any]] = {}
    for label, f in cases:
        results_[label] = timed(f, args.repeat)
    # Same figures both ways.
    ours = {r["model"]: r["cost"] for r in results_[cases[2][0]][1]["rows"]}
    plain = {k: v[2] for k, v in results_[cases[0][0]][1].items()}
    assert ours == plain, (ours, plain)
    assert ours == results_[cases[-1][0]][1]
    print(
        f"\nReport over a ledger of {n:,} calls ({path.stat().st_size / 1e6:,.0f} MB; median of {args.repeat})"
    )
    print(f"{'query':<48} {'seconds':>8} {'ratio':>7}")
    base_model = results_[cases[0][0]][0]
    base_user = results_[cases[4][0]][0]
    for i, (label, _) in enumerate(cases):
        secs = results_[label][0]
        base = base_user if i in (4, 5) else base_model
        print(f"{label:<48} {secs:>8.3f} {secs / base:>7.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=200_000, help="calls per batch-mode case")
    p.add_argument("--sync-calls", type=int, default=5_000, help="calls per sync-mode case")
    p.add_argument("--ledger-calls", type=int, default=1_000_000)
    p.add_argument("--ledger", help="reuse (or create) this SQLite ledger for the report part")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument(
        "--postgres",
        metavar="URL",
        help="also a PostgreSQL ledger: a server URL; the benchmark writes to a fresh database "
        "it creates there (with psql) and drops",
    )
    p.add_argument(
        "--processes",
        type=int,
        default=4,
        help="with --postgres: also this many processes writing one ledger (1: not)",
    )
    p.add_argument(
        "--run-ids",
        choices=sorted(RUN_IDS),
        default="uuid7",
        help="uuid7 (LangChain's, time-ordered; default) or uuid4 (random: the unique run-id "
        "index takes each insert at a random place)",
    )
    p.add_argument("--skip-report", action="store_true")
    p.add_argument("--skip-write", action="store_true", help="only the report part")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="llmledger-bench-") as d:
        if not args.skip_write:
            with fresh_database(args.postgres) as url:
                args.postgres = url
                records_per_second(args, Path(d))
        if not args.skip_report:
            report_speed(args, Path(d))


if __name__ == "__main__":
    main()
