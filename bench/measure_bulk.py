"""Measure bulk export and import: sessions per second, and export's memory (not a test).

Imports N one-entry sessions of one user (``import_sessions`` given one
generator, so the library decides how to batch), then exports them all and
counts them. Then exports again under ``tracemalloc`` to find the most memory
the export held at once (Python allocations; it must not grow with N).

    .venv/bin/python -m bench.measure_bulk [--sessions 100000]
        [--backends sqlite,file,redis,postgresql,mariadb]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import tracemalloc
import uuid

from bench.measure_pages import MYSQL_URL, POSTGRES_URL, REDIS_URL, one_entry_dumps
from bench.workloads import analyze_postgres
from sessionstore import open_store

USER = "bulk"


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
                imported = await store.import_sessions(one_entry_dumps(count, USER))
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
