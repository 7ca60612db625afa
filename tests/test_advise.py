"""The advisor (`tracker.advise()`, `ledger_advise`, `llmledger advise`) over ledgers built
through real ChatOpenAI and ChatAnthropic calls against the local fake provider.

Every dollar figure is checked against a computation written here from the providers'
published prices (USD per 1M tokens, copied below), not by calling llmledger's pricing.
"""

from __future__ import annotations

import csv
import datetime
import json
import logging
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai as openai_sdk
import pytest
from fake_provider import FakeProvider, anthropic_usage, openai_usage
from langchain_anthropic import ChatAnthropic
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from llmledger import CostTracker, ledger_advise
from llmledger.cli import main

M = Decimal(1_000_000)
# Published prices, USD per 1M tokens (openai.com/api/pricing, anthropic.com/pricing).
GPT_4O = {"input": Decimal("2.50"), "output": Decimal("10"), "cache_read": Decimal("1.25")}
GPT_4O_BATCH = {"input": Decimal("1.25"), "output": Decimal("5")}
GPT_4O_MINI = {"input": Decimal("0.15"), "output": Decimal("0.60")}
GPT_41 = {"input": Decimal("2"), "output": Decimal("8")}
SONNET_46 = {
    "input": Decimal("3"),
    "output": Decimal("15"),
    "cache_read": Decimal("0.30"),
    "cache_write": Decimal("3.75"),
}
OPUS_41 = {"input": Decimal("15"), "output": Decimal("75")}
OPUS_45 = {"input": Decimal("5"), "output": Decimal("25")}


def openai(fp: FakeProvider, **kw: Any) -> ChatOpenAI:
    kw.setdefault("model", "gpt-4o")
    return ChatOpenAI(base_url=fp.openai_base_url, api_key="t", max_retries=0, timeout=10, **kw)


def anthropic(fp: FakeProvider, **kw: Any) -> ChatAnthropic:
    kw.setdefault("model", "claude-sonnet-4-6")
    return ChatAnthropic(
        base_url=fp.anthropic_base_url, api_key="t", max_retries=0, timeout=10, **kw
    )  # type: ignore[arg-type]


def only(findings: list[dict[str, Any]], rule: str) -> dict[str, Any]:
    hits = [f for f in findings if f["rule"] == rule]
    assert len(hits) == 1, (rule, [f["rule"] for f in findings])
    return hits[0]


def check_scaling(f: dict[str, Any], spend: Decimal) -> None:
    """A ledger made in seconds counts as one day: monthly = 30 x saving."""
    saving = Decimal(f["saving_usd"])
    assert Decimal(f["monthly_saving_usd"]) == (saving * 30).quantize(Decimal("0.000001"))
    assert Decimal(f["share_of_spend"]) == (saving / spend).quantize(Decimal("0.0001"))


class Clock:
    def __init__(self) -> None:
        self.now = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC)

    def __call__(self) -> datetime.datetime:
        return self.now


def test_prompt_caching_anthropic(fake_provider: FakeProvider, tmp_path: Path) -> None:
    system = "You are a careful assistant. " * 400  # one shared prefix
    questions = [f"question number {i}" for i in range(4)]  # equal lengths
    fake_provider.set_anthropic(usage=anthropic_usage(3000, 100))
    t = CostTracker(store=tmp_path / "c.db")
    llm = anthropic(fake_provider)
    for q in questions:
        llm.invoke([SystemMessage(system), HumanMessage(q)], config={"callbacks": [t]})
    f = only(t.advise(min_saving="0"), "prompt_caching")
    # The prefix's tokens: its share of the prompt's bytes, of the 3000 input tokens.
    s, q = len(system.encode()), len(questions[0].encode())
    prefix = 3000 * s // (s + q)
    read = 3 * prefix * (SONNET_46["input"] - SONNET_46["cache_read"]) / M
    premium = prefix * (SONNET_46["cache_write"] - SONNET_46["input"]) / M
    assert Decimal(f["saving_usd"]) == read - premium
    assert f["calls"] == 3
    assert f["evidence"]["repeated_prefix_tokens"] == 3 * prefix
    assert f["evidence"]["min_cacheable_tokens"] == 1024
    assert f["scope"]["model"].startswith("claude-sonnet-4-6")
    assert "cache_control" in f["action"]
    spend = 4 * (3000 * SONNET_46["input"] + 100 * SONNET_46["output"]) / M
    check_scaling(f, spend)


