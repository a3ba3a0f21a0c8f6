"""What only the SQL backend has: its schema, migrations, encodings and options."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy import create_engine, text
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
from sessionstore.backends.sql.mysql import MySQL
from sessionstore.backends.sql.postgres import PostgreSQL
from sessionstore.backends.sql.schema import SCHEMA_VERSION
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
    assert await _scalar(store, f"SELECT version FROM {store.tables.version}") == SCHEMA_VERSION
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
    engine = create_async_engine(driver_url(server))
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


@pytest.mark.parametrize("kind", ["sync engine", "URL"])
def test_an_engine_must_be_an_async_engine(server: str, kind: str) -> None:
    engine: Any = create_engine(driver_url(server)) if kind == "sync engine" else server
    with pytest.raises(InvalidParameterError, match="engine must be a SQLAlchemy AsyncEngine"):
        SQLStore(engine=engine)


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


# -- every option is checked by open_store, before any I/O ------------------------

BAD_OPTIONS = [
    ("max_overflow", -5),
    ("pool_size", 0),
    ("pool_size", True),
    ("pool_timeout", -1),
    ("pool_recycle", 0),
    ("connect_timeout", -1),
    ("connect_timeout", float("nan")),
    ("connect_timeout", 0),
    ("command_timeout", 0),
    ("command_timeout", float("inf")),
    ("lock_timeout", -1),
    ("lock_timeout", 10**9),
    ("retries", -1),
    ("sweep_interval", float("nan")),
    ("sweep_batch", 0),
    ("auto_migrate", "yes"),
    ("pre_ping", 1),
    ("connect_args", ["ssl"]),
    ("engine", "postgresql://elsewhere/db"),
]


@pytest.mark.parametrize(("option", "value"), BAD_OPTIONS)
def test_every_bad_option_is_refused_by_open_store(server: str, option: str, value: Any) -> None:
    # Nothing listens there: an option let through would fail later, and differently.
    scheme = server.split("://", 1)[0]
    with pytest.raises(InvalidParameterError, match=option):
        open_store(f"{scheme}://u:pw@127.0.0.1:{free_port()}/db", **{option: value})


@pytest.mark.parametrize(
    "query",
    [
        "max_overflow=-5",
        "connect_timeout=nan",
        "connect_timeout=-1",
        "lock_timeout=-1",
        "command_timeout=0",
        "retries=-1",
        "sweep_batch=0",
    ],
)
def test_bad_options_in_the_url_are_refused_too(server: str, query: str) -> None:
    scheme = server.split("://", 1)[0]
    with pytest.raises(InvalidParameterError, match=query.split("=", 1)[0]):
        open_store(f"{scheme}://u:pw@127.0.0.1:{free_port()}/db?{query}")


# -- tables the store did not create are never adopted ----------------------------


@pytest.fixture
async def own_database(server: str) -> AsyncIterator[str]:
    """Yield the URL of a new, empty database, so stores may use the empty table prefix."""
    name = f"sessionstore_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(driver_url(server), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f"CREATE DATABASE {name}"))
        yield urlunsplit(urlsplit(server)._replace(path=f"/{name}"))
        async with admin.connect() as conn:
            force = " WITH (FORCE)" if admin.dialect.name == "postgresql" else ""
            await conn.execute(text(f"DROP DATABASE {name}{force}"))
    finally:
        await admin.dispose()


# An application's own tables, named like ours: one of them is the database's only table.
APPLICATION_TABLES = {
    "entries": "CREATE TABLE entries (id INT PRIMARY KEY, note VARCHAR(100))",
    "sessions": "CREATE TABLE sessions (id INT PRIMARY KEY, user_key VARCHAR(100))",
    "trace_steps": "CREATE TABLE trace_steps (id INT PRIMARY KEY, step VARCHAR(100))",
    "items": "CREATE TABLE items (id INT PRIMARY KEY, data VARCHAR(100))",
    "scoped_states": "CREATE TABLE scoped_states (id INT PRIMARY KEY, state VARCHAR(100))",
    # Our version table's very shape, holding the application's own row.
    "schema_version": "CREATE TABLE schema_version (id INT PRIMARY KEY, version INT NOT NULL)",
}


async def _tables(engine: Any) -> set[str]:
    async with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            sql = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        else:
            sql = "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()"
        return {str(name) for name in (await conn.execute(text(sql))).scalars()}


@pytest.mark.parametrize("table", sorted(APPLICATION_TABLES))
async def test_an_application_table_named_like_ours_is_never_adopted(
    own_database: str, table: str
) -> None:
    app = create_async_engine(driver_url(own_database))
    try:
        async with app.begin() as conn:
            await conn.execute(text(APPLICATION_TABLES[table]))
            await conn.execute(text(f"INSERT INTO {table} VALUES (7, 3)"))
        store = SQLStore.from_url(own_database)  # the default, empty, table prefix
        calls: dict[str, Callable[[], Awaitable[object]]] = {
            "open": store.open,
            "prune": store.prune,
            "create": lambda: store.create_qa_entry("s", "u", "q", "a"),
            "migrate": store.migrate,
            "drop_tables": store.drop_tables,
        }
        for name, call in calls.items():
            with pytest.raises(StoreError, match="did not create") as caught:
                await call()
            assert type(caught.value) is StoreError, name
        await store.close()
        async with app.connect() as conn:
            assert await conn.scalar(text(f"SELECT COUNT(*) FROM {table}")) == 1
        assert await _tables(app) == {table}  # nothing of ours was created beside it
    finally:
        await app.dispose()


# Only MySQL/MariaDB DDL can stop halfway: PostgreSQL's is transactional.
@pytest.mark.parametrize("server", ["mariadb"], indirect=True)
async def test_a_migration_that_stopped_halfway_is_finished(url: str) -> None:
    async with SQLStore.from_url(url) as store:
        await _execute(store, f"DROP TABLE {store.tables.traces}")
        await _execute(store, f"DROP TABLE {store.tables.graph}")
        await _execute(store, f"UPDATE {store.tables.version} SET version = 0")
    async with SQLStore.from_url(url) as store:
        await store.save_trace_step("s", "u", SessionTraceStep(origin_function="f", status="ok"))
        assert await _scalar(store, f"SELECT version FROM {store.tables.version}") == SCHEMA_VERSION


# -- a missing dependency -----------------------------------------------------------


@pytest.mark.parametrize(("scheme", "extra"), [("postgresql", "postgres"), ("mysql", "mysql")])
def test_missing_greenlet_is_a_missing_dependency(scheme: str, extra: str) -> None:
    # SQLAlchemy is installed, greenlet is not: its asyncio support cannot load.
    code = (
        "import sys\n"
        "sys.modules['greenlet'] = None\n"
        "from sessionstore import MissingDependencyError, open_store\n"
        "try:\n"
        f"    open_store('{scheme}://u@127.0.0.1/db')\n"
        "except MissingDependencyError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "greenlet" in done.stdout
    assert f"pip install 'sessionstore[{extra}]'" in done.stdout


def test_schema_version_is_the_number_of_migration_steps_of_each_dialect() -> None:
    assert len(PostgreSQL.migrations) == len(MySQL.migrations) == SCHEMA_VERSION
