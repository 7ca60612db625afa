"""The durable ledger: CostTracker(store=...) with real LangChain calls on fake models."""

from __future__ import annotations

import json
import logging
import sqlite3
import subprocess
import sys
import textwrap
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from langchain_core.caches import InMemoryCache
from langchain_core.prompts import ChatPromptTemplate
from llmledger import CostTracker, LedgerError, _core
from llmledger.testing import UsageFakeChatModel


def usage(i: int, o: int, **details: object) -> dict[str, object]:
    u: dict[str, object] = {"input_tokens": i, "output_tokens": o, "total_tokens": i + o}
    u.update(details)
    return u


def exported(path: Path) -> list[dict[str, Any]]:
    chunks: list[str] = []
    _core.ledger_export(path, "jsonl", chunks.append)
    return [json.loads(line) for line in "".join(chunks).splitlines()]


def as_json(rec: dict[str, Any]) -> dict[str, Any]:
    """A record dict as the ledger stores it: money as exact decimal strings."""

    def conv(v: Any) -> Any:
        if isinstance(v, Decimal):
            return str(v)
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        return v

    return {k: conv(v) for k, v in rec.items()}


def run_varied_calls(t: CostTracker) -> None:
    """Calls that exercise every record field: a chain with metadata and tags, cached and
    reasoning tokens, an unknown model, an LLM-cache hit, a failed call, a stream."""
    llm = UsageFakeChatModel(
        model="o4-mini",
        usage=usage(
            10_000,
            2_000,
            input_token_details={"cache_read": 8_000},
            output_token_details={"reasoning": 1_500},
        ),
    )
    chain = (ChatPromptTemplate.from_messages([("user", "{q}")]) | llm).with_config(
        run_name="answer_chain"
    )
    for user in ["alice", "bob"]:
        chain.invoke(
            {"q": "hi"},
            config={
                "callbacks": [t],
                "metadata": {"user_id": user, "feature": "faq"},
                "tags": ["prod", "v2"],
            },
        )
    UsageFakeChatModel(model="acme-unknown-1", usage=usage(5, 5)).invoke(
        "x", config={"callbacks": [t]}
    )
    cached = UsageFakeChatModel(model="gpt-4o-mini", usage=usage(50, 5), cache=InMemoryCache())
    cached.invoke("same", config={"callbacks": [t]})
    cached.invoke("same", config={"callbacks": [t]})
    list(UsageFakeChatModel(model="gpt-4o").stream("a b c", config={"callbacks": [t]}))
    run_id = uuid.uuid4()
    t.on_chat_model_start({}, [[]], run_id=run_id, metadata={"user_id": "carol"})
    t.on_llm_error(RuntimeError("boom, with a comma"), run_id=run_id)


@pytest.mark.parametrize("name", ["costs.db", "costs.jsonl"])
@pytest.mark.parametrize("durability", ["batch", "sync"])
def test_every_field_round_trips(tmp_path: Path, name: str, durability: str) -> None:
    path = tmp_path / name
    t = CostTracker(attribute=["user_id", "feature"], store=path, durability=durability)
    run_varied_calls(t)
    t.close()
    stored = exported(path)
    mine = [as_json(r) for r in t.records()]
    assert len(stored) == len(mine) == 7
    assert sorted(stored, key=lambda r: r["run_id"]) == sorted(mine, key=lambda r: r["run_id"])
    # Exact money: the ledger's report equals the tracker's totals.
    rep = _core.ledger_report(path, by=["user_id"])
    assert rep["totals"] == t.totals()
    assert {r["user_id"]: r["cost"] for r in rep["rows"]} == {
        r["user_id"]: r["cost"] for r in t.summary(by=["user_id"])
    }
    assert t.store_info() == {
        "path": str(path),
        "format": "sqlite" if name.endswith(".db") else "jsonl",
        "durability": durability,
        "written": 7,
        "queued": 0,
        "dropped": 0,
        "failed": 0,
        "spooled": 0,
        "rejected": 0,
        "backend_down": False,
    }


def test_no_prompt_or_completion_text_is_stored(tmp_path: Path) -> None:
    for name in ["p.db", "p.jsonl"]:
        path = tmp_path / name
        t = CostTracker(store=path)
        UsageFakeChatModel(responses=["THE-SECRET-ANSWER"]).invoke(
            "THE-SECRET-PROMPT", config={"callbacks": [t]}
        )
        t.close()
        assert b"SECRET" not in path.read_bytes()


