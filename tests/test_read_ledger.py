"""Reading a durable ledger from Python: `read_ledger` streams records, `ledger_summary` gives
the rows and totals of `llmledger report`, for SQLite and JSONL alike."""

from __future__ import annotations

import datetime
import json
import logging
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import llmledger
import pytest
from llmledger import CostTracker, LedgerError, LedgerReader, ledger_summary, read_ledger
from llmledger.cli import main
from llmledger.testing import UsageFakeChatModel

NOW = datetime.datetime.now(datetime.timezone.utc)
LEDGERS = ["costs.db", "costs.jsonl"]


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, t: datetime.datetime) -> None:
        self.t = t

    def __call__(self) -> datetime.datetime:
        return self.t


def usage(i: int, o: int) -> dict[str, int]:
    return {"input_tokens": i, "output_tokens": o, "total_tokens": i + o}


def write_ledger(path: Path) -> CostTracker:
    """Calls 40 days ago (alice), 10 days ago (bob) and 1 hour ago (alice, unknown model)."""
    clock = Clock(NOW - datetime.timedelta(days=40))
    t = CostTracker(store=path, clock=clock)
    for days, user, model in [(40, "alice", "gpt-4o"), (10, "bob", "gpt-4o-mini")]:
        clock.t = NOW - datetime.timedelta(days=days)
        UsageFakeChatModel(model=model, usage=usage(1000, 100)).invoke(
            "x", config={"callbacks": [t], "metadata": {"user_id": user}}
        )
    clock.t = NOW - datetime.timedelta(hours=1)
    UsageFakeChatModel(model="acme-unknown-1", usage=usage(5, 5)).invoke(
        "x", config={"callbacks": [t], "metadata": {"user_id": "alice"}, "tags": ["prod"]}
    )
    t.close()
    return t


def test_public_and_documented() -> None:
    for name in ["read_ledger", "ledger_summary", "LedgerReader"]:
        assert name in llmledger.__all__
    assert "tracker.records()" in (read_ledger.__doc__ or "")
    assert "llmledger report" in (ledger_summary.__doc__ or "")


