"""What only the SQL backend has: its schema, migrations, encodings and options."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from sessionstore import (
    InvalidParameterError,
    MissingDependencyError,
    SessionTraceStep,
    StoreError,
    StoreUnavailableError,
    open_store,
)
from sessionstore.backends.sql import SQLStore
from sessionstore.backends.sql.engine import driver_url
from tests.backends.sql_fixtures import SERVERS, drop_namespace
from tests.servers import free_port, server_url

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest) -> str:
    return server_url(request.param)


@pytest.fixture
async def url(server: str) -> AsyncIterator[str]:
    prefixed = f"{server}?table_prefix=t{uuid.uuid4().hex[:12]}_"
    yield prefixed
    await drop_namespace(prefixed)


@pytest.fixture
async def store(url: str) -> AsyncIterator[SQLStore]:
    opened = SQLStore.from_url(url)
    async with opened:
        yield opened


async def _scalar(store: SQLStore, sql: str, **params: Any) -> Any:
    async with store._get_engine().connect() as conn:
        return await conn.scalar(text(sql), params)


async def test_ids_are_compared_exactly(store: SQLStore) -> None:
    ids = ["A", "a", "é", "e\u0301", "x", "x ", "ß", "ss", "😀", "😁"]
    for sid in ids:
        await store.create_qa_entry(sid, "u", sid, "a")
        await store.create_qa_entry("s", sid, sid, "a")
    for sid in ids:
        assert [e.question for e in await store.get_all_qa_entries(sid, "u")] == [sid]
        assert [e.question for e in await store.get_all_qa_entries("s", sid)] == [sid]
    listed = [i.session_id for i in (await store.list_sessions("u", limit=100)).items]
    assert sorted(listed) == sorted(ids)


async def test_key_columns_are_bounded_and_binary(store: SQLStore) -> None:
    await store.create_qa_entry("s", "u", "q", "a")
    name = store.tables.sessions
    if store.dialect == "postgresql":
        row = await _scalar(
            store,
            "SELECT collation_name || ':' || data_type || ':' || character_maximum_length "
            "FROM information_schema.columns WHERE table_name = :t AND column_name = 'session_key'",
            t=name,
        )
        assert row == "C:character varying:256"
    else:
        row = await _scalar(
            store,
            "SELECT COLUMN_TYPE FROM information_schema.columns "
            "WHERE table_schema = DATABASE() AND table_name = :t AND column_name = 'session_key'",
            t=name,
        )
        assert row == "varbinary(1024)"
        charset = await _scalar(
            store,
            "SELECT CHARACTER_SET_NAME FROM information_schema.columns WHERE "
            "table_schema = DATABASE() AND table_name = :t AND column_name = 'question'",
            t=store.tables.entries,
        )
        assert charset == "utf8mb4"


async def test_nul_and_marker_strings_round_trip(store: SQLStore) -> None:
    texts = ["a\x00b", "\x00", "\x01starts with the marker", '\x01"quoted"\x00', "plain"]
    for value in texts:
        qa_id = await store.create_qa_entry("s", None, value, value, value, feedback_text=value)
        entry = await store.get_qa_entry("s", None, qa_id)
        assert entry is not None
        assert (entry.question, entry.answer, entry.context, entry.feedback_text) == (value,) * 4
        await store.set_graph_context("s", None, value)
        assert await store.get_graph_context("s", None) == value
        step = SessionTraceStep(origin_function="f", status="ok", memory_query=value)
        await store.save_trace_step("s", None, step)
        assert (await store.read_trace_steps("s", None, 1))[0].memory_query == value
    stored = await _scalar(
        store, f"SELECT question FROM {store.tables.entries} ORDER BY seq LIMIT 1"
    )
    if store.dialect == "postgresql":
        assert stored == '\x01"a\\u0000b"'  # escaped: text cannot hold NUL
    else:
        assert stored == "a\x00b"


async def test_anonymous_user_is_stored_apart_from_every_string(store: SQLStore) -> None:
    await store.create_qa_entry("s", None, "anonymous", "a")
    await store.create_qa_entry("s", " ", "space", "a")
    users = {i.user_id for i in (await store.list_sessions(None)).items}
    assert users == {None}
    exported = sorted([str(d["user_id"]) async for d in store.export_sessions()])
    assert exported == [" ", "None"]


async def test_prune_empties_only_its_own_tables(url: str, server: str) -> None:
    other_url = f"{server}?table_prefix=o{uuid.uuid4().hex[:12]}_"
    try:
        async with SQLStore.from_url(url) as mine, SQLStore.from_url(other_url) as other:
            await mine.create_qa_entry("s", "u", "mine", "a")
            await other.create_qa_entry("s", "u", "other", "a")
            await mine.prune()
            assert await mine.count_qa_entries("s", "u") == 0
            assert await other.count_qa_entries("s", "u") == 1
    finally:
        await drop_namespace(other_url)


@pytest.mark.parametrize("prefix", ["Upper_", "1abc", "a-b", "a b", "x" * 33, "a;drop"])
def test_bad_table_prefix_is_rejected(server: str, prefix: str) -> None:
    with pytest.raises(InvalidParameterError, match="table_prefix"):
        open_store(server, table_prefix=prefix)


def test_options_come_from_the_url_or_keywords(server: str) -> None:
    store = open_store(f"{server}?pool_size=3&pool_timeout=2.5&auto_migrate=false&ttl=9")
    assert isinstance(store, SQLStore)
    assert store._engine_options.pool_size == 3
    assert store._engine_options.pool_timeout == 2.5
    assert store.auto_migrate is False
    assert store.ttl == 9
    with pytest.raises(InvalidParameterError, match="valid options"):
        open_store(f"{server}?pool_sise=3")
    with pytest.raises(InvalidParameterError, match="keyword"):
        open_store(f"{server}?engine=x")


def test_password_stays_out_of_repr(server: str) -> None:
    scheme, rest = server.split("://", 1)
    store = open_store(f"{scheme}://user:hunter2@{rest.split('@')[-1]}")
    assert "hunter2" not in repr(store)
    assert "***" in repr(store)


async def test_auto_migrate_off_refuses_an_empty_database(url: str) -> None:
    store = SQLStore.from_url(url, auto_migrate=False)
    try:
        with pytest.raises(StoreError, match=r"migrate\(\)"):
            await store.open()
        await store.migrate()
        await store.open()
        await store.create_qa_entry("s", "u", "q", "a")
        assert await store.count_qa_entries("s", "u") == 1
    finally:
        await store.close()


async def test_a_newer_database_is_refused(store: SQLStore, url: str) -> None:
    await _execute(store, f"UPDATE {store.tables.version} SET version = 99")
    newer = SQLStore.from_url(url)
    try:
        with pytest.raises(StoreError, match="version 99, newer"):
            await newer.count_qa_entries("s", "u")
    finally:
        await newer.close()


async def _execute(store: SQLStore, sql: str) -> None:
    async with store._get_engine().begin() as conn:
        await conn.execute(text(sql))


async def test_migration_is_recorded_and_idempotent(store: SQLStore) -> None:
    assert await _scalar(store, f"SELECT version FROM {store.tables.version}") == 1
    await store.migrate()
    assert await _scalar(store, f"SELECT COUNT(*) FROM {store.tables.version}") == 1


async def test_expired_sessions_are_swept_in_batches(url: str) -> None:
    async with SQLStore.from_url(url, ttl=0.3, sweep_batch=3, sweep_interval=3600) as store:
        for i in range(7):
            await store.create_qa_entry(f"old{i}", "u", "q", "a")
        if store._sweeper is not None:
            await store._sweeper  # the first write's background sweep
        await asyncio.sleep(0.5)  # lets the ttl pass
        await store.create_qa_entry("fresh", "u", "q", "a")
        assert await store.sweep_expired(max_batches=1) == 3
        assert await store.sweep_expired() == 4
        assert await _scalar(store, f"SELECT COUNT(*) FROM {store.tables.entries}") == 1
        assert await _scalar(store, f"SELECT COUNT(*) FROM {store.tables.sessions}") == 1
        assert [i.session_id for i in (await store.list_sessions("u")).items] == ["fresh"]


async def test_injected_engine_is_used_and_not_disposed(server: str) -> None:
    engine = create_async_engine(driver_url(server)[0])
    prefix = f"e{uuid.uuid4().hex[:12]}_"
    try:
        store = SQLStore(engine=engine, table_prefix=prefix)
        async with store:
            await store.create_qa_entry("s", "u", "q", "a")
            assert store._get_engine() is engine
        async with engine.connect() as conn:  # still usable after the store closed
            count = await conn.scalar(text(f"SELECT COUNT(*) FROM {prefix}entries"))
        assert count == 1
        await SQLStore(engine=engine, table_prefix=prefix).drop_tables()
    finally:
        await engine.dispose()


async def test_unreachable_server_is_unavailable_quickly(server: str) -> None:
    scheme = server.split("://", 1)[0]
    store = open_store(f"{scheme}://user:hunter2@127.0.0.1:{free_port()}/db", connect_timeout=2)
    started = time.monotonic()
    try:
        with pytest.raises(StoreUnavailableError) as caught:
            await store.create_qa_entry("s", "u", "q", "a")
    finally:
        await store.close()
    assert time.monotonic() - started < 5
    assert "hunter2" not in str(caught.value)


async def test_driver_errors_become_store_errors(store: SQLStore) -> None:
    await store.create_qa_entry("s", "u", "q", "a")
    await store.drop_tables()  # the tables vanish under an open store
    with pytest.raises(StoreError, match="refused") as caught:
        await store.count_qa_entries("s", "u")
    assert type(caught.value) is StoreError
    assert caught.value.__cause__ is not None


def test_missing_extra_names_the_pip_install(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    driver, extra = ("asyncpg", "postgres") if "postgres" in server else ("asyncmy", "mysql")
    monkeypatch.setitem(sys.modules, driver, None)
    with pytest.raises(MissingDependencyError, match=rf"sessionstore\[{extra}\]"):
        open_store(server)


def test_import_sessionstore_does_not_import_sqlalchemy() -> None:
    code = (
        "import sys, sessionstore; "
        "bad = [m for m in sys.modules "
        "if m.split('.')[0] in ('sqlalchemy', 'asyncpg', 'asyncmy')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


async def test_injected_mariadb_dialect_engine_works() -> None:
    rest = server_url("mariadb").split("://", 1)[1]
    engine = create_async_engine(f"mariadb+asyncmy://{rest}")
    prefix = f"m{uuid.uuid4().hex[:12]}_"
    try:
        async with SQLStore(engine=engine, table_prefix=prefix) as store:
            assert store.dialect == "mysql"
            await store.create_qa_entry("x ", "u", "q", "a")
            assert await store.count_qa_entries("x", "u") == 0
            assert await store.count_qa_entries("x ", "u") == 1
            await store.drop_tables()
    finally:
        await engine.dispose()
