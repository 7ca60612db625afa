"""The live terminal dashboard: `llmledger watch LEDGER` follows a ledger other processes
write, and `llmledger.live(tracker)` shows the calls of the running process. Drawn with
`rich` (the `llmledger[watch]` extra), which only this module imports.

Every figure is the core's (`_core.LedgerFollower`: exact decimal amounts as strings, rates
and shares rounded there); this module only lays them out.

Example:
    >>> import llmledger
    >>> with llmledger.live(tracker):  # doctest: +SKIP
    ...     graph.invoke(inputs, config={"callbacks": [tracker]})
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import IO, Any

from llmledger import _core

try:
    from rich.console import Console, Group, RenderableType
    from rich.live import Live
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text
except ImportError as e:  # pragma: no cover - exercised by users without the extra
    raise ImportError(
        "the dashboard needs rich: pip install 'llmledger[watch]' (or pip install rich)"
    ) from e

__all__ = ["live", "watch"]

View = dict[str, Any]


def _usd(s: str | None) -> str:
    return "unknown" if s is None else f"${s}"


def _cost(t: View) -> str:
    if t["unpriced"] and t["unpriced"] >= t["calls"]:
        return "unknown"
    return (">= " if t["unpriced"] else "") + _usd(t["cost"])


class Money:
    """Another currency at the user's rate (`--currency CNY --rate 7.12`): the core converts
    each frame's USD amounts (exact); this class only adds them to the view, as text
    (`cost_in` beside `cost`, ...), and holds the line naming the rate."""

    def __init__(self, currency: str, rate: Decimal | int | str) -> None:
        meta = _core.currency_view([], currency, rate)
        self.currency, self.rate = currency, rate
        self.code: str = meta["code"]
        self.label: str = meta["label"]

    def text(self, amount: Decimal | None) -> str:
        if amount is None:
            return "unknown"
        exp = amount.as_tuple().exponent
        digits = f"{amount:.2f}" if isinstance(exp, int) and exp >= -2 else f"{amount:f}"
        return f"{self.code} {digits}"

    def apply(self, v: View) -> View:
        """`v` with `cost_in` on its totals, top rows, root runs and latest calls, and
        `cost_per_hour_in` on its rates."""
        items: list[tuple[View, str]] = [(v["totals"], "cost"), (v["rates"], "cost_per_hour")]
        for d in v["by"]:
            items += [(r, "cost") for r in d["rows"]]
        items += [(r, "cost") for r in v["roots"]]
        items += [(c, "cost") for c in v["latest"]]
        amounts = _core.currency_view([i[k] for i, k in items], self.currency, self.rate)
        for (item, key), amount in zip(items, amounts["amounts"], strict=True):
            item[key + "_in"] = self.text(amount)
        return v


def _cost_in(t: View) -> str:
    if t["unpriced"] and t["unpriced"] >= t["calls"]:
        return "unknown"
    return (">= " if t["unpriced"] else "") + str(t["cost_in"])


def _ago(seconds: float) -> str:
    s = int(seconds)
    return (
        f"{s // 3600}h{s // 60 % 60:02d}m{s % 60:02d}s" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"
    )


def _short_time(iso: str | None) -> str:
    return "-" if not iso else iso[11:19]


def _bar(share: float, width: int) -> Text:
    n = max(0, min(width, round(share * width)))
    return Text("█" * n + "·" * (width - n), style="cyan")


def plain_line(v: View, new: int, money: Money | None = None) -> str:
    """The one-line summary printed per refresh when the output is not a terminal."""
    t, r = v["totals"], v["rates"]
    converted = (
        f"cost_{money.code.lower()}={_cost_in(t)} ({money.rate} {money.code} per USD) "
        if money
        else ""
    )
    return (
        f"{v['now']} calls={t['calls']} (+{new}) failed={t['failed']} "
        f"unpriced={t['unpriced']} cost={_cost(t)} {converted}tokens={t['total_tokens']} "
        f"rate=${r['cost_per_minute']}/min tokens_per_s={r['tokens_per_second']}"
    )


class Dashboard:
    """Renders views of a follower; `frame` counts the refreshes drawn."""

    def __init__(self, title: str, watched_since: float, money: Money | None = None) -> None:
        self.title = title
        self.started = watched_since
        self.frame = 0
        self.money = money

    def headline(self, v: View, width: int) -> Table:
        t, r = v["totals"], v["rates"]
        cells = self.headline_cells(t, r)
        per_row = 4 if width >= 160 else 3 if width >= 100 else 2
        g = Table.grid(padding=(0, 3))
        for _ in range(per_row):
            # Never cut: an exact amount folds onto a second line rather than lose digits.
            g.add_column(overflow="fold")
        for i in range(0, len(cells), per_row):
            g.add_row(*cells[i : i + per_row])
        return g

    def headline_cells(self, t: View, r: View) -> list[Text]:
        total = Text.assemble(("Total cost  ", "dim"), (_cost(t), "bold green"))
        if self.money:
            total.append_text(Text.assemble("  ", (_cost_in(t), "bold green")))
        return [
            total,
            Text.assemble(("Calls  ", "dim"), (f"{t['calls']:,}", "bold")),
            Text.assemble(("Failed  ", "dim"), (f"{t['failed']:,}", "red" if t["failed"] else "")),
            Text.assemble(
                ("Unpriced  ", "dim"), (f"{t['unpriced']:,}", "yellow" if t["unpriced"] else "")
            ),
            Text.assemble(("Avg / call  ", "dim"), _usd(t["avg_cost"]) if t["avg_cost"] else "-"),
            Text.assemble(
                ("Spend rate  ", "dim"),
                (f"${r['cost_per_minute']}/min", "bold"),
                f"  ${r['cost_per_hour']}/h",
                *([f"  {r['cost_per_hour_in']}/h"] if self.money else []),
            ),
            Text.assemble(("Tokens/s  ", "dim"), str(r["tokens_per_second"])),
            Text.assemble(("Watched  ", "dim"), _ago(time.monotonic() - self.started)),
            Text.assemble(("Tokens  ", "dim"), f"{t['total_tokens']:,}"),
            Text.assemble(("input  ", "dim"), f"{t['input_tokens']:,}"),
            Text.assemble(("cached  ", "dim"), f"{t['cache_read_tokens']:,}"),
            Text.assemble(
                ("output  ", "dim"),
                f"{t['output_tokens']:,}",
                ("  reasoning ", "dim"),
                f"{t['reasoning_tokens']:,}",
            ),
        ]

    def top_table(self, title: str, rows: list[View], bar: int, names: bool = False) -> Table:
        tb = Table(title=title, title_justify="left", expand=True, box=None, padding=(0, 1))
        tb.add_column(title.split(" by ")[-1], overflow="ellipsis", no_wrap=True, ratio=3)
        tb.add_column("calls", justify="right")
        tb.add_column("cost", justify="right", no_wrap=True)
        if self.money:
            tb.add_column(self.money.code, justify="right", no_wrap=True)
        tb.add_column("share", justify="right")
        if bar:
            tb.add_column("", no_wrap=True)
        for r in rows:
            key = r["key"] if r["key"] is not None else "-"
            if names:
                # The run id's last 8 digits: LangChain's run ids are UUIDv7, whose first 8
                # are the time and alike for every run in the same minute.
                key = f"{r.get('name') or ''} {key[-8:]}".strip()
            cells: list[Any] = [key, f"{r['calls']:,}", _cost(r)]
            if self.money:
                cells.append(_cost_in(r))
            cells.append(f"{100 * float(r['share']):.1f}%")
            if bar:
                cells.append(_bar(float(r["share"]), bar))
            tb.add_row(*cells)
        return tb

    def budgets(self, v: View, width: int) -> RenderableType | None:
        if not v["budgets"]:
            return None
        tb = Table(title="Budgets", title_justify="left", expand=True, box=None, padding=(0, 1))
        for col in ("budget", "spent", "limit", "", "runs out"):
            tb.add_column(
                col, justify="right" if col in ("spent", "limit") else "left", no_wrap=True
            )
        for b in v["budgets"]:
            used = float(b["used"])
            bar = _bar(min(used, 1.0), max(10, width // 5))
            bar.stylize("red" if used >= 1 else "yellow" if used >= 0.8 else "green")
            out = b["exhausts_at"]
            when = (
                "now" if used >= 1 else (_short_time(out) + " UTC" if out else "lasts the window")
            )
            tb.add_row(f"{b['name']}", _usd(b["spent"]), _usd(b["limit"]), bar, when)
        return tb

    def feed(self, v: View, width: int) -> Table:
        tb = Table(
            title="Latest calls", title_justify="left", expand=True, box=None, padding=(0, 1)
        )
        tb.add_column("time", no_wrap=True)
        tb.add_column("model", no_wrap=True, overflow="ellipsis")
        wide = width >= 110
        if wide:
            tb.add_column("attribution", overflow="ellipsis", no_wrap=True, ratio=2)
        tb.add_column("in/out", justify="right", no_wrap=True)
        tb.add_column("cost", justify="right", no_wrap=True)
        if self.money:
            tb.add_column(self.money.code, justify="right", no_wrap=True)
        tb.add_column("usage", no_wrap=True)
        for c in v["latest"][:8]:
            cells = [_short_time(c["time"]), c["model"] or "-"]
            if wide:
                cells.append(" ".join(f"{k}={val}" for k, val in c["attribution"].items()))
            cost = Text(_usd(c["cost"]), style="red" if c["failed"] else "")
            cells += [f"{c['input_tokens']:,}/{c['output_tokens']:,}", cost]
            if self.money:
                cells.append(str(c["cost_in"]))
            cells.append(c["usage_source"])
            tb.add_row(*cells)
        return tb

    def render(self, v: View, width: int) -> RenderableType:
        self.frame += 1
        if self.money:
            v = self.money.apply(v)
        # A currency column takes the bar's room unless the terminal is wide.
        bar = 12 if width >= (170 if self.money else 100) else 0
        tops = [self.top_table(f"Top by {d['name']}", d["rows"][:5], bar) for d in v["by"]]
        tops.append(self.top_table("Top by root run", v["roots"][:5], bar, names=True))
        if width >= 120:
            grid = Table.grid(expand=True, padding=(0, 2))
            for _ in range(2):
                grid.add_column(ratio=1)
            for i in range(0, len(tops), 2):
                grid.add_row(*tops[i : i + 2], *([""] if i + 1 >= len(tops) else []))
            body: list[RenderableType] = [grid]
        else:
            body = list(tops)
        parts: list[RenderableType] = [self.headline(v, width), Text(""), *body]
        budgets = self.budgets(v, width)
        if budgets is not None:
            parts += [Text(""), budgets]
        parts += [Text(""), self.feed(v, width)]
        if self.money:
            parts += [Text(""), Text(self.money.label, style="dim")]
        if v["alerts"]:
            alerts = Text("Alerts  ", style="bold yellow")
            for a in v["alerts"][:3]:
                pct = f"{100 * float(a['threshold']):.0f}%"
                alerts.append(
                    f"{_short_time(a['time'])} {a['budget']} crossed {pct} ({_usd(a['spent'])})   "
                )
            parts += [Text(""), alerts]
        subtitle = f"refresh {self.frame} · {_short_time(v['now'])} UTC · q to quit"
        return Panel(
            Group(*parts), title=f"llmledger · {self.title}", subtitle=subtitle, border_style="blue"
        )


def _fit(console: Console, out: IO[str]) -> None:
    # The terminal's real size, read each frame (it may be resized; COLUMNS may be stale).
    with contextlib.suppress(OSError, ValueError):
        console.size = os.get_terminal_size(out.fileno())


@contextlib.contextmanager
def _keys(stream: IO[str]) -> Iterator[bool]:
    """Puts a terminal in cbreak mode (keys arrive unbuffered, unechoed) and restores it."""
    try:
        import termios
        import tty

        fd = stream.fileno()
        old = termios.tcgetattr(fd)
    except (ImportError, OSError, ValueError, AttributeError):
        yield False
        return
    try:
        tty.setcbreak(fd)
        yield True
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)


def _wait_for_quit(stream: IO[str], seconds: float, keys: bool) -> bool:
    """Waits up to `seconds`; True when q (or Q) was pressed."""
    if not keys:
        time.sleep(seconds)
        return False
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        ready, _, _ = select.select([stream], [], [], left)
        if ready and os.read(stream.fileno(), 32).lower().find(b"q") >= 0:
            return True
    return False


def _view(follower: _core.LedgerFollower, money: Money | None) -> View:
    v: View = json.loads(follower.view())
    return money.apply(v) if money else v


def _plain(
    follower: _core.LedgerFollower,
    refresh: float,
    count: int | None,
    out: IO[str],
    money: Money | None = None,
) -> int:
    n = 0
    while count is None or n < count:
        new = follower.poll()
        print(plain_line(_view(follower, money), new, money), file=out, flush=True)
        n += 1
        if count is None or n < count:
            time.sleep(refresh)
    return 0


def watch(
    follower: _core.LedgerFollower,
    *,
    title: str,
    refresh: float = 1.0,
    count: int | None = None,
    out: IO[str] | None = None,
    currency: str | None = None,
    rate: Decimal | int | str | None = None,
) -> int:
    """Draws `follower`'s view every `refresh` seconds until q, Ctrl-C or `count` refreshes;
    without a terminal, prints one plain line per refresh instead. With `currency` and `rate`
    (units per USD, exact: `"7.12"`) costs are also shown in that currency, the rate named."""
    money = _money(currency, rate)
    out = out or sys.stdout
    if not out.isatty():
        try:
            return _plain(follower, refresh, count, out, money)
        except KeyboardInterrupt:
            return 0
    console = Console(file=out)
    board = Dashboard(title, time.monotonic(), money)
    stdin = sys.stdin
    try:
        with _keys(stdin) as keys, Live(console=console, screen=True, auto_refresh=False) as lv:
            n = 0
            while count is None or n < count:
                follower.poll()
                _fit(console, out)
                lv.update(board.render(json.loads(follower.view()), console.width), refresh=True)
                n += 1
                if _wait_for_quit(stdin, refresh, keys and stdin.isatty()):
                    break
    except KeyboardInterrupt:
        pass
    return 0


def _money(currency: str | None, rate: Decimal | int | str | None) -> Money | None:
    if currency is None and rate is None:
        return None
    if currency is None or rate is None:
        raise ValueError(
            'currency and rate go together: currency="CNY", rate="7.12" (units per USD)'
        )
    return Money(currency, rate)


@contextlib.contextmanager
def live(
    tracker: Any,
    *,
    by: Sequence[str] = ("model",),
    budgets: Sequence[str] = (),
    refresh: float = 1.0,
    out: IO[str] | None = None,
    currency: str | None = None,
    rate: Decimal | int | str | None = None,
) -> Iterator[None]:
    """Shows the dashboard for the calls `tracker` records while the block runs (redrawn every
    `refresh` seconds in place, below the program's own output; the last frame stays).
    Without a terminal, prints one plain line per refresh. `currency` and `rate` as for
    `watch`."""
    money = _money(currency, rate)
    core = getattr(tracker, "_core", tracker)
    follower = _core.LedgerFollower.of_tracker(core, by=list(by), budgets=list(budgets))
    out = out or sys.stdout
    stop = threading.Event()
    board = Dashboard("this process", time.monotonic(), money)
    if not out.isatty():

        def loop() -> None:
            while not stop.wait(refresh):
                new = follower.poll()
                print(plain_line(_view(follower, money), new, money), file=out, flush=True)
    else:
        console = Console(file=out)
        lv = Live(console=console, auto_refresh=False, transient=False)

        def loop() -> None:
            while True:
                follower.poll()
                _fit(console, out)
                lv.update(board.render(json.loads(follower.view()), console.width), refresh=True)
                if stop.wait(refresh):
                    return

    thread = threading.Thread(target=loop, name="llmledger-live", daemon=True)
    if out.isatty():
        lv.start()
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        new = follower.poll()
        v = json.loads(follower.view())
        if out.isatty():
            lv.update(board.render(v, console.width), refresh=True)
            lv.stop()
        else:
            print(plain_line(money.apply(v) if money else v, new, money), file=out, flush=True)
