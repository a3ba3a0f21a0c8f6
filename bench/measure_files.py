"""Measure the ``file://`` backend: appends per second, latest-10 at 100 vs 10,000 entries.

Run: ``.venv/bin/python bench/measure_files.py [--root DIR] [--durability flush|fsync]``.
Not a test: it prints numbers for ``docs/backends/files.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from sessionstore import SessionStore, open_store

QUESTION = "What did the quarterly report say about revenue in the northern region? " * 2
ANSWER = "Revenue in the northern region grew by twelve percent year over year. " * 7


async def fill(store: SessionStore, session_id: str, count: int) -> float:
    """Append ``count`` entries one after another; return appends per second."""
    start = time.perf_counter()
    for i in range(count):
        await store.create_qa_entry(session_id, "bench", f"{i} {QUESTION}", ANSWER)
    return count / (time.perf_counter() - start)


async def median_latest(store: SessionStore, session_id: str, calls: int = 300) -> float:
    """Return the median latency of ``get_latest_qa_entries(..., 10)`` in milliseconds."""
    timings = []
    for _ in range(calls):
        start = time.perf_counter()
        entries = await store.get_latest_qa_entries(session_id, "bench", 10)
        timings.append((time.perf_counter() - start) * 1000)
        assert len(entries) == 10
    return statistics.median(timings)


async def measure(root: Path, durability: str) -> None:
    async with open_store(f"file://{root}", durability=durability) as store:
        await store.prune()
        rate = await fill(store, "appends", 2000)
        concurrent_start = time.perf_counter()
        await asyncio.gather(*(fill(store, "appends-4", 500) for _ in range(4)))
        concurrent = 2000 / (time.perf_counter() - concurrent_start)
        await fill(store, "small", 100)
        await fill(store, "large", 10_000)
        small = await median_latest(store, "small")
        large = await median_latest(store, "large")
        size = (root / "u-bench" / "s-large" / "entries.jsonl").stat().st_size
        await store.prune()
    print(f"durability={durability}")
    print(f"appends/s, one session, one task:    {rate:8.0f}")
    print(f"appends/s, one session, four tasks:  {concurrent:8.0f}")
    print(f"latest-10 median at    100 entries:  {small:8.3f} ms")
    print(f"latest-10 median at 10,000 entries:  {large:8.3f} ms  (file {size / 1e6:.1f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, help="store directory (default: a temp dir)")
    parser.add_argument("--durability", default="flush", choices=["flush", "fsync"])
    args = parser.parse_args()
    if args.root is not None:
        asyncio.run(measure(args.root, args.durability))
        return
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(measure(Path(tmp) / "root", args.durability))


if __name__ == "__main__":
    main()