@pytest.mark.parametrize("name", LEDGERS)
def test_read_ledger_gives_the_trackers_records(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    t = write_ledger(path)
    reader = read_ledger(path)
    assert isinstance(reader, LedgerReader)
    got = list(reader)
    assert got == t.records()
    assert isinstance(got[0]["cost"], Decimal)
    assert list(reader) == []  # exhausted
    # A str path, and small batches, read the same.
    assert list(read_ledger(str(path), batch_size=1)) == got


@pytest.mark.parametrize("name", LEDGERS)
def test_since_and_until_take_what_the_cli_takes(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    write_ledger(path)

    def users(**window: Any) -> list[str]:
        return [r["attribution"]["user_id"] for r in read_ledger(path, **window)]

    assert users() == ["alice", "bob", "alice"]
    assert users(since="30d") == ["bob", "alice"]
    assert users(since="2h", until=None) == ["alice"]
    assert users(until="30d") == ["alice"]
    eleven_days = NOW - datetime.timedelta(days=11)
    assert users(since=eleven_days, until=NOW - datetime.timedelta(days=9)) == ["bob"]
    assert users(since=eleven_days.replace(tzinfo=None)) == ["bob", "alice"]  # naive: UTC
    assert users(since=eleven_days.isoformat()) == ["bob", "alice"]
    # A bare date as `until` includes that whole day, as on the command line. (The day of the
    # last call, an hour ago: in the first hour after midnight UTC that is not NOW's day.)
    last_day = (NOW - datetime.timedelta(hours=1)).date()
    assert users(since=last_day, until=last_day) == ["alice"]
    with pytest.raises(ValueError, match="'yesterday' is not a time"):
        read_ledger(path, since="yesterday")
    with pytest.raises(TypeError, match="a time bound is a datetime"):
        read_ledger(path, since=12)


def test_records_are_pulled_in_batches(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Batches are read as the iterator needs them: a bad line near the end is met (and
    warned about) only when the reader gets there."""
    path = tmp_path / "costs.jsonl"
    t = CostTracker(store=path)
    for _ in range(10):
        UsageFakeChatModel(usage=usage(1, 1)).invoke("x", config={"callbacks": [t]})
    t.close()
    with path.open("a") as f:
        f.write("{not json\n")
    reader = read_ledger(path, batch_size=3)
    with caplog.at_level(logging.WARNING, logger="llmledger"):
        first = [next(reader) for _ in range(4)]
        assert not caplog.records
        rest = list(reader)
    assert len(first) + len(rest) == 10
    assert [r.getMessage() for r in caplog.records] == [
        f"{path}:11: not a JSON record (key must be a string at line 1 column 2); line skipped"
    ]


def test_close_and_context_manager(tmp_path: Path) -> None:
    path = tmp_path / "costs.db"
    write_ledger(path)
    with read_ledger(path, batch_size=1) as reader:
        assert next(reader)["model"] == "gpt-4o"
    assert list(reader) == []
    with pytest.raises(ValueError, match="batch_size"):
        read_ledger(path, batch_size=0)


@pytest.mark.parametrize("name", LEDGERS)
def test_ledger_summary_equals_report_and_tracker(
    tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / name
    t = write_ledger(path)
    s = ledger_summary(path, by=["user_id", "model"])
    assert s["ledger"] == str(path) and s["format"] == ("sqlite" if name == "costs.db" else "jsonl")
    assert s["by"] == ["user_id", "model"] and s["since"] is None and s["warnings"] == []
    assert s["totals"] == t.totals()
    assert s["rows"] == t.summary(by=["user_id", "model"])
    assert main(["report", str(path), "--by", "user_id,model", "--format", "json"]) == 0
    cli = json.loads(capsys.readouterr().out)

    def text(v: Any) -> Any:
        return json.loads(json.dumps(v, default=str))

    assert cli["rows"] == text(s["rows"]) and cli["totals"] == text(s["totals"])
    # A window: resolved times come back; `by` may be one name.
    w = ledger_summary(path, "user_id", since="30d")
    assert w["since"] is not None and w["since"] < t.records()[1]["time"]
    assert {r["user_id"]: r["calls"] for r in w["rows"]} == {"bob": 1, "alice": 1}
    assert w["totals"]["unpriced_calls"] == 1


def test_errors_name_the_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(LedgerError, match="no such file"):
        read_ledger(tmp_path / "missing.db")
    with pytest.raises(LedgerError, match="no such file"):
        ledger_summary(tmp_path / "missing.jsonl")
    # A database that cannot be reached: reading fails naming it without its password...
    url = "postgresql://app:s3cret@db.invalid/costs"
    for call in (lambda: read_ledger(url), lambda: ledger_summary(url)):
        with pytest.raises(LedgerError, match="postgresql://app:\\*\\*\\*@db.invalid/costs") as e:
            call()
        assert "s3cret" not in str(e.value)
    # ...while a tracker starts anyway, spooling its records until the database is back.
    monkeypatch.setenv("LLMLEDGER_SPOOL_DIR", str(tmp_path / "spool"))
    t = CostTracker(store=url)
    info = t.store_info()
    t.close()
    assert info is not None and info["backend_down"] is True and "s3cret" not in str(info)
    with pytest.raises(TypeError, match="a ledger is a path"):
        read_ledger(42)  # type: ignore[arg-type]
    path = tmp_path / "x.db"
    CostTracker(store=path).close()
    with pytest.raises(ValueError, match="an empty dimension name"):
        ledger_summary(path, by=[""])


def test_file_url(tmp_path: Path) -> None:
    path = tmp_path / "costs.db"
    write_ledger(path)
    assert len(list(read_ledger(f"file://{path}"))) == 3
    assert ledger_summary(path.as_uri())["totals"]["calls"] == 3


def test_an_empty_sqlite_ledger_reads_nothing(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    CostTracker(store=path).close()
    assert list(read_ledger(path)) == []
    assert ledger_summary(path)["totals"]["calls"] == 0
    run_id = uuid.uuid4()  # a record written later is seen by a new reader
    t = CostTracker(store=path, durability="sync")
    t.on_chat_model_start({}, [[]], run_id=run_id)
    t.on_llm_error(RuntimeError("x"), run_id=run_id)
    assert [r["run_id"] for r in read_ledger(path)] == [str(run_id)]
    t.close()
