"""Exact totals under threads and asyncio."""

from __future__ import annotations

import asyncio
import threading

from llmledger import CostTracker, cost
from llmledger.testing import UsageFakeChatModel


def test_eight_threads_by_500_calls() -> None:
    llm = UsageFakeChatModel(
        model="gpt-4o", usage={"input_tokens": 13, "output_tokens": 7, "total_tokens": 20}
    )
    t = CostTracker()
    barrier = threading.Barrier(8)

    def worker(i: int) -> None:
        barrier.wait()
        for _ in range(500):
            llm.invoke("x", config={"callbacks": [t], "metadata": {"user_id": f"u{i}"}})

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert t.successful_requests == 4000
    assert t.total_tokens == 4000 * 20
    assert t.total_cost == cost("gpt-4o", input_tokens=13 * 4000, output_tokens=7 * 4000)
    rows = t.summary(by=["user_id"])
    assert len(rows) == 8 and all(r["calls"] == 500 for r in rows)
    assert t._core.open_runs == 0


def test_thousand_concurrent_ainvokes() -> None:
    llm = UsageFakeChatModel(
        model="claude-3-5-haiku-20241022",
        provider="anthropic",
        usage={"input_tokens": 101, "output_tokens": 11, "total_tokens": 112},
    )
    t = CostTracker()

    async def main() -> None:
        await asyncio.gather(*(llm.ainvoke("x", config={"callbacks": [t]}) for _ in range(1000)))

    asyncio.run(main())
    assert t.successful_requests == 1000
    assert t.total_cost == cost(
        "claude-3-5-haiku-20241022", input_tokens=101_000, output_tokens=11_000
    )
    assert t._core.open_runs == 0
