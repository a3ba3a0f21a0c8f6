"""Quick SQLite numbers for the core issue (not a test, not the full benchmark).

Prints appends per second to one session and the median latency of
latest-10 at 100 and at 10,000 entries. Usage: python bench/measure_sqlite.py
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from sessionstore import open_store


async def median_latest(store, session: str, rounds: int = 300) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        await store.get_latest_qa_entries(session, "bench", 10)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with open_store(f"sqlite:///{Path(tmp) / 'bench.db'}") as store:
            for i in range(100):
                await store.create_qa_entry("small", "bench", f"question {i}", "answer " * 20)
            start = time.perf_counter()
            for i in range(10_000):
                await store.create_qa_entry("big", "bench", f"question {i}", "answer " * 20)
            elapsed = time.perf_counter() - start
            # Interleave the two measurements so machine noise hits both alike.
            small, big = [], []
            for _ in range(5):
                small.append(await median_latest(store, "small"))
                big.append(await median_latest(store, "big"))
    print(f"appends/s (10,000 to one session): {10_000 / elapsed:,.0f}")
    print(f"latest-10 median at 100 entries:    {statistics.median(small):,.0f} us")
    print(f"latest-10 median at 10,000 entries: {statistics.median(big):,.0f} us")


if __name__ == "__main__":
    asyncio.run(main())