def test_prompt_caching_needs_the_minimum_length(fake_provider: FakeProvider) -> None:
    # 900 tokens of input: below Sonnet's 1024-token minimum, nothing to cache.
    fake_provider.set_anthropic(usage=anthropic_usage(900, 100))
    t = CostTracker()
    for i in range(4):
        anthropic(fake_provider).invoke(
            [SystemMessage("rules " * 300), HumanMessage(f"q{i}")], config={"callbacks": [t]}
        )
    assert not [f for f in t.advise(min_saving="0") if f["rule"] == "prompt_caching"]


def test_cache_writes_unread(fake_provider: FakeProvider, tmp_path: Path) -> None:
    clock = Clock()
    t = CostTracker(store=tmp_path / "c.jsonl", clock=clock)
    llm = anthropic(fake_provider)
    fake_provider.queue_anthropic(usage=anthropic_usage(100, 50, ephemeral_5m_input_tokens=2000))
    llm.invoke([SystemMessage("policy " * 500), HumanMessage("a")], config={"callbacks": [t]})
    clock.now += datetime.timedelta(minutes=10)
    fake_provider.queue_anthropic(usage=anthropic_usage(100, 50))
    llm.invoke("something else", config={"callbacks": [t]})
    t.flush()
    f = only(ledger_advise(tmp_path / "c.jsonl", min_saving="0")["findings"], "cache_writes_unread")
    assert Decimal(f["saving_usd"]) == 2000 * (SONNET_46["cache_write"] - SONNET_46["input"]) / M
    assert f["calls"] == 1
    assert "ttl" in f["action"]


def test_cheaper_model(fake_provider: FakeProvider) -> None:
    fake_provider.set_openai(usage=openai_usage(300, 100))
    t = CostTracker()
    for i in range(6):
        openai(fake_provider).invoke(f"classify item {i}", config={"callbacks": [t]})
    f = only(t.advise(min_saving="0"), "cheaper_model")
    per_call = (
        300 * (GPT_4O["input"] - GPT_4O_MINI["input"])
        + 100 * (GPT_4O["output"] - GPT_4O_MINI["output"])
    ) / M
    assert Decimal(f["saving_usd"]) == 6 * per_call
    assert f["evidence"]["suggested_model"] == "gpt-4o-mini"
    assert "quality" in f["caveat"]
    check_scaling(f, 6 * (300 * GPT_4O["input"] + 100 * GPT_4O["output"]) / M)


def test_newer_model(fake_provider: FakeProvider) -> None:
    fake_provider.set_anthropic(usage=anthropic_usage(2000, 500))
    t = CostTracker()
    for i in range(3):
        anthropic(fake_provider, model="claude-opus-4-1").invoke(
            f"review {i}", config={"callbacks": [t]}
        )
    findings = t.advise(min_saving="0")
    f = only(findings, "newer_model")
    per_call = (
        2000 * (OPUS_41["input"] - OPUS_45["input"]) + 500 * (OPUS_41["output"] - OPUS_45["output"])
    ) / M
    assert Decimal(f["saving_usd"]) == 3 * per_call
    assert f["evidence"]["suggested_model"] == "claude-opus-4-5"
    assert 'model="claude-opus-4-5"' in f["action"]
    # 2000-token prompts are not the short calls cheaper_model is about.
    assert not [x for x in findings if x["rule"] == "cheaper_model"]


