"""Measure how long other writers wait while ``prune()`` runs (not a test).

Per backend: build N one-entry sessions with ``import_sessions`` (16
concurrent importers), then run ``prune()`` while two tasks append to
sessions of their own in a loop: one through the same store object, one
through a second store opened on the same namespace (another connection, as
another process would have; not for ``memory://``). Each append's wait
counts from the previous append's end, so a blocked event loop counts too.
The report is the max and p99 of the appends that overlapped the prune,
and the prune's total time. After the prune it checks that every
built session is gone.

    .venv/bin/python bench/measure_prune.py [--sessions 100000] [--files-sessions 10000]
        [--backends sqlite,postgresql,mariadb,redis,files,memory]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sessionstore import SessionStore, open_store
from sessionstore.records import IMPORT_FORMATS

REDIS_URL = os.environ.get("SESSIONSTORE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get(
    "SESSIONSTORE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
MYSQL_URL = os.environ.get("SESSIONSTORE_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
IMPORTERS = 16
BUILT_USER = "bench"


def _url(backend: str, tmp: Path, run: str) -> str:
    urls = {
        "sqlite": f"sqlite:///{tmp / 'prune.db'}",
        "postgresql": f"{POSTGRES_URL}?table_prefix=prune_{run}_",
        "mariadb": f"{MYSQL_URL}?table_prefix=prune_{run}_",
        "redis": f"{REDIS_URL}?prefix=prune-{run}",
        "files": f"file://{tmp / 'files'}",
        "memory": "memory://",
    }
    return urls[backend]


def _dumps(first: int, count: int) -> Iterator[dict[str, Any]]:
    when = datetime(2025, 1, 1, tzinfo=UTC).isoformat()
    for n in range(first, first + count):
        entry = {"id": str(uuid.uuid4()), "question": f"question {n}", "answer": "answer " * 20}
        entry["created_at"] = when
        yield {
            "format": IMPORT_FORMATS[0],  # entries only: no items, no state
            "session_id": f"s{n:07d}",
            "user_id": BUILT_USER,
            "created_at": when,
            "updated_at": when,
            "graph_context": None,
            "entries": [entry],
            "trace_steps": [],
        }


async def _build(store: SessionStore, sessions: int) -> float:
    share = -(-sessions // IMPORTERS)
    started = time.perf_counter()
    await asyncio.gather(
        *(
            store.import_sessions(_dumps(i * share, min(share, sessions - i * share)))
            for i in range(IMPORTERS)
        )
    )
    return time.perf_counter() - started


class Writer:
    """Appends to one session in a loop until stopped, timing each append."""

    def __init__(self, store: SessionStore, session_id: str) -> None:
        self.store = store
        self.session_id = session_id
        self.spans: list[tuple[float, float]] = []
        self.stop = False
        self.warm = asyncio.Event()

    async def run(self) -> None:
        n = 0
        start = time.perf_counter()
        while not self.stop:
            await asyncio.sleep(0)  # memory:// never suspends: let the prune run
            await self.store.create_qa_entry(self.session_id, "writer", f"q{n}", "a" * 200)
            # From the previous append's end: a blocked event loop counts as waiting too.
            end = time.perf_counter()
            self.spans.append((start, end))
            start = end
            n += 1
            if n == 20:
                self.warm.set()

    def waits(self, begin: float, end: float) -> list[float]:
        """Return the latencies (ms) of the appends that overlapped ``begin``..``end``."""
        return [(b - a) * 1000 for a, b in self.spans if b >= begin and a <= end]


def _summary(waits: list[float]) -> str:
    if not waits:
        return "no append overlapped"
    p99 = (
        statistics.quantiles(waits, n=100, method="inclusive")[98] if len(waits) >= 2 else waits[0]
    )
    return f"max {max(waits):7.1f} ms  p99 {p99:6.1f} ms  ({len(waits)} appends)"


async def measure(backend: str, sessions: int) -> None:
    run = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory() as tmp:
        url = _url(backend, Path(tmp), run)
        store = open_store(url)
        await store.open()
        other = None if backend == "memory" else open_store(url)
        try:
            if other is not None:
                await other.open()
            built = await _build(store, sessions)
            writers = [Writer(store, "same-store")]
            if other is not None:
                writers.append(Writer(other, "other-store"))
            tasks = [asyncio.create_task(w.run()) for w in writers]
            for w in writers:
                await w.warm.wait()
            begin = time.perf_counter()
            await store.prune()
            end = time.perf_counter()
            for w in writers:
                w.stop = True
            await asyncio.gather(*tasks)
            left = len((await store.list_sessions(BUILT_USER, limit=10)).items)
            print(
                f"{backend:10} {sessions:>7,} sessions (built in {built:5.1f} s)  "
                f"prune {end - begin:6.2f} s  built sessions left: {left}"
            )
            for w in writers:
                print(f"{'':10} writer on {w.session_id:12}: {_summary(w.waits(begin, end))}")
        finally:
            await store.prune()
            drop = getattr(store, "drop_tables", None)
            if drop is not None:
                await drop()
            if other is not None:
                await other.close()
            await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--files-sessions", type=int, default=10_000)
    parser.add_argument("--backends", default="sqlite,postgresql,mariadb,redis,files,memory")
    args = parser.parse_args()
    for backend in args.backends.split(","):
        count = args.files_sessions if backend == "files" else args.sessions
        await measure(backend, count)


if __name__ == "__main__":
    asyncio.run(main())
