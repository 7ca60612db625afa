"""CostTracker driven by LangChain's callback manager with fake chat models."""

from __future__ import annotations

import copy
import uuid
from decimal import Decimal

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from llmledger import CostTracker, _core, cost
from llmledger.testing import UsageFakeChatModel


def usage(i: int, o: int, **details: object) -> dict[str, object]:
    u: dict[str, object] = {"input_tokens": i, "output_tokens": o, "total_tokens": i + o}
    u.update(details)
    return u


def test_invoke_is_priced_exactly(llm: UsageFakeChatModel) -> None:
    t = CostTracker()
    llm.usage = usage(1200, 300)
    llm.invoke("hi", config={"callbacks": [t]})
    assert t.successful_requests == 1
    assert (t.prompt_tokens, t.completion_tokens, t.total_tokens) == (1200, 300, 1500)
    # gpt-4o-mini: $0.15 in, $0.60 out per 1M.
    assert t.total_cost == Decimal("0.00018") + Decimal("0.00018")
    assert isinstance(t.total_cost, Decimal)
    rec = t.records()[0]
    assert rec["price_entry"] == "openai/gpt-4o-mini"
    assert rec["catalog_version"] == t.catalog_version
    assert rec["usage_source"] == "provider"
    assert rec["cost"] == cost("gpt-4o-mini", input_tokens=1200, output_tokens=300)


def test_cached_and_reasoning_tokens_priced_apart() -> None:
    llm = UsageFakeChatModel(
        model="o4-mini",
        usage=usage(
            10_000,
            2_000,
            input_token_details={"cache_read": 8_000},
            output_token_details={"reasoning": 1_500},
        ),
    )
    t = CostTracker()
    llm.invoke("x", config={"callbacks": [t]})
    assert t.prompt_tokens_cached == 8_000
    assert t.reasoning_tokens == 1_500
    expected = cost("o4-mini", input_tokens=10_000, output_tokens=2_000, cache_read_tokens=8_000)
    assert t.total_cost == expected
    # Cached tokens are cheaper than uncached ones: not billed twice, not billed at full price.
    assert expected < cost("o4-mini", input_tokens=10_000, output_tokens=2_000)
    text = str(t)
    assert "Prompt Tokens Cached: 8000" in text
    assert "Reasoning Tokens: 1500" in text


def test_str_has_get_openai_callback_lines(llm: UsageFakeChatModel) -> None:
    t = CostTracker()
    llm.usage = usage(10, 5)
    llm.invoke("x", config={"callbacks": [t]})
    lines = str(t).splitlines()
    assert lines[0] == "Tokens Used: 15"
    assert lines[1] == "\tPrompt Tokens: 10"
    assert "Successful Requests: 1" in lines
    assert lines[-1].startswith("Total Cost (USD): $")


def test_streaming_with_usage_is_counted(llm: UsageFakeChatModel) -> None:
    t = CostTracker()
    llm.usage = usage(40, 7)
    chunks = list(llm.stream("hello", config={"callbacks": [t]}))
    assert len(chunks) > 2
    assert t.successful_requests == 1
    assert t.total_tokens == 47
    assert t.records()[0]["streamed_chunks"] >= 3


def test_attribution_from_metadata_tags_and_root_run(llm: UsageFakeChatModel) -> None:
    from langchain_core.prompts import ChatPromptTemplate

    t = CostTracker(attribute=["user_id", "feature"])
    chain = (ChatPromptTemplate.from_messages([("user", "{q}")]) | llm).with_config(
        run_name="answer_chain"
    )
    for user in ["alice", "bob", "alice"]:
        chain.invoke(
            {"q": "hi"},
            config={
                "callbacks": [t],
                "metadata": {"user_id": user, "feature": "faq"},
                "tags": ["prod"],
            },
        )
    rows = {r["user_id"]: r for r in t.summary(by=["user_id"])}
    assert rows["alice"]["calls"] == 2 and rows["bob"]["calls"] == 1
    assert rows["alice"]["cost"] == 2 * rows["bob"]["cost"]
    rec = t.records()[0]
    assert rec["attribution"] == {"user_id": "alice", "feature": "faq"}
    assert "prod" in rec["tags"]
    assert rec["root_run_name"] == "answer_chain"
    assert rec["root_run_id"] != rec["run_id"]
    assert rec["parent_run_id"] is not None
    by_root = t.summary(by=["root_run_name", "feature"])
    assert by_root[0]["root_run_name"] == "answer_chain"
    assert by_root[0]["calls"] == 3
    report = t.report(by=["user_id"])
    assert "alice" in report and "TOTAL" in report