@pytest.mark.skipif(sys.platform == "win32", reason="Unix file modes")
def test_a_new_ledger_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    # Regression: SQLite and JSONL ledgers were created with the process's umask (0644 under
    # the usual 022): anyone on the host could read who spent what. The key file beside them
    # was already 0600.
    import os
    import stat

    old = os.umask(0o022)
    try:
        for name in ["o.db", "o.jsonl"]:
            path = tmp_path / name
            t = CostTracker(store=path)
            UsageFakeChatModel(model="gpt-4o-mini").invoke("hi", config={"callbacks": [t]})
            # The ledger, its key, SQLite's -wal and -shm (while open: closing removes them).
            modes = {
                p.name: stat.S_IMODE(p.stat().st_mode)
                for p in tmp_path.iterdir()
                if p.name.startswith(name)
            }
            t.close()
            assert name in modes and len(modes) >= 2, modes
            assert set(modes.values()) == {0o600}, {k: oct(v) for k, v in modes.items()}
    finally:
        os.umask(old)


def test_sync_commits_before_the_call_returns(tmp_path: Path, llm: UsageFakeChatModel) -> None:
    path = tmp_path / "sync.db"
    t = CostTracker(store=path, durability="sync")
    for n in range(1, 4):
        llm.invoke("x", config={"callbacks": [t]})
        with sqlite3.connect(path) as db:
            assert db.execute("SELECT count(*) FROM calls").fetchone()[0] == n


