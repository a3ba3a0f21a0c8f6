"""Quick Redis numbers for the Redis issue (not a test, not the full benchmark).

Against one Redis server (standalone), prints:

- appends per second to one session, one writer awaiting each call, and 16
  concurrent writers;
- the median latency of ``get_latest_qa_entries(..., 10)`` at 100 and at
  10,000 entries;
- the floor: the same with bare redis-py (``RPUSH`` of the same JSON record,
  ``LRANGE -10 -1``), i.e. one client round trip and nothing else.

Usage: python bench/measure_redis.py [redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
import uuid

import redis.asyncio as redis

from sessionstore import open_store

ANSWER = "answer " * 20
APPENDS = 10_000
ROUNDS = 300


def median_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


async def timed(call, rounds: int = ROUNDS) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - start)
    return median_us(samples)


async def measure_store(url: str) -> dict[str, float]:
    prefix = "bench" + uuid.uuid4().hex[:8]
    async with open_store(f"{url}?prefix={prefix}") as store:
        for i in range(100):
            await store.create_qa_entry("small", "bench", f"question {i}", ANSWER)
        start = time.perf_counter()
        for i in range(APPENDS):
            await store.create_qa_entry("big", "bench", f"question {i}", ANSWER)
        serial = APPENDS / (time.perf_counter() - start)

        async def writer(w: int) -> None:
            for i in range(APPENDS // 16):
                await store.create_qa_entry("busy", "bench", f"question {w}:{i}", ANSWER)

        start = time.perf_counter()
        await asyncio.gather(*(writer(w) for w in range(16)))
        concurrent = (APPENDS // 16 * 16) / (time.perf_counter() - start)
        small, big = [], []
        for _ in range(5):  # interleaved, so machine noise hits both alike
            small.append(await timed(lambda: store.get_latest_qa_entries("small", "bench", 10)))
            big.append(await timed(lambda: store.get_latest_qa_entries("big", "bench", 10)))
        await store.prune()
    return {
        "appends/s, one writer": serial,
        "appends/s, 16 writers": concurrent,
        "latest-10 at 100 (us)": statistics.median(small),
        "latest-10 at 10,000 (us)": statistics.median(big),
    }


async def measure_floor(url: str) -> dict[str, float]:
    client = redis.Redis.from_url(url)
    key = "bench-floor:" + uuid.uuid4().hex
    record = json.dumps({"id": str(uuid.uuid4()), "question": "question 0", "answer": ANSWER})
    try:
        start = time.perf_counter()
        for _ in range(APPENDS):
            await client.rpush(key, record)
        serial = APPENDS / (time.perf_counter() - start)

        async def writer() -> None:
            for _ in range(APPENDS // 16):
                await client.rpush(key + ":busy", record)

        start = time.perf_counter()
        await asyncio.gather(*(writer() for _ in range(16)))
        concurrent = (APPENDS // 16 * 16) / (time.perf_counter() - start)
        latest = statistics.median(
            [await timed(lambda: client.lrange(key, -10, -1)) for _ in range(5)]
        )
    finally:
        await client.delete(key, key + ":busy")
        await client.aclose()
    return {
        "appends/s, one writer": serial,
        "appends/s, 16 writers": concurrent,
        "latest-10 at 10,000 (us)": latest,
    }


async def main(url: str) -> None:
    ours = await measure_store(url)
    floor = await measure_floor(url)
    print(f"{'':28}{'sessionstore':>14}{'bare redis-py':>15}")
    for name, value in ours.items():
        bare = floor.get(name)
        shown = "" if bare is None else f"{bare:,.0f}"
        print(f"{name:28}{value:>14,.0f}{shown:>15}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "redis://127.0.0.1:6379/0"))
