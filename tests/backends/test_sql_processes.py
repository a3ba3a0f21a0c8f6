"""The SQL backend under several processes, killed connections, deadlocks, EXPLAIN."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text

from sessionstore.backends.sql import SQLStore
from sessionstore.backends.sql.engine import is_retryable
from sessionstore.backends.sql.schema import SCHEMA_VERSION
from sessionstore.store import SessionKey
from tests.backends.sql_fixtures import SERVERS, drop_namespace
from tests.servers import server_url

pytestmark = pytest.mark.timeout(120)

WORKER = """
import asyncio, sys, time
from sessionstore import open_store

async def main(url, start, name, count):
    time.sleep(max(0.0, start - time.time()))  # every process starts at once
    async with open_store(url) as store:
        for i in range(count):
            await store.create_qa_entry("shared", "u", f"{name}:{i}", "a")
        print(await store.count_qa_entries("shared", "u"))

asyncio.run(main(sys.argv[1], float(sys.argv[2]), sys.argv[3], int(sys.argv[4])))
"""


@pytest.fixture(params=SERVERS)
async def url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    server = server_url(request.param)
    prefixed = f"{server}?table_prefix=p{uuid.uuid4().hex[:12]}_"
    yield prefixed
    await drop_namespace(prefixed)


async def _run_workers(url: str, processes: int, count: int) -> list[int]:
    start = time.time() + 1.0
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WORKER,
            url,
            str(start),
            f"w{n}",
            str(count),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for n in range(processes)
    ]
    results = [await proc.communicate() for proc in procs]
    for proc, (_, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err.decode()
    return [int(out.split()[-1]) for out, _ in results]


async def test_two_processes_migrate_an_empty_database_at_once(url: str) -> None:
    counts = await _run_workers(url, processes=2, count=1)
    assert max(counts) == 2
    async with SQLStore.from_url(url) as store:
        assert await store.count_qa_entries("shared", "u") == 2
        async with store._get_engine().connect() as conn:
            version = await conn.scalar(text(f"SELECT version FROM {store.tables.version}"))
        assert version == SCHEMA_VERSION


async def _connection_ids(store: SQLStore) -> list[Any]:
    sql = "SELECT pg_backend_pid()" if store.dialect == "postgresql" else "SELECT CONNECTION_ID()"
    async with store._get_engine().connect() as conn:
        return [await conn.scalar(text(sql))]


@pytest.mark.parametrize("pre_ping", [True, False])
async def test_store_recovers_after_its_connections_are_killed(url: str, pre_ping: bool) -> None:
    async with SQLStore.from_url(url, pool_size=1, max_overflow=0, pre_ping=pre_ping) as store:
        await store.create_qa_entry("s", "u", "before", "a")
        victims = await _connection_ids(store)
        async with SQLStore.from_url(url) as killer:
            for victim in victims:
                sql = (
                    f"SELECT pg_terminate_backend({int(victim)})"
                    if store.dialect == "postgresql"
                    else f"KILL {int(victim)}"
                )
                async with killer._get_engine().begin() as conn:
                    await conn.execute(text(sql))
        # With pre_ping the pool replaces the dead connection before use; without
        # it a read finds it dead, the pool is invalidated and the read retried.
        assert await store.count_qa_entries("s", "u") == 1
        await store.create_qa_entry("s", "u", "after", "a")
        assert [e.question for e in await store.get_all_qa_entries("s", "u")] == [
            "before",
            "after",
        ]


async def _real_deadlock(store: SQLStore) -> BaseException:
    """Make the database detect a deadlock between two transactions; return its error."""
    await store.create_qa_entry("a", "u", "q", "x")
    await store.create_qa_entry("b", "u", "q", "x")
    # Transactions, not the store's autocommit: each connection begins one on its first statement.
    engine = store._get_engine().execution_options(isolation_level="READ COMMITTED")
    lock = text(
        f"SELECT qa_count FROM {store.tables.sessions} "
        "WHERE user_key = :u AND session_key = :s FOR UPDATE"
    )
    key = store._codec.key
    a, b = {"u": key("u"), "s": key("a")}, {"u": key("u"), "s": key("b")}
    async with engine.connect() as one, engine.connect() as two:
        for conn in (one, two):
            if store.dialect == "postgresql":
                await conn.execute(text("SET deadlock_timeout = '50ms'"))
            else:
                await conn.execute(text("SET SESSION innodb_lock_wait_timeout = 5"))
        await one.execute(lock, a)
        await two.execute(lock, b)
        outcomes = await asyncio.gather(
            one.execute(lock, b), two.execute(lock, a), return_exceptions=True
        )
        await one.rollback()
        await two.rollback()
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(errors) == 1
    return errors[0]


async def test_deadlocks_are_retried(url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="sessionstore")
    async with SQLStore.from_url(url, retries=2) as store:
        deadlock = await _real_deadlock(store)
        assert is_retryable(deadlock)
        attempts = 0

        async def flaky() -> str:
            nonlocal attempts
            attempts += 1
            if attempts < 3:
                raise deadlock
            return "done"

        assert await store._run(flaky) == "done"
        retries = [r.getMessage() for r in caplog.records if r.name == "sessionstore.sql"]
        cause = type(deadlock.orig or deadlock).__name__
        assert [m for m in retries if " retry " in m] == [
            f"{store._db.where}: retry {n} after {cause}" for n in (1, 2)
        ]
        attempts = -10
        with pytest.raises(Exception, match="refused") as caught:
            await store._run(flaky)
        assert caught.value.__cause__ is deadlock


EXPLAINED = {
    "latest": ("latest", {"n": 10}),
    "latest_id": ("latest_id", {}),
    "count": ("count", {}),
    "list_sessions": ("list_first", {"n": 50}),
    "list_sessions_after": ("list_after", {"n": 50, "cu": 2**50, "cs": "s1"}),
    "sweep": ("sweep", {"n": 500}),
}


@pytest.mark.parametrize("name", sorted(EXPLAINED))
async def test_hot_queries_use_indexes(url: str, name: str) -> None:
    async with SQLStore.from_url(url, ttl=60) as store:
        for i in range(30):
            await store.create_qa_entry(f"s{i % 3}", "u", "q", "a")
        attribute, extra = EXPLAINED[name]
        statement = getattr(store._dialect.sql, attribute)  # what the dialect sends
        params = {**store._params(SessionKey("s1", "u")), **extra}
        if "cs" in params:
            params["cs"] = store._codec.key(params["cs"])
        async with store._get_engine().connect() as conn:
            if store.dialect == "postgresql":
                # Tiny tables make a sequential scan cheapest; forbid it to see the index.
                await conn.execute(text("SET enable_seqscan = off"))
                rows = await conn.execute(text(f"EXPLAIN {statement.text}"), params)
                plan = "\n".join(r[0] for r in rows)
                assert "Seq Scan" not in plan, plan
                assert "Index" in plan, plan
                if name == "list_sessions_after":
                    # Both halves seek: the older times are an index bound, no OR filter.
                    assert "updated_at < " in plan, plan
                    assert not [ln for ln in plan.splitlines() if "OR" in ln and "updated" in ln]
            else:
                rows = (await conn.execute(text(f"EXPLAIN {statement.text}"), params)).mappings()
                for row in rows:
                    if str(row["table"]).startswith(("<derived", "<union")):
                        continue  # the few rows a union of seeks returned, merged
                    assert row["type"] != "ALL" or row["key"], dict(row)
                    assert row["key"] in {
                        "PRIMARY",
                        f"{store.tables.prefix}sessions_recent",
                        f"{store.tables.prefix}sessions_expiry",
                    }, dict(row)
            await conn.rollback()
