"""Writes a synthetic JSONL ledger that looks like an agent app's: a few models, users and
graph nodes, root runs of several calls, prompt caching, a few failures and unpriced calls.
Costs are priced by llmledger's own core (`llmledger.cost`). Used by the screenshots script,
the benchmarks and the browser and dashboard tests.

    python scripts/synthetic_ledger.py costs.jsonl --calls 1000000 --days 30
"""

from __future__ import annotations

import argparse
import datetime
import json
import random
import uuid
from pathlib import Path

from llmledger import cost

MODELS = [
    # model, provider, weight, input range, output range
    ("gpt-4o-mini", "openai", 50, (400, 4000), (40, 600)),
    ("gpt-4o", "openai", 18, (800, 9000), (80, 900)),
    ("claude-sonnet-4-5", "anthropic", 14, (1500, 20000), (100, 1500)),
    ("o4-mini", "openai", 8, (500, 6000), (300, 4000)),
    ("claude-haiku-4-5", "anthropic", 10, (300, 3000), (30, 400)),
    # Not in the catalog: its calls are unpriced (cost unknown, never $0).
    ("acme-llm-2", "acme", 1, (300, 3000), (30, 400)),
]
USERS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"]
NODES = ["agent", "tools", "planner", "writer", "review/critic", "review/editor"]
GRAPHS = ["support_agent", "research_graph", "summarize"]


def _priced(model: str, inp: int, cached: int, out: int, reasoning: int) -> str | None:
    c = cost(
        model,
        input_tokens=inp,
        cache_read_tokens=cached,
        output_tokens=out,
        reasoning_tokens=reasoning,
    )
    return None if c is None else str(c)


def lines(calls: int, days: float, seed: int = 7, end: datetime.datetime | None = None):
    """Yields `calls` JSON lines spread over the `days` before `end` (default: now)."""
    rng = random.Random(seed)
    end = end or datetime.datetime.now(datetime.timezone.utc)
    start = end - datetime.timedelta(days=days)
    span = (end - start).total_seconds()
    weights = [m[2] for m in MODELS]
    # A few shapes per model, priced once each: a million calls need not price a million times.
    shapes: dict[str, list[tuple[int, int, int, int, str | None]]] = {}
    for model, _, _, (i0, i1), (o0, o1) in MODELS:
        shapes[model] = []
        for _ in range(64):
            inp, out = rng.randint(i0, i1), rng.randint(o0, o1)
            cached = rng.choice([0, 0, inp // 2, inp * 3 // 4])
            reasoning = out // 2 if model.startswith("o") else 0
            shapes[model].append(
                (inp, cached, out, reasoning, _priced(model, inp, cached, out, reasoning))
            )
    times = sorted(rng.random() for _ in range(calls))
    root = uuid.UUID(int=rng.getrandbits(128))
    graph, user, left = GRAPHS[0], USERS[0], 0
    for i, frac in enumerate(times):
        if left == 0:
            root = uuid.UUID(int=rng.getrandbits(128))
            graph, user, left = rng.choice(GRAPHS), rng.choice(USERS), rng.randint(1, 6)
        left -= 1
        model, provider = rng.choices([(m[0], m[1]) for m in MODELS], weights)[0]
        inp, cached, out, reasoning, c = rng.choice(shapes[model])
        failed = rng.random() < 0.01
        t = start + datetime.timedelta(seconds=frac * span)
        rec = {
            "time": t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "run_id": str(uuid.UUID(int=(root.int + i + 1) % (1 << 128))),
            "parent_run_id": str(root),
            "root_run_id": str(root),
            "root_run_name": graph,
            "model": model,
            "provider": provider,
            "attribution": {"user_id": user, "node": rng.choice(NODES)},
            "tags": [],
            "input_tokens": inp,
            "cache_read_tokens": cached,
            "output_tokens": 0 if failed else out,
            "reasoning_tokens": 0 if failed else reasoning,
            "usage_source": "provider",
            "cost": None if failed else c,
            "catalog_version": "synthetic",
            "latency_s": round(0.2 + rng.random() * 3, 3),
        }
        if failed:
            rec["error"] = "RateLimitError: 429"
            rec["input_tokens"] = rec["cache_read_tokens"] = 0
        yield json.dumps(rec)


def write(path: str | Path, calls: int, days: float = 2.0, seed: int = 7, end=None) -> Path:
    """Writes the ledger; returns its path."""
    path = Path(path)
    with open(path, "w", encoding="utf-8") as f:
        for line in lines(calls, days, seed, end):
            f.write(line)
            f.write("\n")
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("path")
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--days", type=float, default=2.0)
    p.add_argument("--seed", type=int, default=7)
    a = p.parse_args()
    write(a.path, a.calls, a.days, a.seed)
    print(f"{a.path}: {a.calls} calls over {a.days} days")


if __name__ == "__main__":
    main()