def test_summary_rejects_uncaptured_dimension(llm: UsageFakeChatModel) -> None:
    t = CostTracker()
    with pytest.raises(ValueError, match="unknown dimension 'team'"):
        t.summary(by=["team"])


def test_unknown_model_is_unpriced_never_zero(ledger_log: pytest.LogCaptureFixture) -> None:
    llm = UsageFakeChatModel(model="acme-secret-model-9", usage=usage(100, 10))
    t = CostTracker()
    for _ in range(3):
        llm.invoke("x", config={"callbacks": [t]})
    assert t.unpriced_calls == 3
    assert t.total_tokens == 330
    assert t.total_cost == Decimal(0)
    rec = t.records()[0]
    assert rec["cost"] is None
    assert "acme-secret-model-9" in rec["unpriced_reason"]
    warnings = [
        r.getMessage() for r in ledger_log.records if "acme-secret-model-9" in r.getMessage()
    ]
    assert len(warnings) == 1, warnings
    assert "prices=" in warnings[0]
    assert "Unpriced Requests: 3" in str(t)


def test_price_overrides_dict_price_unknown_model() -> None:
    llm = UsageFakeChatModel(model="acme-model-2", usage=usage(1_000_000, 1_000_000))
    t = CostTracker(prices={"acme-model-2": {"input": "0.50", "output": Decimal("1.25")}})
    llm.invoke("x", config={"callbacks": [t]})
    assert t.total_cost == Decimal("1.75")
    assert t.unpriced_calls == 0
    assert t.records()[0]["price_entry"] == "override:*/acme-model-2"
    assert t.price("acme-model-2")["prices"]["output"] == Decimal("1.25")


def test_deepcopy_returns_same_tracker() -> None:
    t = CostTracker()
    assert copy.deepcopy(t) is t
    assert copy.copy(t) is t
    assert t.raise_error is True and t.run_inline is True


def test_hooks_are_the_cores_functions_and_the_class_methods_agree() -> None:
    # LangChain calls `getattr(handler, name)(...)`: an instance's hooks go straight into Rust.
    t = CostTracker()
    assert t.on_llm_end.__self__ is t._core
    assert t.on_tool_start.__name__ == "on_chain_start"
    msg = AIMessage(
        content="x", usage_metadata=usage(100, 20), response_metadata={"model_name": "gpt-4o"}
    )
    result = LLMResult(generations=[[ChatGeneration(message=msg)]])
    # Keywords LangChain may add later are accepted; the class's methods do the same work.
    rid = uuid.uuid4()
    t.on_chat_model_start({}, [[]], run_id=rid, metadata={"user_id": "u"}, a_new_keyword=1)
    CostTracker.on_llm_end(t, result, run_id=rid, parent_run_id=None, another_keyword=2)
    assert t.successful_requests == 1
    assert t.records()[0]["attribution"] == {"user_id": "u"}
    assert t.total_cost == cost("gpt-4o", input_tokens=100, output_tokens=20)
    # The token may come by position or by keyword, as LangChain passes it.
    rid = uuid.uuid4()
    t.on_chat_model_start({}, [[]], run_id=rid)
    t.on_llm_new_token("a", run_id=rid)
    t.on_llm_new_token(token="b", chunk=None, run_id=rid, verbose=True)
    t.on_llm_error(RuntimeError("cut"), run_id=rid, response=None, tags=["t"])
    assert t.records()[-1]["streamed_chunks"] == 2
    assert t.records()[-1]["error"] == "RuntimeError: cut"
    with pytest.raises(ValueError, match="no LangChain hook named 'on_nothing'"):
        _core.bind_hook(t._core, "on_nothing")


def test_every_hook_the_core_binds_is_a_documented_method_and_no_other() -> None:
    # One list of hook names (the core's): CostTracker documents each with a method of its own
    # and implements no LangChain hook the core does not bind.
    hooks = {n for n in dir(BaseCallbackHandler) if n.startswith("on_")}
    ours = {n for n in hooks if getattr(CostTracker, n) is not getattr(BaseCallbackHandler, n)}
    assert ours == set(_core.HOOK_NAMES)
    assert len(_core.HOOK_NAMES) == len(set(_core.HOOK_NAMES))