def test_batch_api_for_calls_named_as_nightly_work(fake_provider: FakeProvider) -> None:
    fake_provider.set_openai(usage=openai_usage(4000, 800))
    t = CostTracker()
    for i in range(3):
        openai(fake_provider).invoke(
            f"summarise report {i}", config={"callbacks": [t], "run_name": "nightly-digest"}
        )
    # An interactive call of the same model is not batch work.
    openai(fake_provider).invoke("hello", config={"callbacks": [t], "run_name": "chat"})
    f = only(t.advise(min_saving="0"), "batch_api")
    per_call = (
        4000 * (GPT_4O["input"] - GPT_4O_BATCH["input"])
        + 800 * (GPT_4O["output"] - GPT_4O_BATCH["output"])
    ) / M
    assert Decimal(f["saving_usd"]) == 3 * per_call
    assert f["calls"] == 3
    assert f["scope"]["root_run_name"] == "nightly-digest"
    assert "Batch" in f["action"]


def test_uncapped_output(fake_provider: FakeProvider) -> None:
    t = CostTracker(fingerprints=True)
    for _ in range(9):
        fake_provider.queue_openai(usage=openai_usage(200, 600))
    fake_provider.queue_openai(usage=openai_usage(200, 3000))
    for i in range(10):
        openai(fake_provider).invoke(f"write {i}", config={"callbacks": [t]})
    # Capped calls with long outputs are not counted.
    fake_provider.set_openai(usage=openai_usage(200, 5000))
    openai(fake_provider, max_tokens=8000).invoke("long", config={"callbacks": [t]})
    f = only(t.advise(min_saving="0"), "uncapped_output")
    # The 90th percentile (nearest rank) of the ten uncapped outputs is 600.
    assert f["evidence"]["suggested_max_tokens"] == 600
    assert Decimal(f["saving_usd"]) == (3000 - 600) * GPT_4O["output"] / M
    assert f["calls"] == 1
    assert "max_tokens=600" in f["action"]


def test_long_prompt(fake_provider: FakeProvider) -> None:
    fake_provider.set_openai(usage=openai_usage(20_000, 100))
    t = CostTracker()
    for i in range(2):
        openai(fake_provider).invoke(f"context {i}", config={"callbacks": [t]})
    f = only(t.advise(), "long_prompt")
    assert f["saving_usd"] == "0"
    input_cost = 2 * 20_000 * GPT_4O["input"] / M
    spend = input_cost + 2 * 100 * GPT_4O["output"] / M
    assert Decimal(f["evidence"]["input_cost_usd"]) == input_cost
    assert Decimal(f["evidence"]["input_share_of_spend"]) == (input_cost / spend).quantize(
        Decimal("0.0001")
    )


def test_duplicate_requests(fake_provider: FakeProvider, tmp_path: Path) -> None:
    fake_provider.set_openai(usage=openai_usage(400, 100))
    t = CostTracker(store=tmp_path / "c.db")
    llm = openai(fake_provider, model="gpt-4o-mini", temperature=0)
    for _ in range(4):
        llm.invoke("What is the capital of France?", config={"callbacks": [t]})
    # Other parameters are another request.
    openai(fake_provider, model="gpt-4o-mini", temperature=1).invoke(
        "What is the capital of France?", config={"callbacks": [t]}
    )
    f = only(t.advise(min_saving="0"), "duplicate_requests")
    per_call = (400 * GPT_4O_MINI["input"] + 100 * GPT_4O_MINI["output"]) / M
    assert Decimal(f["saving_usd"]) == 3 * per_call
    assert f["evidence"]["distinct_requests_repeated"] == 1
    assert "set_llm_cache" in f["action"]


