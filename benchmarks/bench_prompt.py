"""What a call's prompt costs the hooks: issue 17's figures, side by side in one run.

1. `on_chat_model_start` with one budget on a 20-turn conversation, each turn a new call with
   the history so far (a chat app): median ms per start, with the token memo and without it
   (`token_memo(max_messages=0)`: every message tokenized on every call, as before the memo).
2. The same on a repeated 100,000-token system prompt (a RAG app): the first call, then the
   median of the next ones.
3. A start + end pair without budgets, 1 and 2 threads sharing one handler: `CostTracker()`
   (no ledger: request fingerprints off by default) and with fingerprints on (as a tracker
   with a ledger has them), against `OpenAICallbackHandler`'s pair; LangChain's fallback for a handler without
   `on_chat_model_start` (NotImplementedError, then `on_llm_start` with each message list
   flattened by `get_buffer_string`) is part of its figure, as in a real call.
4. `count_tokens` on 4 KB texts, one thread, against Python tiktoken.

Rounds interleave the cases (a slow spell of a shared machine weighs on all of them alike);
each figure is its best round. Ratios are the point: the machine may be loaded by others.

Run: python benchmarks/bench_prompt.py [--rounds R] [--events N]
Build the extension with `maturin develop --release` first.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain_core.callbacks.manager import handle_event
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.messages.utils import get_buffer_string

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

import llmledger  # noqa: E402
from bench_on_llm_end import START_KW, realistic_result  # noqa: E402
from bench_tokens import corpus  # noqa: E402
from llmledger import Budget, CostTracker, token_memo  # noqa: E402
from tiktoken_local import local_encoding  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from langchain_community.callbacks.openai_info import OpenAICallbackHandler

BUDGET_KW = {**START_KW, "invocation_params": {"model": "gpt-4o-mini", "max_tokens": 500}}
PROSE = (
    "The ledger records every call: the model, the provider, the tokens of each kind and the "
    "exact cost, attributed to the user, the session and the feature that made it. "
)


def turn_text(tag: str, n_bytes: int) -> str:
    return (f"[{tag}] " + PROSE * (n_bytes // len(PROSE) + 1))[:n_bytes]


def conversation(turns: int, turn_bytes: int) -> list[BaseMessage]:
    """A system prompt and `turns` user/assistant exchanges, text never seen before."""
    tag = uuid.uuid4().hex
    msgs: list[BaseMessage] = [SystemMessage(turn_text(f"{tag} system", 800))]
    for i in range(turns):
        msgs.append(HumanMessage(turn_text(f"{tag} user {i}", turn_bytes)))
        msgs.append(AIMessage(turn_text(f"{tag} assistant {i}", turn_bytes)))
    return msgs


def with_memo(on: bool, default: int) -> None:
    token_memo(max_messages=default if on else 0)


def chat_app(
    turns: int, turn_bytes: int, memo: bool, default: int, fingerprints: bool | None = None
) -> tuple[float, int]:
    """Median ms of a budgeted `on_chat_model_start` over a conversation's calls, and the
    last call's prompt tokens. `fingerprints=True`: as a tracker with a ledger starts."""
    with_memo(memo, default)
    t = CostTracker(budgets=[Budget.daily(1_000_000)], fingerprints=fingerprints)
    msgs = conversation(turns, turn_bytes)
    result = realistic_result()
    times = []
    for i in range(turns):
        prompt = [msgs[: 2 + 2 * i]]  # system + history + the new user message
        rid = uuid.uuid4()
        t0 = time.perf_counter()
        t.on_chat_model_start({}, prompt, run_id=rid, parent_run_id=None, **BUDGET_KW)
        times.append(time.perf_counter() - t0)
        t.on_llm_end(result, run_id=rid, parent_run_id=None, tags=["prod"])
    tokens = llmledger.count_message_tokens(msgs[: 2 * turns], "gpt-4o-mini")
    return statistics.median(times) * 1e3, tokens


def rag_app(calls: int, system_bytes: int, memo: bool, default: int) -> tuple[float, float]:
    """ms of the first budgeted start with a long system prompt, and the median of the next."""
    with_memo(memo, default)
    t = CostTracker(budgets=[Budget.daily(1_000_000)])
    system = SystemMessage(turn_text(uuid.uuid4().hex, system_bytes))
    result = realistic_result()
    times = []
    for i in range(calls):
        prompt = [[system, HumanMessage(f"question {i} {uuid.uuid4()}")]]
        rid = uuid.uuid4()
        t0 = time.perf_counter()
        t.on_chat_model_start({}, prompt, run_id=rid, parent_run_id=None, **BUDGET_KW)
        times.append(time.perf_counter() - t0)
        t.on_llm_end(result, run_id=rid, parent_run_id=None, tags=["prod"])
    return times[0] * 1e3, statistics.median(times[1:]) * 1e3


def chat_start(handler: Any) -> Callable[..., None]:
    """How LangChain's callback manager starts a chat run on `handler`
    (`langchain_core.callbacks.manager.handle_event`): `on_chat_model_start`, and for a
    handler without one, LangChain's fallback: each message list flattened to a string, then
    `on_llm_start` through `handle_event` again (the manager's own loop around the first call,
    the same for every handler, is left out, as the end's is)."""

    def start(serialized: Any, messages: list[list[BaseMessage]], **kw: Any) -> None:
        try:
            handler.on_chat_model_start(serialized, messages, **kw)
        except NotImplementedError:
            strings = [get_buffer_string(m) for m in messages]
            handle_event([handler], "on_llm_start", "ignore_llm", serialized, strings, **kw)

    return start


BATCH = 64


