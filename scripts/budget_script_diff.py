#!/usr/bin/env python3
"""Checks a change to the Redis budget script (src/budget/redis/budgets.lua) against an
earlier version of it: both run the same random operations (reserve, settle, release, grow,
state, seed, and batches of settlements and a reservation in one run, which the reference
runs one by one; calendar, rolling and lifetime windows; refusals, thresholds, windows to seed,
wrong clocks, expired leases) on a fake clock, each under its own key prefix, and after every
operation their replies and everything they keep in Redis must agree.

What may differ, by design, is left out of the comparison: the `x` field (when a rolling
window's expiry was last pushed), the fields a done marker keeps emptied, and the order of a
`state` reply. Expired leases are reclaimed on both sides before and after each operation
(the script gives them back inside reserve, grow and state, not in every operation).

Needs a Redis to write to (its own database or server: it writes keys under `{bdiff...}`) and
git, for the reference version:

    python scripts/budget_script_diff.py --redis redis://127.0.0.1:6379/0 --ref a5fbbda --seeds 20
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = "src/budget/redis/budgets.lua"
DAY = 86_400_000
CLOCK = "return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)"


def fake_clock(src: str) -> str:
    """The script with Redis's TIME replaced by a clock the test sets (a key)."""
    old = "local t = redis.call('TIME')\n  " + CLOCK
    if old not in src:
        sys.exit("the script's clock is not where this checker expects it (now_ms)")
    return src.replace(old, "return tonumber(redis.call('GET', KEYS[1] .. ':clock'))")


class Side:
    def __init__(self, r: redis.Redis, src: str, prefix: str) -> None:
        self.r, self.sha, self.prefix = r, r.script_load(fake_clock(src)), prefix

    def keys(self) -> list[str]:
        pattern = self.prefix.replace("{", "\\{").replace("}", "\\}") + "*"
        return list(self.r.scan_iter(match=pattern, count=1000))

    def clear(self) -> None:
        for k in self.keys():
            self.r.delete(k)

    def snapshot(self) -> dict[str, Any]:
        snap: dict[str, Any] = {}
        for k in self.keys():
            if k.endswith(":clock"):
                continue
            name, kind = k[len(self.prefix) :], self.r.type(k)
            if kind == "hash":
                h = self.r.hgetall(k)
                h.pop("x", None)
                v: Any = [("st", "d")] if h.get("st") == "d" else sorted(h.items())
            elif kind == "zset":
                v = self.r.zrange(k, 0, -1, withscores=True)
            elif kind == "set":
                v = sorted(self.r.smembers(k))
            else:
                v = self.r.get(k)
            # A calendar window's keys expire at its end (exactly); others only "have a TTL".
            if name.split(":")[1:2] == ["day"]:
                ttl: Any = self.r.execute_command("PEXPIRETIME", k)
            else:
                ttl = self.r.pttl(k) > 0
            snap[name] = (kind, repr(v).replace(self.prefix, "@"), ttl)
        return snap


