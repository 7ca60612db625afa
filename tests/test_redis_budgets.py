"""Budgets shared through Redis (`CostTracker(budget_store="redis://...")`), against a real
Redis: several trackers and processes sharing one window, idempotent settlement, leases of a
killed process, thresholds once for all hosts, Redis killed and restarted with and without its
data, seeding a missing window from the ledger. See docs/hosts.md."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from llmledger import (
    Budget,
    BudgetAlert,
    BudgetBackendError,
    BudgetExceededError,
    CostTracker,
    ledger_summary,
)
from llmledger.testing import UsageFakeChatModel
from redis_service import OwnCluster, OwnRedis

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="redis-server, SIGKILL")

# Input free, $1 per 1M output tokens: a call's reservation (max_tokens of output) is exactly
# its cost when it generates max_tokens, so "exact estimates" are exact.
PRICES = {"shared-model": {"input": "0", "output": "1"}}
OUT = 20
PER_CALL = Decimal(OUT) / 1_000_000


def llm(**kw: Any) -> UsageFakeChatModel:
    return UsageFakeChatModel(
        model="shared-model",
        provider="acme",
        responses=["fine"],
        usage={"input_tokens": 3, "output_tokens": OUT, "total_tokens": OUT + 3},
        **kw,
    )


def call(t: CostTracker, user: str = "alice", model: Any = None) -> None:
    (model or llm()).invoke(
        "hi", config={"callbacks": [t], "metadata": {"user_id": user}}, max_tokens=OUT
    )


def tracker(url: str, prefix: str, budgets: list[Budget], **kw: Any) -> CostTracker:
    return CostTracker(prices=PRICES, budgets=budgets, budget_store=url, budget_prefix=prefix, **kw)


def state(t: CostTracker, value: str | None = "alice") -> dict[str, Any]:
    return next(b for b in t.budgets() if b["value"] == value)


def test_two_trackers_share_one_window_and_thresholds_fire_once(
    redis_url: str, redis_prefix: str
) -> None:
    alerts: list[BudgetAlert] = []
    budgets = [Budget.daily(PER_CALL * 5, per="user_id", alert_at=[0.5, 0.8])]
    a = tracker(redis_url, redis_prefix, budgets, on_alert=alerts.append, log_alerts=False)
    b = tracker(redis_url, redis_prefix, budgets, on_alert=alerts.append, log_alerts=False)
    for i in range(5):
        call(a if i % 2 else b)
    # A call's settlement reaches Redis a round trip after its end hook returns (it is off
    # the call's path); flush() waits for it. b made the last call: its spend is in Redis now.
    b.flush()
    with pytest.raises(BudgetExceededError) as refused:
        call(a)
    assert not isinstance(refused.value, BudgetBackendError)
    assert refused.value.spent == PER_CALL * 5 and refused.value.reserved == 0
    with pytest.raises(BudgetExceededError):
        call(b)
    # Another user has a window of their own.
    call(a, user="bob")
    for t in (a, b):
        s = state(t)
        assert (s["spent"], s["reserved"], s["remaining"]) == (PER_CALL * 5, 0, 0)
        assert state(t, "bob")["spent"] == PER_CALL
        assert t.open_reservations == 0
    # 50 % and 80 % once each for alice, across both trackers, and one "blocked" alert
    # (an alert of a settlement applied after its call's end hook is sent by the tracker's
    # next end hook or flush()).
    a.flush()
    b.flush()
    kinds = sorted((x.kind, str(x.threshold), x.value) for x in alerts)
    assert kinds == [
        ("blocked", "1", "alice"),
        ("threshold", "0.5", "alice"),
        ("threshold", "0.8", "alice"),
    ]
    assert a.total_cost + b.total_cost == PER_CALL * 6


def test_keys_share_the_prefix_hash_tag_and_money_is_integer_pico(
    redis_url: str, redis_prefix: str
) -> None:
    import redis

    t = tracker(redis_url, redis_prefix, [Budget.daily(1), Budget.monthly(1, per="user_id")])
    call(t)
    t.flush()  # the call's settlement is applied off its path; flush() waits for it
    r = redis.Redis.from_url(redis_url)
    keys = sorted(k.decode() for k in r.scan_iter(match="{" + redis_prefix + "}:*"))
    assert keys and all(k.startswith("{" + redis_prefix + "}:") for k in keys)
    counters = [k for k in keys if ":w:" in k]
    assert len(counters) == 2
    for k in counters:
        assert r.hget(k, "spent") == str(OUT * 1_000_000).encode()  # 20e-6 USD in pico
        assert r.hget(k, "reserved") == b"0"
        assert 0 < r.pttl(k) <= (32 * 86_400 + 4_000) * 1000  # expires after its window


def test_settling_twice_or_after_a_release_changes_nothing(
    redis_url: str, redis_prefix: str
) -> None:
    t = tracker(redis_url, redis_prefix, [Budget.daily(1, per="user_id")])
    run = uuid.uuid4()
    call(t)
    usage = {"input_tokens": 3, "output_tokens": OUT, "total_tokens": OUT + 3}
    response = LLMResult(
        generations=[[ChatGeneration(message=AIMessage("x", usage_metadata=usage))]],
        llm_output={"model_name": "shared-model"},
    )
    meta = {"user_id": "alice"}
    t.on_chat_model_start({}, [[]], run_id=run, metadata=meta, invocation_params={})
    t.on_llm_end(response, run_id=run)
    spent = state(t)["spent"]
    assert spent == PER_CALL * 2
    # The same run's end again (a retried callback): no start to settle, charged by run id:
    # the script has it marked done.
    t.on_llm_end(response, run_id=run)
    assert state(t)["spent"] == spent
    # A released run (an error) settled later changes nothing either.
    run2 = uuid.uuid4()
    t.on_chat_model_start(
        {},
        [[]],
        run_id=run2,
        metadata=meta,
        invocation_params={"model": "shared-model", "max_tokens": OUT},
    )
    assert state(t)["reserved"] > 0
    t.on_llm_error(RuntimeError("boom"), run_id=run2)
    assert state(t)["reserved"] == 0
    t.on_llm_end(response, run_id=run2)
    assert state(t)["spent"] == spent
    assert t.internal_errors == 0


def test_queued_settlements_and_the_next_reservation_take_one_script_run(
    own_redis: OwnRedis,
) -> None:
    # Eight calls end back to back, then a ninth starts: their settlements travel as one script
    # run, beside the reservation or inside it (the settler thread may take some first, in
    # one run per batch), not as nine runs; and every one is applied exactly.
    t = tracker(own_redis.url, "batch", [Budget.daily(1), Budget.monthly(1, per="user_id")])
    r = own_redis.client()
    call(t)  # loads the script (a fresh Redis answers the first one with NOSCRIPT)
    t.flush()
    usage = {"input_tokens": 3, "output_tokens": OUT, "total_tokens": OUT + 3}
    response = LLMResult(
        generations=[[ChatGeneration(message=AIMessage("x", usage_metadata=usage))]],
        llm_output={"model_name": "shared-model"},
    )
    start = {
        "metadata": {"user_id": "alice"},
        "invocation_params": {"model": "shared-model", "max_tokens": OUT},
    }
    runs = [uuid.uuid4() for _ in range(9)]
    for run in runs[:8]:
        t.on_chat_model_start({}, [[]], run_id=run, **start)
    r.config_resetstat()
    for run in runs[:8]:
        t.on_llm_end(response, run_id=run)
    t.on_chat_model_start({}, [[]], run_id=runs[8], **start)
    t.flush()
    stats = r.info("commandstats")["cmdstat_evalsha"]
    assert stats["failed_calls"] == 0
    assert stats["calls"] <= 4, stats  # one a settlement and one the reservation: 9
    for b in t.budgets():
        assert b["spent"] == PER_CALL * 9 and b["reserved"] == PER_CALL, b
    t.on_llm_end(response, run_id=runs[8])
    assert all(b["spent"] == PER_CALL * 10 and b["reserved"] == 0 for b in t.budgets())
    assert t.internal_errors == 0 and t.open_reservations == 0


# A child holding reservations forever: each call's model sleeps.
HOLDER = r"""
import os, sys, threading, time
from llmledger import Budget, CostTracker
from llmledger.testing import UsageFakeChatModel

