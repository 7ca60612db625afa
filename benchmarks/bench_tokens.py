"""Token-counting throughput: llmledger vs Python tiktoken, on the same inputs.

Both sides use OpenAI's published vocabularies: llmledger's are compiled in; Python
tiktoken's Encoding is built from the same .tiktoken files (tests/tiktoken_local.py, no
download). Python tiktoken is timed with `encode_ordinary` (what counting with it costs:
it returns the token list, whose length is the count); llmledger with `count_tokens`.

Figures, side by side with ratios (llmledger / tiktoken throughput; > 1 is faster):
- warm throughput (MB/s, tokens/s), one thread, then two threads sharing the work;
- batch APIs (`count_tokens_batch` vs `encode_ordinary_batch`), both on every core;
- cold start, each in a fresh process: `import llmledger` alone, and import plus the first
  count (which loads the vocabulary), vs building tiktoken's Encoding plus its first encode.

Run: python benchmarks/bench_tokens.py [--encoding o200k_base] [--repeat 5]
Build the extension with `maturin develop --release` first.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import llmledger  # noqa: E402
from tiktoken_local import local_encoding  # noqa: E402

PARAGRAPHS = [
    "The ledger records every call: the model, the provider, the tokens of each kind and "
    "the exact cost, attributed to the user, the session and the feature that made it. ",
    "def price(usage, entry):\n    total = Decimal(0)\n    for kind, n in usage.items():\n"
    "        total += entry[kind] * n / 1_000_000\n    return total\n\n",
    "机器学习模型的价格经常变化，账本需要精确地记录每一次调用的费用和令牌数量。",
    "東京の天気は晴れ、気温は二十一度です。トークンの数を正確に数えることが大切です。",
    '{"role": "user", "content": "Summarise the quarterly report", "n": 1, "temperature": 0.2}\n',
    "Emoji and symbols: 🚀🔥👍🏽 — “quotes”, ellipsis…, 12.5% of $1,234.56 ≈ €1,140. ",
]


def corpus(n_texts: int, text_bytes: int) -> list[str]:
    texts = []
    for i in range(n_texts):
        parts: list[str] = []
        size = 0
        j = i
        while size < text_bytes:
            p = PARAGRAPHS[j % len(PARAGRAPHS)] + f"[{i}.{j}] "
            parts.append(p)
            size += len(p.encode())
            j += 1
        texts.append("".join(parts))
    return texts


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def threaded(
    n_threads: int, texts: list[str], count: Callable[[str], object]
) -> Callable[[], None]:
    shards = [texts[i::n_threads] for i in range(n_threads)]

    def run() -> None:
        def work(shard: list[str]) -> None:
            for t in shard:
                count(t)

        threads = [threading.Thread(target=work, args=(s,)) for s in shards]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    return run


def cold(code: str, repeat: int) -> float:
    out = []
    for _ in range(repeat):
        r = subprocess.run(
            [sys.executable, "-c", code],
            check=True,
            capture_output=True,
            text=True,
            cwd=HERE.parent,
        )
        out.append(float(r.stdout))
    return statistics.median(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--encoding", default="o200k_base")
    ap.add_argument("--texts", type=int, default=256)
    ap.add_argument("--text-bytes", type=int, default=4096)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    enc_name = args.encoding
    enc = local_encoding(enc_name)
    texts = corpus(args.texts, args.text_bytes)
    mb = sum(len(t.encode()) for t in texts) / 1e6
    tokens = sum(len(enc.encode_ordinary(t)) for t in texts)
    assert tokens == sum(llmledger.count_tokens_batch(texts, encoding=enc_name)), "counts differ"

    def ours(t: str) -> int:
        return llmledger.count_tokens(t, encoding=enc_name)

    def theirs(t: str) -> int:
        return len(enc.encode_ordinary(t))

    print(
        f"Token counting, {enc_name}: {len(texts)} texts of ~{args.text_bytes} bytes "
        f"({mb:.2f} MB, {tokens} tokens); best of {args.repeat}\n"
    )
    print(f"{'case':<34}{'llmledger':>16}{'tiktoken':>16}{'ratio':>8}")
    rows = []
    for n in (1, 2):
        a = best_of(args.repeat, threaded(n, texts, ours))
        b = best_of(args.repeat, threaded(n, texts, theirs))
        rows.append((n, a, b))
        print(f"{f'warm, {n} thread(s), MB/s':<34}{mb / a:>16.2f}{mb / b:>16.2f}{b / a:>8.2f}")
        print(
            f"{f'warm, {n} thread(s), Mtokens/s':<34}{tokens / a / 1e6:>16.2f}"
            f"{tokens / b / 1e6:>16.2f}{b / a:>8.2f}"
        )
    (_, a1, b1), (_, a2, b2) = rows
    print(f"{'2-thread speed-up over 1':<34}{a1 / a2:>16.2f}{b1 / b2:>16.2f}")
    a = best_of(args.repeat, lambda: llmledger.count_tokens_batch(texts, encoding=enc_name))
    b = best_of(args.repeat, lambda: enc.encode_ordinary_batch(texts, num_threads=2))
    print(f"{'batch API, MB/s':<34}{mb / a:>16.2f}{mb / b:>16.2f}{b / a:>8.2f}")

    first_count = (
        "import time; t=time.perf_counter(); import llmledger; "
        f"llmledger.count_tokens('hello world', encoding='{enc_name}'); "
        "print(time.perf_counter()-t)"
    )
    import_only = (
        "import time; t=time.perf_counter(); import llmledger; print(time.perf_counter()-t)"
    )
    tiktoken_first = (
        "import sys, time; sys.path.insert(0, 'tests'); "
        "from tiktoken_local import assets_dir; assets_dir(); "
        "t=time.perf_counter(); from tiktoken_local import local_encoding; "
        f"local_encoding('{enc_name}').encode_ordinary('hello world'); "
        "print(time.perf_counter()-t)"
    )
    imp = cold(import_only, args.repeat)
    ours_cold = cold(first_count, args.repeat)
    theirs_cold = cold(tiktoken_first, args.repeat)
    print(
        f"\n{'cold, ms (fresh process, median)':<34}{'llmledger':>16}{'tiktoken':>16}{'ratio':>8}"
    )
    print(f"{'import llmledger':<34}{imp * 1e3:>16.1f}{'':>16}")
    print(
        f"{'import + first count (loads vocab)':<34}{ours_cold * 1e3:>16.1f}"
        f"{theirs_cold * 1e3:>16.1f}{theirs_cold / ours_cold:>8.2f}"
    )
    print("\nratio = tiktoken time / llmledger time (> 1: llmledger is faster).")
    print("Targets: warm 1-thread ratio >= 1; 2-thread speed-up near 2; import < 50 ms.")


if __name__ == "__main__":
    main()