def pair(make: Callable[[], Any], messages: list[BaseMessage], events: int, threads: int) -> float:
    """ns per start + end pair, `threads` threads sharing one handler: each starts BATCH runs
    then ends them (an app with BATCH calls in flight); the median batch."""
    handler = make()
    start = chat_start(handler)
    result = realistic_result()
    barrier = threading.Barrier(threads)
    timed: list[float] = []

    def work() -> None:
        end = handler.on_llm_end
        prompt = [messages]
        barrier.wait()
        for _ in range(events // threads // BATCH):
            ids = [uuid.uuid4() for _ in range(BATCH)]
            t0 = time.perf_counter()
            for rid in ids:
                start({}, prompt, run_id=rid, parent_run_id=None, **START_KW)
            for rid in ids:
                end(result, run_id=rid, parent_run_id=None, tags=["prod"])
            timed.append(time.perf_counter() - t0)

    ts = [threading.Thread(target=work) for _ in range(threads)]
    gc.disable()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    gc.enable()
    return statistics.median(timed) / BATCH * 1e9


def fingerprinted() -> CostTracker:
    """A tracker with request fingerprints, as one with a ledger (`store=`) or `advise=True`
    has them by default (`CostTracker()` alone has them off)."""
    return CostTracker(fingerprints=True)


def count_4k(texts: list[str], ours: bool) -> float:
    """Seconds to count `texts` on one thread."""
    enc = local_encoding("o200k_base")
    t0 = time.perf_counter()
    if ours:
        for t in texts:
            llmledger.count_tokens(t, encoding="o200k_base")
    else:
        for t in texts:
            len(enc.encode_ordinary(t))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--turns", type=int, default=20)
    ap.add_argument("--turn-bytes", type=int, default=2460)
    ap.add_argument("--system-bytes", type=int, default=461_000)
    ap.add_argument("--rag-calls", type=int, default=20)
    args = ap.parse_args()
    default = token_memo()["max_messages"]
    small_talk = [
        SystemMessage("You are a helpful assistant. Answer in one paragraph."),
        HumanMessage("What does a cost ledger for LLM calls record?"),
        AIMessage(PROSE * 2),
        HumanMessage("And how are budgets enforced before a call?"),
    ]
    texts = corpus(200, 4096)
    system_tokens = llmledger.count_tokens(turn_text("x", args.system_bytes), "gpt-4o-mini")

    best: dict[str, float] = {}

    def keep(name: str, value: float) -> None:
        best[name] = min(best.get(name, float("inf")), value)

    chat_tokens = 0
    for _ in range(args.rounds):
        for memo in (True, False):
            label = "memo" if memo else "no memo"
            ms, chat_tokens = chat_app(args.turns, args.turn_bytes, memo, default)
            keep(f"chat {label}", ms)
            if memo:
                ms, _ = chat_app(args.turns, args.turn_bytes, memo, default, fingerprints=True)
                keep("chat memo fp", ms)
            first, after = rag_app(args.rag_calls, args.system_bytes, memo, default)
            keep(f"rag first {label}", first)
            keep(f"rag after {label}", after)
        with_memo(True, default)
        for threads in (1, 2):
            keep(f"pair ours {threads}", pair(CostTracker, small_talk, args.events, threads))
            keep(
                f"pair ours fp {threads}",
                pair(fingerprinted, small_talk, args.events, threads),
            )
            keep(
                f"pair openai {threads}",
                pair(OpenAICallbackHandler, small_talk, args.events, threads),
            )
        keep("4k ours", count_4k(texts, True))
        keep("4k tiktoken", count_4k(texts, False))

    print(f"issue 17 figures, best of {args.rounds} interleaved rounds (shared machine: ratios)\n")
    print(
        f"1. budgeted on_chat_model_start, {args.turns}-turn conversation "
        f"({chat_tokens} tokens at the last turn), median ms per start"
    )
    on, off = best["chat memo"], best["chat no memo"]
    print(
        f"   with the memo {on:8.3f}   without {off:8.3f}   ratio {off / on:6.1f}x  (target <= 0.15)"
    )
    print(f"   with the memo and fingerprints (as with a ledger) {best['chat memo fp']:8.3f}")
    print(f"2. budgeted on_chat_model_start, repeated {system_tokens}-token system prompt, ms")
    for key, what in (("first", "first call"), ("after", "median after")):
        on, off = best[f"rag {key} memo"], best[f"rag {key} no memo"]
        print(
            f"   {what:<14} with the memo {on:8.3f}   without {off:8.3f}   ratio {off / on:6.1f}x"
        )
    print("   (target: after the first, <= 0.2)")
    print("3. start + end pair without budgets, ns per pair (4-message chat prompt)")
    for threads in (1, 2):
        theirs = best[f"pair openai {threads}"]
        for key, what in (("ours", "CostTracker()   "), ("ours fp", "fingerprints on ")):
            ours = best[f"pair {key} {threads}"]
            print(
                f"   {threads} thread(s), {what}: CostTracker {ours:8.0f}   "
                f"OpenAICallbackHandler {theirs:8.0f}   ratio {ours / theirs:5.2f}  "
                "(target <= 0.25)"
            )
    mb = sum(len(t.encode()) for t in texts) / 1e6
    ours, theirs = best["4k ours"], best["4k tiktoken"]
    print(
        f"4. count_tokens, 4 KB texts, one thread: llmledger {mb / ours:6.1f} MB/s, Python "
        f"tiktoken {mb / theirs:6.1f} MB/s, ratio {theirs / ours:4.2f}x"
    )
    with_memo(True, default)


if __name__ == "__main__":
    main()
