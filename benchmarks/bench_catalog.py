"""Catalog speed: first-load time and 100k lookups of mixed model ids, llmledger vs genai-prices.

    python benchmarks/bench_catalog.py        (after `make build-release`)

Prints side-by-side figures with ratios; it asserts nothing about time.

- load: in a fresh interpreter, `import llmledger` and the first lookup (which parses the
  bundled catalog, compiled into the extension), against `import genai_prices` and its first
  `calc_price` (which builds its bundled data).
- lookups: 100,000 `llmledger.cost(model, provider=..., input_tokens=..., output_tokens=...)`
  calls (name resolution and exact pricing) against `genai_prices.calc_price` for the same ids:
  exact ids, provider-prefixed, dated snapshots, Bedrock profiles, Vertex @ snapshots,
  fine-tunes, unknown names. Then 100,000 lookups over 8,000 distinct names, more than
  llmledger's 4,096-name resolution cache holds, so most resolve from scratch (hash lookups of
  the candidate names; never a scan of the catalog).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from decimal import Decimal

N = 100_000

# (model as reported, ls_provider / provider hint, genai-prices provider id)
MIXED = [
    ("gpt-4o", "openai", "openai"),
    ("gpt-4o-2024-08-06", "openai", "openai"),
    ("openai/gpt-4o-mini", None, "openai"),
    ("gpt-4.1-mini-2025-04-14", None, "openai"),
    ("o3", "openai", "openai"),
    ("ft:gpt-4o-mini-2024-07-18:acme::abc123", "openai", "openai"),
    ("claude-sonnet-4-5-20250929", "anthropic", "anthropic"),
    ("claude-3-5-haiku-20241022", "anthropic", "anthropic"),
    ("us.anthropic.claude-3-5-sonnet-20241022-v2:0", "amazon_bedrock", "aws"),
    ("amazon.nova-pro-v1:0", "amazon_bedrock", "aws"),
    ("claude-sonnet-4-5@20250929", "google_vertexai", "google"),
    ("gemini-2.5-pro", "google_genai", "google"),
    ("models/gemini-2.5-flash", "google_genai", "google"),
    ("llama-3.3-70b-versatile", "groq", "groq"),
    ("meta-llama/Llama-3.3-70B-Instruct-Turbo", "together", "together"),
    ("meta-llama/llama-3.1-8b-instruct", "openrouter", "openrouter"),
    ("mistral-large-latest", "mistralai", "mistral"),
    ("deepseek-chat", "deepseek", "deepseek"),
    ("grok-4", "xai", "x-ai"),
    ("gpt-4o-minix", "openai", "openai"),  # unknown
    ("no-such-model-7b", None, "openai"),  # unknown
]

LOAD_OURS = """
import time
t0 = time.perf_counter(); import llmledger; t1 = time.perf_counter()
llmledger.cost("gpt-4o", input_tokens=1000, output_tokens=100); t2 = time.perf_counter()
print((t1 - t0) * 1e3, (t2 - t1) * 1e3)
"""
LOAD_THEIRS = """
import time
t0 = time.perf_counter(); import genai_prices; t1 = time.perf_counter()
genai_prices.calc_price(genai_prices.Usage(input_tokens=1000, output_tokens=100), "gpt-4o",
                        provider_id="openai"); t2 = time.perf_counter()
print((t1 - t0) * 1e3, (t2 - t1) * 1e3)
"""


def fresh(code: str, runs: int = 5) -> tuple[float, float]:
    """Median (import ms, first lookup ms) over `runs` fresh interpreters."""
    rows = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        a, b = out.stdout.split()
        rows.append((float(a), float(b)))
    rows.sort(key=lambda r: r[1])
    imp = sorted(r[0] for r in rows)[runs // 2]
    return imp, rows[runs // 2][1]


def per_call(fn: Callable[[int], object], n: int = N) -> float:
    fn(0)  # warm
    t = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - t) / n * 1e9


def main() -> None:
    import genai_prices
    import llmledger

    print("Catalog load in a fresh interpreter (median of 5)")
    ours, theirs = fresh(LOAD_OURS), fresh(LOAD_THEIRS)
    entries = len(llmledger.catalog_entries())
    print(f"{'':28s} {'import ms':>10s} {'first lookup ms':>16s}")
    print(f"{'llmledger':28s} {ours[0]:10.1f} {ours[1]:16.2f}   ({entries} entries)")
    print(f"{'genai-prices':28s} {theirs[0]:10.1f} {theirs[1]:16.2f}")
    print(
        f"{'ratio (llmledger / genai)':28s} {ours[0] / theirs[0]:10.2f} {ours[1] / theirs[1]:16.2f}"
    )

    usage = genai_prices.Usage(input_tokens=1000, output_tokens=100)

    def ours_mixed(i: int) -> object:
        m, p, _ = MIXED[i % len(MIXED)]
        return llmledger.cost(m, input_tokens=1000, output_tokens=100, provider=p)

    def theirs_mixed(i: int) -> object:
        m, _, gp = MIXED[i % len(MIXED)]
        try:
            return genai_prices.calc_price(usage, m, provider_id=gp).total_price
        except LookupError:
            return None

    known = sum(ours_mixed(i) is not None for i in range(len(MIXED)))
    their_known = sum(theirs_mixed(i) is not None for i in range(len(MIXED)))
    print(
        f"\n{N:,} lookups + exact cost, {len(MIXED)} mixed ids "
        f"(llmledger knows {known}, genai-prices {their_known})"
    )
    a, b = per_call(ours_mixed), per_call(theirs_mixed)
    print(f"{'llmledger.cost':28s} {a:10.0f} ns/call  {1e9 / a:>12,.0f} /s  ratio {a / b:.3f}")
    print(f"{'genai_prices.calc_price':28s} {b:10.0f} ns/call  {1e9 / b:>12,.0f} /s  ratio 1.000")

    # 8,000 distinct names: every entry's id with a dated suffix, and unknown variants.
    names = [e["id"] for e in llmledger.catalog_entries()]
    distinct = [f"{n}-2031-0{k % 9 + 1}-1{k % 9}" for k, n in enumerate(names)]
    distinct += [f"unknown-{k}-model" for k in range(8000 - len(distinct))]
    distinct = distinct[:8000]
    fresh_ours = per_call(
        lambda i: llmledger.cost(distinct[i % len(distinct)], input_tokens=10, output_tokens=1)
    )
    print(
        f"\n{N:,} lookups over {len(distinct):,} distinct names (beyond the resolution cache)\n"
        f"{'llmledger.cost':28s} {fresh_ours:10.0f} ns/call  {1e9 / fresh_ours:>12,.0f} /s"
    )
    print(
        json.dumps(
            {
                "load_ms": {"llmledger": ours, "genai_prices": theirs},
                "mixed_ns": {"llmledger": a, "genai_prices": b},
                "distinct_ns": fresh_ours,
                "sample_cost": str(llmledger.cost("gpt-4o", input_tokens=1000) or Decimal(0)),
            }
        )
    )


if __name__ == "__main__":
    main()
