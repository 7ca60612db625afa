"""`llmledger watch` (under a real terminal: tmux) and `llmledger.live(tracker)`."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llmledger import CostTracker, _core
from llmledger.cli import main
from llmledger.testing import UsageFakeChatModel
from test_report_html import synthetic


def _expected(ledger: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["report", str(ledger), "--by", "", "--format", "json"]) == 0
    totals: dict[str, Any] = json.loads(capsys.readouterr().out)["totals"]
    return totals


def _cost_text(t: dict[str, Any]) -> str:
    return (">= " if t["unpriced_calls"] else "") + "$" + t["cost"]


def test_import_llmledger_does_not_load_rich() -> None:
    code = (
        "import sys, llmledger\n"
        "from llmledger import CostTracker\n"
        "CostTracker().report('model')\n"
        "assert 'rich' not in sys.modules, 'rich was imported'\n"
        "import llmledger.watch\n"
        "assert 'rich' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_piped_watch_prints_one_line_per_refresh(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = synthetic.write(tmp_path / "costs.jsonl", calls=300, days=1)
    t = _expected(ledger, capsys)
    assert main(["watch", str(ledger), "--refresh", "0.05", "--count", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert f"calls={t['calls']} (+{t['calls']})" in lines[0]
    assert f"cost={_cost_text(t)} " in lines[0]
    assert f"calls={t['calls']} (+0)" in lines[1]


def test_watch_rejects_a_bad_budget(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["watch", str(tmp_path / "x.db"), "--budget", "ten/day", "--count", "1"]) == 2
    assert "budget 'ten/day'" in capsys.readouterr().err


def _tmux() -> str:
    path = shutil.which("tmux")
    if not path:
        if os.environ.get("LLMLEDGER_REQUIRE_BROWSER") == "1":
            pytest.fail("terminal test required (LLMLEDGER_REQUIRE_BROWSER=1) but no tmux")
        pytest.skip("terminal test skipped: no tmux on PATH (apt-get install tmux)")
    return path


class Tmux:
    """A private tmux server (its own socket, so it runs with this test's environment)."""

    def __init__(self, tmux: str, name: str) -> None:
        self.base = [tmux, "-L", name]
        self.session = name

    def __call__(self, *args: str) -> str:
        r = subprocess.run([*self.base, *args], check=True, capture_output=True, text=True)
        return r.stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", self.session)

    def wait_for(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        end = time.monotonic() + timeout
        while True:
            screen = self.screen()
            m = re.search(pattern, screen)
            if m:
                return m
            if time.monotonic() > end:
                raise AssertionError(f"{pattern!r} not on screen:\n{screen}")
            time.sleep(0.1)


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    t = Tmux(_tmux(), f"llmledger-test-{os.getpid()}")
    yield t
    subprocess.run([*t.base, "kill-server"], capture_output=True)


def _refresh(screen_match: re.Match[str]) -> int:
    return int(screen_match.group(1))


def test_watch_in_a_terminal_follows_appends_and_quits_on_q(
    tmux: Tmux, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = synthetic.write(tmp_path / "costs.jsonl", calls=400, days=1)
    before = _expected(ledger, capsys)
    cmd = (
        f"{sys.executable} -m llmledger.cli watch {ledger} --by model,node --refresh 0.5 "
        f"--budget 100/day; echo EXITED $?; sleep 60"
    )
    tmux("new-session", "-d", "-s", tmux.session, "-x", "130", "-y", "50", cmd)
    tmux.wait_for(r"refresh \d+ ")
    assert max(len(line) for line in tmux.screen().splitlines()) == 130, "drawn to its width"
    tmux.wait_for(re.escape(f"Total cost  {_cost_text(before)}"))
    assert f"Calls  {before['calls']:,}" in tmux.screen()
    # Another process appends calls.
    more = "\n".join(synthetic.lines(25, 0.01, seed=99)) + "\n"
    code = f"open({str(ledger)!r}, 'a').write({more!r})"
    subprocess.run([sys.executable, "-c", code], check=True)
    appended_at = _refresh(tmux.wait_for(r"refresh (\d+) "))
    after = _expected(ledger, capsys)
    assert after["calls"] == before["calls"] + 25
    seen = tmux.wait_for(re.escape(f"Total cost  {_cost_text(after)}") + r"[\s\S]*refresh (\d+) ")
    assert _refresh(seen) <= appended_at + 2, "picked up within two refreshes"
    assert f"Calls  {after['calls']:,}" in tmux.screen()
    tmux("send-keys", "-t", tmux.session, "q")
    tmux.wait_for("EXITED 0")
    assert "Total cost" not in tmux.screen(), "the dashboard's screen is gone"


def test_live_shows_a_trackers_calls(capsys: pytest.CaptureFixture[str]) -> None:
    from llmledger import live

    tracker = CostTracker()
    llm = UsageFakeChatModel(model="gpt-4o-mini", responses=["one two three"] * 5)
    out = io.StringIO()
    with live(tracker, out=out, refresh=0.02, budgets=["1/day"]):
        for _ in range(5):
            llm.invoke("hello there", config={"callbacks": [tracker]})
    last = out.getvalue().splitlines()[-1]
    assert "calls=5 " in last
    assert f"cost=${tracker.total_cost} " in last


def test_tracker_follower_counts_each_call_once_past_max_records() -> None:
    tracker = CostTracker(max_records=3)
    llm = UsageFakeChatModel(model="gpt-4o-mini", responses=["a b"] * 10)
    f = _core.LedgerFollower.of_tracker(tracker._core)
    for _ in range(2):
        llm.invoke("x", config={"callbacks": [tracker]})
    assert f.poll() == 2
    for _ in range(2):
        llm.invoke("x", config={"callbacks": [tracker]})
    assert f.poll() == 2
    assert f.poll() == 0
    assert json.loads(f.view())["totals"]["cost"] == str(tracker.total_cost)


def _cny(usd: str) -> str:
    # The core's conversion, written out: USD times the rate, at least two decimals.
    from decimal import Decimal

    d = (Decimal(usd) * Decimal("7.12")).normalize()
    exp = d.as_tuple().exponent
    return "CNY " + (f"{d:.2f}" if isinstance(exp, int) and exp >= -2 else f"{d:f}")


def test_piped_watch_in_cny_names_the_rate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = synthetic.write(tmp_path / "costs.jsonl", calls=300, days=1)
    t = _expected(ledger, capsys)
    args = ["watch", str(ledger), "--refresh", "0.05", "--count", "1"]
    assert main([*args, "--currency", "cny", "--rate", "7.12"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert f"cost={_cost_text(t)} " in line, "USD as before"
    prefix = ">= " if t["unpriced_calls"] else ""
    assert f" cost_cny={prefix}{_cny(t['cost'])} (7.12 CNY per USD) " in line


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--currency", "CNY"], "currency and rate go together"),
        (["--currency", "CNY", "--rate", "-1"], "rate must be positive"),
    ],
)
def test_watch_refuses_a_bad_currency(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], says: str
) -> None:
    ledger = synthetic.write(tmp_path / "costs.jsonl", calls=10, days=1)
    assert main(["watch", str(ledger), "--count", "1", *extra]) == 2
    assert says in capsys.readouterr().err


def test_watch_in_a_terminal_in_cny(
    tmux: Tmux, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = synthetic.write(tmp_path / "costs.jsonl", calls=400, days=1)
    t = _expected(ledger, capsys)
    cmd = (
        f"{sys.executable} -m llmledger.cli watch {ledger} --refresh 0.5 "
        f"--currency CNY --rate 7.12; echo EXITED $?; sleep 60"
    )
    tmux("new-session", "-d", "-s", tmux.session, "-x", "130", "-y", "60", cmd)
    prefix = ">= " if t["unpriced_calls"] else ""
    tmux.wait_for(re.escape(f"Total cost  {_cost_text(t)}  {prefix}{_cny(t['cost'])}"))
    screen = tmux.screen()
    assert "Amounts in CNY at 7.12 CNY per USD (the rate given; the ledger is in USD)" in screen
    # The top tables and the feed carry a CNY column beside the USD one.
    assert re.search(r"calls\s+cost\s+CNY\s+share", screen), screen
    assert re.search(r"in/out\s+cost\s+CNY\s+usage", screen), screen
    tmux("send-keys", "-t", tmux.session, "q")
    tmux.wait_for("EXITED 0")


def test_live_in_cny() -> None:
    from llmledger import live

    tracker = CostTracker()
    llm = UsageFakeChatModel(model="gpt-4o-mini", responses=["one two three"] * 3)
    out = io.StringIO()
    with live(tracker, out=out, refresh=0.02, currency="CNY", rate="7.12"):
        for _ in range(3):
            llm.invoke("hello there", config={"callbacks": [tracker]})
    last = out.getvalue().splitlines()[-1]
    assert f" cost_cny={_cny(str(tracker.total_cost))} (7.12 CNY per USD) " in last


def test_root_runs_of_one_minute_get_distinct_names() -> None:
    # Regression: a root run was named by its run id's first 8 digits, which LangChain's
    # UUIDv7 run ids share within a minute (they begin with the time): five runs, one name.
    from llmledger.watch import Dashboard
    from rich.console import Console

    tracker = CostTracker()
    llm = UsageFakeChatModel(model="gpt-4o-mini", responses=["a b"] * 5)
    for _ in range(5):
        llm.invoke("x", config={"callbacks": [tracker]})
    f = _core.LedgerFollower.of_tracker(tracker._core)
    f.poll()
    roots = json.loads(f.view())["roots"]
    assert len(roots) == 5
    console = Console(width=100, record=True)
    console.print(Dashboard("t", 0.0).top_table("Top by root run", roots, 0, names=True))
    text = console.export_text()
    shown = {r["key"][-8:] for r in roots}
    assert len(shown) == 5 and all(k in text for k in shown), text
