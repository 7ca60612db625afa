"""The `node` dimension: LangGraph's node (with the subgraph path) captured by default."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypedDict

import pytest
from langgraph.graph import END, START, StateGraph
from llmledger import CostTracker
from llmledger.cli import main
from llmledger.testing import UsageFakeChatModel


class State(TypedDict):
    x: str


def _app(llm: UsageFakeChatModel) -> Any:
    def call(name: str) -> Any:
        def node(s: State) -> State:
            llm.invoke(f"{name} says hello")
            return {"x": name}

        return node

    sub = StateGraph(State)
    sub.add_node("critic", call("critic"))
    sub.add_node("editor", call("editor"))
    sub.add_edge(START, "critic")
    sub.add_edge("critic", "editor")
    sub.add_edge("editor", END)
    g = StateGraph(State)
    g.add_node("agent", call("agent"))
    g.add_node("review", sub.compile())
    g.add_edge(START, "agent")
    g.add_edge("agent", "review")
    g.add_edge("review", END)
    return g.compile()


def test_graph_nodes_and_subgraph_paths_are_captured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = tmp_path / "costs.jsonl"
    tracker = CostTracker(store=str(ledger))
    app = _app(UsageFakeChatModel(model="gpt-4o-mini", responses=["fine"] * 20))
    for _ in range(2):
        app.invoke({"x": ""}, config={"callbacks": [tracker]})
    tracker.close()
    rows = {r["node"]: r["calls"] for r in tracker.summary(by=["node"])}
    assert rows == {"agent": 2, "review/critic": 2, "review/editor": 2}
    assert all(r["attribution"]["node"] for r in tracker.records())
    assert main(["report", str(ledger), "--by", "node", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {r["node"]: r["calls"] for r in report["rows"]} == rows


def test_users_own_node_metadata_wins_and_plain_calls_have_none() -> None:
    tracker = CostTracker()
    llm = UsageFakeChatModel(model="gpt-4o-mini", responses=["a"] * 3)
    llm.invoke("hi", config={"callbacks": [tracker]})
    llm.invoke("hi", config={"callbacks": [tracker], "metadata": {"node": "mine"}})
    assert {r["node"]: r["calls"] for r in tracker.summary(by="node")} == {None: 1, "mine": 1}


def test_tracker_report_html_and_repr_html(tmp_path: Path) -> None:
    tracker = CostTracker()
    app = _app(UsageFakeChatModel(model="gpt-4o-mini", responses=["fine"] * 20))
    app.invoke({"x": ""}, config={"callbacks": [tracker]})
    out = tmp_path / "r.html"
    tracker.report_html(out, by="node")
    page = out.read_text()
    data = page[page.index('id="llmledger-data">') :]
    assert f'"cost": "{tracker.total_cost}"' in data
    assert '"node": "review/editor"' in data
    summary = tracker._repr_html_()
    assert f"${tracker.total_cost}" in summary and "3 calls" in summary
