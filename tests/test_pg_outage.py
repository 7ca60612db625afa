"""PostgreSQL down in the middle of a run: calls go on, their records are spooled to a local
file (owner-only) and sent once the database is back; nothing lost, nothing twice. The
server is a throwaway cluster of this test's own (initdb + pg_ctl on a temporary directory
and a free port), stopped with `pg_ctl stop -m immediate` (a crash) and started again; the
machine's shared server is never touched."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from llmledger import CostTracker, ledger_summary
from llmledger.testing import UsageFakeChatModel
from pg_service import Cluster, psql, throwaway_cluster


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with throwaway_cluster() as c:
        yield c


def calls(t: CostTracker, n: int, user: str) -> None:
    llm = UsageFakeChatModel(model="gpt-4o-mini", responses=["hello"])
    for _ in range(n):
        llm.invoke("hi", config={"callbacks": [t], "metadata": {"user_id": user}})


def wait_until(cond: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def assert_exactly(url: str, n: int) -> None:
    rows = psql(url, "SELECT count(*), count(DISTINCT run_id) FROM llmledger_calls")
    assert rows == f"{n}|{n}"


@pytest.mark.parametrize("durability", ["batch", "sync"])
def test_outage_spools_and_replays_once(
    cluster: Cluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    ledger_log: pytest.LogCaptureFixture,
    durability: str,
) -> None:
    spool = tmp_path / "spool"
    monkeypatch.setenv("LLMLEDGER_SPOOL_DIR", str(spool))
    t = CostTracker(store=cluster.url, durability=durability)
    calls(t, 40, "before")
    t.flush()
    cluster.crash()
    calls(t, 60, "during")
    t.flush()
    info = t.store_info()
    assert info is not None and info["backend_down"] is True
    assert info["spooled"] == 60 and info["spool_dir"] == str(spool)
    assert any("unreachable" in r.getMessage() for r in ledger_log.records)
    files = list(spool.iterdir())
    assert len(files) == 1
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(spool.stat().st_mode) == 0o700
    cluster.start()
    calls(t, 30, "after")
    t.flush()

    # Sent once the database answers again: by the writer thread by itself ("batch"), on
    # the next call or flush() ("sync", which has no thread).
    def sent() -> bool:
        if durability == "sync":
            t.flush()
        return (t.store_info() or {})["spooled"] == 0

    wait_until(sent)
    t.close()
    info = t.store_info()
    assert info is not None and info["backend_down"] is False and info["written"] == 130
    assert any("is back" in r.getMessage() for r in ledger_log.records)
    assert_exactly(cluster.url, 130)
    s = ledger_summary(cluster.url, ["user_id"])
    assert {r["user_id"]: r["calls"] for r in s["rows"]} == {
        "before": 40,
        "during": 60,
        "after": 30,
    }
    assert s["totals"]["cost"] == t.total_cost


CHILD = """
import os, sys
from llmledger import CostTracker
from llmledger.testing import UsageFakeChatModel
t = CostTracker(store=sys.argv[1])
llm = UsageFakeChatModel(model="gpt-4o", responses=["x"])
for _ in range(25):
    llm.invoke("hi", config={"callbacks": [t]})
t.flush()
info = t.store_info()
assert info["backend_down"] and info["spooled"] == 25, info
os._exit(0)  # dies without closing: its spool stays behind
"""


def test_spool_of_a_dead_process_is_sent_by_the_next(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = tmp_path / "spool"
    monkeypatch.setenv("LLMLEDGER_SPOOL_DIR", str(spool))
    CostTracker(store=cluster.url).close()  # the tables exist
    cluster.crash()
    # A process starts while the database is down (not an error), spools, and dies.
    env = {**os.environ, "LLMLEDGER_SPOOL_DIR": str(spool)}
    subprocess.run([sys.executable, "-c", CHILD, cluster.url], env=env, check=True, timeout=120)
    assert len(list(spool.iterdir())) == 1
    cluster.start()
    t = CostTracker(store=cluster.url)
    t.close()
    assert_exactly(cluster.url, 25)
    assert list(spool.iterdir()) == []
