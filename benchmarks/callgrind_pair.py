"""Instruction counts of the start + end pair (bench_prompt.py's figure 3), for callgrind:
repeatable on a shared machine where timings are not.

Run (release build):
    valgrind --tool=callgrind --callgrind-out-file=pair.out \\
        python benchmarks/callgrind_pair.py THREADS on|off [PAIRS]
    callgrind_annotate --inclusive=yes pair.out | grep -E 'hooks::(call|ON_)|fingerprint'

`hooks::call` is every hook call's total; divide by the pairs run (PAIRS plus 256 to warm up).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

import bench_prompt as b  # noqa: E402
from llmledger import CostTracker  # noqa: E402


def main() -> None:
    threads = int(sys.argv[1])
    fingerprints = sys.argv[2] == "on"
    pairs = int(sys.argv[3]) if len(sys.argv) > 3 else 2560
    small_talk = [
        b.SystemMessage("You are a helpful assistant. Answer in one paragraph."),
        b.HumanMessage("What does a cost ledger for LLM calls record?"),
        b.AIMessage(b.PROSE * 2),
        b.HumanMessage("And how are budgets enforced before a call?"),
    ]

    def make() -> CostTracker:
        return CostTracker(fingerprints=fingerprints)

    b.pair(make, small_talk, 256, threads)  # warm-up
    print(f"{b.pair(make, small_talk, pairs, threads):.0f} ns per pair")


if __name__ == "__main__":
    main()