url, prefix, n = sys.argv[1], sys.argv[2], int(sys.argv[3])

class Stuck(UsageFakeChatModel):
    def _generate(self, *a, **kw):
        os.write(1, b"holding\n")
        time.sleep(3600)

t = CostTracker(prices={"shared-model": {"input": "0", "output": "1"}},
                budgets=[Budget.daily(float(sys.argv[4]), per="user_id")],
                budget_store=url, budget_prefix=prefix, budget_lease=1.0)
m = Stuck(model="shared-model", provider="acme")
for _ in range(n):
    threading.Thread(target=lambda: m.invoke(
        "hi", config={"callbacks": [t], "metadata": {"user_id": "alice"}}, max_tokens=20),
        daemon=True).start()
time.sleep(3600)
"""


def test_a_killed_process_blocks_the_budget_only_for_its_lease(
    redis_url: str, redis_prefix: str
) -> None:
    limit = PER_CALL * 3
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HOLDER), redis_url, redis_prefix, "3", str(limit)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        for _ in range(3):
            assert child.stdout.readline().strip() == "holding"
        t = tracker(redis_url, redis_prefix, [Budget.daily(limit, per="user_id")])
        assert state(t)["reserved"] == limit
        with pytest.raises(BudgetExceededError):
            call(t)
        child.send_signal(signal.SIGKILL)
        child.wait()
        time.sleep(1.2)  # the lease
        # Reclaimed inside the script of the next request: no sweeper.
        call(t)
        s = state(t)
        assert (s["spent"], s["reserved"]) == (PER_CALL, 0)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()


def test_closed_refuses_with_budget_backend_error_and_never_shows_the_password(
    ledger_log: pytest.LogCaptureFixture,
) -> None:
    from redis_service import free_port

    url = f"redis://:s3cret-pw@127.0.0.1:{free_port()}/0"  # nothing listens there
    t = CostTracker(
        prices=PRICES,
        budgets=[Budget.daily(1)],
        budget_store=url,
        budget_backend_error="closed",
        budget_timeout=0.2,
    )
    with pytest.raises(BudgetBackendError) as e:
        call(t)
    assert isinstance(e.value, BudgetExceededError)
    assert "unreachable" in str(e.value) and "s3cret" not in str(e.value)
    info = t.budget_store_info()
    assert info is not None
    assert info["refused_unreachable"] == 1 and info["reachable"] is False
    assert "s3cret" not in repr(info) and info["url"] == url.replace(":s3cret-pw@", "***@")
    assert t.successful_requests == 0 and t.blocked_calls == 1
    logged = " ".join(r.getMessage() for r in ledger_log.records)
    assert "unreachable" in logged and "s3cret" not in logged
    with pytest.raises(ValueError, match="budget_backend_error"):
        CostTracker(budgets=[Budget.daily(1)], budget_store=url, budget_backend_error="maybe")
    with pytest.raises(ValueError, match="budget_store"):
        CostTracker(budgets=[Budget.daily(1)], budget_backend_error="open")


def redis_spent(t: CostTracker, value: str | None = "alice") -> Decimal:
    s = state(t, value)
    assert s["reserved"] == 0
    return Decimal(s["spent"])


def ledger_spent(path: Path, user: str = "alice") -> Decimal:
    rows = ledger_summary(path, by=["user_id"])["rows"]
    return sum((Decimal(r["cost"]) for r in rows if r["user_id"] == user), Decimal(0))


def test_open_goes_on_while_redis_is_down_and_settles_once_when_it_is_back(
    own_redis: OwnRedis, tmp_path: Path, redis_prefix: str
) -> None:
    db = tmp_path / "costs.db"
    budgets = [Budget.daily(1, per="user_id")]
    t = tracker(own_redis.url, redis_prefix, budgets, store=db, budget_timeout=0.2)
    for _ in range(3):
        call(t)
    t.flush()  # the three settlements are in Redis (they are sent off the calls' path)
    own_redis.kill9()
    for _ in range(4):
        call(t)  # admitted unchecked, settlements queued
    t.flush()  # a settlement on its way when Redis failed joins the outage queue
    info = t.budget_store_info()
    assert info is not None
    assert info["admitted_unchecked"] == 4 and info["pending_settlements"] == 4
    own_redis.start(keep_data=True)
    time.sleep(1.1)  # past the retry pause
    call(t)  # replays the queue, then its own call
    t.flush()
    info = t.budget_store_info()
    assert info is not None
    assert info["pending_settlements"] == 0 and info["replayed_settlements"] == 4
    assert redis_spent(t) == PER_CALL * 8 == ledger_spent(db)
    # A second tracker sees the same window.
    assert redis_spent(tracker(own_redis.url, redis_prefix, budgets)) == PER_CALL * 8


def test_a_restart_without_data_seeds_the_window_from_the_ledger_once(
    own_redis: OwnRedis, tmp_path: Path, redis_prefix: str
) -> None:
    db = tmp_path / "costs.db"
    budgets = [Budget.daily(1, per="user_id"), Budget(1, window="rolling:1h")]
    t = tracker(own_redis.url, redis_prefix, budgets, store=db, budget_timeout=0.2)
    for _ in range(5):
        call(t)
    # The first call seeded both windows of the new Redis (from an empty ledger).
    assert (t.budget_store_info() or {})["seeded_windows"] == 2
    own_redis.kill9()
    call(t)  # admitted while down: in the ledger, its settlement queued
    own_redis.start(keep_data=False)  # a new, empty Redis
    time.sleep(1.2)  # past the retry pause, and the seed's slack for unflushed writes
    # Four hosts' first calls at once: the window is seeded once, not four times.
    others = [tracker(own_redis.url, redis_prefix, budgets, store=db) for _ in range(4)]
    threads = [threading.Thread(target=call, args=(o,)) for o in others]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    call(t)  # replays the queued settlement: already in the seed, not counted again
    for o in others:
        o.flush()
    t.flush()
    seeded = sum((o.budget_store_info() or {})["seeded_windows"] for o in [t, *others])
    assert seeded == 2 + 2  # after the restart: the day and the rolling hour, once each
    assert ledger_spent(db) == PER_CALL * 11
    assert redis_spent(t) == PER_CALL * 11
    [rolling] = [b for b in t.budgets() if b["window"] == "rolling 1h"]
    assert rolling["spent"] == PER_CALL * 11


# One process of the race: `threads` threads, each making calls until refused.
RACER = """
import sys, threading
from llmledger import Budget, BudgetExceededError, CostTracker
from llmledger.testing import UsageFakeChatModel

