"""The driver floor: the least work a bare driver does to store one turn.

Each floor writes the same question and answer as the ``append`` workload,
with nothing of sessionstore's around it:

- SQLite: one ``INSERT`` and ``COMMIT`` in a worker thread (WAL,
  ``synchronous=NORMAL``, as the store uses);
- files: open with ``O_APPEND``, ``flock``, one ``write``, close, in a thread;
- Redis (and Cluster): one round trip (``RPUSH`` of the JSON record);
- PostgreSQL / MariaDB: one ``INSERT ... RETURNING`` statement (its own
  transaction, autocommit) with the bare asyncpg / asyncmy driver.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.workloads import ANSWER, pct, question

Op = Callable[[int], Awaitable[Any]]
Floor = Callable[[int, Op], Awaitable[dict[str, Any]]]


def _record(i: int) -> str:
    return json.dumps({"q": question(i), "a": ANSWER, "t": time.time()})


async def _measure(n: int, floor: Op, ours: Op) -> dict[str, Any]:
    """Time ``n`` floor operations, each right after one of ours.

    Pairing them cancels most of the noise of a shared machine: a slow
    moment slows both sides of the ratio alike.
    """
    await floor(-1)  # warm up: connection, table, page cache
    floor_s: list[float] = []
    ours_s: list[float] = []
    for i in range(n):
        t0 = time.perf_counter()
        await ours(i)
        t1 = time.perf_counter()
        await floor(i)
        floor_s.append(time.perf_counter() - t1)
        ours_s.append(t1 - t0)
    return {
        "creates_per_s": round(n / sum(floor_s), 1),
        "p50_ms": pct(floor_s, 0.5),
        "ours_creates_per_s": round(n / sum(ours_s), 1),
        "ours_p50_ms": pct(ours_s, 0.5),
        "ratio": round(sum(ours_s) / sum(floor_s), 2),
        "p50_ratio": round(pct(ours_s, 0.5) / pct(floor_s, 0.5), 2),
    }


def sqlite_floor(path: Path) -> Floor:
    async def run(n: int, ours: Op) -> dict[str, Any]:
        pool = ThreadPoolExecutor(1)
        loop = asyncio.get_running_loop()
        conn = await loop.run_in_executor(
            pool, lambda: sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        )

        def prepare() -> None:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS floor (session TEXT, seq INTEGER, question TEXT,"
                " answer TEXT, PRIMARY KEY (session, seq))"
            )

        def insert(i: int) -> None:
            conn.execute("BEGIN")
            conn.execute("INSERT INTO floor VALUES ('s', ?, ?, ?)", (i + 1, question(i), ANSWER))
            conn.execute("COMMIT")

        try:
            await loop.run_in_executor(pool, prepare)
            return await _measure(n, lambda i: loop.run_in_executor(pool, insert, i), ours)
        finally:
            await loop.run_in_executor(pool, conn.close)
            pool.shutdown()

    return run


def file_floor(directory: Path) -> Floor:
    async def run(n: int, ours: Op) -> dict[str, Any]:
        pool = ThreadPoolExecutor(1)
        loop = asyncio.get_running_loop()
        target = directory / "floor.jsonl"

        def append(i: int) -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                os.write(fd, (_record(i) + "\n").encode())
            finally:
                os.close(fd)

        try:
            return await _measure(n, lambda i: loop.run_in_executor(pool, append, i), ours)
        finally:
            pool.shutdown()

    return run


def redis_floor(url: str, key: str, cluster: bool = False) -> Floor:
    async def run(n: int, ours: Op) -> dict[str, Any]:
        if cluster:
            from redis.asyncio.cluster import RedisCluster  # noqa: PLC0415 (optional extra)

            client: Any = RedisCluster.from_url(url.replace("redis+cluster://", "redis://"))
        else:
            from redis.asyncio import Redis  # noqa: PLC0415

            client = Redis.from_url(url)
        try:
            return await _measure(n, lambda i: client.rpush(key, _record(i)), ours)
        finally:
            await client.delete(key)
            await client.aclose()

    return run


def postgres_floor(url: str, table: str) -> Floor:
    async def run(n: int, ours: Op) -> dict[str, Any]:
        import asyncpg  # noqa: PLC0415

        conn = await asyncpg.connect(url)
        try:
            await conn.execute(
                f"CREATE TABLE {table} (id bigserial PRIMARY KEY, session text,"
                " question text, answer text)"
            )
            sql = (
                f"INSERT INTO {table} (session, question, answer) VALUES ($1, $2, $3) RETURNING id"
            )
            return await _measure(n, lambda i: conn.fetchval(sql, "s", question(i), ANSWER), ours)
        finally:
            await conn.execute(f"DROP TABLE IF EXISTS {table}")
            await conn.close()

    return run


async def mysql_connect(url: str, *, autocommit: bool = True) -> Any:
    """Open a bare asyncmy connection to a ``mysql://user:pw@host:port/db`` URL."""
    import asyncmy  # noqa: PLC0415

    parts = urlsplit(url)
    return await asyncmy.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=parts.username or "root",
        password=parts.password or "",
        database=parts.path.lstrip("/") or "test",
        autocommit=autocommit,
    )


def mysql_floor(url: str, table: str) -> Floor:
    async def run(n: int, ours: Op) -> dict[str, Any]:
        conn = await mysql_connect(url)

        async def insert(i: int) -> Any:
            async with conn.cursor() as cur:
                await cur.execute(
                    f"INSERT INTO {table} (session, question, answer) VALUES (%s, %s, %s)"
                    " RETURNING id",
                    ("s", question(i), ANSWER),
                )
                return await cur.fetchone()

        try:
            async with conn.cursor() as cur:
                await cur.execute(
                    f"CREATE TABLE {table} (id BIGINT AUTO_INCREMENT PRIMARY KEY,"
                    " session VARCHAR(255), question LONGTEXT, answer LONGTEXT)"
                )
            return await _measure(n, insert, ours)
        finally:
            async with conn.cursor() as cur:
                await cur.execute(f"DROP TABLE IF EXISTS {table}")
            conn.close()

    return run
