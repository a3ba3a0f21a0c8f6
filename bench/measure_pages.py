"""Measure ``list_sessions`` paging at depth (not a test).

Builds N one-entry sessions for one user (``import_sessions`` in batches;
four sessions share each ``updated_at``, so ties are paged too), then times
the first page of 50, a page of 50 taken 50,000 sessions deep (the median of
a few calls each), and a walk of every page of 1,000. One line per backend.

    .venv/bin/python bench/measure_pages.py [--sessions 100000] [--files-sessions 10000]
        [--backends sqlite,postgresql,mariadb,redis,files]
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncmy
import asyncpg
import redis.asyncio as aioredis

from sessionstore import SessionStore, open_store
from sessionstore.clock import to_micros
from sessionstore.records import IMPORT_FORMATS

POSTGRES_URL = os.environ.get(
    "SESSIONSTORE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
MYSQL_URL = os.environ.get("SESSIONSTORE_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
REDIS_URL = os.environ.get("SESSIONSTORE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
USER = "pager"
BATCH = 1000
CALLS = 30


def one_entry_dumps(count: int, user: str = USER) -> Iterator[dict[str, Any]]:
    """Yield ``count`` one-entry session dumps of ``user``; four share each ``updated_at``."""
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for i in range(count):
        when = (start + timedelta(milliseconds=i // 4)).isoformat()
        yield {
            "format": IMPORT_FORMATS[0],  # entries only: no items, no state
            "session_id": f"s{i:07d}",
            "user_id": user,
            "created_at": when,
            "updated_at": when,
            "graph_context": None,
            "entries": [
                {
                    "id": str(uuid.uuid4()),
                    "question": "q",
                    "answer": "a",
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


async def _fill(store: SessionStore, count: int) -> float:
    started = time.perf_counter()
    batch: list[dict[str, Any]] = []
    for dump in one_entry_dumps(count):
        batch.append(dump)
        if len(batch) == BATCH:
            await store.import_sessions(batch)
            batch = []
    if batch:
        await store.import_sessions(batch)
    return time.perf_counter() - started


async def _fill_sql(store: SessionStore, dialect: str, url: str, count: int) -> float:
    """Import one session, then copy its row ``count - 1`` times in one statement.

    ``list_sessions`` reads the sessions table only, so the copies need no
    entries; importing 100,000 sessions one transaction each would take many
    minutes on a server (see "Bulk" in issue 16).
    """
    started = time.perf_counter()
    await store.import_sessions(one_entry_dumps(1))
    table = f"{store.tables.prefix}sessions"  # type: ignore[attr-defined]
    base = to_micros(datetime(2025, 1, 1, tzinfo=UTC))
    host = url.split("@")[1].split("?", maxsplit=1)[0]
    hostport, _, database = host.partition("/")
    hostname, _, port = hostport.partition(":")
    if dialect == "postgresql":
        conn = await asyncpg.connect(
            host=hostname, port=int(port), user="postgres", database=database
        )
        try:
            cols = [
                r[0]
                for r in await conn.fetch(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = $1"
                    " ORDER BY ordinal_position",
                    table,
                )
            ]
            exprs = {
                "session_key": "'s' || lpad(g::text, 7, '0')",
                "created_at": f"{base} + (g / 4) * 1000",
                "updated_at": f"{base} + (g / 4) * 1000",
            }
            select = ", ".join(exprs.get(c, c) for c in cols)
            await conn.execute(
                f"INSERT INTO {table} ({', '.join(cols)}) SELECT {select} FROM {table}, "
                f"generate_series(1, {count - 1}) g WHERE session_key = 's0000000'"
            )
            await conn.execute(f"ANALYZE {table}")
        finally:
            await conn.close()
    else:
        conn = await asyncmy.connect(host=hostname, port=int(port), user="root", database=database)
        try:
            async with conn.cursor() as cur:
                await cur.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
                    " AND table_schema = DATABASE() ORDER BY ordinal_position",
                    (table,),
                )
                cols = [r[0] for r in await cur.fetchall()]
                exprs = {
                    "session_key": "CONCAT('s', LPAD(seq, 7, '0'))",
                    "created_at": f"{base} + (seq DIV 4) * 1000",
                    "updated_at": f"{base} + (seq DIV 4) * 1000",
                }
                select = ", ".join(exprs.get(c, c) for c in cols)
                await cur.execute(
                    f"INSERT INTO {table} ({', '.join(cols)}) SELECT {select} FROM {table}, "
                    f"seq_1_to_{count - 1} WHERE session_key = 's0000000'"
                )
                await cur.execute(f"ANALYZE TABLE {table}")
                await cur.fetchall()
            await conn.commit()
        finally:
            conn.close()
    return time.perf_counter() - started


async def _median_ms(store: SessionStore, cursor: str | None) -> float:
    times = []
    for _ in range(CALLS):
        started = time.perf_counter()
        page = await store.list_sessions(USER, limit=50, cursor=cursor)
        times.append(time.perf_counter() - started)
        assert len(page.items) == 50
    return statistics.median(times) * 1000


async def _walk(store: SessionStore, count: int, deep: int) -> tuple[float, str | None]:
    """Walk every page of 1,000; return the seconds and the cursor ``deep`` sessions in."""
    seen, cursor, deep_cursor = 0, None, None
    started = time.perf_counter()
    while True:
        page = await store.list_sessions(USER, limit=1000, cursor=cursor)
        seen += len(page.items)
        cursor = page.next_cursor
        if seen == deep:
            deep_cursor = cursor
        if cursor is None:
            break
    elapsed = time.perf_counter() - started
    assert seen == count, (seen, count)
    return elapsed, deep_cursor


async def measure(name: str, url: str, count: int) -> None:
    async with open_store(url) as store:
        try:
            if name in ("postgresql", "mariadb"):
                fill = await _fill_sql(store, name, url, count)
            else:
                fill = await _fill(store, count)
            deep = min(50_000, count // 2)
            walk, deep_cursor = await _walk(store, count, deep)
            first = await _median_ms(store, None)
            at_depth = await _median_ms(store, deep_cursor)
            first = min(first, await _median_ms(store, None))  # interleaved: noise hits both
            at_depth = min(at_depth, await _median_ms(store, deep_cursor))
        finally:
            drop = getattr(store, "drop_tables", None)
            if drop is not None:
                await drop()
    print(
        f"{name:<11} n={count:<7} build {fill:6.1f} s  first page {first:7.2f} ms  "
        f"page {deep:,} deep {at_depth:7.2f} ms ({at_depth / first:4.2f}x)  "
        f"walk of pages of 1,000 {walk:6.2f} s",
        flush=True,
    )


async def _redis_cleanup(prefix: str) -> None:
    client = aioredis.from_url(REDIS_URL)
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=f"{prefix}:*", count=5000):
            batch.append(key)
            if len(batch) >= 1000:
                await client.unlink(*batch)
                batch = []
        if batch:
            await client.unlink(*batch)
    finally:
        await client.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--files-sessions", type=int, default=10_000)
    parser.add_argument("--backends", default="sqlite,postgresql,mariadb,redis,files")
    args = parser.parse_args()
    wanted = args.backends.split(",")
    tag = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory() as tmp:
        if "sqlite" in wanted:
            await measure("sqlite", f"sqlite:///{Path(tmp) / 'pages.db'}", args.sessions)
        if "postgresql" in wanted:
            url = f"{POSTGRES_URL}?table_prefix=pages{tag}_"
            await measure("postgresql", url, args.sessions)
        if "mariadb" in wanted:
            await measure("mariadb", f"{MYSQL_URL}?table_prefix=pages{tag}_", args.sessions)
        if "redis" in wanted:
            prefix = f"pages{tag}"
            try:
                await measure("redis", f"{REDIS_URL}?prefix={prefix}", args.sessions)
            finally:
                await _redis_cleanup(prefix)
        if "files" in wanted:
            await measure("files", f"file://{Path(tmp) / 'files'}", args.files_sessions)


if __name__ == "__main__":
    asyncio.run(main())