def test_a_hook_called_with_wrong_arguments_logs_and_counts_never_raises(
    ledger_log: pytest.LogCaptureFixture,
) -> None:
    # Hooks never raise into the application but for a budget stop: bad arguments are an
    # internal error like any other, logged (naming what is wrong) and counted.
    t = CostTracker()
    rid = uuid.uuid4()
    result = LLMResult(generations=[[ChatGeneration(message=AIMessage(content="x"))]])
    assert t.internal_errors == 0
    t.on_llm_end(result)
    t.on_llm_end(run_id=rid)
    t.on_llm_end(result, rid)
    t.on_chat_model_start({}, run_id=rid)
    t.on_llm_new_token("x", run_id="not a uuid")
    assert t.internal_errors == 5
    messages = [r.getMessage() for r in ledger_log.records if r.levelname == "ERROR"]
    for expected in (
        "missing required keyword argument: 'run_id'",
        "missing required positional argument: 'response'",
        "takes 1 positional arguments but 2",
        "on_chat_model_start() missing required positional argument: 'messages'",
    ):
        assert any(expected in m for m in messages), (expected, messages)
    assert all(m.startswith("llmledger: internal error in on_") for m in messages), messages
    assert t.successful_requests == 0 and t.failed_requests == 0


def test_a_subclass_override_of_a_hook_is_called(llm: UsageFakeChatModel) -> None:
    seen: list[str] = []

    class Audited(CostTracker):
        def on_llm_end(self, response: LLMResult, **kwargs: object) -> None:
            seen.append("end")
            super().on_llm_end(response, **kwargs)  # type: ignore[arg-type]

    t = Audited()
    llm.invoke("hi", config={"callbacks": [t]})
    assert seen == ["end"]
    assert t.successful_requests == 1 and t.total_cost > 0
    # The hooks it does not override are still the core's.
    assert t.on_llm_start.__self__ is t._core


def test_tool_and_retriever_runs_lead_to_the_root(
    llm: UsageFakeChatModel, ledger_log: pytest.LogCaptureFixture
) -> None:
    # LangChain hands on_tool_start an `inputs=` keyword besides the input string, and
    # retrievers their own start and end hooks: each nested call's root is the outer chain.
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever
    from langchain_core.runnables import RunnableConfig, RunnableLambda
    from langchain_core.tools import tool

    @tool
    def summarise(text: str) -> str:
        """Summarises a text with the LLM."""
        return str(llm.invoke(f"summarise: {text}").content)

    class LLMRetriever(BaseRetriever):
        def _get_relevant_documents(
            self, query: str, *, run_manager: CallbackManagerForRetrieverRun
        ) -> list[Document]:
            answer = llm.invoke(query, config={"callbacks": run_manager.get_child()})
            return [Document(page_content=str(answer.content))]

    def agent(question: str, config: RunnableConfig) -> str:
        docs = LLMRetriever().invoke(question, config=config)
        return str(summarise.invoke({"text": docs[0].page_content}, config=config))

    t = CostTracker()
    RunnableLambda(agent).with_config(run_name="agent").invoke(
        "why?", config={"callbacks": [t], "metadata": {"user_id": "u"}}
    )
    recs = t.records()
    assert len(recs) == 2 and t.successful_requests == 2
    assert {r["root_run_name"] for r in recs} == {"agent"}
    assert len({r["root_run_id"] for r in recs}) == 1
    assert all(r["attribution"] == {"user_id": "u"} for r in recs)
    assert not [r for r in ledger_log.records if r.levelname in ("ERROR", "WARNING")]
    assert t._core.open_runs == 0


def test_records_never_hold_prompt_or_completion_text(llm: UsageFakeChatModel) -> None:
    t = CostTracker()
    llm.responses = ["THE-SECRET-ANSWER"]
    llm.invoke("THE-SECRET-PROMPT", config={"callbacks": [t]})
    text = repr(t.records()) + t.report() + str(t)
    assert "SECRET" not in text


