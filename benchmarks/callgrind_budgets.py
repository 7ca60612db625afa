"""Redis's instructions per budgeted call, for callgrind: repeatable on a shared machine where
timings are not. One process makes budgeted calls one after another (start + end hooks, the
three budgets of bench_budgets.py's `--across`) against a redis-server run under callgrind;
only the measured calls are counted (the counters are zeroed after the warm-up and dumped
after the last settlement is applied).

Run (any build: the figure is Redis's work, not the client's):
    valgrind --tool=callgrind --callgrind-out-file=/tmp/rs.cg \\
        redis-server --port 6392 --save '' &
    python benchmarks/callgrind_budgets.py --redis redis://127.0.0.1:6392/0 [--calls N] \\
        [--pace MS]

It prints the instructions per call (the dump's total over the calls) and how many script
runs (EVALSHA / FCALL) Redis executed per call. `--pace` sleeps between calls, so each call's
settlement is sent by the settler thread on its own instead of riding along with the next
reservation (the two ends of what a real application does).
"""

from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import redis  # noqa: E402
from bench_budgets import KW, MESSAGES  # noqa: E402
from bench_on_llm_end import realistic_result  # noqa: E402
from llmledger import Budget, CostTracker  # noqa: E402


def script_runs(r: redis.Redis) -> int:
    stats: dict[str, Any] = r.info("commandstats")
    return sum(
        int(v["calls"])
        for k, v in stats.items()
        if k in ("cmdstat_evalsha", "cmdstat_eval", "cmdstat_fcall")
    )


def total_ir(path: str) -> int:
    for line in Path(path).read_text().splitlines():
        if line.startswith("totals:") or line.startswith("summary:"):
            return int(line.split()[1])
    raise SystemExit(f"no totals in {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--redis", default="redis://127.0.0.1:6392/0")
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--pace", type=float, default=0, help="ms slept between calls")
    ap.add_argument("--no-callgrind", action="store_true", help="only count script runs")
    a = ap.parse_args()
    r = redis.Redis.from_url(a.redis)
    pid = int(r.info("server")["process_id"])
    prefix = f"cgb-{uuid.uuid4().hex[:8]}"
    t = CostTracker(
        budgets=[
            Budget.daily(10**9),
            Budget.monthly(10**9, per="user_id"),
            Budget(10**9, window="rolling:15m", per="model"),
        ],
        budget_store=a.redis,
        budget_prefix=prefix,
    )
    result = realistic_result()

    def calls(n: int) -> None:
        for _ in range(n):
            rid = uuid.uuid4()
            t.on_chat_model_start({}, MESSAGES, run_id=rid, **KW)  # type: ignore[arg-type]
            t.on_llm_end(result, run_id=rid)
            if a.pace:
                time.sleep(a.pace / 1000)
        t.flush()

    calls(200)
    time.sleep(0.1)
    runs0 = script_runs(r)
    if not a.no_callgrind:
        subprocess.run(["callgrind_control", "-z", str(pid)], check=True, capture_output=True)
    calls(a.calls)
    if not a.no_callgrind:
        before = set(glob.glob("/tmp/*.cg*"))
        subprocess.run(["callgrind_control", "-d", str(pid)], check=True, capture_output=True)
        time.sleep(0.5)
        dumps = sorted(set(glob.glob("/tmp/*.cg*")) - before, key=os.path.getmtime)
    runs = script_runs(r) - runs0
    assert t.internal_errors == 0 and t.open_reservations == 0
    for k in r.scan_iter(match="{" + prefix + "}:*", count=1000):
        r.delete(k)
    line = f"{a.calls} calls: {runs / a.calls:.2f} script runs per call"
    if not a.no_callgrind:
        if not dumps:
            raise SystemExit(
                "no callgrind dump appeared under /tmp (--callgrind-out-file=/tmp/….cg)"
            )
        ir = total_ir(dumps[-1])
        line += f", {ir / a.calls:,.0f} instructions per call ({dumps[-1]})"
    print(line)


if __name__ == "__main__":
    main()
