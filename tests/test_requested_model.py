"""`requested_model` is one dimension everywhere: records, summary, report, CLI, ledgers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from langchain_core.outputs import ChatResult
from llmledger import CostTracker, _core
from llmledger.cli import main
from llmledger.testing import UsageFakeChatModel


class SnapshotFake(UsageFakeChatModel):
    """Asked for `model`, answers as the dated `snapshot` (as OpenAI's API does)."""

    snapshot: str = "gpt-4o-2024-08-06"

    def _generate(self, *args: Any, **kwargs: Any) -> ChatResult:
        result = super()._generate(*args, **kwargs)
        result.generations[0].message.response_metadata["model_name"] = self.snapshot
        return result


def calls(t: CostTracker) -> None:
    SnapshotFake(model="gpt-4o").invoke("a b", config={"callbacks": [t]})
    SnapshotFake(model="gpt-4o", snapshot="gpt-4o-2024-11-20").invoke(
        "a b", config={"callbacks": [t]}
    )
    SnapshotFake(model="gpt-4o-mini", snapshot="gpt-4o-mini-2024-07-18").invoke(
        "a b", config={"callbacks": [t]}
    )


def test_tracker_groups_by_requested_model() -> None:
    t = CostTracker()
    calls(t)
    assert [(r["model"], r["requested_model"]) for r in t.records()][0] == (
        "gpt-4o-2024-08-06",
        "gpt-4o",
    )
    rows = {r["requested_model"]: r["calls"] for r in t.summary(by=["requested_model"])}
    assert rows == {"gpt-4o": 2, "gpt-4o-mini": 1}
    assert len(t.summary(by="model")) == 3
    table = t.report(by="requested_model")
    assert table.splitlines()[0].startswith("requested_model")
    assert "gpt-4o-mini" in table


@pytest.mark.parametrize("name", ["costs.db", "costs.jsonl"])
def test_ledger_and_cli_group_by_requested_model(
    tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / name
    t = CostTracker(store=path)
    calls(t)
    t.close()
    rep = _core.ledger_report(path, by=["requested_model"])
    assert {r["requested_model"]: r["calls"] for r in rep["rows"]} == {
        "gpt-4o": 2,
        "gpt-4o-mini": 1,
    }
    assert main(["report", str(path), "--by", "requested_model", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {r["requested_model"]: r["cost"] for r in out["rows"]} == {
        r["requested_model"]: str(r["cost"]) for r in t.summary(by="requested_model")
    }
