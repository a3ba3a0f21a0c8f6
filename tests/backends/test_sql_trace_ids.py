"""The SQL backend's trace ids: unique within their session from schema version 2 on.

A namespace made at version 1, possibly holding a session with one trace id
twice, is migrated in place: every step stays readable, and from then on a
repeated id is refused. The contract suite checks the refusal itself.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from sessionstore import InvalidParameterError, SessionTraceStep
from sessionstore.backends.sql import SQLStore
from sessionstore.backends.sql.schema import SCHEMA_VERSION
from sessionstore.backends.sql.statements import SESSION_COLUMNS
from sessionstore.clock import to_micros
from sessionstore.stored import trace_to_json
from tests.backends.sql_fixtures import SERVERS, drop_namespace
from tests.backends.test_sqlite import LEGACY_TIME, LEGACY_TRACE_IDS, legacy_steps
from tests.servers import server_url

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest) -> str:
    return server_url(request.param)


@pytest.fixture
async def url(server: str) -> AsyncIterator[str]:
    prefixed = f"{server}?table_prefix=t{uuid.uuid4().hex[:12]}_"
    yield prefixed
    await drop_namespace(prefixed)


async def _scalar(store: SQLStore, sql: str) -> object:
    async with store._get_engine().connect() as conn:
        return await conn.scalar(text(sql))


async def _version_1_namespace(url: str) -> None:
    """Make the namespace at schema version 1 (its dialect's first step) with ``legacy_steps()``."""
    store = SQLStore.from_url(url)  # never opened: only its engine, dialect and codec are used
    t, codec = store.tables, store._codec
    steps = legacy_steps()
    keys = {"u": codec.key("u"), "s": codec.key("s")}
    try:
        async with store._get_engine().begin() as conn:
            for statement in store._dialect.migrations[0].format(t=t).split(";"):
                if statement.strip():
                    await conn.execute(text(statement))
            await conn.execute(
                text(f"CREATE TABLE {t.version} (id INT PRIMARY KEY, version INT NOT NULL)")
            )
            await conn.execute(text(f"INSERT INTO {t.version} (id, version) VALUES (1, 1)"))
            await conn.execute(
                text(
                    f"INSERT INTO {t.sessions} ({SESSION_COLUMNS}) "
                    "VALUES (:u, :s, :now, :now, NULL, 0, 0, :n, :n, FALSE)"
                ),
                {**keys, "now": to_micros(LEGACY_TIME), "n": len(steps)},
            )
            await conn.execute(
                text(
                    f"INSERT INTO {t.traces} (user_key, session_key, seq, step) "
                    "VALUES (:u, :s, :seq, :step)"
                ),
                [
                    {**keys, "seq": seq, "step": trace_to_json(step)}
                    for seq, step in enumerate(steps, start=1)
                ],
            )
    finally:
        await store.close()


def _step(trace_id: str) -> SessionTraceStep:
    return SessionTraceStep(trace_id=trace_id, origin_function="g", status="ok")


async def test_a_version_1_namespace_gets_unique_trace_ids_and_keeps_every_step(
    url: str,
) -> None:
    await _version_1_namespace(url)
    async with SQLStore.from_url(url) as store:
        version = await _scalar(store, f"SELECT version FROM {store.tables.version}")
        assert version == SCHEMA_VERSION
        assert await store.read_trace_steps("s", "u") == legacy_steps()
        for trace_id in set(LEGACY_TRACE_IDS):
            with pytest.raises(InvalidParameterError):
                await store.save_trace_step("s", "u", _step(trace_id))
        await store.save_trace_step("s", "u", _step("new"))
        (dump,) = [d async for d in store.export_sessions()]
        assert [t["trace_id"] for t in dump["trace_steps"]] == [*LEGACY_TRACE_IDS, "new"]
        # Such a session exports as it is; its dump repeats ids, so import refuses it.
        with pytest.raises(InvalidParameterError, match="appears twice"):
            await store.import_sessions([dump])
        # The later copies of the two repeated ids hold no digest; every other step does.
        unindexed = f"SELECT COUNT(*) FROM {store.tables.traces} WHERE trace_digest IS NULL"
        assert await _scalar(store, unindexed) == 2


# Only MySQL/MariaDB DDL can stop halfway: PostgreSQL's is transactional.
@pytest.mark.parametrize("server", ["mariadb"], indirect=True)
async def test_the_trace_digest_step_runs_again_after_it_stopped_halfway(url: str) -> None:
    await _version_1_namespace(url)
    # As if the step had added the column and its index, then stopped before the
    # new version was recorded.
    async with SQLStore.from_url(url) as store, store._get_engine().begin() as conn:
        await conn.execute(text(f"UPDATE {store.tables.version} SET version = 1"))
    async with SQLStore.from_url(url) as store:
        assert await store.read_trace_steps("s", "u") == legacy_steps()
        with pytest.raises(InvalidParameterError):
            await store.save_trace_step("s", "u", _step("dup"))
        version = await _scalar(store, f"SELECT version FROM {store.tables.version}")
        assert version == SCHEMA_VERSION
