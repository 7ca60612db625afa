"""What budgets cost per call: ns for a whole call's callback work (start + end).

A budgeted call's start hook counts the prompt, prices the worst case and reserves it in
every budget the call belongs to; its end settles the reservation. This times a start (four
chat messages, `max_tokens`, metadata) and an end (the realistic LLMResult of
`bench_on_llm_end.py`) per call, for CostTracker without budgets, with three budgets (daily
global, monthly per user, rolling 15 minutes per model), and with them plus `cut_streams`;
side by side with LangChain's OpenAICallbackHandler (no budgets: it has none) and a no-op
handler, one thread and two threads sharing one handler, as ratios to OpenAICallbackHandler.

Run: python benchmarks/bench_budgets.py [--calls N] [--repeat R]
Build the extension with `maturin develop --release` first.
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=40_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
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
