"""`llmledger metrics LEDGER`: Prometheus /metrics over HTTP on 127.0.0.1, computed from a
ledger while other processes write it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

import pytest
from llmledger import ledger_summary
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


def writer(path: Path, n: int, user: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(WRITER), str(path), str(n), user],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def exporter(path: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmledger", "metrics", str(path), "--port", "0", *extra],
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
