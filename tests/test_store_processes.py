"""The ledger across processes: SIGKILL mid-run, and two processes writing one ledger."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from llmledger import _core

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")

# A child that makes calls forever (or `n` of them) and prints each admitted call's run id
# once on_llm_end has returned.
CHILD = """
import sys
from llmledger import CostTracker
from llmledger.testing import UsageFakeChatModel

path, durability, n, user = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
llm = UsageFakeChatModel(model="gpt-4o-mini", usage={"input_tokens": 1000, "output_tokens": 10,
                                                    "total_tokens": 1010})
t = CostTracker(store=path, durability=durability, max_records=1)
i = 0
while n < 0 or i < n:
    llm.invoke("x", config={"callbacks": [t], "metadata": {"user_id": user}})
    print(t.records()[-1]["run_id"], flush=True)
    i += 1
t.close()
"""


def start(path: Path, durability: str, n: int, user: str = "u") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(CHILD), str(path), durability, str(n), user],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stored_run_ids(path: Path) -> list[str]:
    chunks: list[str] = []
    _core.ledger_export(path, "jsonl", chunks.append)
    return [json.loads(line)["run_id"] for line in "".join(chunks).splitlines()]


def kill_after(proc: subprocess.Popen[str], admitted_calls: int) -> list[str]:
    """Reads admitted run ids until `admitted_calls`, then SIGKILLs the child mid-run."""
    assert proc.stdout is not None
    admitted = []
    for line in proc.stdout:
        admitted.append(line.strip())
        if len(admitted) >= admitted_calls:
            break
    os.kill(proc.pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, err
    return admitted


@pytest.mark.parametrize("name", ["killed.db", "killed.jsonl"])
def test_sigkill_in_sync_mode_loses_no_admitted_call(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    admitted = kill_after(start(path, "sync", -1), 150)
    stored = stored_run_ids(path)
    assert set(admitted) <= set(stored)
    assert len(stored) == len(set(stored))
    # At most the one call in flight when the kill came is there beyond the admitted ones.
    assert len(stored) - len(admitted) <= 1
    if name.endswith(".db"):
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


@pytest.mark.parametrize("name", ["killed.db", "killed.jsonl"])
def test_sigkill_in_batch_mode_leaves_a_readable_ledger(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    admitted = kill_after(start(path, "batch", -1), 400)
    rep = _core.ledger_report(path)  # readable
    stored = stored_run_ids(path)
    assert len(stored) == len(set(stored)) == rep["totals"]["successful_requests"]
    assert set(stored) <= set(admitted) | set(stored[-1:])
    # At most the last batch (at most 4096 records or 50 ms of calls) is lost.
    assert len(admitted) - len(stored) <= 4096
    if name.endswith(".db"):
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    # The ledger takes more records after the crash; a torn JSONL line, if any, stays apart.
    proc = start(path, "batch", 5)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert len(stored_run_ids(path)) == len(stored) + 5


@pytest.mark.parametrize("name", ["shared.db", "shared.jsonl"])
@pytest.mark.parametrize("durability", ["batch", "sync"])
def test_two_processes_write_one_ledger(tmp_path: Path, name: str, durability: str) -> None:
    path = tmp_path / name
    n = 300
    procs = [start(path, durability, n, user) for user in ("a", "b")]
    admitted: list[str] = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        admitted += out.split()
    stored = stored_run_ids(path)
    assert len(admitted) == 2 * n
    assert sorted(stored) == sorted(admitted)  # every record present, once
    rep = _core.ledger_report(path, by=["user_id"])
    assert {r["user_id"]: r["calls"] for r in rep["rows"]} == {"a": n, "b": n}


@pytest.mark.parametrize("durability", ["batch", "sync"])
def test_forked_child_neither_hangs_nor_loses_its_record(tmp_path: Path, durability: str) -> None:
    path = tmp_path / "forked.db"
    code = f"""
import os, warnings
warnings.simplefilter("ignore", DeprecationWarning)  # fork() with a writer thread running
from llmledger import CostTracker
from llmledger.testing import UsageFakeChatModel
llm = UsageFakeChatModel(model="gpt-4o-mini")
t = CostTracker(store={str(path)!r}, durability={durability!r})
llm.invoke("parent before", config={{"callbacks": [t]}})
pid = os.fork()
if pid == 0:
    llm.invoke("child", config={{"callbacks": [t]}})
    t.flush()
    t.close()
    del t
    os._exit(0 if True else 1)
_, status = os.waitpid(pid, 0)
assert status == 0, status
llm.invoke("parent after", config={{"callbacks": [t]}})
t.close()
print(t.successful_requests)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["2"]
    # The child's record too, written by its own writer (see tests/test_fork.py).
    assert len(stored_run_ids(path)) == 3
