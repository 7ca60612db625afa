"""Guidance for everyday mistakes: typos get a "did you mean", unknown amounts say so, and
every warning says how to fix what it warns about."""

from __future__ import annotations

import json
import logging
import pydoc
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fake_provider import FakeProvider, openai_usage
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from llmledger import Budget, BudgetExceededError, CostTracker, _core, track_costs
from llmledger.cli import main
from llmledger.testing import UsageFakeChatModel
from test_real_clients import chat_openai

# ---- nearest names: catalog ids ----------------------------------------------------------


def test_prices_suggests_the_nearest_ids(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prices", "gpt4o"]) == 1
    err = capsys.readouterr().err
    assert "no price for 'gpt4o'" in err and "did you mean 'gpt-4o'" in err


def test_cost_suggests_the_nearest_ids(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "claude-sonet-4-5", "--input", "5"]) == 1
    assert "did you mean 'claude-sonnet-4-5'" in capsys.readouterr().err


def test_suggest_models_is_empty_for_nothing_near() -> None:
    assert _core.suggest_models("zzzzzzzzzzzz") == []
    assert _core.suggest_models("gpt4o")[0] == "gpt-4o"


# ---- the command line ----------------------------------------------------------------------


def test_top_level_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "examples:" in out and "llmledger report costs.db --by user_id,model" in out