url, prefix, db, limit, threads = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
usage = {"input_tokens": 3, "output_tokens": 20, "total_tokens": 23}
t = CostTracker(prices={"shared-model": {"input": "0", "output": "1"}}, store=db,
                budgets=[Budget.daily(limit, per="user_id")], budget_store=url,
                budget_prefix=prefix)
admitted, refused = [], []
go = threading.Barrier(threads)

def worker():
    m = UsageFakeChatModel(model="shared-model", provider="acme", usage=usage)
    go.wait()
    while True:
        try:
            m.invoke("hi", config={"callbacks": [t], "metadata": {"user_id": "racer"}},
                     max_tokens=20)
            admitted.append(1)
        except BudgetExceededError:
            refused.append(1)
            if len(refused) > 2 * threads:
                return

ts = [threading.Thread(target=worker) for _ in range(threads)]
for x in ts: x.start()
for x in ts: x.join()
t.close()
print(len(admitted), t.open_reservations, t.internal_errors, flush=True)
"""


def race(url: str, prefix: str, db: Path, calls: int) -> None:
    """Four processes of eight threads call against one per-user budget with room for exactly
    `calls` calls: exactly that many are admitted, no reservation is left, and the shared
    window's spend equals the ledger's."""
    limit = PER_CALL * calls + PER_CALL / 2
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(RACER), url, prefix, str(db), str(limit), "8"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    admitted = [tuple(map(int, o[0].split())) for o in outs]
    assert sum(a for a, _, _ in admitted) == calls
    assert all(open_ == 0 and errors == 0 for _, open_, errors in admitted)
    t = tracker(url, prefix, [Budget.daily(limit, per="user_id")])
    s = state(t, "racer")
    assert s["reserved"] == 0
    assert s["spent"] == PER_CALL * calls == ledger_spent(db, "racer")


def test_four_processes_of_eight_threads_never_overrun_an_exact_budget(
    redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    race(redis_url, redis_prefix, tmp_path / "race.db", 100)


def test_budget_store_needs_budgets_and_a_redis_url() -> None:
    with pytest.raises(ValueError, match="pass budgets"):
        CostTracker(budget_store="redis://127.0.0.1:6379/0")
    with pytest.raises(ValueError, match="redis://"):
        CostTracker(budgets=[Budget.daily(1)], budget_store="memcached://x")
    with pytest.raises(ValueError, match="budget_lease"):
        CostTracker(budgets=[Budget.daily(1)], budget_store="redis://x", budget_lease=0)
    assert CostTracker(budgets=[Budget.daily(1)]).budget_store_info() is None


def test_streams_grow_the_shared_reservation_and_are_cut(redis_url: str, redis_prefix: str) -> None:
    prices = {"stream-model": {"input": "0", "output": "1000"}}  # $0.001 per output token
    t = CostTracker(
        prices=prices,
        budgets=[Budget.daily("0.005", cut_streams=True)],
        budget_store=redis_url,
        budget_prefix=redis_prefix,
    )
    m = UsageFakeChatModel(
        model="stream-model", provider="acme", responses=[" ".join(["word"] * 40)]
    )
    with pytest.raises(BudgetExceededError):
        for _ in m.stream("go", config={"callbacks": [t]}, max_tokens=1):
            pass
    [s] = t.budgets()
    assert s["reserved"] == 0 and Decimal("0.005") < s["spent"] <= Decimal("0.007")
    assert t.open_reservations == 0


def test_reset_budget_clears_the_shared_window_for_every_host(
    redis_url: str, redis_prefix: str
) -> None:
    budgets = [Budget.daily(PER_CALL * 2, per="user_id")]
    a = tracker(redis_url, redis_prefix, budgets)
    b = tracker(redis_url, redis_prefix, budgets)
    for user in ("alice", "alice", "bob"):
        call(a, user=user)
    a.flush()  # a's settlements are sent off its calls' path; flush() waits for them
    with pytest.raises(BudgetExceededError):
        call(b)
    assert b.reset_budget(value="alice") == 1
    call(b)  # alice may spend again, on every host
    b.flush()
    assert state(a)["spent"] == PER_CALL and state(a, "bob")["spent"] == PER_CALL
    assert a.reset_budget() == 2
    assert [s["spent"] for s in b.budgets()] == [0, 0]
    with pytest.raises(ValueError, match="no budget named"):
        a.reset_budget("nope")


# One host of the seeding test: waits for the go file, makes one call for alice, reports.
SEEDER = """
import json, os, sys, time
from llmledger import Budget, CostTracker
from llmledger.testing import UsageFakeChatModel