def test_estimated_usage(fake_provider: FakeProvider) -> None:
    # A custom base_url turns ChatOpenAI's stream usage off: the cost is estimated.
    t = CostTracker()
    for _ in range(2):
        list(openai(fake_provider).stream("tell me", config={"callbacks": [t]}))
    f = only(t.advise(), "estimated_usage")
    assert f["saving_usd"] == "0" and f["calls"] == 2
    assert "stream_usage=True" in f["action"]
    assert f["evidence"]["streamed_calls"] == 2


def test_unpriced_models(fake_provider: FakeProvider) -> None:
    fake_provider.set_openai(usage=openai_usage(100, 20, cached_tokens=50))
    t = CostTracker()
    openai(fake_provider, model="acme-private-7b").invoke("hi", config={"callbacks": [t]})
    f = only(t.advise(), "unpriced_models")
    assert f["saving_usd"] == "0"
    assert 'prices={"acme-private-7b": {"input":' in f["action"]
    assert '"cache_read"' in f["action"]
    assert f["evidence"]["input_tokens"] == 100


def test_no_false_positives(fake_provider: FakeProvider, tmp_path: Path) -> None:
    """Cached, cheap, capped, distinct calls: no finding with money."""
    t = CostTracker(store=tmp_path / "c.db")
    haiku = anthropic(fake_provider, model="claude-haiku-4-5", max_tokens=200)
    system = SystemMessage("house rules " * 400)
    fake_provider.queue_anthropic(usage=anthropic_usage(50, 80, ephemeral_5m_input_tokens=700))
    for _ in range(5):
        fake_provider.queue_anthropic(usage=anthropic_usage(50, 80, cache_read_input_tokens=700))
    for i in range(6):
        haiku.invoke([system, HumanMessage(f"q{i}")], config={"callbacks": [t]})
    fake_provider.set_openai(usage=openai_usage(300, 60, cached_tokens=0))
    nano = openai(fake_provider, model="gpt-4.1-nano", max_tokens=100)
    for i in range(5):
        nano.invoke(f"label {i}", config={"callbacks": [t]})
    findings = t.advise(min_saving="0")
    assert [f for f in findings if f["saving_usd"] != "0"] == []
    assert findings == []


def test_live_hints_once_per_rule_and_scope(
    fake_provider: FakeProvider, ledger_log: pytest.LogCaptureFixture
) -> None:
    fake_provider.set_openai(usage=openai_usage(4000, 800))
    t = CostTracker(advise=True)
    for i in range(20):
        openai(fake_provider).invoke(
            f"job {i}", config={"callbacks": [t], "run_name": "nightly-digest"}
        )
    hints = [r.getMessage() for r in ledger_log.records if "advice [batch_api]" in r.getMessage()]
    assert len(hints) == 1
    # Checked after the 5th call: the saving of those 5 calls.
    per_call = (
        4000 * (GPT_4O["input"] - GPT_4O_BATCH["input"])
        + 800 * (GPT_4O["output"] - GPT_4O_BATCH["output"])
    ) / M
    assert f"saving so far ${5 * per_call}" in hints[0]


def ledger_for_cli(fp: FakeProvider, path: Path) -> None:
    fp.set_openai(usage=openai_usage(900, 300))
    t = CostTracker(store=path)
    for i in range(10):
        openai(fp).invoke(f"classify {i}", config={"callbacks": [t]})
    # One call on a model with a successor (saving less than the ten above).
    fp.set_anthropic(usage=anthropic_usage(900, 300))
    anthropic(fp, model="claude-opus-4-1").invoke("classify 10", config={"callbacks": [t]})
    t.close()


