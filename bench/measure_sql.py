"""Measure the SQL backend against the bare driver (not a test).

For PostgreSQL and MariaDB: creates per second through the store (one task,
and 16 concurrent tasks), the same create statements issued with the bare
driver (asyncpg / asyncmy) as a floor, and the median latency of
``get_latest_qa_entries(last_n=10)`` on sessions of 100 and 10,000 entries,
next to the same SELECT through the bare driver. Each figure is the best of three
rounds (the machine may be shared).

    .venv/bin/python bench/measure_sql.py [--creates 2000] [--reads 500]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncmy
import asyncpg

from sessionstore.backends.sql import SQLStore
from sessionstore.records import EXPORT_FORMAT, to_micros
from sessionstore.store import SessionKey

POSTGRES_URL = os.environ.get(
    "SESSIONSTORE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
MYSQL_URL = os.environ.get("SESSIONSTORE_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")


def _dump(session_id: str, size: int) -> dict[str, Any]:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    entries = [
        {
            "id": str(uuid.uuid4()),
            "question": f"question {i} " * 8,
            "answer": f"answer {i} " * 20,
            "context": None,
            "created_at": (start + timedelta(seconds=i)).isoformat(),
            "feedback_text": None,
            "feedback_score": None,
            "used_graph_element_ids": None,
            "memify_metadata": None,
            "metadata": {"model": "m", "tokens": i},
        }
        for i in range(size)
    ]
    return {
        "format": EXPORT_FORMAT,
        "session_id": session_id,
        "user_id": "bench",
        "created_at": start.isoformat(),
        "updated_at": start.isoformat(),
        "graph_context": None,
        "entries": entries,
        "trace_steps": [],
    }


async def _creates(store: SQLStore, count: int, tasks: int) -> float:
    per_task = count // tasks

    async def writer(n: int) -> None:
        for i in range(per_task):
            await store.create_qa_entry(f"w{n}", "bench", f"q{i}", "a" * 200)

    started = time.perf_counter()
    await asyncio.gather(*(writer(n) for n in range(tasks)))
    return per_task * tasks / (time.perf_counter() - started)


async def _best(make: Any, better: Any = max, rounds: int = 3) -> float:
    """Best of a few rounds: the machine is shared, so the best is the least disturbed."""
    results: list[float] = [await make() for _ in range(rounds)]
    return float(better(results))


async def _median_ms(call: Any, reads: int) -> float:
    times = []
    for _ in range(reads):
        started = time.perf_counter()
        await call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


class BareDriver:
    """The store's create and latest-10 statements through the bare driver."""

    def __init__(self, store: SQLStore) -> None:
        self.store = store
        self.sql = store._sql

    def _params(self, session_id: str) -> dict[str, Any]:
        return store_params(self.store, session_id)

    async def open(self) -> None:
        url = (POSTGRES_URL if self.store.dialect == "postgresql" else MYSQL_URL).split("://")[1]
        userinfo, _, hostpart = url.rpartition("@")
        host, _, database = hostpart.partition("/")
        hostname, _, port = host.partition(":")
        if self.store.dialect == "postgresql":
            self.pg = await asyncpg.connect(
                host=hostname,
                port=int(port or 5432),
                user=userinfo.split(":")[0],
                database=database,
            )
        else:
            self.my = await asyncmy.connect(
                host=hostname,
                port=int(port or 3306),
                user=userinfo.split(":")[0],
                database=database,
                autocommit=False,
            )

    async def close(self) -> None:
        if self.store.dialect == "postgresql":
            await self.pg.close()
        else:
            self.my.close()

    async def creates(self, count: int) -> float:
        started = time.perf_counter()
        if self.store.dialect == "postgresql":
            sql, names = _positional(self.sql.pg_append_entry.text, "$")
            statement = await self.pg.prepare(sql)
            for i in range(count):
                params = {**self._params("bare"), **_entry(i)}
                await statement.fetchval(*[params[n] for n in names])
        else:
            steps = [
                _positional(s.text, "%s")
                for s in (
                    self.sql.delete_expired,
                    self.sql.my_upsert["entry"],
                    self.sql.insert_entry,
                )
            ]
            for i in range(count):
                params = {**self._params("bare"), **_entry(i)}
                async with self.my.cursor() as cursor:
                    for n, (sql, names) in enumerate(steps):
                        if n == 2:
                            params["seq"] = cursor.lastrowid
                        await cursor.execute(sql, [params[name] for name in names])
                await self.my.commit()
        return count / (time.perf_counter() - started)

    async def latest10(self, session_id: str) -> Any:
        params = {**self._params(session_id), "n": 10}
        if self.store.dialect == "postgresql":
            sql, names = _positional(self.sql.latest.text, "$")
            return await self.pg.fetch(sql, *[params[n] for n in names])
        sql, names = _positional(self.sql.latest.text, "%s")
        async with self.my.cursor() as cursor:
            await cursor.execute(sql, [params[n] for n in names])
            rows = await cursor.fetchall()
        await self.my.commit()
        return rows


