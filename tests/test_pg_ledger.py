"""The PostgreSQL ledger (`store="postgresql://..."`): the same records and the same reports,
to the last digit, as the SQLite ledger; idempotent by run id; grouping done by the database;
passwords never shown. Each test gets a fresh database (`postgres_url`, tests/pg_service.py)."""

from __future__ import annotations

import json
import random
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from llmledger import CostTracker, ledger_summary, read_ledger
from llmledger.cli import main
from llmledger.testing import UsageFakeChatModel
from pg_service import psql

MODELS = ["gpt-4o-mini", "gpt-4o", "claude-3-5-haiku-20241022", "no-such-model-x"]
USERS = ["alice", "bob", "carol", None]
TAGS = [[], ["prod"], ["prod", "beta"], ["beta", "beta"]]
DIMENSIONS = [
    [],
    ["model"],
    ["user_id"],
    ["tag"],
    ["day"],
    ["hour"],
    ["provider", "usage_source"],
    ["error"],
    ["user_id", "tag", "model"],
    ["root_run_id"],
    ["price_entry", "service_tier"],
    ["nobody_has_this_key"],
]


def varied_lines(n: int, seed: int = 7) -> list[str]:
    """`n` JSONL records covering what the report rules look at: priced and unpriced, failed
    calls with and without tokens, LLM-cache hits, estimates, malformed provider usage,
    latencies, several tags, metadata, costs of up to 12 decimals."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        model = rng.choice(MODELS)
        source = rng.choice(["provider", "provider", "estimated", "cache", "none"])
        failed = rng.random() < 0.1
        inp = 0 if (failed and rng.random() < 0.5) else rng.randrange(0, 50_000)
        outp = 0 if inp == 0 else rng.randrange(0, 4_000)
        priced = not model.startswith("no-such") and not (failed and inp == 0)
        cost = Decimal(rng.randrange(0, 10**9)) / Decimal(10**12) if priced else None
        user = rng.choice(USERS)
        rec: dict[str, Any] = {
            "time": f"2026-11-{1 + i % 5:02d}T{i % 24:02d}:{i % 60:02d}:{(i * 7) % 60:02d}.{i:06d}Z",
            "run_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "root_run_id": str(uuid.UUID(int=rng.getrandbits(128) if i % 3 else 1)),
            "model": model,
            "provider": "anthropic" if model.startswith("claude") else "openai",
            "attribution": {"user_id": user, "feature": f"f{i % 4}"} if user else {},
            "tags": rng.choice(TAGS),
            "input_tokens": inp,
            "cache_read_tokens": rng.randrange(0, 100),
            "output_tokens": outp,
            "reasoning_tokens": rng.randrange(0, 10),
            "usage_source": source,
            "estimated_by": "provider+tiktoken" if source == "provider" and i % 11 == 0 else None,
            "service_tier": rng.choice([None, "flex"]),
            "cost": None if cost is None else str(cost),
            "cost_components": None
            if cost is None
            else {"input": str(cost), "output": "0", "cache_read": "0"},
            "price_entry": None if cost is None else f"openai/{model}",
            "latency_s": rng.choice([None, 0.0000005, 1.25, rng.random() * 10]),
            "streamed_chunks": rng.randrange(0, 5),
            "error": rng.choice(["RateLimitError: slow down", "Timeout"]) if failed else None,
        }
        out.append(json.dumps(rec))
    return out


@pytest.fixture
def both(tmp_path: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    """The same 600 calls in a SQLite ledger and in PostgreSQL (imported from one JSONL)."""
    src = tmp_path / "calls.jsonl"
    src.write_text("\n".join(varied_lines(600)) + "\n")
    db = str(tmp_path / "costs.db")
    assert main(["import", str(src), "--into", db]) == 0
    assert main(["import", str(src), "--into", postgres_url]) == 0
    out = capsys.readouterr().out
    assert "600 records read, 600 added, 0 already present, 0 bad lines skipped" in out
    return db, postgres_url


def test_reports_equal_sqlite_to_the_last_digit(both: tuple[str, str]) -> None:
    db, pg = both
    for by in DIMENSIONS:
        for since, until in [(None, None), ("2026-11-02", "2026-11-04T12:00:00Z")]:
            a = ledger_summary(db, by, since=since, until=until)
            b = ledger_summary(pg, by, since=since, until=until)
            assert b["format"] == "postgresql"
            assert a["rows"] == b["rows"], by
            assert a["totals"] == b["totals"], by
            assert a["warnings"] == b["warnings"], by
    totals = ledger_summary(pg)["totals"]
    assert totals["successful_requests"] + totals["failed_requests"] == 600
    assert totals["unpriced_calls"] > 0 and totals["llm_cache_hits"] > 0


def test_cli_report_outputs_equal_sqlite(
    both: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    db, pg = both
    for fmt in ["table", "csv", "json"]:
        for by in ["model", "user_id,tag", "day", ""]:
            assert main(["report", db, "--by", by, "--format", fmt]) == 0
            a = capsys.readouterr().out
            assert main(["report", pg, "--by", by, "--format", fmt]) == 0
            b = capsys.readouterr().out
            # Only the ledger's name differs.
            assert a.replace(db, "LEDGER") == b.replace(pg, "LEDGER"), (fmt, by)


def test_records_read_back_equal(both: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    db, pg = both
    a = list(read_ledger(db, batch_size=97))
    b = list(read_ledger(pg, batch_size=97))
    assert len(b) == 600
    assert a == b
    assert main(["export", db, "--format", "jsonl"]) == 0
    ea = capsys.readouterr().out
    assert main(["export", pg, "--format", "csv", "--since", "2026-11-03"]) == 0
    assert main(["export", pg, "--format", "jsonl"]) == 0
    eb = capsys.readouterr().out
    assert ea == eb.split("\n", 1)[1] or ea in eb  # the csv export came first


def test_money_is_numeric_and_pico(both: tuple[str, str]) -> None:
    _, pg = both
    total = Decimal(psql(pg, "SELECT sum(cost) FROM llmledger_calls"))
    pico = int(psql(pg, "SELECT sum(cost_pico) FROM llmledger_calls"))
    assert total == Decimal(pico) / Decimal(10**12)
    assert ledger_summary(pg)["totals"]["cost"] == total
    types = psql(
        pg,
        "SELECT data_type FROM information_schema.columns WHERE table_name = 'llmledger_calls' "
        "AND column_name IN ('cost', 'cost_pico') ORDER BY column_name",
    )
    assert types.split() == ["numeric", "bigint"]


def test_tracker_writes_postgres_and_import_is_idempotent(
    postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for durability in ["batch", "sync"]:
        t = CostTracker(store=postgres_url, durability=durability)
        llm = UsageFakeChatModel(model="gpt-4o-mini", responses=["hi"])
        for i in range(5):
            llm.invoke("hello", config={"callbacks": [t], "metadata": {"user_id": f"u{i % 2}"}})
        t.close()
        info = t.store_info()
        assert info is not None
        assert info["format"] == "postgresql" and info["written"] == 5
        assert info["spooled"] == 0 and info["backend_down"] is False
    summary = ledger_summary(postgres_url, ["user_id"])
    assert summary["totals"]["successful_requests"] == 10
    assert summary["totals"]["cost"] == t.totals()["cost"] * 2
    # Importing the ledger into itself adds nothing (run ids are unique).
    assert main(["import", postgres_url, "--into", postgres_url]) == 0
    assert "10 records read, 0 added, 10 already present" in capsys.readouterr().out
    versions = psql(postgres_url, "SELECT version FROM llmledger_schema ORDER BY version")
    # One row per schema step, each applied once.
    assert versions.split() == ["1", "2", "3"]


def test_nul_in_metadata_tags_and_model_lands(postgres_url: str, tmp_path: Path) -> None:
    """PostgreSQL's text and jsonb refuse NUL (SQLSTATE 22021 / 22P05), which SQLite stores:
    such a record lands, each NUL stored as U+FFFD, instead of being retried for ever; the
    same calls in SQLite keep the NUL."""
    db = str(tmp_path / "nul.db")
    for store in [postgres_url, db]:
        for durability in ["batch", "sync"]:
            t = CostTracker(store=store, durability=durability)
            llm = UsageFakeChatModel(model="gpt-4o\x00mini", responses=["hi"])
            llm.invoke(
                "hello",
                config={
                    "callbacks": [t],
                    "metadata": {"user_id": "u\x001"},
                    "tags": ["a\x00b"],
                },
            )
            t.close()
            info = t.store_info()
            assert info is not None
            assert info["written"] == 1 and info["rejected"] == 0, info
            assert info["spooled"] == 0 and info["failed"] == 0, info
    for store, nul in [(postgres_url, "\ufffd"), (db, "\x00")]:
        recs = list(read_ledger(store))
        assert len(recs) == 2
        for r in recs:
            assert r["model"] == f"gpt-4o{nul}mini"
            assert r["attribution"] == {"user_id": f"u{nul}1"}
            assert f"a{nul}b" in r["tags"]
    assert (
        psql(postgres_url, "SELECT count(*) FROM llmledger_calls WHERE model LIKE '%\ufffd%'")
        == "2"
    )


def test_env_ledger_and_redacted_password(
    postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import subprocess
    import sys

    role = f"llmledger_pw_{uuid.uuid4().hex[:8]}"
    psql(
        postgres_url,
        f"CREATE ROLE {role} LOGIN PASSWORD 'hunter2-secret'; "
        f"GRANT CREATE, USAGE ON SCHEMA public TO {role}",
    )
    try:
        secret_url = postgres_url.replace("postgres@", f"{role}:hunter2-secret@")
        t = CostTracker(store=secret_url)
        info = t.store_info()
        t.close()
        assert info is not None and "hunter2" not in info["path"] and ":***@" in info["path"]
        assert "hunter2" not in repr(t.store_info())
        # A bad port: the error names the URL without its password.
        with pytest.raises(Exception) as e:
            CostTracker(store=secret_url.replace(":5432", ":notaport"))
        assert "hunter2" not in str(e.value)
        # LLMLEDGER_LEDGER: zero-code adoption writes to PostgreSQL too.
        code = (
            "from llmledger.testing import UsageFakeChatModel\n"
            "from llmledger import ledger_tracker\n"
            "UsageFakeChatModel(model='gpt-4o', responses=['x']).invoke("
            "'hi', config={'callbacks': [ledger_tracker()]})\n"
            "ledger_tracker().close()\n"
        )
        env = {**__import__("os").environ, "LLMLEDGER_LEDGER": postgres_url}
        subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
        assert ledger_summary(postgres_url)["totals"]["successful_requests"] == 1
    finally:
        psql(postgres_url, f"DROP OWNED BY {role}; DROP ROLE {role}")


def test_watch_follower_and_html_digest_over_postgres(
    both: tuple[str, str], tmp_path: Path
) -> None:
    from llmledger import _core

    db, pg = both
    fa = _core.LedgerFollower(db, by=["model", "user_id"])
    fb = _core.LedgerFollower(pg, by=["model", "user_id"])
    assert fa.poll() == fb.poll() == 600
    assert json.loads(fa.view())["totals"] == json.loads(fb.view())["totals"]
    assert fb.poll() == 0
    # New calls are followed.
    t = CostTracker(store=pg)
    UsageFakeChatModel(model="gpt-4o", responses=["x"]).invoke("hi", config={"callbacks": [t]})
    t.close()
    assert fb.poll() == 1 and fb.calls == 601
    da = json.loads(_core.ledger_digest(db, by=["model"], until="2026-11-06"))
    dg = json.loads(_core.ledger_digest(pg, by=["model"], until="2026-11-06"))
    # "now" is when each digest was made: the two may fall on either side of a second.
    da.pop("now")
    dg.pop("now")
    assert da == dg
    out = tmp_path / "r.html"
    assert main(["report", pg, "--format", "html", "-o", str(out)]) == 0
    assert out.stat().st_size > 1000