def test_batch_flush_close_and_calls_after_close(
    tmp_path: Path, llm: UsageFakeChatModel, ledger_log: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "batch.jsonl"
    t = CostTracker(store=str(path))
    for _ in range(5):
        llm.invoke("x", config={"callbacks": [t]})
    t.flush()
    assert len(path.read_text().splitlines()) == 5
    t.close()
    t.close()  # idempotent
    llm.invoke("x", config={"callbacks": [t]})
    llm.invoke("x", config={"callbacks": [t]})
    assert t.successful_requests == 7  # still tracked in memory
    assert len(path.read_text().splitlines()) == 5
    closed = [r for r in ledger_log.records if "is closed" in r.getMessage()]
    assert len(closed) == 1


def test_memory_only_without_store(llm: UsageFakeChatModel) -> None:
    t = CostTracker()
    llm.invoke("x", config={"callbacks": [t]})
    assert t.store_info() is None
    t.flush()
    t.close()


def test_bad_arguments_raise_at_construction(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'batch' or 'sync'"):
        CostTracker(store=tmp_path / "x.db", durability="fast")
    with pytest.raises(LedgerError, match="no-such-dir"):
        CostTracker(store=tmp_path / "no-such-dir" / "x.db")
    with pytest.raises(LedgerError, match="no-such-dir"):
        CostTracker(store=tmp_path / "no-such-dir" / "x.jsonl")
    with pytest.raises(TypeError, match="store="):
        CostTracker(store=42)  # type: ignore[arg-type]


def test_newer_schema_is_refused_and_untouched(tmp_path: Path, llm: UsageFakeChatModel) -> None:
    path = tmp_path / "future.db"
    t = CostTracker(store=path)
    llm.invoke("x", config={"callbacks": [t]})
    t.close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")
    db.commit()
    db.execute("PRAGMA journal_mode = DELETE")  # everything in the main file, no WAL
    db.close()
    before = path.read_bytes()
    with pytest.raises(LedgerError, match=r"future\.db.*newer llmledger.*version 7"):
        CostTracker(store=path)
    with pytest.raises(LedgerError, match="newer llmledger"):
        _core.ledger_report(path)
    assert path.read_bytes() == before


def test_foreign_sqlite_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE users (id INTEGER)")
    with pytest.raises(LedgerError, match="not an llmledger ledger"):
        CostTracker(store=path)


def test_sqlite_ledger_is_plain_sqlite(tmp_path: Path, llm: UsageFakeChatModel) -> None:
    """Readable with any SQLite client: schema version in meta, exact money as text and as
    integer pico-dollars."""
    path = tmp_path / "plain.db"
    t = CostTracker(store=path)
    llm.usage = usage(1234, 567)
    for _ in range(3):
        llm.invoke("x", config={"callbacks": [t]})
    t.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
            str(_core.SCHEMA_VERSION),
        )
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        costs = [Decimal(c) for (c,) in db.execute("SELECT cost FROM calls")]
        (pico,) = db.execute("SELECT sum(cost_pico) FROM calls").fetchone()
    assert sum(costs) == t.total_cost == Decimal(pico) / 10**12


def test_ledger_spend_since(tmp_path: Path) -> None:
    path = tmp_path / "spend.db"
    t = CostTracker(store=path)
    for user, n in [("alice", 2), ("bob", 1)]:
        UsageFakeChatModel(usage=usage(1000, 100)).invoke(
            "x", config={"callbacks": [t], "metadata": {"user_id": user}}
        )
        if n == 2:
            UsageFakeChatModel(usage=usage(1000, 100)).invoke(
                "x", config={"callbacks": [t], "metadata": {"user_id": user}}
            )
    t.close()
    per_user = _core.ledger_spend(path, "1h", by="user_id")
    assert per_user["alice"] == 2 * per_user["bob"]
    assert _core.ledger_spend(path, "1h") == {None: t.total_cost}
    assert _core.ledger_spend(path, "2999-01-01") == {None: Decimal(0)}


def test_corrupt_jsonl_lines_are_reported_and_skipped(
    tmp_path: Path, llm: UsageFakeChatModel, ledger_log: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "bad.jsonl"
    t = CostTracker(store=path)
    llm.invoke("x", config={"callbacks": [t]})
    t.flush()
    with path.open("a") as f:
        f.write("{not json\n")
        f.write('{"time": "2026-11-01T00:00:00Z"}\n')
    llm.invoke("x", config={"callbacks": [t]})
    t.close()
    rep = _core.ledger_report(path)
    assert rep["totals"]["successful_requests"] == 2
    assert rep["totals"]["cost"] == t.total_cost
    messages = [r.getMessage() for r in ledger_log.records]
    assert any("bad.jsonl:2: not a JSON record" in m for m in messages), messages
    assert any("bad.jsonl:3: no 'run_id' field" in m for m in messages), messages


CHILD_PRELUDE = """
import sys
from llmledger.testing import UsageFakeChatModel
llm = UsageFakeChatModel(model="gpt-4o-mini", usage={"input_tokens": 10, "output_tokens": 2,
                                                   "total_tokens": 12})
"""


def run_child(code: str, env: dict[str, str] | None = None) -> str:
    import os

    full_env = {**os.environ, **(env or {})}
    out = subprocess.run(
        [sys.executable, "-c", CHILD_PRELUDE + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_clean_exit_flushes_the_last_batch(tmp_path: Path) -> None:
    path = tmp_path / "exit.db"
    run_child(
        f"""
        from llmledger import CostTracker
        t = CostTracker(store={str(path)!r})
        for _ in range(300):
            llm.invoke("x", config={{"callbacks": [t]}})
        # no flush, no close: the atexit hook writes what is queued
        """
    )
    rep = _core.ledger_report(path)
    assert rep["totals"]["successful_requests"] == 300


def test_env_var_tracks_every_run_with_no_code_change(tmp_path: Path) -> None:
    path = tmp_path / "zero-code.db"
    out = run_child(
        """
        import asyncio
        import llmledger  # the configure hook exists once llmledger is imported
        llm.invoke("plain call, no callbacks passed")
        llm.batch(["a", "b", "c"], config={"metadata": {"user_id": "u1"}})
        async def main():
            await asyncio.gather(*(llm.ainvoke(str(i)) for i in range(4)))
        asyncio.run(main())
        t = llmledger.ledger_tracker()
        print(t.successful_requests, t.store_info()["durability"])
        """,
        env={"LLMLEDGER_LEDGER": str(path), "LLMLEDGER_DURABILITY": "sync"},
    )
    assert out.split() == ["8", "sync"]
    rep = _core.ledger_report(path, by=["user_id"])
    assert rep["totals"]["successful_requests"] == 8
    assert {r["user_id"]: r["calls"] for r in rep["rows"]} == {"u1": 3, None: 5}


def test_env_var_with_bad_path_logs_and_goes_on(tmp_path: Path) -> None:
    out = run_child(
        """
        import llmledger
        print(llmledger.ledger_tracker(), llm.invoke("still works").content)
        """,
        env={"LLMLEDGER_LEDGER": str(tmp_path / "missing-dir" / "x.db")},
    )
    assert out.split()[0] == "None"


def test_ledger_error_is_an_llmledger_error() -> None:
    assert issubclass(LedgerError, _core.LlmLedgerError)
    logging.getLogger("llmledger")  # the logger store messages go to


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("durability", ["batch", "sync"])
def test_write_errors_are_logged_never_raised(
    tmp_path: Path,
    llm: UsageFakeChatModel,
    ledger_log: pytest.LogCaptureFixture,
    durability: str,
) -> None:
    path = tmp_path / "full.jsonl"
    path.symlink_to("/dev/full")  # every write fails with ENOSPC
    t = CostTracker(store=path, durability=durability)
    for _ in range(3):
        assert llm.invoke("x", config={"callbacks": [t]}).content  # the app goes on
    t.flush()
    assert t.successful_requests == 3
    info = t.store_info()
    assert info is not None and info["failed"] == 3 and info["written"] == 0
    errors = [r.getMessage() for r in ledger_log.records if "could not write" in r.getMessage()]
    assert errors and "No space left on device" in errors[0], errors
    t.close()