def test_end_without_start_is_recorded() -> None:
    t = CostTracker()
    msg = AIMessage(
        content="x",
        usage_metadata=usage(100, 20),
        response_metadata={"model_name": "gpt-4o-2024-08-06"},
    )
    result = LLMResult(generations=[[ChatGeneration(message=msg)]])
    t.on_llm_end(result, run_id=uuid.uuid4(), parent_run_id=None, tags=["orphan"])
    assert t.successful_requests == 1
    rec = t.records()[0]
    assert rec["model"] == "gpt-4o-2024-08-06"
    assert rec["price_entry"] == "openai/gpt-4o"
    assert rec["tags"] == ["orphan"]
    assert rec["latency_s"] is None


def test_error_is_recorded_and_run_context_freed(llm: UsageFakeChatModel) -> None:
    t = CostTracker()

    class Boom(RuntimeError):
        pass

    run_id = uuid.uuid4()
    t.on_chat_model_start({}, [[]], run_id=run_id, metadata={"user_id": "u"})
    t.on_llm_error(Boom("rate limited"), run_id=run_id)
    assert t.failed_requests == 1 and t.successful_requests == 0
    assert t.unpriced_calls == 0
    rec = t.records()[0]
    assert rec["error"] == "Boom: rate limited"
    assert rec["attribution"] == {"user_id": "u"}
    assert t._core.open_runs == 0


def test_llm_cache_hit_costs_nothing(llm: UsageFakeChatModel) -> None:
    from langchain_core.caches import InMemoryCache

    llm.usage = usage(500, 50)
    llm.cache = InMemoryCache()
    t = CostTracker()
    llm.invoke("same question", config={"callbacks": [t]})
    llm.invoke("same question", config={"callbacks": [t]})
    assert t.successful_requests == 2
    assert t.llm_cache_hits == 1
    assert t.total_tokens == 550  # the replayed tokens were not consumed again
    recs = t.records()
    assert recs[1]["usage_source"] == "cache" and recs[1]["cost"] == Decimal(0)
    assert t.total_cost == recs[0]["cost"]


def test_reset_and_max_records(llm: UsageFakeChatModel) -> None:
    t = CostTracker(max_records=2)
    for _ in range(5):
        llm.invoke("x", config={"callbacks": [t]})
    assert len(t.records()) == 2
    assert t.successful_requests == 5
    assert "dropped from memory" in t.report()
    t.reset()
    assert t.successful_requests == 0 and t.records() == []


def test_million_calls_sum_exactly() -> None:
    """Exact decimals: N calls sum to what pricing the same token totals once gives."""
    t = CostTracker()
    msg = AIMessage(
        content="", usage_metadata=usage(7, 3), response_metadata={"model_name": "gpt-4o-mini"}
    )
    result = LLMResult(generations=[[ChatGeneration(message=msg)]])
    n = 200_000
    for _ in range(n):
        t.on_llm_end(result, run_id=uuid.uuid4())
    assert t.total_cost == cost("gpt-4o-mini", input_tokens=7 * n, output_tokens=3 * n)
    assert float(t.total_cost) != sum([0.15e-6 * 7 + 0.6e-6 * 3] * n)  # floats drift


def test_run_ids_match_by_value_whatever_the_object() -> None:
    # The core remembers converted run ids per UUID object; an equal UUID that is another
    # object, and more open runs than it remembers, must still find their starts.
    t = CostTracker()
    msg = AIMessage(
        content="x", usage_metadata=usage(10, 5), response_metadata={"model_name": "gpt-4o"}
    )
    result = LLMResult(generations=[[ChatGeneration(message=msg)]])
    ids = [uuid.uuid4() for _ in range(3000)]
    for i, rid in enumerate(ids):
        t.on_chat_model_start({}, [[]], run_id=rid, metadata={"user_id": f"u{i}"})
    for i, rid in enumerate(ids):
        same_value = uuid.UUID(int=rid.int) if i % 2 else rid
        t.on_llm_end(result, run_id=same_value)
    assert t._core.open_runs == 0
    assert t.successful_requests == 3000
    assert [r["attribution"]["user_id"] for r in t.records()] == [f"u{i}" for i in range(3000)]
    # Not a UUID: logged by the guard, never raised into the application.
    t.on_llm_end(result, run_id="not-a-uuid")
    assert t.successful_requests == 3000
