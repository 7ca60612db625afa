"""Property test: random LangChain-shaped results through the tracker's hooks.

Hypothesis builds `LLMResult`s as LangChain's clients do (`AIMessage.usage_metadata`,
`llm_output["token_usage"]`, `generation_info`), then breaks them: missing keys, wrong types,
huge and negative ints, NaN, numpy integers, nested junk. Each example sends a few calls
through the hooks (start then end or error, or an end without a start) with random
attribution. Whatever the input: no hook raises, every call is recorded exactly once, no
count or cost is negative, the total cost is the exact sum of the records' costs, and the
malformed-usage counter matches the records that say so.

Derandomized and database-less, so every run (and CI) tries the same examples.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, Generation, LLMResult
from llmledger import CostTracker

PROPERTY = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=8),
    st.binary(max_size=4),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.builds(object),
)

counts = st.one_of(
    st.integers(min_value=0, max_value=5000),
    st.integers(min_value=0, max_value=5000),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-100, max_value=10**6).map(np.int64),
    st.sampled_from(["12", "", "NaN"]),
    junk,
)

DETAIL_KEYS = [
    "audio",
    "cache_read",
    "cache_creation",
    "ephemeral_5m_input_tokens",
    "ephemeral_1h_input_tokens",
    "priority_cache_read",
    "flex_cache_creation",
    "priority",
    "reasoning",
    "priority_reasoning",
    "junk",
]
details = st.one_of(st.dictionaries(st.sampled_from(DETAIL_KEYS), counts, max_size=4), junk)


def optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


usage_metadata = st.one_of(
    optional(
        input_tokens=counts,
        output_tokens=counts,
        total_tokens=counts,
        input_token_details=details,
        output_token_details=details,
        total_cost=st.one_of(st.just(0), counts),
    ),
    junk,
)

raw_usage = st.one_of(
    optional(
        prompt_tokens=counts,
        completion_tokens=counts,
        total_tokens=counts,
        prompt_tokens_details=st.one_of(
            optional(cached_tokens=counts, audio_tokens=counts, cache_write_tokens=counts), junk
        ),
        completion_tokens_details=st.one_of(
            optional(reasoning_tokens=counts, audio_tokens=counts), junk
        ),
    ),
    optional(
        input_tokens=counts,
        output_tokens=counts,
        cache_read_input_tokens=counts,
        cache_creation_input_tokens=counts,
        cache_creation=st.one_of(
            optional(ephemeral_5m_input_tokens=counts, ephemeral_1h_input_tokens=counts), junk
        ),
        input_tokens_details=st.one_of(optional(cached_tokens=counts), junk),
        output_tokens_details=st.one_of(optional(reasoning_tokens=counts), junk),
        service_tier=st.one_of(st.sampled_from(["standard", "priority", "flex"]), junk),
    ),
    junk,
)

models = st.one_of(
    st.sampled_from(["gpt-4o", "gpt-4o-mini-2024-07-18", "claude-sonnet-4-5", "no-such-model", ""]),
    junk,
)
tiers = st.one_of(st.sampled_from(["default", "priority", "flex", "batch"]), junk)
texts = st.one_of(st.text(max_size=40), junk)


@st.composite
def chat_generation(draw: st.DrawFn) -> Any:
    msg = AIMessage.model_construct(
        content=draw(texts),
        response_metadata=draw(st.one_of(optional(model_name=models, service_tier=tiers), junk)),
        tool_calls=[],
        invalid_tool_calls=[],
    )
    msg.usage_metadata = draw(st.one_of(st.none(), usage_metadata))
    return ChatGeneration.model_construct(message=msg, text="", generation_info=None)


@st.composite
def plain_generation(draw: st.DrawFn) -> Any:
    info = draw(st.one_of(st.none(), optional(token_usage=raw_usage, usage=raw_usage), junk))
    return Generation.model_construct(text=draw(texts), generation_info=info)


generation = st.one_of(chat_generation(), chat_generation(), plain_generation(), junk)


@st.composite
def llm_result(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 19)) == 0:
        return draw(junk)
    gens = draw(st.one_of(st.lists(st.lists(generation, max_size=3), min_size=1, max_size=2), junk))
    llm_output = draw(
        st.one_of(
            st.none(),
            optional(token_usage=raw_usage, usage=raw_usage, model_name=models, service_tier=tiers),
            junk,
        )
    )
    return LLMResult.model_construct(generations=gens, llm_output=llm_output, run=None)


attribution_values = st.one_of(st.text(max_size=300), st.integers(), junk)
start_kwargs = optional(
    invocation_params=st.one_of(
        optional(model=models, service_tier=tiers, max_tokens=counts), junk
    ),
    metadata=st.one_of(
        optional(user_id=attribution_values, session_id=attribution_values, ls_provider=models),
        junk,
    ),
    tags=st.one_of(st.lists(st.text(max_size=5), max_size=5), st.text(max_size=5), junk),
)

call = st.fixed_dictionaries(
    {
        "start": st.one_of(st.none(), start_kwargs),
        "messages": st.sampled_from(
            [[[HumanMessage(content="How much does this cost?")]], [[]], "junk"]
        ),
        "error": st.booleans(),
        "response": llm_result(),
    }
)


@PROPERTY
@given(calls=st.lists(call, min_size=1, max_size=4), estimate=st.booleans())
def test_hooks_never_raise_and_record_every_call_once(
    calls: list[dict[str, Any]], estimate: bool
) -> None:
    t = CostTracker(estimate=estimate)
    run_ids = []
    for c in calls:
        run = uuid.uuid4()
        run_ids.append(str(run))
        if c["start"] is not None:
            t.on_chat_model_start({}, c["messages"], run_id=run, **c["start"])
        if c["error"]:
            t.on_llm_error(RuntimeError("boom"), run_id=run, response=c["response"])
        else:
            t.on_llm_end(c["response"], run_id=run)
    records = t.records()
    assert sorted(r["run_id"] for r in records) == sorted(run_ids)
    assert t._core.open_runs == 0
    totals = t.totals()
    assert totals["calls"] == len(calls)
    assert totals["failed_requests"] == sum(c["error"] for c in calls)
    token_keys = [k for k in totals if k.endswith("_tokens")]
    for r in records:
        assert all(r[k] >= 0 for k in token_keys)
        assert r["cost"] is None or r["cost"] >= 0
        assert r["total_tokens"] == r["input_tokens"] + r["output_tokens"]
    assert all(totals[k] >= 0 for k in token_keys)
    assert totals["cost"] == sum((r["cost"] for r in records if r["cost"] is not None), Decimal(0))
    assert totals["malformed_usage_calls"] == sum(
        r["usage_source"] == "provider" and (r["estimated_by"] or "").startswith("provider+")
        for r in records
    )
    assert totals["unpriced_calls"] <= len(calls)
