"""Trackers across fork(): gunicorn `preload_app`, celery prefork and `multiprocessing` create the
tracker in the parent and make the calls in forked children; every record of every process must
land in the ledger, and alerts sent from a child must go out.

Each scenario runs in a fresh interpreter (forking the pytest process, with its threads, would
be the test's own hazard)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from llmledger import _core

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="no fork on Windows")

PRELUDE = """
import os, sys, warnings
warnings.simplefilter("ignore", DeprecationWarning)  # fork() with the writer thread running
from llmledger import CostTracker
from llmledger.testing import UsageFakeChatModel

llm = UsageFakeChatModel(model="gpt-4o-mini")

def calls(t, n, user):
    for _ in range(n):
        llm.invoke("x", config={"callbacks": [t], "metadata": {"user_id": user}})
"""


def run(code: str, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(PRELUDE) + textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def stored(path: Path) -> list[dict[str, object]]:
    chunks: list[str] = []
    _core.ledger_export(path, "jsonl", chunks.append)
    return [json.loads(line) for line in "".join(chunks).splitlines()]


def users(path: Path) -> dict[str, int]:
    rows = _core.ledger_report(path, by=["user_id"])["rows"]
    return {r["user_id"]: r["calls"] for r in rows}


@pytest.mark.parametrize("name", ["mp.db", "mp.jsonl"])
@pytest.mark.parametrize("durability", ["batch", "sync"])
def test_multiprocessing_children_store_every_record(
    tmp_path: Path, name: str, durability: str
) -> None:
    # multiprocessing's children end with os._exit: no atexit hook runs there; the trackers'
    # close is one of multiprocessing's own exit finalizers in each child.
    path = tmp_path / name
    out = run(
        """
import multiprocessing
t = CostTracker(store=sys.argv[1], durability=sys.argv[2])
calls(t, 10, "parent")
ctx = multiprocessing.get_context("fork")
children = [ctx.Process(target=calls, args=(t, 100, f"child{i}")) for i in range(3)]
for p in children:
    p.start()
for p in children:
    p.join()
    assert p.exitcode == 0, p.exitcode
calls(t, 10, "parent")
t.close()
print(t.successful_requests, t.store_info()["written"])
""",
        str(path),
        durability,
    )
    # The parent's own counters: its 20 calls (each process counts its own).
    assert out.split() == ["20", "20"]
    records = stored(path)
    assert len(records) == 320
    assert len({r["run_id"] for r in records}) == 320
    assert users(path) == {"parent": 20, "child0": 100, "child1": 100, "child2": 100}


@pytest.mark.parametrize("name", ["fork.db", "fork.jsonl"])
def test_os_fork_children_store_their_records_on_a_normal_exit_or_a_flush(
    tmp_path: Path, name: str
) -> None:
    # A child that exits normally runs the atexit hook (flush and close); one that ends with
    # os._exit keeps what it flushed (a batch-mode record still queued at os._exit is lost).
    path = tmp_path / name
    run(
        """
t = CostTracker(store=sys.argv[1])
calls(t, 5, "parent")
pid = os.fork()
if pid == 0:
    calls(t, 30, "exits")
    sys.exit(0)
_, status = os.waitpid(pid, 0)
assert status == 0, status
pid = os.fork()
if pid == 0:
    calls(t, 30, "flushes")
    t.flush()
    os._exit(0)
_, status = os.waitpid(pid, 0)
assert status == 0, status
calls(t, 5, "parent")
t.close()
""",
        str(path),
    )
    assert users(path) == {"parent": 10, "exits": 30, "flushes": 30}


# A webhook server in the parent (children post to it too) and a tracker alerting on the
# first call of each user; alerts of the users in SLOW are answered after 1.5 s.
WEBHOOK = """
import json, multiprocessing, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from llmledger import Budget

received = []
SLOW = set()

class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if body["value"] in SLOW:
            time.sleep(1.5)
        received.append(body)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
threading.Thread(target=server.serve_forever, daemon=True).start()
t = CostTracker(
    budgets=[Budget.daily("0.000001", per="user_id", action="alert", alert_at=[1])],
    alert_webhook=f"http://127.0.0.1:{server.server_port}/hook",
)
"""


def test_an_alert_sent_from_a_forked_child_reaches_the_webhook(tmp_path: Path) -> None:
    out = run(
        WEBHOOK
        + """
calls(t, 1, "parent")
t.flush()
p = multiprocessing.get_context("fork").Process(target=calls, args=(t, 1, "child"))
p.start()
p.join()
assert p.exitcode == 0
server.shutdown()
print(json.dumps(sorted(r["value"] for r in received)))
print(json.dumps(t.alert_info()))
"""
    )
    values, info = (json.loads(line) for line in out.splitlines())
    assert values == ["child", "parent"]
    assert info["sent"] == 1 and info["dropped"] == 0


def test_children_forked_while_the_parent_waits_on_its_webhook_send_their_alerts() -> None:
    # A thread of the parent is waiting in flush() for an alert its slow webhook has not
    # answered yet when the main thread forks. The webhook's wait once used parking_lot's
    # Condvar, whose process-wide table of parked threads the child inherits with the parent's
    # waiter in it (the hazard that crashed the Redis settler in children); each child here
    # sends and flushes an alert of its own, and must exit cleanly with the alert delivered.
    out = run(
        WEBHOOK
        + """
SLOW.add("parent")

def child(i):
    calls(t, 1, f"child{i}")
    t.flush()

calls(t, 1, "parent")
waiter = threading.Thread(target=t.flush)
waiter.start()
time.sleep(0.2)  # the waiter is parked on the slow alert
ctx = multiprocessing.get_context("fork")
codes = []
for i in range(8):
    p = ctx.Process(target=child, args=(i,))
    p.start()
    p.join(60)
    codes.append(p.exitcode)
waiter.join()
got = sorted(r["value"] for r in received)
server.shutdown()
print(json.dumps(codes))
print(json.dumps(got))
"""
    )
    codes, got = (json.loads(line) for line in out.splitlines())
    assert codes == [0] * 8
    assert got == sorted([*(f"child{i}" for i in range(8)), "parent"])