def store_params(store: SQLStore, session_id: str) -> dict[str, Any]:
    return store._params(SessionKey(session_id, "bench"))


def _entry(i: int) -> dict[str, Any]:
    return {
        "entry_id": str(uuid.uuid4()),
        "created_at": to_micros(datetime.now(UTC)),
        "question": f"q{i}",
        "answer": "a" * 200,
        "context": None,
        "feedback_text": None,
        "feedback_score": None,
        "used_graph_element_ids": None,
        "memify_metadata": None,
        "metadata": None,
    }


def _positional(sql: str, style: str) -> tuple[str, list[str]]:
    """Rewrite ``:name`` binds as ``$n`` (asyncpg) or ``%s`` (asyncmy)."""
    names: list[str] = []
    order: dict[str, int] = {}

    def swap(match: re.Match[str]) -> str:
        name = match.group(1)
        if style == "$":
            if name not in order:
                names.append(name)
                order[name] = len(names)
            return f"${order[name]}"
        names.append(name)
        return "%s"

    return re.sub(r"(?<!:):([a-z_]+)", swap, sql), names


async def measure(name: str, url: str, creates: int, reads: int) -> dict[str, float]:
    prefix = f"bench{uuid.uuid4().hex[:8]}_"
    store = SQLStore.from_url(f"{url}?table_prefix={prefix}", pool_size=16)
    results: dict[str, float] = {}
    async with store:
        try:
            for tasks in (1, 16):
                results[f"store creates/s ({tasks} task{'s' * (tasks > 1)})"] = await _best(
                    lambda t=tasks: _creates(store, creates, t)
                )
            await store.import_sessions([_dump("s100", 100), _dump("s10k", 10_000)])
            async with SQLStore.from_url(f"{url}?table_prefix={prefix}", pre_ping=False) as fast:
                results["store creates/s (1 task, pre_ping=false)"] = await _best(
                    lambda: _creates(fast, creates, 1)
                )
                results["store latest-10 median ms @ 100 (pre_ping=false)"] = await _best(
                    lambda: _median_ms(
                        lambda: fast.get_latest_qa_entries("s100", "bench", 10), reads
                    ),
                    min,
                )
            bare = BareDriver(store)
            await bare.open()
            try:
                floor = await _best(lambda: bare.creates(creates))
                results["bare driver creates/s (1 task)"] = floor
                for session, label in (("s100", "100"), ("s10k", "10,000")):
                    results[f"store latest-10 median ms @ {label}"] = await _best(
                        lambda s=session: _median_ms(
                            lambda: store.get_latest_qa_entries(s, "bench", 10), reads
                        ),
                        min,
                    )
                    results[f"bare latest-10 median ms @ {label}"] = await _best(
                        lambda s=session: _median_ms(lambda: bare.latest10(s), reads), min
                    )
            finally:
                await bare.close()
        finally:
            await store.drop_tables()
    print(f"\n{name}")
    for key, value in results.items():
        print(f"  {key:<50} {value:10.2f}")
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--creates", type=int, default=2000)
    parser.add_argument("--reads", type=int, default=500)
    args = parser.parse_args()
    await measure("PostgreSQL (asyncpg)", POSTGRES_URL, args.creates, args.reads)
    await measure("MariaDB (asyncmy)", MYSQL_URL, args.creates, args.reads)


if __name__ == "__main__":
    asyncio.run(main())