def test_cost_arguments_have_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["cost", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    # Every argument says what it is (before: `model`, `--provider` and `--service-tier` bare).
    assert "model a model name as LangChain reports it" in out
    assert "--provider PROVIDER the host whose price applies" in out
    assert "--service-tier SERVICE_TIER price at this tier" in out
    assert "--input includes --cached and --cache-write tokens" in out


def test_cost_prints_unit_and_components(capsys: pytest.CaptureFixture[str]) -> None:
    # gpt-4o: $2.50 input, $1.25 cached, $10 output per 1M.
    assert main(["cost", "gpt-4o", "--input", "12000", "--cached", "8000", "--output", "800"]) == 0
    out = capsys.readouterr().out
    first, *table = out.splitlines()
    assert first.startswith("0.028 USD") and "openai/gpt-4o" in first
    cells = {ln.rsplit(None, 1)[0].strip(): ln.rsplit(None, 1)[1] for ln in table[2:]}
    assert cells == {
        "input (uncached)": "0.01",
        "cache reads": "0.01",
        "output": "0.008",
        "total": "0.028",
    }


def test_cost_json_has_the_components(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "gpt-4o", "--input", "1000", "--output", "100", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert Decimal(got["total"]) == Decimal("0.0035")
    assert Decimal(got["components"]["output"]) == Decimal("0.001")
    assert got["price_entry"] == "openai/gpt-4o"


# ---- print(tracker) with unpriced calls ------------------------------------------------------


def _usage(i: int, o: int) -> dict[str, int]:
    return {"input_tokens": i, "output_tokens": o, "total_tokens": i + o}


def test_total_line_is_a_lower_bound_with_unpriced_calls(ledger_log: Any) -> None:
    t = CostTracker()
    UsageFakeChatModel(model="mystery-model-77", usage=_usage(10, 10)).invoke(
        "hi", config={"callbacks": [t]}
    )
    text = str(t)
    # Nothing priced: not "$0.00".
    assert "Total Cost (USD): unknown\n" in text and "Unpriced Requests: 1" in text
    UsageFakeChatModel(model="gpt-4o", usage=_usage(1000, 100)).invoke(
        "hi", config={"callbacks": [t]}
    )
    assert "Total Cost (USD): >= $0.0035\n" in str(t)
    t.reset()
    UsageFakeChatModel(model="gpt-4o", usage=_usage(1000, 100)).invoke(
        "hi", config={"callbacks": [t]}
    )
    assert str(t).endswith("Total Cost (USD): $0.0035")


# ---- a model without a name, an estimated stream ---------------------------------------------


def _messages(ledger_log: Any, text: str) -> list[str]:
    return [r.getMessage() for r in ledger_log.records if text in r.getMessage()]


def test_a_model_without_a_name_is_warned_once_with_the_fix(ledger_log: Any) -> None:
    t = CostTracker()
    llm = GenericFakeChatModel(messages=iter([AIMessage("one"), AIMessage("two")]))
    llm.invoke("hi", config={"callbacks": [t]})
    llm.invoke("hi", config={"callbacks": [t]})
    assert t.unpriced_calls == 2
    [warning] = _messages(ledger_log, "names no model")
    assert "provider 'genericfakechatmodel'" in warning
    assert '"ls_model_name": "my-model"' in warning and "prices=" in warning
    # The fix the warning gives works.
    priced = CostTracker(prices={"my-model": {"input": "1", "output": "2"}})
    GenericFakeChatModel(messages=iter([AIMessage("three")])).invoke(
        "hi", config={"callbacks": [priced], "metadata": {"ls_model_name": "my-model"}}
    )
    assert priced.unpriced_calls == 0 and priced.total_cost > 0


def test_unknown_model_warning_suggests_the_nearest_id(ledger_log: Any) -> None:
    t = CostTracker()
    UsageFakeChatModel(model="gpt-4o-minii", usage=_usage(1, 1)).invoke(
        "hi", config={"callbacks": [t]}
    )
    [warning] = _messages(ledger_log, "no price for model 'gpt-4o-minii'")
    assert "did you mean 'gpt-4o-mini'" in warning


def test_an_estimated_stream_is_warned_once_per_model_with_the_fix(
    fake_provider: FakeProvider, ledger_log: Any
) -> None:
    fake_provider.set_openai(content="A streamed answer without usage.")
    t = CostTracker()
    llm = chat_openai(fake_provider, model="gpt-4.1-nano")  # custom base_url: no stream usage
    for _ in range(2):
        "".join(str(c.content) for c in llm.stream("q", config={"callbacks": [t]}))
    assert t.estimated_calls == 2
    [warning] = _messages(ledger_log, "reported no token usage")
    assert "'gpt-4.1-nano'" in warning and "ChatOpenAI(..., stream_usage=True)" in warning
    # The fix works: exact usage, and nothing more to say.
    fake_provider.set_openai(content="With usage.", usage=openai_usage(12, 3))
    llm = chat_openai(fake_provider, model="gpt-4.1-nano", stream_usage=True)
    "".join(str(c.content) for c in llm.stream("q", config={"callbacks": [t]}))
    assert t.records()[-1]["usage_source"] == "provider"
    assert len(_messages(ledger_log, "reported no token usage")) == 1


def test_an_estimated_anthropic_stream_names_anthropics_default(ledger_log: Any) -> None:
    t = CostTracker()
    llm = UsageFakeChatModel(model="claude-3-5-haiku", provider="anthropic", stream_usage=False)
    "".join(str(c.content) for c in llm.stream("q", config={"callbacks": [t]}))
    [warning] = _messages(ledger_log, "reported no token usage")
    assert "ChatAnthropic reports streamed usage by default" in warning


# ---- alerts: once, where the user wants them -----------------------------------------------


class DropBudgetStops(logging.Filter):
    """The README's filter for LangChain's log line about a refused call."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "BudgetExceededError" not in record.getMessage()


def _refuse_once(t: CostTracker) -> None:
    # gpt-4o: the first call reserves ~$0.164 (its output bounded by the model's 16,384
    # tokens) and costs $0.125 (50k input tokens); the second cannot reserve as much again.
    llm = UsageFakeChatModel(model="gpt-4o", usage=_usage(50_000, 0))
    llm.invoke("hi", config={"callbacks": [t]})
    with pytest.raises(BudgetExceededError):
        llm.invoke("hi", config={"callbacks": [t]})


def test_log_alerts_false_leaves_alerts_to_on_alert(ledger_log: Any) -> None:
    seen: list[str] = []
    t = CostTracker(
        budgets=[Budget.daily("0.2")], on_alert=lambda a: seen.append(a.kind), log_alerts=False
    )
    _refuse_once(t)
    assert seen == ["threshold", "blocked"]
    assert not [r for r in ledger_log.records if r.name == "llmledger"]
    # The default still logs them (before this change the only behaviour: printed twice).
    ledger_log.clear()
    t = CostTracker(budgets=[Budget.daily("0.2")], on_alert=lambda a: None)
    _refuse_once(t)
    assert len([r for r in ledger_log.records if r.name == "llmledger"]) == 2


def test_langchains_refusal_log_line_can_be_filtered(caplog: pytest.LogCaptureFixture) -> None:
    manager_log = logging.getLogger("langchain_core.callbacks.manager")
    t = CostTracker(budgets=[Budget.daily("0.2")], log_alerts=False)
    _refuse_once(t)
    assert any("Error in CostTracker.on_chat_model_start" in r.getMessage() for r in caplog.records)
    caplog.clear()
    quiet = DropBudgetStops()
    manager_log.addFilter(quiet)
    try:
        t.reset_budget()
        _refuse_once(t)
    finally:
        manager_log.removeFilter(quiet)
    assert not [r for r in caplog.records if r.name == manager_log.name]
    assert t.blocked_calls == 2


def test_track_costs_takes_log_alerts(ledger_log: Any) -> None:
    with track_costs(budgets=[Budget.daily("0.2")], log_alerts=False) as t:
        llm = UsageFakeChatModel(model="gpt-4o", usage=_usage(50_000, 0))
        llm.invoke("hi")
        with pytest.raises(BudgetExceededError):
            llm.invoke("hi")
    assert t.blocked_calls == 1
    assert not [r for r in ledger_log.records if r.name == "llmledger"]


# ---- help(CostTracker) -------------------------------------------------------------------------


def test_help_lists_the_trackers_api_before_the_langchain_hooks() -> None:
    text = pydoc.render_doc(CostTracker, renderer=pydoc.plaintext)
    hooks_at = text.index("on_llm_end(")
    for method in ("totals(", "summary(", "records(", "report(", "budgets(", "store_info("):
        assert text.index(method) < hooks_at, method
    # The hooks are still documented, and still the core's functions on an instance.
    assert "on_chat_model_start(" in text
    t = CostTracker()
    assert type(t.on_llm_end).__name__ == "builtin_function_or_method"


# ---- keys that are not captured, or never appear ------------------------------------------


def test_a_per_key_near_a_captured_one_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match=r"per='user'.*did you mean 'user_id'") as e:
        CostTracker(budgets=[Budget.daily(1, per="user")])
    # LangGraph's node path is always captured, so `node` is listed too.
    assert "attribute=['user_id', 'session_id', 'node']" in str(e.value)
    with pytest.raises(ValueError, match="did you mean 'model'"):
        CostTracker(budgets=[Budget.daily(1, per="models")])
    # Listed in attribute=, the key is taken as meant; a key near nothing is captured as asked.
    CostTracker(attribute=["user"], budgets=[Budget.daily(1, per="user")])
    assert "team" in CostTracker(budgets=[Budget.daily(1, per="team")])._core.attribute


def test_a_report_dimension_is_no_budget_scope() -> None:
    with pytest.raises(ValueError, match=r"per='day' is a report dimension.*window="):
        Budget.daily(1, per="day")
    with pytest.raises(ValueError, match="not a budget scope"):
        Budget(1, per="usage_source")


def test_summary_of_an_uncaptured_key_suggests_the_captured_one() -> None:
    with pytest.raises(ValueError, match=r"unknown dimension 'user' \(did you mean 'user_id'\?\)"):
        CostTracker().summary(by="user")


def test_langgraphs_node_is_no_key_a_near_metadata_key_is_warned_about(ledger_log: Any) -> None:
    # Regression: `node` (LangGraph's node path, captured by every tracker from LangGraph's
    # own metadata) was watched like a key the application sends, so a call whose metadata had
    # a key one letter from it ("mode", "code") was warned about a missing 'node'.
    t = CostTracker()
    llm = UsageFakeChatModel(model="gpt-4o-mini")
    md = {"user_id": "u", "session_id": "s", "mode": "fast", "code": "x1"}
    llm.invoke("hi", config={"callbacks": [t], "metadata": md})
    assert _messages(ledger_log, "a call's metadata has no") == []
    assert t.records()[-1]["attribution"]["user_id"] == "u"


def test_a_captured_key_sent_under_a_near_name_is_warned_once(ledger_log: Any) -> None:
    t = CostTracker(budgets=[Budget.daily(1, per="user_id")])
    llm = UsageFakeChatModel(model="gpt-4o-mini")
    for _ in range(3):
        llm.invoke("hi", config={"callbacks": [t], "metadata": {"userId": "alice"}})
    [warning] = _messages(ledger_log, "a call's metadata has no")
    assert "no 'user_id'" in warning and "has 'userId'" in warning
    assert "attribute=[..., 'userId']" in warning
    # A call lacking the key with nothing near says nothing.
    ledger_log.clear()
    t2 = CostTracker()
    llm.invoke("hi", config={"callbacks": [t2], "metadata": {"team": "red"}})
    assert not _messages(ledger_log, "a call's metadata has no")


@pytest.mark.parametrize("suffix", ["db", "jsonl"])
def test_report_by_a_key_no_call_has_says_so(
    tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / f"costs.{suffix}"
    t = CostTracker(store=path, attribute=["user_id", "team"])
    llm = UsageFakeChatModel(model="gpt-4o-mini")
    llm.invoke("hi", config={"callbacks": [t], "metadata": {"user_id": "alice", "team": "a"}})
    t.close()
    assert main(["report", str(path), "--by", "user"]) == 0
    err = capsys.readouterr().err
    assert "no call in the ledger has the metadata key 'user'" in err
    assert "did you mean 'user_id'" in err and "its calls carry team, user_id" in err
    # A key the calls have: no warning.
    assert main(["report", str(path), "--by", "user_id"]) == 0
    assert "no call in the ledger" not in capsys.readouterr().err
    rep = _core.ledger_report(path, by=["usr_id"])
    assert any("did you mean 'user_id'" in w for w in rep["warnings"])