url, prefix, ledger, go = sys.argv[1:5]
t = CostTracker(prices={"shared-model": {"input": "0", "output": "1"}}, store=ledger,
                budgets=[Budget.daily(1, per="user_id"), Budget(1, window="rolling:1h")],
                budget_store=url, budget_prefix=prefix)
m = UsageFakeChatModel(model="shared-model", provider="acme",
                       usage={"input_tokens": 3, "output_tokens": 20, "total_tokens": 23})
while not os.path.exists(go):
    time.sleep(0.001)
m.invoke("hi", config={"callbacks": [t], "metadata": {"user_id": "alice"}}, max_tokens=20)
t.close()
print(json.dumps({"seeded": t.budget_store_info()["seeded_windows"],
                  "errors": t.internal_errors}), flush=True)
"""


def test_a_flushed_redis_is_seeded_once_from_a_postgresql_ledger_by_two_new_processes(
    redis_url: str, redis_prefix: str, postgres_url: str, tmp_path: Path
) -> None:
    import json

    from redis_service import _client, delete_keys

    budgets = [Budget.daily(1, per="user_id"), Budget(1, window="rolling:1h")]
    first = tracker(redis_url, redis_prefix, budgets, store=postgres_url)
    for user in ["alice"] * 6 + ["bob"] * 2:
        call(first, user=user)
    first.close()
    assert redis_spent(first) == PER_CALL * 6
    # Redis loses the windows (flushed, restarted without data, or a new server).
    delete_keys(_client(redis_url), redis_prefix)
    assert [b["spent"] for b in first.budgets()] == [0]  # only the empty global row is left
    time.sleep(1.1)  # past the seed's slack for records other hosts may not have committed
    go = tmp_path / "go"
    hosts = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(SEEDER), redis_url, redis_prefix]
            + [postgres_url, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    time.sleep(1.5)  # both are up and waiting
    go.touch()  # their first calls, at once, both find the windows missing
    outs = [p.communicate(timeout=60) for p in hosts]
    assert all(p.returncode == 0 for p in hosts), [o[1][-2000:] for o in outs]
    reports = [json.loads(o[0]) for o in outs]
    assert all(r["errors"] == 0 for r in reports)
    # The day window and the rolling hour were seeded once each, by one host or the other.
    assert sum(r["seeded"] for r in reports) == 2
    # Not doubled: the ledger's spend counted once, plus the two new calls.
    rows = {
        r["user_id"]: Decimal(r["cost"]) for r in ledger_summary(postgres_url, ["user_id"])["rows"]
    }
    assert rows == {"alice": PER_CALL * 8, "bob": PER_CALL * 2}
    now = tracker(redis_url, redis_prefix, budgets)
    assert redis_spent(now, "alice") == PER_CALL * 8
    assert redis_spent(now, "bob") == PER_CALL * 2
    [rolling] = [b for b in now.budgets() if b["window"] == "rolling 1h"]
    assert rolling["spent"] == PER_CALL * 10 and rolling["reserved"] == 0


# A process that dies during an outage, its settlements spooled: kill -9 after flush().
DYING = """
import os, sys
from llmledger import Budget, CostTracker
from llmledger.testing import UsageFakeChatModel

