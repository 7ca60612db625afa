"""No Python code runs while a Rust lock is held: a Python callable (the `clock=`, `on_alert`, a
logging handler) may release the GIL, and a thread that then waits for that lock while holding
the GIL deadlocks with it. Each scenario runs in a fresh interpreter with a timeout, so a
deadlock fails the test instead of hanging the run."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCENARIO_PRELUDE = """
import datetime, sys, threading, time, uuid
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from llmledger import Budget, CostTracker

def result():
    usage = {"input_tokens": 10, "output_tokens": 20, "total_tokens": 30}
    msg = AIMessage(content="x", usage_metadata=usage, response_metadata={"model_name": "gpt-4o-mini"})
    return LLMResult(generations=[[ChatGeneration(message=msg)]])

def stream(t, runs, chunks):
    for _ in range(runs):
        rid = uuid.uuid4()
        t.on_chat_model_start({}, [[HumanMessage("hello there")]], run_id=rid,
                              invocation_params={"model": "gpt-4o-mini"})
        for _ in range(chunks):
            t.on_llm_new_token("word ", run_id=rid)
        t.on_llm_end(result(), run_id=rid)

def in_threads(n, target, *args):
    threads = [threading.Thread(target=target, args=args) for _ in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
"""


def run(code: str) -> str:
    try:
        out = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(SCENARIO_PRELUDE) + textwrap.dedent(code)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"deadlock: the scenario did not finish in {e.timeout} s") from None
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_a_slow_python_clock_with_streams_cut_by_budget_does_not_deadlock() -> None:
    # The clock sleeps (releasing the GIL) and touches Python objects; with cut_streams every
    # chunk prices the stream so far at the clock's time.
    out = run(
        """
seen = []
def clock():
    seen.append(object())
    time.sleep(0.0002)
    return datetime.datetime.now(datetime.timezone.utc)

t = CostTracker(budgets=[Budget.daily(1000, cut_streams=True)], clock=clock)
in_threads(8, stream, t, 10, 20)
print(t.successful_requests, t.budgets()[0]["reserved"], len(seen) > 8 * 10 * 20)
"""
    )
    assert out.split() == ["80", "0", "True"]
