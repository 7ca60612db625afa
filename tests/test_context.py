"""track_costs(): the configure-hook context manager."""

from __future__ import annotations

import asyncio
from typing import TypedDict

import pytest
from langchain_core.tracers import context as lc_context
from llmledger import track_costs
from llmledger.testing import UsageFakeChatModel


def test_counts_only_inside_the_block(llm: UsageFakeChatModel) -> None:
    llm.invoke("before")
    with track_costs() as t:
        llm.invoke("inside")
    llm.invoke("after")
    assert t.successful_requests == 1


def test_nested_blocks_each_count_what_ran_inside(llm: UsageFakeChatModel) -> None:
    with track_costs() as outer:
        llm.invoke("1")
        with track_costs() as inner:
            llm.invoke("2")
            llm.invoke("3")
        llm.invoke("4")
    assert inner.successful_requests == 2
    assert outer.successful_requests == 4
    assert outer.total_cost == 2 * inner.total_cost


def test_exception_inside_block_stops_tracking(llm: UsageFakeChatModel) -> None:
    with pytest.raises(RuntimeError), track_costs() as t:
        llm.invoke("x")
        raise RuntimeError("boom")
    llm.invoke("after the failed block")
    assert t.successful_requests == 1


def test_hook_registered_once_per_process(llm: UsageFakeChatModel) -> None:
    before = len(lc_context._configure_hooks)
    for _ in range(5):
        with track_costs():
            llm.invoke("x")
    assert len(lc_context._configure_hooks) == before


def test_batch_threads_and_asyncio_tasks(llm: UsageFakeChatModel) -> None:
    async def run() -> None:
        await asyncio.gather(*(asyncio.create_task(llm.ainvoke(str(i))) for i in range(10)))

    with track_costs() as t:
        llm.batch([str(i) for i in range(7)], config={"max_concurrency": 4})
        asyncio.run(run())
    assert t.successful_requests == 17


def test_langgraph_graph_rolls_up_to_root_run(llm: UsageFakeChatModel) -> None:
    from langgraph.graph import END, START, StateGraph

    class State(TypedDict):
        q: str
        a: str

    def plan(state: State) -> dict[str, str]:
        return {"a": str(llm.invoke(state["q"]).content)}

    def answer(state: State) -> dict[str, str]:
        return {"a": str(llm.invoke(state["a"]).content)}

    g = StateGraph(State)
    g.add_node("plan", plan)
    g.add_node("answer", answer)
    g.add_edge(START, "plan")
    g.add_edge("plan", "answer")
    g.add_edge("answer", END)
    graph = g.compile().with_config(run_name="support_bot")

    with track_costs() as t:
        graph.invoke({"q": "hello", "a": ""}, config={"metadata": {"user_id": "carol"}})
        graph.invoke({"q": "again", "a": ""}, config={"metadata": {"user_id": "dave"}})
    assert t.successful_requests == 4
    recs = t.records()
    assert {r["root_run_name"] for r in recs} == {"support_bot"}
    assert len({r["root_run_id"] for r in recs}) == 2
    rows = {r["user_id"]: r["calls"] for r in t.summary(by=["user_id"])}
    assert rows == {"carol": 2, "dave": 2}