def test_cli_json(fake_provider: FakeProvider, tmp_path: Path, capsys: Any) -> None:
    ledger_for_cli(fake_provider, tmp_path / "c.db")
    assert main(["advise", str(tmp_path / "c.db"), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["window"]["calls"] == 11
    rules = [f["rule"] for f in out["findings"]]
    assert rules == ["cheaper_model", "newer_model"]  # ranked by saving
    f = out["findings"][0]
    assert set(f) == {
        "rule", "title", "saving_usd", "monthly_saving_usd", "share_of_spend", "calls",
        "scope", "evidence", "action", "caveat",
    }  # fmt: skip
    assert isinstance(f["saving_usd"], str)
    # --min-saving drops what saves less.
    assert main(["advise", str(tmp_path / "c.db"), "--format", "json", "--min-saving", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["findings"] == []


def test_cli_text_and_markdown(fake_provider: FakeProvider, tmp_path: Path, capsys: Any) -> None:
    ledger_for_cli(fake_provider, tmp_path / "c.db")
    per_call = (
        900 * (GPT_4O["input"] - GPT_4O_MINI["input"])
        + 300 * (GPT_4O["output"] - GPT_4O_MINI["output"])
    ) / M
    saving = str((10 * per_call).normalize())
    assert main(["advise", str(tmp_path / "c.db")]) == 0
    text = capsys.readouterr().out
    assert "1. [cheaper_model] saves $" + saving in text
    assert "do: send these calls to gpt-4o-mini" in text
    assert main(["advise", str(tmp_path / "c.db"), "--format", "markdown"]) == 0
    md = capsys.readouterr().out
    assert "| 1 | `cheaper_model` | $" + saving in md
    assert "### 2. `newer_model`" in md


def test_cli_bad_min_saving(tmp_path: Path, capsys: Any) -> None:
    (tmp_path / "e.jsonl").write_text("")
    assert main(["advise", str(tmp_path / "e.jsonl"), "--min-saving", "lots"]) == 2
    assert "min_saving" in capsys.readouterr().err


def test_old_ledgers_without_fingerprints_still_advise(tmp_path: Path) -> None:
    # A JSONL line written before fingerprints existed: no prefix rules, the rest work.
    line = {
        "time": "2026-11-30T12:00:00Z",
        "run_id": "00000000-0000-0000-0000-000000000001",
        "model": "gpt-4o",
        "provider": "openai",
        "input_tokens": 300,
        "output_tokens": 100,
        "cost": str((300 * GPT_4O["input"] + 100 * GPT_4O["output"]) / M),
    }
    (tmp_path / "old.jsonl").write_text(json.dumps(line) + "\n")
    a = ledger_advise(tmp_path / "old.jsonl", min_saving="0")
    assert {f["rule"] for f in a["findings"]} == {
        "cheaper_model"
    }  # gpt-4o has no checked successor
    logging.getLogger("llmledger")  # the reader logged no warnings for the old line


def test_export_carries_every_field_and_round_trips(
    fake_provider: FakeProvider, tmp_path: Path, capsys: Any
) -> None:
    """CSV has every field of the record (the request facts too); JSONL imports back whole."""
    fake_provider.set_openai(usage=openai_usage(1500, 100))
    db = tmp_path / "c.db"
    t = CostTracker(store=db)
    system = "You are a careful assistant. " * 200
    for i in range(3):
        openai(fake_provider, max_tokens=200 if i else None).invoke(
            [SystemMessage(system), HumanMessage(f"question {i}")], config={"callbacks": [t]}
        )
    t.close()
    out_csv, out_jsonl = tmp_path / "out.csv", tmp_path / "out.jsonl"
    assert main(["export", str(db), "--format", "csv", "-o", str(out_csv)]) == 0
    assert main(["export", str(db), "--format", "jsonl", "-o", str(out_jsonl)]) == 0
    capsys.readouterr()
    with out_csv.open(newline="") as f:
        rows = list(csv.DictReader(f))
    records = [json.loads(line) for line in out_jsonl.read_text().splitlines()]
    assert len(rows) == len(records) == 3
    for row, rec in zip(rows, records, strict=True):
        parts = rec.pop("cost_components")
        for k, v in parts.items():
            assert row["cost" if k == "total" else f"cost_{k}"] == v, k
        rec["latency_s"] = rec.pop("latency_s", None)
        for k, v in rec.items():
            if k in ("attribution", "tags"):
                assert json.loads(row[k]) == v, k
            else:
                assert row[k] == ("" if v is None else str(v)), k
    new = [r for r in rows if r["max_tokens"] == "200"]
    assert len(new) == 2 and rows[0]["max_tokens"] == ""
    assert all(len(r["request_hash"]) == 16 and r["prompt_prefixes"] for r in rows)
    assert all(int(r["prompt_bytes"]) > len(system) for r in rows)
    assert len({r["prompt_prefixes"].split()[0] for r in rows}) == 1  # the shared system prompt
    assert "careful assistant" not in out_csv.read_text()  # fingerprints, never text
    # The JSONL export imports back field for field: the same records, the same advice.
    back = tmp_path / "back.db"
    assert main(["import", str(out_jsonl), "--into", str(back)]) == 0
    assert main(["export", str(back), "--format", "csv", "-o", str(tmp_path / "b.csv")]) == 0
    assert (tmp_path / "b.csv").read_text() == out_csv.read_text()
    assert ledger_advise(back, min_saving="0") == ledger_advise(db, min_saving="0")


def test_advise_over_postgres_equals_sqlite(
    fake_provider: FakeProvider, tmp_path: Path, postgres_url: str, capsys: Any
) -> None:
    """PostgreSQL's column-skipping page gives the advice the SQLite ledger gives."""
    db = tmp_path / "c.db"
    ledger_for_cli(fake_provider, db)
    t = CostTracker(store=db)
    fake_provider.set_openai(usage=openai_usage(400, 100))
    for _ in range(3):  # duplicates, and a failed call
        openai(fake_provider, model="gpt-4o-mini", temperature=0).invoke(
            "same question", config={"callbacks": [t]}
        )
    fake_provider.fail_next(status=400)
    with pytest.raises(openai_sdk.BadRequestError):
        openai(fake_provider).invoke("fails", config={"callbacks": [t]})
    t.close()
    assert main(["import", str(db), "--into", postgres_url]) == 0
    capsys.readouterr()
    want = ledger_advise(db, min_saving="0")
    assert {f["rule"] for f in want["findings"]} >= {
        "cheaper_model", "newer_model", "duplicate_requests"
    }  # fmt: skip
    assert ledger_advise(postgres_url, min_saving="0") == want


def test_fingerprints_are_on_where_something_reads_them(
    tmp_path: Path, fake_provider: FakeProvider, ledger_log: pytest.LogCaptureFixture
) -> None:
    # Default: on with a ledger or live hints, off otherwise; True / False force them.
    cases: list[tuple[dict[str, Any], bool]] = [
        ({}, False),
        ({"store": tmp_path / "a.db"}, True),
        ({"store": tmp_path / "b.jsonl"}, True),
        ({"advise": True}, True),
        ({"fingerprints": True}, True),
        ({"fingerprints": False, "store": tmp_path / "c.db"}, False),
        ({"fingerprints": False, "advise": True}, False),
    ]
    fake_provider.set_openai(usage=openai_usage(200, 600))
    for kw, on in cases:
        t = CostTracker(**kw)
        openai(fake_provider).invoke("hello there", config={"callbacks": [t]})
        [r] = t.records()
        assert (r["request_hash"] is not None) is on, kw
        assert (r["prompt_bytes"] == len("hello there")) is on, kw
        t.close()
    # A tracker without them says, when asked for advice, which rules cannot run.
    ledger_log.clear()
    t = CostTracker()
    openai(fake_provider).invoke("hello there", config={"callbacks": [t]})
    assert t.advise() == []
    [warning] = [r.getMessage() for r in ledger_log.records if "fingerprints" in r.getMessage()]
    assert "prompt_caching, duplicate_requests, uncapped_output" in warning
    assert "CostTracker(fingerprints=True)" in warning