url, prefix = sys.argv[1:3]
t = CostTracker(prices={"shared-model": {"input": "0", "output": "1"}},
                budgets=[Budget.daily(1, per="user_id")], budget_store=url,
                budget_prefix=prefix, budget_timeout=0.2)
m = UsageFakeChatModel(model="shared-model", provider="acme",
                       usage={"input_tokens": 3, "output_tokens": 20, "total_tokens": 23})
for _ in range(4):
    m.invoke("hi", config={"callbacks": [t], "metadata": {"user_id": "alice"}}, max_tokens=20)
t.flush()
info = t.budget_store_info()
assert info["admitted_unchecked"] == 4 and info["pending_settlements"] == 4, info
os.kill(os.getpid(), 9)
"""


def spooled_outage(
    own_redis: OwnRedis, tmp_path: Path, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, list[Budget], CostTracker]:
    """A tracker with a spool folder of the test's own: 3 calls while Redis answers (nothing
    spooled), then Redis killed and 2 calls spooled (after the returned tracker's flush)."""
    spool = tmp_path / "spool"
    monkeypatch.setenv("LLMLEDGER_SPOOL_DIR", str(spool))
    budgets = [Budget.daily(1, per="user_id")]
    t = tracker(own_redis.url, prefix, budgets, budget_timeout=0.2)
    for _ in range(3):
        call(t)
    t.flush()
    assert not spool.exists()  # nothing is written while Redis answers
    own_redis.kill9()
    for _ in range(2):
        call(t)
    return spool, budgets, t


def test_outage_settlements_are_spooled_and_applied_once_even_after_the_process_died(
    own_redis: OwnRedis, tmp_path: Path, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool, budgets, t = spooled_outage(own_redis, tmp_path, redis_prefix, monkeypatch)
    t.flush()
    [own] = spool.glob("redis-*.jsonl")
    assert own.stat().st_mode & 0o777 == 0o600 and spool.stat().st_mode & 0o777 == 0o700
    lines = own.read_text().splitlines()
    assert len(lines) == 2 and all('"day per user_id"' in x and "alice" in x for x in lines)
    assert "hi" not in own.read_text()  # no prompt text: run ids, budgets, scope values
    # Another host dies during the outage with 4 settlements spooled.
    child = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(DYING), own_redis.url, redis_prefix],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    [orphan] = [p for p in spool.glob("redis-*.jsonl") if p != own]
    orphan_text = orphan.read_text()
    assert len(orphan_text.splitlines()) == 4
    own_redis.start(keep_data=True)
    time.sleep(1.1)  # past t's retry pause
    # The next tracker adopts the dead process's spool; t replays its own.
    u = tracker(own_redis.url, redis_prefix, budgets, budget_timeout=0.2)
    assert (u.budget_store_info() or {})["pending_settlements"] == 4
    assert not orphan.exists()
    call(u)
    call(t)
    u.flush()
    t.flush()
    for x in (t, u):
        assert (x.budget_store_info() or {})["pending_settlements"] == 0
    assert redis_spent(u) == PER_CALL * (3 + 2 + 4 + 2)
    assert not list(spool.glob("redis-*.jsonl"))  # every spool applied, then removed
    # Sent twice (a process that died after applying its spool, before removing it): the
    # runs' done marks make them count once.
    (spool / orphan.name).write_text(orphan_text)
    v = tracker(own_redis.url, redis_prefix, budgets)
    call(v)
    v.flush()
    assert (v.budget_store_info() or {})["replayed_settlements"] == 4
    assert redis_spent(v) == PER_CALL * (3 + 2 + 4 + 2 + 1)


def test_a_redis_cluster_shares_one_exact_budget_across_four_processes(
    own_cluster: OwnCluster, tmp_path: Path
) -> None:
    prefix = f"llmledger-test-{uuid.uuid4().hex[:12]}"
    owner = own_cluster.owner("{" + prefix + "}")
    # The URL names one primary that does not serve the prefix's slot: the client must follow
    # the cluster's redirection to the one that does.
    other = own_cluster.other_primary(owner)
    race(own_cluster.url(other), prefix, tmp_path / "race.db", 60)
    # Every key is on the slot's primary (and its replica), none on the other primaries.
    assert owner.client().keys("{" + prefix + "}:*")
    assert not other.client().keys("{" + prefix + "}:*")


def test_a_single_server_url_at_a_cluster_node_says_to_name_the_cluster(
    own_cluster: OwnCluster, ledger_log: pytest.LogCaptureFixture
) -> None:
    prefix = f"llmledger-test-{uuid.uuid4().hex[:12]}"
    owner = own_cluster.owner("{" + prefix + "}")
    other = own_cluster.other_primary(owner)
    t = tracker(other.url, prefix, [Budget.daily(1)], budget_timeout=0.5)
    call(t)  # open: the call goes on, unchecked
    info = t.budget_store_info()
    assert info is not None and info["admitted_unchecked"] == 1
    logged = " ".join(r.getMessage() for r in ledger_log.records)
    assert "node of a Redis Cluster" in logged and "redis+cluster://" in logged, logged
    with pytest.raises(ValueError, match="database other than 0"):
        CostTracker(budgets=[Budget.daily(1)], budget_store=own_cluster.url(other) + "/3")


def test_a_cluster_failover_loses_nothing_and_counts_nothing_twice(
    own_cluster: OwnCluster, tmp_path: Path
) -> None:
    prefix = f"llmledger-test-{uuid.uuid4().hex[:12]}"
    db = tmp_path / "costs.db"
    budgets = [Budget.daily(1, per="user_id")]
    t = tracker(own_cluster.url(), prefix, budgets, store=db, budget_timeout=0.3)
    for _ in range(3):
        call(t)
    t.flush()
    owner = own_cluster.owner("{" + prefix + "}")
    # Replication is asynchronous: Redis itself may lose a primary's last writes when it
    # dies. Wait until its replica has them, so the test sees what llmledger does.
    assert owner.client().execute_command("WAIT", 1, 1500) == 1
    owner.kill9()
    for _ in range(2):
        call(t)  # the primary is gone and its replica not yet promoted: admitted unchecked
    t.flush()
    info = t.budget_store_info()
    assert info is not None and info["admitted_unchecked"] >= 1
    own_cluster.wait_ok()  # the replica has taken over the slot
    assert own_cluster.owner("{" + prefix + "}") is not owner
    time.sleep(1.2)  # past the retry pause
    for _ in range(2):
        call(t)  # replays what was queued, then its own
    t.flush()
    info = t.budget_store_info()
    assert info is not None and info["pending_settlements"] == 0
    assert redis_spent(t) == PER_CALL * 7 == ledger_spent(db)


def test_a_forked_child_opens_its_own_redis_connections(redis_url: str, redis_prefix: str) -> None:
    # The parent's pooled connections are copied into a child by fork: were both to use one,
    # each would read replies meant for the other. So the parent's calls (alice, her budget
    # spent) must all be refused and the child's (bob) all admitted, each reading its own.
    n = 30
    t = tracker(redis_url, redis_prefix, [Budget.daily(PER_CALL * n + PER_CALL / 2, per="user_id")])
    for _ in range(n):
        call(t, "alice")
    t.flush()
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            for _ in range(n):
                call(t, "bob")
            t.flush()
            code = 0 if t.internal_errors == 0 and t.blocked_calls == 0 else 2
        finally:
            os._exit(code)
    refused = 0
    for _ in range(n):
        try:
            call(t, "alice")
        except BudgetExceededError:
            refused += 1
    _, status = os.waitpid(pid, 0)
    t.flush()
    assert os.waitstatus_to_exitcode(status) == 0
    assert refused == n and t.internal_errors == 0
    info = t.budget_store_info()
    assert info is not None and info["admitted_unchecked"] == 0 and info["errors"] == 0
    assert redis_spent(t, "alice") == redis_spent(t, "bob") == PER_CALL * n


def test_a_window_rolls_over_by_redis_time_with_fresh_spend_and_thresholds(
    redis_url: str, redis_prefix: str
) -> None:
    # A real boundary, by the Redis server's clock (the tests cannot move it): a minute
    # window, the test waiting for the next minute (at most a minute).
    import redis

    r = redis.Redis.from_url(redis_url)

    def redis_now() -> float:
        s, us = r.time()
        return s + us / 1e6

    alerts: list[BudgetAlert] = []
    budgets = [Budget(PER_CALL * 2, window="minute", per="user_id", alert_at=[0.5])]
    kw: dict[str, Any] = {"on_alert": alerts.append, "log_alerts": False}
    if redis_now() % 60 > 52:  # too close to the end of this minute for the first half
        time.sleep(60.5 - redis_now() % 60)
    a = tracker(redis_url, redis_prefix, budgets, **kw)
    b = tracker(redis_url, redis_prefix, budgets, **kw)
    first = int(redis_now() // 60) * 60
    call(a)
    call(b)
    b.flush()
    with pytest.raises(BudgetExceededError):
        call(a)
    assert state(a)["spent"] == PER_CALL * 2
    old = [k for k in r.scan_iter(match="{" + redis_prefix + "}:w:*")]
    assert old and all(f":c{first}" in k.decode() for k in old), old
    # The old window's counters expire by themselves: after its end, a lease and the grace.
    lease_ms, grace_ms = 600_000, 3_600_000
    for k in old:
        left = r.pttl(k)
        assert 0 < left <= (first + 60 - redis_now()) * 1000 + lease_ms + grace_ms + 2000
    time.sleep(first + 60.3 - redis_now())  # the next minute, by Redis's clock
    # A new window: nothing spent in it, room for two calls again, and its 50 % threshold
    # fires again (once, for both trackers).
    for t in (a, b):  # no counter of alice's in the new window yet
        assert [x for x in t.budgets() if x["value"] == "alice" and x["spent"]] == []
    call(b)
    call(a)
    a.flush()
    with pytest.raises(BudgetExceededError):
        call(b)
    a.flush()
    b.flush()
    assert state(b)["spent"] == PER_CALL * 2
    new = {k for k in r.scan_iter(match="{" + redis_prefix + "}:w:*")} - set(old)
    assert new and all(f":c{first + 60}" in k.decode() for k in new), new
    kinds = sorted((x.kind, str(x.threshold)) for x in alerts)
    assert kinds == [("blocked", "1"), ("blocked", "1"), ("threshold", "0.5"), ("threshold", "0.5")]


def test_a_child_forked_during_an_outage_spools_apart_from_its_parent(
    own_redis: OwnRedis, tmp_path: Path, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool, budgets, t = spooled_outage(own_redis, tmp_path, redis_prefix, monkeypatch)
    t.flush()
    [parent_file] = spool.glob("redis-*.jsonl")
    pid = os.fork()
    if pid == 0:  # the child: two calls while Redis is down, then it dies
        code = 1
        try:
            for _ in range(2):
                call(t)
            t.flush()
            info = t.budget_store_info() or {}
            code = 0 if info.get("pending_settlements") == 2 else 3  # its own two only
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert len(parent_file.read_text().splitlines()) == 2  # the child wrote a file of its own
    [child_file] = [p for p in spool.glob("redis-*.jsonl") if p != parent_file]
    assert len(child_file.read_text().splitlines()) == 2
    own_redis.start(keep_data=True)
    time.sleep(1.1)  # past the retry pause
    call(t)  # replays the parent's two, removes the parent's file only
    t.flush()
    assert not parent_file.exists() and child_file.exists()
    u = tracker(own_redis.url, redis_prefix, budgets, budget_timeout=0.2)  # adopts the child's
    call(u)
    u.flush()
    assert not list(spool.glob("redis-*.jsonl"))
    assert redis_spent(u) == PER_CALL * (3 + 2 + 2 + 1 + 1)
