"""What budgets cost per call: ns for a whole call's callback work (start + end).

A budgeted call's start hook counts the prompt, prices the worst case and reserves it in
every budget the call belongs to; its end settles the reservation. This times a start (four
chat messages, `max_tokens`, metadata) and an end (the realistic LLMResult of
`bench_on_llm_end.py`) per call, for CostTracker without budgets, with three budgets (daily
global, monthly per user, rolling 15 minutes per model), and with them plus `cut_streams`;
side by side with LangChain's OpenAICallbackHandler (no budgets: it has none) and a no-op
handler, one thread and two threads sharing one handler, as ratios to OpenAICallbackHandler.

`--across P` instead runs P processes at once, each making `--calls` budgeted calls one after
another (start + end timed per call), with no budgets, in-process budgets and the same budgets
shared through Redis (`--redis URL`, default redis://127.0.0.1:6379/0, under a throw-away key
prefix that is deleted afterwards): calls per second over all processes, and each call's
latency p50 / p99, and what the budgets add to it. With `--rate R` the processes do not run
flat out: together they start R calls per second (each process on its own schedule, sleeping
between calls), so the latency is what a call pays at that load rather than in the queue of a
saturated two-core machine; the run reports whether the rate was held.

Run: python benchmarks/bench_budgets.py [--calls N] [--repeat R]
     python benchmarks/bench_budgets.py --across 4 [--calls N] [--redis URL] [--rate R]
Build the extension with `maturin develop --release` first.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import uuid
import warnings
from typing import Any

from bench_on_llm_end import START_KW, NoOpHandler, bench, realistic_result
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from langchain_community.callbacks.openai_info import OpenAICallbackHandler

from llmledger import Budget, CostTracker

MESSAGES = [
    [
        SystemMessage("You are a helpful assistant for an online shop. Answer briefly."),
        HumanMessage("Where is my order 12345? It was due on Monday."),
        AIMessage("Your order shipped on Tuesday and should arrive tomorrow."),
        HumanMessage("Can I change the delivery address to my office instead?"),
    ]
]
KW = {**START_KW, "invocation_params": {**START_KW["invocation_params"], "max_tokens": 400}}


def budgets(cut: bool = False) -> list[Budget]:
    return [
        Budget.daily(1000, cut_streams=cut),
        Budget.monthly(50, per="user_id"),
        Budget(20, window="rolling:15m", per="model"),
    ]


def worker(mode: str, calls: int, url: str, prefix: str, rate: float) -> None:
    """One process of `--across`: `calls` calls, each start + end timed; prints a JSON line."""
    kw: dict[str, Any] = {}
    if mode != "none":
        # Wide limits: every call is admitted (the benchmark times admission, not refusal).
        kw["budgets"] = [
            Budget.daily(10**9),
            Budget.monthly(10**9, per="user_id"),
            Budget(10**9, window="rolling:15m", per="model"),
        ]
    if mode == "redis":
        kw.update(budget_store=url, budget_prefix=prefix)
    t = CostTracker(**kw)
    result = realistic_result()
    lat = []
    for _ in range(200):  # warm up: connections, tokenizer, script cache
        rid = uuid.uuid4()
        t.on_chat_model_start({}, MESSAGES, run_id=rid, **KW)  # type: ignore[arg-type]
        t.on_llm_end(result, run_id=rid)
    ids = [uuid.uuid4() for _ in range(calls)]
    period = 1e9 / rate if rate > 0 else 0.0
    begin = time.perf_counter()
    start_ns = time.perf_counter_ns()
    for i, rid in enumerate(ids):
        if period:
            ahead = start_ns + i * period - time.perf_counter_ns()
            if ahead > 0:
                time.sleep(ahead / 1e9)
        a = time.perf_counter_ns()
        t.on_chat_model_start({}, MESSAGES, run_id=rid, **KW)  # type: ignore[arg-type]
        t.on_llm_end(result, run_id=rid)
        lat.append(time.perf_counter_ns() - a)
    elapsed = time.perf_counter() - begin
    assert t.internal_errors == 0 and t.open_reservations == 0
    info = t.budget_store_info()
    assert info is None or info["errors"] == 0, info
    print(json.dumps({"elapsed": elapsed, "lat": lat}))


def across(args: argparse.Namespace) -> None:
    prefix = f"llmledger-bench-{uuid.uuid4().hex[:8]}"
    rows = {}
    try:
        for mode in ("none", "in-process", "redis"):
            cmd = [sys.executable, __file__, "--worker", mode, "--calls", str(args.calls)]
            cmd += ["--redis", args.redis, "--prefix", prefix]
            cmd += ["--rate", str(args.rate / args.across if args.rate else 0)]
            procs = [
                subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(args.across)
            ]
            outs = [json.loads(p.communicate()[0]) for p in procs]
            assert all(p.returncode == 0 for p in procs)
            wall = max(o["elapsed"] for o in outs)
            lat = sorted(x for o in outs for x in o["lat"])
            q = statistics.quantiles(lat, n=100)
            rows[mode] = (args.across * args.calls / wall, q[49] / 1000, q[98] / 1000)
    finally:
        try:
            import redis

            r = redis.Redis.from_url(args.redis)
            keys = list(r.scan_iter(match="{" + prefix + "}:*", count=1000))
            for i in range(0, len(keys), 500):
                r.delete(*keys[i : i + 500])
        except ImportError:
            print(f"(delete the keys {{{prefix}}}:* by hand: no redis package)")
    paced = f", paced to {args.rate:.0f} calls/s in all" if args.rate else ", flat out"
    print(
        f"{args.across} processes x {args.calls} calls (start + end, three budgets){paced}, "
        "each call timed; added = minus the same without budgets"
    )
    print(
        f"{'budgets':<12} {'calls/s':>9} {'p50 us':>8} {'p99 us':>8} {'added p50':>10} {'added p99':>10}"
    )
    base = rows["none"]
    for mode, (rate, p50, p99) in rows.items():
        print(
            f"{mode:<12} {rate:>9.0f} {p50:>8.1f} {p99:>8.1f} "
            f"{p50 - base[1]:>10.1f} {p99 - base[2]:>10.1f}"
        )
    if args.rate:
        slow = [mode for mode, (rate, _, _) in rows.items() if rate < 0.98 * args.rate]
        print(
            f"rate held ({args.rate:.0f} calls/s within 2%) by every mode"
            if not slow
            else f"rate NOT held by: {', '.join(slow)} (machine saturated: latencies include queueing)"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=40_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--across", type=int, default=0, help="processes (Redis vs in-process)")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    ap.add_argument(
        "--rate",
        type=float,
        default=0,
        help="with --across: calls/s over all processes (0: flat out)",
    )
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--prefix", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.calls, args.redis, args.prefix, args.rate)
        return
    if args.across:
        across(args)
        return
    handlers = {
        "OpenAICallbackHandler": OpenAICallbackHandler,
        "no-op handler": NoOpHandler,
        "CostTracker, no budgets": CostTracker,
        "CostTracker, 3 budgets": lambda: CostTracker(budgets=budgets()),
        "CostTracker, 3 budgets, cut_streams": lambda: CostTracker(budgets=budgets(cut=True)),
    }
    # Sanity: the budgets see every call, and settle every reservation.
    t = CostTracker(budgets=budgets())
    for _ in range(3):
        rid = uuid.uuid4()
        t.on_chat_model_start({}, MESSAGES, run_id=rid, **KW)  # type: ignore[arg-type]
        t.on_llm_end(realistic_result(), run_id=rid)
    states = t.budgets()
    assert all(s["spent"] == t.total_cost > 0 and s["reserved"] == 0 for s in states), states

    def per_call(make: Any, threads: int) -> float:
        return bench(
            make,
            realistic_result(),
            args.calls,
            threads,
            args.repeat,
            messages=MESSAGES,
            start_kw=KW,
            time_starts=True,
        )

    rows = [(n, per_call(m, 1), per_call(m, 2)) for n, m in handlers.items()]
    ref1, ref2 = rows[0][1], rows[0][2]
    print(
        f"start + end per call, {args.calls} calls, best of {args.repeat}; ratio = handler / OpenAICallbackHandler"
    )
    print(f"{'handler':<38} {'1 thread ns':>12} {'ratio':>7} {'2 threads ns':>13} {'ratio':>7}")
    for name, one, two in rows:
        print(f"{name:<38} {one:>12.0f} {one / ref1:>7.2f} {two:>13.0f} {two / ref2:>7.2f}")
    plain = rows[2]
    with_budgets = rows[3]
    print(
        f"\nThree budgets add {with_budgets[1] - plain[1]:.0f} ns per call on one thread "
        f"({with_budgets[2] - plain[2]:.0f} ns with two): counting the prompt, pricing the "
        "worst case, reserving and settling."
    )


if __name__ == "__main__":
    main()
