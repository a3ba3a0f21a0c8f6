"""Measure bulk export and import: sessions per second, and export's memory (not a test).

Imports N one-entry sessions of one user (``import_sessions`` given one
generator, so the library decides how to batch), then exports them all and
counts them. Then exports again under ``tracemalloc`` to find the most memory
the export held at once (Python allocations; it must not grow with N).

    .venv/bin/python bench/measure_bulk.py [--sessions 100000]
        [--backends sqlite,file,redis,postgresql,mariadb]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.workloads import analyze_postgres
from sessionstore import open_store
from sessionstore.records import IMPORT_FORMATS

POSTGRES_URL = os.environ.get(
    "SESSIONSTORE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
MYSQL_URL = os.environ.get("SESSIONSTORE_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
REDIS_URL = os.environ.get("SESSIONSTORE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
USER = "bulk"


def dumps(count: int) -> Iterator[dict[str, Any]]:
    """Yield ``count`` one-entry session dumps, made as they are consumed."""
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for i in range(count):
        when = (start + timedelta(milliseconds=i)).isoformat()
        yield {
            "format": IMPORT_FORMATS[0],
            "session_id": f"s{i:07d}",
            "user_id": USER,
            "created_at": when,
            "updated_at": when,
            "graph_context": None,
            "entries": [
                {
                    "id": str(uuid.uuid4()),
                    "question": "What is retrieval-augmented generation?",
                    "answer": "Answering from documents found for the question.",
                    "context": None,
                    "created_at": when,
                    "feedback_text": None,
                    "feedback_score": None,
                    "used_graph_element_ids": None,
                    "memify_metadata": None,
                    "metadata": None,
                }
            ],
            "trace_steps": [],
        }


def url_for(name: str, tmp: str, token: str) -> str:
    return {
        "sqlite": f"sqlite:///{tmp}/bulk.db",
        "file": f"file://{tmp}/bulk-files",
        "redis": f"{REDIS_URL}?prefix=bulk{token}",
        "postgresql": f"{POSTGRES_URL}?table_prefix=bulk{token}_",
        "mariadb": f"{MYSQL_URL}?table_prefix=bulk{token}_",
    }[name]


async def settle(url: str) -> None:
    """ANALYZE, as autovacuum would have by then (this server runs without it)."""
    await analyze_postgres(url)


async def measure(name: str, count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = url_for(name, tmp, uuid.uuid4().hex[:8])
        async with open_store(url) as store:
            try:
                started = time.perf_counter()
                imported = await store.import_sessions(dumps(count))
                import_s = time.perf_counter() - started
                assert imported == count, imported
                if name == "postgresql":
                    await settle(url)

                started = time.perf_counter()
                exported = 0
                async for _ in store.export_sessions():
                    exported += 1
                export_s = time.perf_counter() - started
                assert exported == count, exported

                tracemalloc.start()
                async for _ in store.export_sessions():
                    pass
                peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
            finally:
                await store.prune()
                drop = getattr(store, "drop_tables", None)
                if drop is not None:
                    await drop()
    print(
        f"{name:<11} n={count:<7} import {count / import_s:8,.0f}/s ({import_s:6.1f} s)  "
        f"export {count / export_s:8,.0f}/s ({export_s:6.1f} s)  "
        f"export peak {peak / 2**20:6.1f} MiB",
        flush=True,
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,file,redis,postgresql,mariadb")
    args = parser.parse_args()
    for name in args.backends.split(","):
        await measure(name, args.sessions)


if __name__ == "__main__":
    asyncio.run(main())
