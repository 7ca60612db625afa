"""`llmledger metrics LEDGER`: Prometheus /metrics over HTTP on 127.0.0.1, computed from a
ledger while other processes write it."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest
from llmledger import ledger_summary
from pg_service import Cluster
from prometheus_client.parser import text_string_to_metric_families

# A writer process: `n` calls, each committed before on_llm_end returns, then "done".
WRITER = """
import sys
from llmledger import CostTracker
from llmledger.testing import UsageFakeChatModel

path, n, user = sys.argv[1], int(sys.argv[2]), sys.argv[3]
llm = UsageFakeChatModel(model="gpt-4o-mini", usage={"input_tokens": 1000, "output_tokens": 10,
                                                    "total_tokens": 1010})
t = CostTracker(store=path, durability="sync", max_records=1)
for i in range(n):
    llm.invoke("x", config={"callbacks": [t], "metadata": {"user_id": f"{user}{i % 7}"}})
t.close()
print("done", flush=True)
"""


def writer(path: Path | str, n: int, user: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(WRITER), str(path), str(n), user],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def exporter(
    path: Path | str | None, *extra: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], str]:
    ledger = [] if path is None else [str(path)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmledger", "metrics", *ledger, "--port", "0", *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert "serving http://127.0.0.1:" in line, line + proc.stderr.read()
    return proc, line.split("serving ", 1)[1].split()[0]


def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode()
    out: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[s.name].append((dict(s.labels), s.value))
    return out


def calls(m: dict[str, list[tuple[dict[str, str], float]]]) -> float:
    return sum(v for _, v in m.get("llmledger_calls_total", []))


@pytest.mark.parametrize("suffix", [".db", ".jsonl"])
def test_serves_the_ledger_while_two_processes_write_it(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"costs{suffix}"
    proc, url = exporter(path, "--labels", "user_id", "--top", "5")
    try:
        assert calls(scrape(url)) == 0  # no ledger yet: waited for, nothing counted
        writers = [writer(path, 150, "a"), writer(path, 150, "b")]
        seen = [calls(scrape(url))]
        while any(w.poll() is None for w in writers):
            seen.append(calls(scrape(url)))
            time.sleep(0.05)
        for w in writers:
            out, err = w.communicate(timeout=60)
            assert w.returncode == 0 and out.strip() == "done", err
        m = scrape(url)
        # Counters only go up while the writers write, and end at the ledger's exact totals.
        assert seen == sorted(seen)
        assert calls(m) == 300
        exact = ledger_summary(path)["totals"]
        cost = sum(v for _, v in m["llmledger_cost_usd_total"])
        assert cost == pytest.approx(float(exact["cost"]), rel=1e-12)
        tokens = {lb["type"]: 0.0 for lb, _ in m["llmledger_tokens_total"]}
        for lb, v in m["llmledger_tokens_total"]:
            tokens[lb["type"]] += v
        assert tokens["input"] == exact["input_tokens"] == 300_000
        assert tokens["output"] == exact["output_tokens"] == 3_000
        # 14 user ids between the writers, capped at 5 values + other.
        users = {lb["user_id"] for lb, _ in m["llmledger_cost_usd_total"]}
        assert len(users) == 6 and "other" in users
        # A second scrape with nothing new reads nothing new: same values.
        assert scrape(url)["llmledger_calls_total"] == m["llmledger_calls_total"]
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_without_prometheus_client_says_which_extra(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['prometheus_client'] = None\n"
        "from llmledger.cli import main\n"
        f"sys.exit(main(['metrics', {str(tmp_path / 'x.db')!r}, '--port', '0']))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 2
    assert "pip install 'llmledger[prometheus]'" in r.stderr


def test_an_unreadable_ledger_is_logged_and_the_scrape_still_answers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import sqlite3

    from llmledger import PrometheusMetrics
    from prometheus_client import CollectorRegistry, generate_latest

    path = tmp_path / "not-a-ledger.db"
    with sqlite3.connect(path) as conn:  # a SQLite database, but some other app's
        conn.execute("CREATE TABLE orders (id INTEGER)")
    conn.close()
    registry = CollectorRegistry()
    PrometheusMetrics.of_ledger(path, registry=registry)
    with caplog.at_level("WARNING", logger="llmledger"):
        text = generate_latest(registry).decode()
    assert "# TYPE llmledger_calls_total counter" in text
    assert "serving the figures read so far" in caplog.text


def finish(writers: list[subprocess.Popen[str]]) -> None:
    for w in writers:
        out, err = w.communicate(timeout=120)
        assert w.returncode == 0 and out.strip() == "done", err


def totals_of(m: dict[str, list[tuple[dict[str, str], float]]]) -> dict[str, float]:
    out = {"calls": calls(m), "cost": sum(v for _, v in m["llmledger_cost_usd_total"])}
    for lb, v in m["llmledger_tokens_total"]:
        out[lb["type"]] = out.get(lb["type"], 0.0) + v
    return out


def test_postgresql_ledger_two_writers_incremental_and_a_restart(postgres_url: str) -> None:
    """The exporter follows a PostgreSQL ledger (given as $LLMLEDGER_LEDGER, no argument):
    it is waited for before its tables exist, counts rows as two processes commit them, ends
    at the ledger's exact totals, and a restarted exporter counts the same from the start."""
    env = {**os.environ, "LLMLEDGER_LEDGER": postgres_url}
    proc, url = exporter(None, "--labels", "user_id", "--top", "5", env=env)
    try:
        assert calls(scrape(url)) == 0  # no ledger tables yet: waited for
        writers = [writer(postgres_url, 60, "a"), writer(postgres_url, 60, "b")]
        seen = [calls(scrape(url))]
        while any(w.poll() is None for w in writers):
            seen.append(calls(scrape(url)))
            time.sleep(0.05)
        finish(writers)
        m = scrape(url)
        assert seen == sorted(seen)
        assert calls(m) == 120
        exact = ledger_summary(postgres_url)["totals"]
        got = totals_of(m)
        assert got["cost"] == pytest.approx(float(exact["cost"]), rel=1e-12)
        assert got["input"] == exact["input_tokens"] == 120_000
        assert got["output"] == exact["output_tokens"] == 1_200
        users = {lb["user_id"] for lb, _ in m["llmledger_cost_usd_total"]}
        assert len(users) == 6 and "other" in users
        # New rows later are picked up by the next scrape, and only they are read.
        finish([writer(postgres_url, 5, "c")])
        m2 = scrape(url)
        assert calls(m2) == 125
        assert totals_of(m2)["input"] == 125_000
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    # A restarted exporter reads the whole ledger again: the same totals.
    proc, url = exporter(postgres_url)
    try:
        m3 = scrape(url)
        assert totals_of(m3) == totals_of(m2)
        exact = ledger_summary(postgres_url)["totals"]
        assert exact["successful_requests"] == 125
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_without_a_ledger_or_the_environment_says_what_to_give(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LLMLEDGER_LEDGER"}
    r = subprocess.run(
        [sys.executable, "-m", "llmledger", "metrics", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert "needs a ledger" in r.stderr and "LLMLEDGER_LEDGER" in r.stderr


def test_budget_gauges_from_the_ledger(tmp_path: Path) -> None:
    """`--budget` limits are served as gauges whose spend is the ledger's exact cost in the
    current window; an unpriced call spends nothing known."""
    path = tmp_path / "costs.db"
    finish([writer(path, 7, "a")])
    proc, url = exporter(path, "--budget", "10/day", "--budget", "0.001/rolling:15m")
    try:
        m = scrape(url)
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    exact = Decimal(ledger_summary(path)["totals"]["cost"])
    assert exact > 0

    def gauge(name: str, budget: str) -> float | None:
        vals = [v for lb, v in m.get(name, []) if lb["budget"] == budget]
        assert len(vals) <= 1
        return vals[0] if vals else None

    for b in ("10/day", "0.001/rolling:15m"):
        labels = [lb for lb, _ in m["llmledger_budget_spent_usd"] if lb["budget"] == b]
        assert labels == [{"budget": b, "scope": "global", "value": ""}]
        assert gauge("llmledger_budget_spent_usd", b) == float(exact)
        assert gauge("llmledger_budget_reserved_usd", b) == 0
    assert gauge("llmledger_budget_limit_usd", "10/day") == 10
    assert gauge("llmledger_budget_remaining_usd", "10/day") == float(Decimal(10) - exact)
    # 7 calls of gpt-4o-mini cost more than $0.001: nothing remains, never below zero.
    assert exact > Decimal("0.001")
    assert gauge("llmledger_budget_remaining_usd", "0.001/rolling:15m") == 0
    # The day's window ends at the next UTC midnight; the rolling one 15 minutes after the
    # minute of its oldest spend.
    now = datetime.datetime.now(datetime.UTC)
    midnight = datetime.datetime.combine(
        now.date() + datetime.timedelta(days=1), datetime.time(), datetime.UTC
    )
    day_end = gauge("llmledger_budget_window_end_timestamp_seconds", "10/day")
    # (now is read after the scrape: just past midnight, the scrape saw the day before)
    assert day_end in (midnight.timestamp(), midnight.timestamp() - 86400)
    roll_end = gauge("llmledger_budget_window_end_timestamp_seconds", "0.001/rolling:15m")
    assert roll_end is not None
    assert now.timestamp() + 13 * 60 <= roll_end <= now.timestamp() + 16 * 60


def test_a_bad_budget_is_refused_before_serving(tmp_path: Path) -> None:
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "llmledger",
            "metrics",
            str(tmp_path / "c.db"),
            "--port",
            "0",
            "--budget",
            "ten/day",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert "budget 'ten/day'" in r.stderr
    from llmledger import _core

    with pytest.raises(ValueError, match="give ledger= too"):
        _core.Metrics(budgets=["10/day"])


def test_postgresql_password_is_never_printed(postgres_url: str) -> None:
    # Trust authentication ignores the password, so the exporter connects with it.
    with_password = postgres_url.replace("postgres@", "postgres:s3cret-pw@", 1)
    assert "s3cret-pw" in with_password
    finish([writer(postgres_url, 2, "a")])
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmledger", "metrics", with_password, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        url = line.split("serving ", 1)[1].split()[0]
        assert calls(scrape(url)) == 2
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert "postgresql://postgres:***@" in line, line
    assert "s3cret-pw" not in line + out + err


def test_postgresql_down_the_scrape_answers_and_counts_on_once_it_is_back(
    cluster: Cluster,
) -> None:
    """The database the exporter follows crashes: scrapes go on answering with the figures read
    so far (the outage logged, the password-free URL named), and once it is back the exporter
    reads on from where it was: no row counted twice or missed."""
    proc, url = exporter(cluster.url)
    try:
        finish([writer(cluster.url, 20, "a")])
        assert calls(scrape(url)) == 20
        cluster.crash()
        assert calls(scrape(url)) == 20
        assert calls(scrape(url)) == 20
        cluster.start()
        finish([writer(cluster.url, 10, "b")])
        deadline = time.monotonic() + 30
        while calls(scrape(url)) != 30 and time.monotonic() < deadline:
            time.sleep(0.2)
        m = scrape(url)
        assert calls(m) == 30
        exact = ledger_summary(cluster.url)["totals"]
        assert totals_of(m)["input"] == exact["input_tokens"] == 30_000
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert cluster.url.split("@")[1] in err, err[-2000:]
