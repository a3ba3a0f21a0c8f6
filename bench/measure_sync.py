"""What the blocking facade costs on create_qa_entry (not a test, not the full benchmark).

Times N creates to one session through the async store (awaited one after
another) and through ``sessionstore.sync`` (called one after another from
this thread), on memory (the facade's own cost, with almost no storage),
SQLite and Redis. Rounds alternate between the two so machine noise hits both
alike; it prints the median and the best round's time per create, and the
difference. The best round is the least disturbed by other work on the machine.

Usage: python bench/measure_sync.py [N] [ROUNDS]   (default 2,000 creates per round, 7 rounds)
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sessionstore import open_store, sync

ANSWER = "answer " * 20


async def time_async(url: str, n: int) -> float:
    async with open_store(url) as store:
        for i in range(50):  # warm up: connect, create the schema, fill caches
            await store.create_qa_entry("warm", "bench", f"q{i}", ANSWER)
        start = time.perf_counter()
        for i in range(n):
            await store.create_qa_entry("async", "bench", f"question {i}", ANSWER)
        elapsed = time.perf_counter() - start
        await store.prune()
    return elapsed / n


def time_sync(url: str, n: int) -> float:
    with sync.open_store(url) as store:
        for i in range(50):
            store.create_qa_entry("warm", "bench", f"q{i}", ANSWER)
        start = time.perf_counter()
        for i in range(n):
            store.create_qa_entry("sync", "bench", f"question {i}", ANSWER)
        elapsed = time.perf_counter() - start
        store.prune()
    return elapsed / n


def measure(name: str, url: str, n: int, rounds: int) -> None:
    async_times, sync_times = [], []
    for _ in range(rounds):
        async_times.append(asyncio.run(time_async(url, n)) * 1e6)
        sync_times.append(time_sync(url, n) * 1e6)
    for label, pick in (("median", statistics.median), ("best", min)):
        a, s = pick(async_times), pick(sync_times)
        print(
            f"{name:<7} {label:<7} async {a:7.1f} us   sync {s:7.1f} us"
            f"   facade +{s - a:6.1f} us ({s / a - 1:+.0%})"
        )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    print(f"time per create_qa_entry, {n:,} creates per round, {rounds} rounds")
    measure("memory", "memory://", n, rounds)
    with tempfile.TemporaryDirectory() as tmp:
        measure("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}", n, rounds)
    redis = os.environ.get("SESSIONSTORE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    measure("redis", f"{redis}?prefix=bench-sync-{uuid.uuid4().hex[:8]}", n, rounds)


if __name__ == "__main__":
    main()
