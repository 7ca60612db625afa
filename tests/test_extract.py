"""Usage extraction from LangChain's objects, trap by trap, on hand-built results."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, Generation, LLMResult
from llmledger import CostTracker, cost


def chat_result(
    *usages: dict[str, Any] | None,
    model: str = "gpt-4o",
    llm_output: dict[str, Any] | None = None,
    response_metadata: dict[str, Any] | None = None,
) -> LLMResult:
    gens = []
    for u in usages:
        msg = AIMessage(
            content="x", response_metadata={"model_name": model, **(response_metadata or {})}
        )
        if u is not None:
            msg.usage_metadata = u  # type: ignore[assignment]
        gens.append(ChatGeneration(message=msg))
    return LLMResult(generations=[gens], llm_output=llm_output)


def end(t: CostTracker, result: LLMResult, **start_kw: Any) -> dict[str, Any]:
    run_id = uuid.uuid4()
    if start_kw:
        t.on_chat_model_start({}, [[]], run_id=run_id, **start_kw)
    t.on_llm_end(result, run_id=run_id)
    return t.records()[-1]


UM = {"input_tokens": 100, "output_tokens": 20, "total_tokens": 120}
RAW_OPENAI = {
    "prompt_tokens": 100,
    "completion_tokens": 20,
    "total_tokens": 120,
    "prompt_tokens_details": {"cached_tokens": 30},
    "completion_tokens_details": {"reasoning_tokens": 5},
}


def test_n2_copies_counted_once() -> None:
    t = CostTracker()
    rec = end(t, chat_result(UM, UM, llm_output={"token_usage": RAW_OPENAI}))
    assert (rec["input_tokens"], rec["output_tokens"]) == (100, 20)


def test_usage_in_two_places_counted_once_and_metadata_wins() -> None:
    t = CostTracker()
    um = {**UM, "input_token_details": {"cache_read": 30}, "output_token_details": {"reasoning": 5}}
    rec = end(
        t,
        chat_result(um, llm_output={"token_usage": RAW_OPENAI, "model_name": "gpt-4o-2024-11-20"}),
    )
    assert (rec["input_tokens"], rec["cache_read_tokens"], rec["reasoning_tokens"]) == (100, 30, 5)
    assert t.successful_requests == 1


def test_llm_output_only_openai_shape() -> None:
    t = CostTracker()
    rec = end(
        t,
        chat_result(
            None, llm_output={"token_usage": RAW_OPENAI, "model_name": "gpt-4o-2024-08-06"}
        ),
    )
    assert (
        rec["input_tokens"],
        rec["cache_read_tokens"],
        rec["output_tokens"],
        rec["reasoning_tokens"],
    ) == (100, 30, 20, 5)
    assert rec["model"] == "gpt-4o"  # response_metadata's model wins over llm_output's


def test_anthropic_raw_usage_is_exclusive() -> None:
    raw = {
        "input_tokens": 50,
        "output_tokens": 10,
        "cache_read_input_tokens": 400,
        "cache_creation_input_tokens": 100,
        "cache_creation": {"ephemeral_5m_input_tokens": 60, "ephemeral_1h_input_tokens": 40},
    }
    t = CostTracker()
    rec = end(t, chat_result(None, model="claude-3-5-haiku-20241022", llm_output={"usage": raw}))
    assert rec["input_tokens"] == 550
    assert (rec["cache_read_tokens"], rec["cache_write_tokens"], rec["cache_write_1h_tokens"]) == (
        400,
        100,
        40,
    )


def test_anthropic_usage_metadata_split_not_double_counted() -> None:
    um = {
        "input_tokens": 550,
        "output_tokens": 10,
        "total_tokens": 560,
        "input_token_details": {
            "cache_read": 400,
            "cache_creation": 0,
            "ephemeral_5m_input_tokens": 60,
            "ephemeral_1h_input_tokens": 40,
        },
    }
    t = CostTracker()
    rec = end(t, chat_result(um, model="claude-3-5-haiku-20241022"))
    assert (rec["cache_write_tokens"], rec["cache_write_1h_tokens"]) == (100, 40)
    assert rec["cost"] == cost(
        "claude-3-5-haiku-20241022",
        input_tokens=550,
        output_tokens=10,
        cache_read_tokens=400,
        cache_write_tokens=100,
        cache_write_1h_tokens=40,
    )


@pytest.mark.parametrize("tier", ["priority", "flex"])
def test_service_tier_detail_keys(tier: str) -> None:
    um = {
        "input_tokens": 1000,
        "output_tokens": 100,
        "total_tokens": 1100,
        "input_token_details": {f"{tier}_cache_read": 400, tier: 600},
        "output_token_details": {f"{tier}_reasoning": 30, tier: 70},
    }
    t = CostTracker()
    rec = end(t, chat_result(um, model="gpt-5"))
    assert rec["service_tier"] == tier
    assert (rec["cache_read_tokens"], rec["reasoning_tokens"]) == (400, 30)
    assert rec["cost"] == cost(
        "gpt-5", input_tokens=1000, output_tokens=100, cache_read_tokens=400, service_tier=tier
    )


def test_llm_cache_hit_marker_without_tokens() -> None:
    t = CostTracker()
    rec = end(t, chat_result({"total_cost": 0}))  # type: ignore[arg-type]
    assert rec["usage_source"] == "cache" and rec["cost"] == 0
    assert t.llm_cache_hits == 1 and t.unpriced_calls == 0


def test_plain_llm_batch_flattened_usage_on_first_run() -> None:
    t = CostTracker()
    first = LLMResult(
        generations=[[Generation(text="a")]],
        llm_output={
            "token_usage": {"prompt_tokens": 20, "completion_tokens": 8},
            "model_name": "gpt-3.5-turbo-instruct",
        },
    )
    other = LLMResult(
        generations=[[Generation(text="b")]],
        llm_output={"token_usage": {}, "model_name": "gpt-3.5-turbo-instruct"},
    )
    for r in (first, other):
        run = uuid.uuid4()
        t.on_llm_start(
            {}, ["p"], run_id=run, invocation_params={"model_name": "gpt-3.5-turbo-instruct"}
        )
        t.on_llm_end(r, run_id=run)
    assert t.successful_requests == 2 and t.total_tokens == 28 and t.unpriced_calls == 0


def test_model_falls_back_to_invocation_params_then_ls_model_name() -> None:
    t = CostTracker()
    bare = LLMResult(
        generations=[[ChatGeneration(message=AIMessage(content="x", usage_metadata=UM))]]
    )  # type: ignore[arg-type]
    rec = end(
        t, bare, invocation_params={"model": "gpt-4o-mini"}, metadata={"ls_model_name": "ignored"}
    )
    assert rec["model"] == "gpt-4o-mini"
    rec = end(
        t, bare, invocation_params={}, metadata={"ls_model_name": "gpt-4o", "ls_provider": "openai"}
    )
    assert rec["model"] == "gpt-4o" and rec["provider"] == "openai"


UNKNOWN_IN = "provider+unknown:input_tokens"
# The output of `chat_result` is "x": one token by o200k_base.
COUNTED_OUT = "provider+estimated:output_tokens (o200k_base)"


@pytest.mark.parametrize(
    ("um", "field", "expected_in", "expected_out", "estimated_by"),
    [
        # No start was seen: a bad input count cannot be counted, it is unknown (not 0).
        ({"input_tokens": None, "output_tokens": 5}, "input_tokens", 0, 5, UNKNOWN_IN),
        ({"input_tokens": -3, "output_tokens": 5}, "input_tokens", 0, 5, UNKNOWN_IN),
        ({"input_tokens": "12", "output_tokens": 5}, "input_tokens", 0, 5, UNKNOWN_IN),
        ({"input_tokens": 10**30, "output_tokens": 5}, "input_tokens", 0, 5, UNKNOWN_IN),
        ({"output_tokens": 5}, "input_tokens", 0, 5, UNKNOWN_IN),
        # The output's text is in the response: a bad output count is counted from it.
        ({"input_tokens": 10, "output_tokens": 2.5}, "output_tokens", 10, 1, COUNTED_OUT),
        ({"input_tokens": 10, "output_tokens": True}, "output_tokens", 10, 1, COUNTED_OUT),
        ({"input_tokens": 10.0, "output_tokens": 5}, None, 10, 5, None),
        (
            {"input_tokens": 10, "output_tokens": 5, "input_token_details": "oops"},
            "input_token_details",
            10,
            5,
            None,
        ),
        (
            {"input_tokens": 10, "output_tokens": 5, "input_token_details": {"cache_read": -1}},
            "cache_read",
            10,
            5,
            "provider+unknown:cache_read_tokens",
        ),
    ],
)
def test_malformed_usage_warns_and_keeps_valid_fields(
    um: dict[str, Any],
    field: str | None,
    expected_in: int,
    expected_out: int,
    estimated_by: str | None,
    ledger_log: pytest.LogCaptureFixture,
) -> None:
    t = CostTracker()
    rec = end(t, chat_result(um))  # type: ignore[arg-type]
    assert t.successful_requests == 1
    assert (rec["input_tokens"], rec["output_tokens"]) == (expected_in, expected_out)
    assert rec["usage_source"] == "provider" and rec["estimated_by"] == estimated_by
    # An unknown count makes the cost unknown, never a price of 0 tokens.
    assert (rec["cost"] is None) == (estimated_by is not None and "unknown" in estimated_by)
    messages = [r.getMessage() for r in ledger_log.records if r.name == "llmledger"]
    if field is None:
        assert not messages
    else:
        assert any(field in m and "malformed usage" in m for m in messages), messages


def test_inconsistent_parts_raise_the_whole_with_a_warning(
    ledger_log: pytest.LogCaptureFixture,
) -> None:
    t = CostTracker()
    rec = end(
        t,
        chat_result(
            {
                "input_tokens": 10,
                "output_tokens": 5,
                "total_tokens": 15,
                "input_token_details": {"cache_read": 50},
            }
        ),
    )
    assert rec["input_tokens"] == 50 and rec["cache_read_tokens"] == 50
    assert any("input_tokens (10) is less than" in r.getMessage() for r in ledger_log.records)


def test_garbage_response_never_raises(ledger_log: pytest.LogCaptureFixture) -> None:
    t = CostTracker()
    t.on_llm_end(object(), run_id=uuid.uuid4())  # type: ignore[arg-type]
    t.on_llm_end(LLMResult(generations=[]), run_id=uuid.uuid4())
    assert t.successful_requests == 2 and t.unpriced_calls == 2
    # A wrong run_id type is an internal error: logged, swallowed.
    t.on_llm_end(LLMResult(generations=[]), run_id="not-a-uuid")  # type: ignore[arg-type]
    assert any("internal error in on_llm_end" in r.getMessage() for r in ledger_log.records)


def test_error_with_partial_response_usage_is_priced() -> None:
    t = CostTracker()
    run = uuid.uuid4()
    t.on_chat_model_start({}, [[]], run_id=run, invocation_params={"model": "gpt-4o"})
    t.on_llm_error(TimeoutError("stream cut"), run_id=run, response=chat_result(UM))
    rec = t.records()[0]
    assert rec["error"] == "TimeoutError: stream cut"
    assert rec["cost"] == cost("gpt-4o", input_tokens=100, output_tokens=20)
    assert t.total_cost == rec["cost"] and t.failed_requests == 1
    assert isinstance(rec["cost"], Decimal)


class _OverridingMessage(AIMessage):
    """An AIMessage whose `__getattribute__` gives another usage than its `__dict__` holds."""

    def __getattribute__(self, name: str) -> Any:
        if name == "usage_metadata":
            return {"input_tokens": 7, "output_tokens": 3, "total_tokens": 10}
        return super().__getattribute__(name)


def test_the_end_reads_the_fields_getattr_gives() -> None:
    # The end reads the response, its generations and messages from their instance __dict__
    # only where their class gives the same through getattr (src/py/attrs.rs).
    t = CostTracker()
    plain = end(t, chat_result(UM))
    assert (plain["input_tokens"], plain["output_tokens"]) == (100, 20)
    msg = _OverridingMessage(content="x", response_metadata={"model_name": "gpt-4o"})
    msg.__dict__["usage_metadata"] = UM
    odd = end(t, LLMResult(generations=[[ChatGeneration(message=msg)]]))
    assert (odd["input_tokens"], odd["output_tokens"]) == (7, 3)
    assert odd["model"] == "gpt-4o"
