"""ns per `on_llm_new_token` for CostTracker: a run whose chunks carry deltas (ChatOpenAI)
and a run whose chunks carry running totals (QianfanChatEndpoint: each chunk's usage is read
and kept, see docs/catalog.md), side by side.

Each timed event is a streamed chunk of an open run (its start untimed, estimates off so no
text is kept): the per-token hook's own work, with the chunk carrying `usage_metadata` or not.

Run: python benchmarks/bench_on_llm_new_token.py [--events N] [--repeat R]
Build the extension with `maturin develop --release` first.
"""

from __future__ import annotations

import argparse
import time
import uuid
from typing import Any

from langchain_core.messages import AIMessageChunk, HumanMessage
from langchain_core.outputs import ChatGenerationChunk
from llmledger import CostTracker

USAGE: Any = {"input_tokens": 2000, "output_tokens": 150, "total_tokens": 2150}


def ns_per_token(provider: str, cls: str, usage: Any, events: int, repeat: int) -> float:
    t = CostTracker(estimate=False)
    run_id = uuid.uuid4()
    t.on_chat_model_start(
        {"id": ["langchain", cls]},
        [[HumanMessage("hi")]],
        run_id=run_id,
        invocation_params={"model": "ERNIE-4.0-8K"},
        metadata={"ls_provider": provider},
    )
    chunk = ChatGenerationChunk(message=AIMessageChunk(content="好", usage_metadata=usage))
    hook = t.on_llm_new_token
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter_ns()
        for _ in range(events):
            hook("好", chunk=chunk, run_id=run_id)
        best = min(best, (time.perf_counter_ns() - start) / events)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    cases = [
        ("ChatOpenAI chunk, no usage", "openai", "ChatOpenAI", None),
        ("ChatOpenAI chunk with usage", "openai", "ChatOpenAI", USAGE),
        (
            "QianfanChatEndpoint chunk (read, kept)",
            "qianfanchatendpoint",
            "QianfanChatEndpoint",
            USAGE,
        ),
    ]
    print(f"on_llm_new_token, {a.events} events, best of {a.repeat}")
    base = None
    for label, provider, cls, usage in cases:
        ns = ns_per_token(provider, cls, usage, a.events, a.repeat)
        base = base or ns
        print(f"{label:<40} {ns:8.1f} ns   {ns / base:5.2f}x")


if __name__ == "__main__":
    main()
