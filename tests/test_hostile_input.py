"""Hostile input through the hooks: malformed usage counts and unbounded attribution.

A malformed count is never billed as 0: llmledger counts that field itself from the text
(the record says which, in `estimated_by`), or, when it cannot, records it as unknown and
the cost as None. Attribution values and tags are bounded.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from llmledger import CostTracker, _core, cost

ANSWER = "A short answer of a handful of words, nothing more."
PROMPT = [[HumanMessage(content="Tell me something about ledgers and costs, please.")]]
START = {"invocation_params": {"model": "gpt-4o"}, "metadata": {"ls_provider": "openai"}}


def result(usage: dict[str, Any] | None) -> LLMResult:
    msg = AIMessage(content=ANSWER, response_metadata={"model_name": "gpt-4o"})
    if usage is not None:
        msg.usage_metadata = usage  # type: ignore[assignment]
    return LLMResult(generations=[[ChatGeneration(message=msg)]])


def call(t: CostTracker, usage: dict[str, Any] | None, *, start: bool = True) -> dict[str, Any]:
    run = uuid.uuid4()
    if start:
        t.on_chat_model_start({}, PROMPT, run_id=run, **START)
    t.on_llm_end(result(usage), run_id=run)
    return t.records()[-1]


def estimated_counts() -> tuple[int, int]:
    """What llmledger counts for PROMPT and ANSWER when the response reports no usage."""
    rec = call(CostTracker(), None)
    assert rec["usage_source"] == "estimated" and rec["estimated_by"] == "o200k_base"
    return rec["input_tokens"], rec["output_tokens"]


def messages(log: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in log.records if r.name == "llmledger"]


BAD_COUNTS = [float("nan"), float("inf"), -5, "12", 10**30, 2.5, True, b"7", [3], {"n": 1}]


@pytest.mark.parametrize("bad", [*BAD_COUNTS, None, "missing"], ids=repr)
def test_a_malformed_output_count_is_counted_from_the_text(
    bad: Any, ledger_log: pytest.LogCaptureFixture
) -> None:
    est_in, est_out = estimated_counts()
    assert est_out > 5
    t = CostTracker()
    usage: dict[str, Any] = {"input_tokens": 100, "total_tokens": 120}
    if bad != "missing":
        usage["output_tokens"] = bad
    rec = call(t, usage)
    assert rec["usage_source"] == "provider"
    assert rec["estimated_by"] == "provider+estimated:output_tokens (o200k_base)"
    assert (rec["input_tokens"], rec["output_tokens"]) == (100, est_out)
    assert rec["cost"] == cost("gpt-4o", input_tokens=100, output_tokens=est_out)
    assert t.totals()["malformed_usage_calls"] == 1
    assert t.totals()["estimated_calls"] == 0 and t.unpriced_calls == 0
    assert "Malformed-Usage Requests (counts llmledger replaced or could not): 1" in str(t)
    assert any("usage_metadata.output_tokens" in m for m in messages(ledger_log))


@pytest.mark.parametrize("bad", BAD_COUNTS, ids=repr)
def test_a_malformed_input_count_is_counted_from_the_prompt(bad: Any) -> None:
    est_in, _ = estimated_counts()
    t = CostTracker()
    rec = call(t, {"input_tokens": bad, "output_tokens": 7, "total_tokens": 9})
    assert rec["estimated_by"] == "provider+estimated:input_tokens (o200k_base)"
    assert (rec["input_tokens"], rec["output_tokens"]) == (est_in, 7)
    assert rec["cost"] == cost("gpt-4o", input_tokens=est_in, output_tokens=7)


def test_both_counts_malformed_are_both_counted() -> None:
    est_in, est_out = estimated_counts()
    rec = call(CostTracker(), {"input_tokens": -1, "output_tokens": "x"})
    assert rec["estimated_by"] == "provider+estimated:input_tokens,output_tokens (o200k_base)"
    assert (rec["input_tokens"], rec["output_tokens"]) == (est_in, est_out)


@pytest.mark.parametrize(
    "value", [np.int64(40), np.int32(40), np.uint16(40), np.float64(40.0)], ids=repr
)
def test_numpy_counts_are_valid(value: Any, ledger_log: pytest.LogCaptureFixture) -> None:
    t = CostTracker()
    rec = call(
        t,
        {
            "input_tokens": value,
            "output_tokens": value,
            "total_tokens": 80,
            "input_token_details": {"cache_read": value, "audio": np.int64(0)},
        },
    )
    assert (rec["input_tokens"], rec["cache_read_tokens"], rec["output_tokens"]) == (40, 40, 40)
    assert rec["estimated_by"] is None and not messages(ledger_log)
    assert t.totals()["malformed_usage_calls"] == 0


def test_with_estimates_off_a_malformed_count_is_unknown_not_zero(
    ledger_log: pytest.LogCaptureFixture,
) -> None:
    t = CostTracker(estimate=False)
    rec = call(t, {"input_tokens": 100, "output_tokens": -5, "total_tokens": 95})
    assert rec["usage_source"] == "provider"
    assert rec["estimated_by"] == "provider+unknown:output_tokens"
    assert rec["cost"] is None and "output_tokens" in rec["unpriced_reason"]
    assert t.unpriced_calls == 1 and t.totals()["malformed_usage_calls"] == 1
    assert any(
        "output_tokens" in m and "estimate=False" in m and "cost None" in m
        for m in messages(ledger_log)
    )


def test_a_malformed_part_is_unknown_it_cannot_be_counted_from_text(
    ledger_log: pytest.LogCaptureFixture,
) -> None:
    t = CostTracker()
    rec = call(
        t,
        {"input_tokens": 100, "output_tokens": 5, "input_token_details": {"cache_read": -1}},
    )
    assert rec["estimated_by"] == "provider+unknown:cache_read_tokens"
    assert rec["cost"] is None and t.unpriced_calls == 1
    assert any("cache_read_tokens" in m and "cannot be counted" in m for m in messages(ledger_log))


def test_an_end_without_a_start_counts_the_output_but_not_the_input() -> None:
    _, est_out = estimated_counts()
    t = CostTracker()
    rec = call(t, {"input_tokens": 10, "output_tokens": float("nan")}, start=False)
    assert (rec["output_tokens"], rec["estimated_by"]) == (
        est_out,
        "provider+estimated:output_tokens (o200k_base)",
    )
    rec = call(t, {"input_tokens": "ten", "output_tokens": 3}, start=False)
    assert rec["estimated_by"] == "provider+unknown:input_tokens" and rec["cost"] is None
    assert t.totals()["malformed_usage_calls"] == 2


def test_malformed_raw_usage_in_llm_output_is_counted_too() -> None:
    est_in, _ = estimated_counts()
    t = CostTracker()
    run = uuid.uuid4()
    t.on_chat_model_start({}, PROMPT, run_id=run, **START)
    msg = AIMessage(content=ANSWER)
    raw = {"prompt_tokens": "100", "completion_tokens": 9}
    t.on_llm_end(
        LLMResult(generations=[[ChatGeneration(message=msg)]], llm_output={"token_usage": raw}),
        run_id=run,
    )
    rec = t.records()[0]
    assert (rec["input_tokens"], rec["output_tokens"]) == (est_in, 9)
    assert rec["estimated_by"] == "provider+estimated:input_tokens (o200k_base)"


@pytest.mark.parametrize("name", ["costs.db", "costs.jsonl"])
def test_the_ledger_keeps_the_mark_and_its_report_counts_it(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    t = CostTracker(store=path)
    call(t, {"input_tokens": 100, "output_tokens": -1})
    call(t, {"input_tokens": 100, "output_tokens": 4})
    call(t, None)
    t.close()
    rep = _core.ledger_report(path)
    assert rep["totals"]["malformed_usage_calls"] == 1
    assert rep["totals"] == t.totals()


# ---- attribution ------------------------------------------------------------------------


def started(t: CostTracker, **start_kw: Any) -> dict[str, Any]:
    run = uuid.uuid4()
    t.on_chat_model_start({}, PROMPT, run_id=run, **start_kw)
    t.on_llm_end(result({"input_tokens": 1, "output_tokens": 1}), run_id=run)
    return t.records()[-1]


def test_a_huge_metadata_value_is_cut_and_marked(
    tmp_path: Path, ledger_log: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "costs.db"
    t = CostTracker(store=path)
    huge = "é" * 1_000_000
    rec = started(t, metadata={"user_id": huge, "session_id": "s-1"})
    assert rec["attribution"] == {
        "user_id": "é" * 256 + f"…[+{1_000_000 - 256} chars]",
        "session_id": "s-1",
    }
    t.close()
    stored = _core.ledger_report(path, by=["user_id"])["rows"]
    assert [r["user_id"] for r in stored] == [rec["attribution"]["user_id"]]
    # A value of exactly the limit is kept whole.
    assert started(t, metadata={"user_id": "u" * 256})["attribution"]["user_id"] == "u" * 256


def test_the_first_cut_and_drop_are_logged_in_one_spaced_sentence() -> None:
    """Each is logged once per process: a fresh process sees its first ones. (The messages
    once carried a run of spaces where a line continuation was lost.)"""
    code = (
        "import logging, uuid\n"
        "from langchain_core.messages import HumanMessage\n"
        "from llmledger import CostTracker\n"
        "logging.basicConfig(level=logging.WARNING, format='%(message)s')\n"
        "CostTracker().on_chat_model_start({}, [[HumanMessage('hi')]], run_id=uuid.uuid4(),"
        " metadata={'user_id': 'u' * 300}, tags=[str(i) for i in range(70)])\n"
    )
    err = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stderr
    assert "metadata['user_id'] is 300 characters long: recorded cut to 256 and marked '…" in err
    assert "the first 64 are recorded (further drops are not logged)" in err
    assert "  " not in err, err


def test_tags_given_as_one_string_are_one_tag() -> None:
    t = CostTracker()
    assert started(t, tags="abc")["tags"] == ["abc"]
    assert started(t, tags=("a", "b"))["tags"] == ["a", "b"]
    assert started(t, tags=(f"t{i}" for i in range(3)))["tags"] == ["t0", "t1", "t2"]
    assert started(t, tags=7)["tags"] == ["7"]
    assert started(t, tags=None)["tags"] == []


def test_the_number_of_tags_is_bounded(ledger_log: pytest.LogCaptureFixture) -> None:
    t = CostTracker()
    rec = started(t, tags=[f"tag-{i}" for i in range(10_000)])
    assert rec["tags"] == [f"tag-{i}" for i in range(64)]
    long = started(t, tags=["x" * 300])["tags"]
    assert long == ["x" * 256 + "…[+44 chars]"]


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


def test_a_value_whose_str_raises_is_a_placeholder() -> None:
    t = CostTracker()
    rec = started(t, metadata={"user_id": Unprintable()}, tags=["ok", Unprintable()])
    assert rec["attribution"] == {"user_id": "<unprintable Unprintable>"}
    assert rec["tags"] == ["ok", "<unprintable Unprintable>"]
    assert t.successful_requests == 1


def test_non_string_values_are_their_text() -> None:
    t = CostTracker()
    rec = started(t, metadata={"user_id": 42, "session_id": Decimal("1.5")})
    assert rec["attribution"] == {"user_id": "42", "session_id": "1.5"}


def test_a_string_that_is_not_valid_unicode_is_kept_lossily() -> None:
    rec = started(CostTracker(), metadata={"user_id": "a\udcffb"}, tags=["t\ud800"])
    # Each lone surrogate becomes replacement characters; the rest is kept.
    user = rec["attribution"]["user_id"]
    assert user[0] == "a" and user[-1] == "b" and set(user[1:-1]) == {"\ufffd"}
    assert rec["tags"][0][0] == "t" and set(rec["tags"][0][1:]) == {"\ufffd"}
