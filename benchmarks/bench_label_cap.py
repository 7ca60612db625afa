"""How much spend each label-cap policy names, for a `user_id` label (docs/metrics.md).

A simulation, not a timing: `calls` calls spread over `users` users with Zipf-distributed
traffic (exponent `--zipf`), each call costing the same. Two arrival orders:
- `shuffled`: every user active from the start;
- `late-heavy`: the heaviest users first appear in the second half (a new big customer).

Policies, each with `top_n` named values per label plus `other`:
- `first-N`: what llmledger does (the first `top_n` values seen get a series);
- `promote`: a monotonic top-N: half the slots go to the first values seen, the other half
  are given, every `--check` calls, to the values a Space-Saving sketch (4 x top_n counters)
  ranks highest among those in `other`; a promoted value is counted in its own series from
  then on, its past stays in `other` (so no counter goes down);
- `oracle`: the true top `top_n` by total spend, known in advance (not realisable: its
  series would be re-labelled after the fact).

Prints, per order and policy, the share of all spend that lands in named series (not
`other`) and how many of the true top `top_n` users have a series.

    python benchmarks/bench_label_cap.py [--users 10000] [--calls 200000] [--top 20]
"""

from __future__ import annotations

import argparse
import random
from collections import Counter
from collections.abc import Iterable


def zipf_calls(users: int, calls: int, s: float, rng: random.Random) -> list[int]:
    weights = [1.0 / (k + 1) ** s for k in range(users)]
    return rng.choices(range(users), weights=weights, k=calls)


def late_heavy(seq: list[int], top: int) -> list[int]:
    """The `top` heaviest users' calls all moved into the second half, order kept."""
    heavy = [u for u in seq if u < top]
    light = [u for u in seq if u >= top]
    half = len(light) // 2
    out = light[:half]
    rest = light[half:]
    # Interleave the heavy calls evenly with the second half of the light ones.
    step = max(1, len(rest) // max(1, len(heavy)))
    j = 0
    for i, u in enumerate(rest):
        out.append(u)
        if i % step == 0 and j < len(heavy):
            out.append(heavy[j])
            j += 1
    out.extend(heavy[j:])
    return out


def first_n(seq: Iterable[int], top: int) -> tuple[int, set[int]]:
    named: set[int] = set()
    in_named = 0
    for u in seq:
        if u not in named and len(named) < top:
            named.add(u)
        in_named += u in named
    return in_named, named


class SpaceSaving:
    """Metwally et al.'s heavy-hitter sketch: `k` counters, over-estimates by at most the
    smallest counter."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.counts: dict[int, int] = {}

    def add(self, u: int) -> None:
        if u in self.counts or len(self.counts) < self.k:
            self.counts[u] = self.counts.get(u, 0) + 1
            return
        victim = min(self.counts, key=self.counts.__getitem__)
        self.counts[u] = self.counts.pop(victim) + 1

    def top(self, n: int) -> list[int]:
        return sorted(self.counts, key=lambda u: -self.counts[u])[:n]


def promote(seq: Iterable[int], top: int, check: int) -> tuple[int, set[int]]:
    first_slots = top // 2
    named: set[int] = set()
    sketch = SpaceSaving(4 * top)
    in_named = 0
    for i, u in enumerate(seq):
        if u not in named and len(named) < first_slots:
            named.add(u)
        if u in named:
            in_named += 1
        else:
            sketch.add(u)
        if i % check == check - 1 and len(named) < top:
            for cand in sketch.top(top - len(named)):
                named.add(cand)
                sketch.counts.pop(cand, None)
    return in_named, named


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--calls", type=int, default=200_000)
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("--zipf", type=float, default=1.1)
    ap.add_argument("--check", type=int, default=1_000)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    base = zipf_calls(a.users, a.calls, a.zipf, rng)
    true_top = {u for u, _ in Counter(base).most_common(a.top)}
    oracle_share = sum(n for u, n in Counter(base).items() if u in true_top)
    print(
        f"{a.users} users, {a.calls} calls, zipf {a.zipf}, top_n {a.top}: share of spend in "
        "named series / true top users named"
    )
    for order, seq in (("shuffled", base), ("late-heavy", late_heavy(base, a.top))):
        for name, (n, named) in (
            ("first-N", first_n(seq, a.top)),
            ("promote", promote(seq, a.top, a.check)),
        ):
            print(
                f"  {order:<10} {name:<8} {100 * n / len(seq):5.1f}%  "
                f"{len(named & true_top):2d}/{a.top}"
            )
        print(f"  {order:<10} {'oracle':<8} {100 * oracle_share / len(seq):5.1f}%  {a.top}/{a.top}")


if __name__ == "__main__":
    main()