def run(r: redis.Redis, old: str, new: str, seed: int, steps: int) -> bool:
    rnd = random.Random(seed)
    sides = [Side(r, old, f"{{bdiffA{seed}}}:"), Side(r, new, f"{{bdiffB{seed}}}:")]
    for s in sides:
        s.clear()
    now = 1_800_000_000_000 + rnd.randrange(DAY)
    day0 = now - now % DAY
    seeding = rnd.choice(["0", "0", "1"])
    budgets = [("day", "c", day0, day0 + DAY), ("roll", "r", 6000, 1000), ("life", "l", 0, 0)]
    limits = {b[0]: rnd.choice([5000, 20000, 10**6, 10**15]) for b in budgets}
    blocks = {b[0]: rnd.choice([0, 1, 1, 2]) for b in budgets}
    thresholds = {
        b[0]: ",".join(str(x) for x in sorted(rnd.sample(range(1000, 30000), rnd.randrange(3))))
        for b in budgets
    }
    held: dict[str, list[Any]] = {}
    runs = 0
    rec = now

    def spec(p: str, parts: list[Any]) -> tuple[list[str], list[Any]]:
        keys: list[str] = []
        argv: list[Any] = []
        for (name, kind, a, b), value in parts:
            window = "w0" if kind == "c" else name
            argv += [kind, a, b, limits[name], blocks[name], thresholds[name]]
            keys += [
                f"{p}w:{name}:{window}:={value}",
                f"{p}m:{name}:{window}",
                f"{p}v:{name}:{window}",
            ]
        return keys, argv

    def send(side: Side, op: str, keys: list[str], argv: list[Any]) -> Any:
        p = side.prefix
        r.set(p + "leases:clock", now)
        try:
            out = r.evalsha(side.sha, len(keys), *keys, *argv)
        except redis.ResponseError as e:
            out = "ERR " + str(e).split("script:")[0]
        if op == "state" and isinstance(out, list):
            out = [out[0], *sorted(out[i : i + 4] for i in range(1, len(out), 4))]
        return repr(out).replace(p, "@")

    def call(
        side: Side,
        op: str,
        run_id: str,
        amount: str,
        parts: list[Any],
        at: str = "",
        more_keys: tuple[str, ...] = (),
        more_args: tuple[Any, ...] = (),
    ) -> Any:
        p = side.prefix
        keys = [p + "leases", p + "r:" + run_id]
        argv: list[Any] = [op, p, run_id, amount, 4000, 9000, seeding, len(parts), at, rec, 10**9]
        k, a = spec(p, parts)
        keys += k + [k.replace("@", p) for k in more_keys]
        return send(side, op, keys, argv + a + list(more_args))

    def batch(side: Side, ops: list[tuple[Any, ...]], whole: bool) -> Any:
        """The operations (settle, reserve) one after another, or (whole) as one batch run."""
        if not whole:
            return repr([eval(call(side, *o)) for o in ops])  # noqa: S307 (our own reprs)
        p = side.prefix
        keys = [p + "leases"]
        argv: list[Any] = ["batch", p, 4000, 9000, seeding, 10**9, len(ops)]
        specs: list[Any] = []
        for op, run_id, amount, parts, *at in ops:
            k, a = spec(p, parts)
            keys += [p + "r:" + run_id, *k]
            specs += [op, run_id, amount, len(parts), at[0] if at else "", rec, *a]
        return send(side, "batch", keys, argv + specs)

    def reclaim(side: Side) -> None:
        call(side, "grow", "no-such-run", "1", [])

    for step in range(steps):
        now += rnd.choice([0, 0, 50, 300, 700, 1500, 4000])
        rec = now - rnd.choice([0, 100, 3000])
        op = rnd.choice(
            [
                "reserve",
                "reserve",
                "settle",
                "settle",
                "release",
                "grow",
                "state",
                "seed",
                "resettle",
                "batch",
                "batch",
            ]
        )
        value = rnd.choice(["u1", "u2"])
        parts = [
            (b, value if b[0] != "day" or rnd.random() < 0.7 else "-")
            for b in rnd.sample(budgets, rnd.randrange(1, 4))
        ]
        if op == "reserve":
            runs += 1
            run_id = f"run{runs}"
            held[run_id] = parts
            amount = str(rnd.choice([1000, 3000, 7000, 10**13 + 5]))
            if rnd.random() < 0.05:  # a calendar window that is not the clock's: 'clock'
                parts = [(("day", "c", day0 - DAY, day0), "-")]
            args: tuple[Any, ...] = ("reserve", run_id, amount, parts)
        elif op in ("settle", "release", "grow", "resettle"):
            if not held:
                continue
            run_id = rnd.choice(sorted(held))
            ps = held[run_id] if rnd.random() < 0.8 else parts
            if op == "grow":
                args = ("grow", run_id, str(rnd.choice([500, 5000])), ps)
            elif op == "release":
                args = ("settle", run_id, "", ps)
                held.pop(run_id)
            else:
                at = "" if rnd.random() < 0.7 else str(now - rnd.choice([0, 2000, 9000]))
                args = ("settle", run_id, str(rnd.choice([0, 1000, 2500, 9000])), ps, at)
                if op == "settle":
                    held.pop(run_id)
        elif op == "batch":
            # A process's queued settlements (and releases, and settlements again) and, most
            # often, its next reservation: in one run on the changed side, one by one on the
            # reference side.
            ops: list[tuple[Any, ...]] = []
            for run_id in rnd.sample(sorted(held), min(len(held), rnd.randrange(4))):
                ps = held[run_id] if rnd.random() < 0.8 else parts
                kind = rnd.random()
                at = "" if rnd.random() < 0.7 else str(now - rnd.choice([0, 2000, 9000]))
                if kind < 0.2:
                    ops.append(("settle", run_id, "", ps))
                else:
                    ops.append(("settle", run_id, str(rnd.choice([0, 1000, 2500, 9000])), ps, at))
                if kind < 0.9:
                    held.pop(run_id)
            if rnd.random() < 0.8 or not ops:
                runs += 1
                run_id = f"run{runs}"
                held[run_id] = parts
                ops.append(("reserve", run_id, str(rnd.choice([1000, 3000, 7000])), parts))
            args = ("batch", ops)
        elif op == "state":
            b = rnd.choice(budgets)
            window = "w0" if b[1] == "c" else b[0]
            args = ("state", "-", "", [], "", (f"@v:{b[0]}:{window}",), (b[1], b[2], b[3]))
        else:
            b = rnd.choice(budgets[:2])
            window = "w0" if b[1] == "c" else b[0]
            spend = "3000" if b[1] == "c" else f"{now // 1000 - 2}:1500,{now // 1000 - 1}:700"
            args = (
                "seed",
                "-",
                "",
                [],
                "",
                (f"@m:{b[0]}:{window}", f"@v:{b[0]}:{window}", f"@w:{b[0]}:{window}:=u1"),
                (b[1], b[2], b[3], thresholds[b[0]], now, spend),
            )
        outs = []
        for j, side in enumerate(sides):
            reclaim(side)
            if args[0] == "batch":
                outs.append(batch(side, args[1], whole=j == 1))
            else:
                outs.append(call(side, *args))
            reclaim(side)
        snaps = [s.snapshot() for s in sides]
        if outs[0] != outs[1] or snaps[0] != snaps[1]:
            print(
                f"seed {seed} step {step}: {args}\n  reference: {outs[0]}\n  changed:   {outs[1]}"
            )
            for k in sorted(set(snaps[0]) | set(snaps[1])):
                if snaps[0].get(k) != snaps[1].get(k):
                    print(
                        f"  {k}\n    reference {snaps[0].get(k)}\n    changed   {snaps[1].get(k)}"
                    )
            break
    else:
        step = steps
    for s in sides:
        s.clear()
    return step == steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--ref", default="HEAD", help="git revision of the reference script")
    ap.add_argument("--new", default=str(ROOT / SCRIPT), help="the changed script (a file)")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--steps", type=int, default=300)
    a = ap.parse_args()
    old = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{a.ref}:{SCRIPT}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    new = Path(a.new).read_text()
    r = redis.Redis.from_url(a.redis, decode_responses=True)
    failed = [s for s in range(a.seeds) if not run(r, old, new, s, a.steps)]
    print(f"{a.seeds} seeds x {a.steps} operations: {len(failed)} disagreed {failed or ''}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
