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
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncmy
import asyncpg

from sessionstore.backends.sql import SQLStore
from sessionstore.backends.sql.codec import ENTRY_COLUMNS, column_of
from sessionstore.backends.sql.dialect import load_dialect
from sessionstore.backends.sql.mysql import Batch
from sessionstore.backends.sql.postgres import Positional
from sessionstore.clock import now_utc, to_micros
from sessionstore.records import EXPORT_FORMAT

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
    """The store's create and latest-10 statements through the bare driver.

    The statements are the dialect's own, as the backend sends them: on
    PostgreSQL the one ``WITH ... INSERT`` of a create, on MySQL/MariaDB its
    one multi-statement batch; and the same latest-10 ``SELECT``.
    """

    def __init__(self, store: SQLStore) -> None:
        self.store = store
        self.dialect = load_dialect(store.dialect, store.tables.prefix)
        latest = self.dialect.sql.latest.text
        # A create's statement or batch: the very object the dialect sends, built once.
        if store.dialect == "postgresql":
            self.pg_create: Positional = self.dialect._appends["entry"]
            self.pg_latest = Positional(latest)
        else:
            self.my_create: Batch = self.dialect._writes["entry"]
            self.my_latest = Batch([latest], result=0)

    def _params(self, session_id: str) -> dict[str, Any]:
        """The session's key, the time now and the expiry, as the store passes them."""
        now = to_micros(now_utc())
        ttl = self.store.ttl
        return {
            "u": self.dialect.codec.key("bench"),
            "s": self.dialect.codec.key(session_id),
            "now": now,
            "exp": None if ttl is None else now + int(ttl * 1_000_000),
        }

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
            names = self.pg_create.names
            statement = await self.pg.prepare(self.pg_create.sql)
            for i in range(count):
                params = {**self._params("bare"), **_entry(i)}
                await statement.fetchval(*[params[n] for n in names])
        else:
            for i in range(count):
                params = {**self._params("bare"), **_entry(i)}
                async with self.my.cursor() as cursor:
                    await cursor.execute(self.my_create.sql, params)
                    while await cursor.nextset():
                        pass
        return count / (time.perf_counter() - started)

    async def latest10(self, session_id: str) -> Any:
        params = {**self._params(session_id), "n": 10}
        if self.store.dialect == "postgresql":
            names = self.pg_latest.names
            return await self.pg.fetch(self.pg_latest.sql, *[params[n] for n in names])
        async with self.my.cursor() as cursor:
            await cursor.execute(self.my_latest.sql, params)
            rows = await cursor.fetchall()
        await self.my.commit()
        return rows


_NO_VALUES = dict.fromkeys(ENTRY_COLUMNS)
"""Every entry column, each ``NULL``: a field added later needs no edit here."""


def _entry(i: int) -> dict[str, Any]:
    return {
        **_NO_VALUES,
        column_of("id"): str(uuid.uuid4()),
        "created_at": to_micros(datetime.now(UTC)),
        "question": f"q{i}",
        "answer": "a" * 200,
    }


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
