"""Item log numbers for the SQLite and file backends (issue #14): not a test.

For each backend it prints the median latency of one turn appended with
``append_items`` (4 items, about 1 KB in all) next to one ``create_qa_entry``
of the same size, the same turn with a state delta (``append_turn(...,
state=...)``), and ``get_items(last_n=20)`` at 100 and at 50,000 items.

Usage: ``.venv/bin/python bench/measure_items.py [sqlite] [file]`` (both by default).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sessionstore import SessionStore, open_store

USER = "bench"
TEXT = "Revenue in the northern region grew by twelve percent year over year. "
TURN: list[Any] = [
    {"role": "user", "content": "What did the quarterly report say about revenue? " * 2},
    {
        "type": "function_call",
        "call_id": "call_1",
        "name": "search",
        "arguments": '{"q": "revenue"}',
    },
    {"type": "function_call_output", "call_id": "call_1", "output": TEXT * 3},
    {"role": "assistant", "content": [{"type": "output_text", "text": TEXT * 4}]},
]
QUESTION, ANSWER = TURN[0]["content"], TEXT * 7  # an entry of about the same size
URLS = {"sqlite": "sqlite:///{tmp}/items.db", "file": "file://{tmp}/items"}


async def median_us(call: Callable[[int], Awaitable[object]], rounds: int) -> float:
    """Return the median latency of ``call(i)`` over ``rounds`` calls, in microseconds."""
    samples = []
    for i in range(rounds):
        start = time.perf_counter()
        await call(i)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6


async def fill(store: SessionStore, session_id: str, count: int) -> None:
    """Append ``count`` items in calls of up to 1,000."""
    for start in range(0, count, 1000):
        await store.append_items(
            session_id,
            USER,
            [{"i": i, "text": TEXT} for i in range(start, min(count, start + 1000))],
        )


async def measure(name: str, url: str) -> None:
    async with open_store(url) as store:
        entry, turn, turn_state = [], [], []
        for _ in range(3):  # interleaved, so that machine noise hits all alike
            entry.append(
                await median_us(
                    lambda i: store.create_qa_entry("entries", USER, f"{i} {QUESTION}", ANSWER), 300
                )
            )
            turn.append(await median_us(lambda _: store.append_items("turns", USER, TURN), 300))
            turn_state.append(
                await median_us(
                    lambda i: store.append_turn("stateful", USER, TURN, state={"step": i}), 300
                )
            )
        await fill(store, "small", 100)
        await fill(store, "large", 50_000)
        small, large = [], []
        for _ in range(5):
            small.append(await median_us(lambda _: store.get_items("small", USER, 20), 200))
            large.append(await median_us(lambda _: store.get_items("large", USER, 20), 200))
        assert await store.count_items("large", USER) == 50_000
    print(f"{name}:")
    print(f"  create_qa_entry (one entry)           {statistics.median(entry):8.0f} us")
    print(f"  append_items (one turn, 4 items)      {statistics.median(turn):8.0f} us")
    print(f"  append_turn (4 items + state delta)   {statistics.median(turn_state):8.0f} us")
    print(f"  get_items(last_n=20) at    100 items  {statistics.median(small):8.0f} us")
    print(f"  get_items(last_n=20) at 50,000 items  {statistics.median(large):8.0f} us")


def main() -> None:
    for name in sys.argv[1:] or list(URLS):
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(measure(name, URLS[name].format(tmp=Path(tmp))))


if __name__ == "__main__":
    main()
