"""What only the SQL backend has of the item log and states: tables, upgrade, plans, round trips.

The contract (``tests/contract/test_items.py``, ``test_state.py``) runs on
PostgreSQL and MariaDB too; this file checks how the SQL store keeps it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from sessionstore import (
    InvalidParameterError,
    SessionTraceStep,
    StoreError,
    StoreUnavailableError,
)
from sessionstore.backends.sql import SQLStore
from sessionstore.backends.sql import engine as sql_engine
from sessionstore.backends.sql.codec import state_from_doc, state_to_doc
from sessionstore.backends.sql.engine import driver_url
from sessionstore.backends.sql.schema import ITEMS_VERSION, SCHEMA_VERSION
from sessionstore.clock import now_utc, to_micros
from sessionstore.items import StateScope
from sessionstore.keys import SessionKey
from sessionstore.stored import compact_json, trace_to_json
from sessionstore.validation import DEFAULT_MAX_FIELD_BYTES
from tests.backends.sql_fixtures import SERVERS, drop_namespace
from tests.servers import server_url
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest) -> str:
    return server_url(request.param)


@pytest.fixture
async def url(server: str) -> AsyncIterator[str]:
    prefixed = f"{server}?table_prefix=i{uuid.uuid4().hex[:12]}_"
    yield prefixed
    await drop_namespace(prefixed)


async def _scalar(store: SQLStore, sql: str, **params: Any) -> Any:
    async with store._get_engine().connect() as conn:
        return await conn.scalar(text(sql), params)


# -- the state document ------------------------------------------------------------------


@pytest.mark.parametrize(
    "state",
    [
        {},
        {"a": "1"},
        {"": "null", "k\x00ey": '"v\\u0000"', "ü😀": "[1.0,-0.0,{}]", '"': '{"b":1,"a":[]}'},
        {"x": compact_json(2**64 + 1), "y": compact_json("a,b}:{c")},
    ],
)
def test_a_state_document_holds_each_value_text_exactly(state: dict[str, str]) -> None:
    doc = state_to_doc(state)
    assert state_from_doc(doc) == state
    assert list(state_from_doc(doc)) == list(state)
    if doc is not None:  # a readable JSON object of the values themselves, no raw NUL
        assert json.loads(doc) == {k: json.loads(v) for k, v in state.items()}
        assert "\x00" not in doc


async def test_items_and_state_are_stored_as_exact_json_text(url: str) -> None:
    async with SQLStore.from_url(url) as store:
        value = {"b": [1.0, -0.0], "a": "x\x00y"}
        await store.append_items("s", "u", [value])
        await store.update_state("s", "u", {"k": value})
        t = store.tables
        data = await _scalar(store, f"SELECT data FROM {t.items}")
        assert data == '{"b":[1.0,-0.0],"a":"x\\u0000y"}'
        assert await _scalar(store, f"SELECT state FROM {t.sessions}") == f'{{"k":{data}}}'
        assert await _scalar(store, f"SELECT state_rev FROM {t.sessions}") == 1
        counts = f"SELECT item_seq, item_count FROM {t.sessions}"
        async with store._get_engine().connect() as conn:
            assert tuple((await conn.execute(text(counts))).one()) == (1, 1)


async def test_user_and_app_states_are_rows_of_their_own_table(url: str) -> None:
    async with SQLStore.from_url(url) as store:
        await store.update_user_state(None, {"a": 1})
        await store.update_app_state("app", {"a": 2})
        await store.update_user_state("app", {"a": 3})
        rows = f"SELECT kind, name, state, revision FROM {store.tables.scoped} ORDER BY kind, name"
        async with store._get_engine().connect() as conn:
            found = [tuple(row) for row in await conn.execute(text(rows))]
        key = store._codec.key
        assert found == [
            ("app", key("app"), '{"a":2}', 1),
            ("user", key(None), '{"a":1}', 1),
            ("user", key("app"), '{"a":3}', 1),
        ]
        assert await _scalar(store, f"SELECT COUNT(*) FROM {store.tables.sessions}") == 0


async def test_prune_and_drop_tables_reach_the_new_tables(url: str) -> None:
    async with SQLStore.from_url(url) as store:
        await store.append_items("s", "u", [1])
        await store.update_app_state("a", {"k": 1})
        await store.prune()
        for table in (store.tables.items, store.tables.scoped, store.tables.sessions):
            assert await _scalar(store, f"SELECT COUNT(*) FROM {table}") == 0
        await store.drop_tables()
    async with SQLStore.from_url(url) as store:  # made again, from nothing
        assert await store.get_app_state("a") == await store.get_user_state(None)


async def test_a_swept_session_takes_its_items_and_state_along(url: str) -> None:
    async with SQLStore.from_url(url, ttl=60) as store:
        await store.append_turn("s", "u", [1, 2], state={"k": 1})
        if store._sweeper is not None:  # the first write started the background sweep
            await store._sweeper
        past = to_micros(now_utc()) - 1
        await _execute(store, f"UPDATE {store.tables.sessions} SET expires_at = {past}")
        assert await store.sweep_expired() == 1
        assert await _scalar(store, f"SELECT COUNT(*) FROM {store.tables.items}") == 0
        assert (await store.get_state("s", "u")).revision == 0


async def _execute(store: SQLStore, sql: str) -> None:
    async with store._get_engine().begin() as conn:
        await conn.execute(text(sql))


# -- upgrading a database made before the item log ------------------------------------------


async def _build_at(url: str, version: int) -> dict[str, Any]:
    """Make the namespace of ``url`` as the steps up to ``version`` left it, holding one session.

    The rows are written as that version's code wrote them: a session with an
    entry, a trace step and a graph context. Returns what the session holds.
    """
    store = SQLStore.from_url(url)  # never opened: only its dialect and its engine
    t, key = store.tables, store._codec.key
    now = to_micros(now_utc())
    entry_id = str(uuid.uuid4())
    step = SessionTraceStep(trace_id="t1", origin_function="f", status="ok")
    step = step.model_copy(update={"created_at": now_utc()})
    try:
        async with store._get_engine().begin() as conn:
            await conn.execute(
                text(f"CREATE TABLE {t.version} (id INT PRIMARY KEY, version INT NOT NULL)")
            )
            await conn.execute(text(f"INSERT INTO {t.version} VALUES (1, :v)"), {"v": version})
            for ddl in store._dialect.migrations[:version]:
                for statement in ddl.format(t=t).split(";"):
                    if statement.strip():
                        await conn.execute(text(statement.strip()))
            keys = {"u": key("u"), "s": key("old"), "now": now}
            await conn.execute(
                text(
                    f"INSERT INTO {t.sessions} (user_key, session_key, created_at, updated_at, "
                    "expires_at, next_seq, qa_count, trace_seq, trace_count, has_graph) "
                    "VALUES (:u, :s, :now, :now, NULL, 1, 1, 1, 1, TRUE)"
                ),
                keys,
            )
            await conn.execute(
                text(
                    f"INSERT INTO {t.entries} (user_key, session_key, seq, entry_id, created_at, "
                    "question, answer) VALUES (:u, :s, 1, :id, :now, 'q', 'a')"
                ),
                {**keys, "id": entry_id},
            )
            await conn.execute(
                text(
                    f"INSERT INTO {t.traces} (user_key, session_key, seq, step) "
                    "VALUES (:u, :s, 1, :step)"
                ),
                {**keys, "step": trace_to_json(step)},
            )
            await conn.execute(
                text(
                    f"INSERT INTO {t.graph} (user_key, session_key, context) "
                    "VALUES (:u, :s, 'graph')"
                ),
                keys,
            )
    finally:
        await store.close()
    return {"entry_id": entry_id, "step": step}


@pytest.mark.parametrize("version", [1, ITEMS_VERSION - 1])
async def test_a_database_from_before_the_item_log_upgrades_in_place(
    url: str, version: int
) -> None:
    made = await _build_at(url, version)
    old = SQLStore.from_url(url, auto_migrate=False)
    with pytest.raises(StoreError, match=rf"at schema version {version}, .* needs"):
        await old.open()
    await old.close()
    async with SQLStore.from_url(url) as store:
        t = store.tables
        assert await _scalar(store, f"SELECT version FROM {t.version}") == SCHEMA_VERSION
        # What the old version wrote reads as before, with no items and no state.
        assert [e.id for e in await store.get_all_qa_entries("old", "u")] == [made["entry_id"]]
        assert await store.read_trace_steps("old", "u") == [made["step"]]
        assert await store.get_graph_context("old", "u") == "graph"
        assert await store.get_items("old", "u") == []
        assert (await store.get_state("old", "u")).revision == 0
        (info,) = (await store.list_sessions("u")).items
        assert (info.qa_count, info.item_count) == (1, 0)
        # The old session takes items and state like a new one.
        ids = await store.append_items("old", "u", ["a", "b"])
        turn = await store.append_turn("old", "u", ["c"], state={"k": 1}, expected_revision=0)
        assert turn.revision == 1
        assert [i.id for i in await store.get_items("old", "u")] == [*ids, *turn.item_ids]
        assert await store.delete_qa_entry("old", "u", made["entry_id"])
        assert await store.count_items("old", "u") == 3
        assert await store.delete_session("old", "u")
        await store.update_app_state("app", {"k": 1})
        assert (await store.get_app_state("app")).data == {"k": 1}


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


@pytest.mark.parametrize("table", ["items", "scoped_states"])
async def test_an_application_table_named_like_a_new_one_stops_the_upgrade(
    own_database: str, table: str
) -> None:
    # The previous version's tables with the empty prefix, beside the application's own.
    await _build_at(own_database, ITEMS_VERSION - 1)
    app = create_async_engine(driver_url(own_database))
    try:
        async with app.begin() as conn:
            await conn.execute(text(f"CREATE TABLE {table} (id INT PRIMARY KEY, note INT)"))
            await conn.execute(text(f"INSERT INTO {table} VALUES (7, 3)"))
        store = SQLStore.from_url(own_database)
        with pytest.raises(StoreError, match="did not create"):
            await store.open()
        await store.close()
        async with app.connect() as conn:
            assert await conn.scalar(text(f"SELECT COUNT(*) FROM {table}")) == 1
            version = await conn.scalar(text("SELECT version FROM schema_version"))
            assert version == ITEMS_VERSION - 1  # nothing was migrated
    finally:
        await app.dispose()


# Only MySQL/MariaDB DDL can stop halfway: PostgreSQL's is transactional.
@pytest.mark.parametrize("server", ["mariadb"], indirect=True)
async def test_an_item_step_that_stopped_halfway_is_finished(url: str) -> None:
    await _build_at(url, ITEMS_VERSION - 1)
    store = SQLStore.from_url(url)
    step = store._dialect.migrations[ITEMS_VERSION - 1].format(t=store.tables).split(";")
    done = [statement for statement in step if "item_seq" not in statement]  # all but one
    assert any("ADD COLUMN" in statement for statement in done)
    async with store._get_engine().begin() as conn:
        for statement in done:
            await conn.execute(text(statement.strip()))
    await store.close()
    async with SQLStore.from_url(url) as store:
        assert await _scalar(store, f"SELECT version FROM {store.tables.version}") == SCHEMA_VERSION
        ids = await store.append_items("old", "u", [1, 2])
        assert [i.id for i in await store.get_items("old", "u")] == ids
        assert (await store.update_state("old", "u", {"k": 1})).revision == 1


# -- query plans ---------------------------------------------------------------------------

ITEM_READS = ("latest", "all", "count", "state", "scoped")


@pytest.mark.parametrize("name", ITEM_READS)
async def test_item_reads_use_indexes(url: str, name: str) -> None:
    async with SQLStore.from_url(url, ttl=60) as store:
        for i in range(30):
            await store.append_items(f"s{i % 3}", "u", [i, i])
            await store.update_app_state(f"a{i}", {"k": i})
        statement = getattr(store._dialect.item_sql, name)
        params = {
            **store._params(SessionKey("s1", "u")),
            **store._scope(StateScope("app", "a3")),
            "n": 20,
        }
        async with store._get_engine().connect() as conn:
            if store.dialect == "postgresql":
                # Tiny tables make a sequential scan cheapest; forbid it to see the index.
                await conn.execute(text("SET enable_seqscan = off"))
                rows = await conn.execute(text(f"EXPLAIN {statement.text}"), params)
                plan = "\n".join(r[0] for r in rows)
                assert "Seq Scan" not in plan, plan
                assert "Index" in plan, plan
                assert "Sort" not in plan, plan  # latest-n reads the index backward
            else:
                rows = (await conn.execute(text(f"EXPLAIN {statement.text}"), params)).mappings()
                for row in rows:
                    assert row["key"] == "PRIMARY", dict(row)
                    assert "filesort" not in (row["Extra"] or ""), dict(row)
            await conn.rollback()


# -- round trips -----------------------------------------------------------------------------


async def _trips(relay: TcpProxy, call: Callable[[], Awaitable[object]], times: int = 10) -> float:
    await call()  # first use: statements are prepared
    before = relay.trips
    for _ in range(times):
        await call()
    return (relay.trips - before) / times


async def test_item_calls_take_the_round_trips_of_entry_calls(url: str) -> None:
    async with TcpProxy.to(url) as relay:
        relayed = relay.url(url)
        async with SQLStore.from_url(relayed, ttl=3600, pool_size=1, max_overflow=0) as store:
            ids = await store.append_items("s", "u", list(range(40)))
            if store._sweeper is not None:  # the first write started the background sweep
                await store._sweeper
            spare = iter(ids)
            calls: dict[str, Callable[[], Awaitable[object]]] = {
                "append 4": lambda: store.append_items("s", "u", [{"n": 1}] * 4),
                "append 4 to a new session": lambda: store.append_items(
                    uuid.uuid4().hex, "u", [1, 2, 3, 4]
                ),
                "latest 20": lambda: store.get_items("s", "u", 20),
                "count": lambda: store.count_items("s", "u"),
                "state": lambda: store.get_state("s", "u"),
                "pop": lambda: store.pop_item("s", "u"),
                "delete": lambda: store.delete_item("s", "u", next(spare)),
                "clear": lambda: store.clear_items(uuid.uuid4().hex, "u"),
            }
            trips = {name: await _trips(relay, call) for name, call in calls.items()}
            assert trips == dict.fromkeys(calls, 1.0)
            # A state write locks, decides in Python, writes: one transaction.
            state_trips = await _trips(relay, lambda: store.update_state("s", "u", {"k": 1}))
            turn_trips = await _trips(
                relay, lambda: store.append_turn("s", "u", [1, 2, 3], state={"k": 2})
            )
            expected = 4.0 if store.dialect == "postgresql" else 2.0  # BEGIN, lock, write, COMMIT
            assert (state_trips, turn_trips) == (expected, expected)


# -- atomicity under load --------------------------------------------------------------------


async def test_many_pops_from_many_connections_return_each_item_once(url: str) -> None:
    async with SQLStore.from_url(url, pool_size=20) as first, SQLStore.from_url(url) as second:
        ids = await first.append_items("s", "u", list(range(60)))
        popped = await asyncio.gather(
            *(store.pop_item("s", "u") for _ in range(45) for store in (first, second))
        )
        got = [item.id for item in popped if item is not None]
        assert sorted(got) == sorted(ids)
        assert popped.count(None) == 30
        assert await _scalar(first, f"SELECT COUNT(*) FROM {first.tables.sessions}") == 0


async def test_a_failed_state_write_leaves_no_session_row_behind(url: str) -> None:
    async with SQLStore.from_url(url) as store:
        with pytest.raises(Exception, match="revision"):
            await store.append_turn("new", "u", [1], state={"k": 1}, expected_revision=3)
        assert await _scalar(store, f"SELECT COUNT(*) FROM {store.tables.sessions}") == 0
        # The connection went back clean: the next write on it lands.
        assert (await store.update_state("new", "u", {"k": 1})).revision == 1


@pytest.mark.parametrize("server", ["mariadb"], indirect=True)
async def test_an_item_over_the_servers_packet_is_refused_before_it_is_sent(url: str) -> None:
    # Items together over the packet are split (test_sql_faults.py); one item over it
    # can only come with a max_field_bytes set above what the server takes.
    async with SQLStore.from_url(url, max_field_bytes=DEFAULT_MAX_FIELD_BYTES) as store:
        async with store._get_engine().connect() as conn:
            packet = int(await conn.scalar(text("SELECT @@max_allowed_packet")))
        # It fits max_field_bytes; escaped twice (JSON, then SQL) it is over the packet.
        items = ["\\" * (packet // 4 + 1)]
        writes: dict[str, Callable[[], Awaitable[object]]] = {
            "append": lambda: store.append_items("s", "u", items),
            "turn": lambda: store.append_turn("s", "u", items, state={"k": 1}),
        }
        for name, write in writes.items():
            with pytest.raises(InvalidParameterError, match="max_allowed_packet"):
                await write()
            assert await _scalar(store, f"SELECT COUNT(*) FROM {store.tables.sessions}") == 0, name
        # Nothing was sent: the connections are fine and the next writes land.
        assert await store.append_items("s", "u", ["small"]) != []
        assert (await store.update_state("s", "u", {"k": 1})).revision == 1


# -- a stalled server ------------------------------------------------------------------------


async def _stalled_writes_ended(url: str, proxy: TcpProxy) -> None:
    """Wait until the proxy has passed on and closed every stalled connection, and
    the server has finished what they sent (no other connection of ours is busy)."""
    busy = {
        "postgresql": "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND state NOT IN ('idle')",
        "mysql": "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
        "WHERE DB = DATABASE() AND ID <> CONNECTION_ID() AND COMMAND <> 'Sleep'",
    }
    engine = create_async_engine(driver_url(url.split("?", maxsplit=1)[0]))
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            async with engine.connect() as conn:
                query = busy[conn.dialect.name]
                if not proxy.connections and not await conn.scalar(text(query)):
                    return
            await asyncio.sleep(0.01)  # polling a condition, with a deadline
        raise AssertionError("the stalled writes did not end within 10 s")
    finally:
        await engine.dispose()


async def test_item_calls_on_a_stalled_server_end_by_their_deadline(url: str) -> None:
    deadline = 0.5
    calls: dict[str, Callable[[SQLStore], Awaitable[object]]] = {
        "append": lambda store: store.append_items("s", "u", [1, 2]),
        "turn": lambda store: store.append_turn("s", "u", [1], state={"k": 1}),
        "state": lambda store: store.update_state("s", "u", {"k": 2}),
        "app state": lambda store: store.update_app_state("a", {"k": 2}),
        "items": lambda store: store.get_items("s", "u", 5),
        "pop": lambda store: store.pop_item("s", "u"),
        "delete": lambda store: store.delete_item("s", "u", str(uuid.uuid4())),
        "clear": lambda store: store.clear_items("s", "u"),
    }
    async with TcpProxy.to(url) as proxy:
        relayed = proxy.url(url)
        store = SQLStore.from_url(
            relayed, command_timeout=deadline, pool_size=len(calls), max_overflow=0
        )
        async with store:
            await store.append_items("s", "u", ["before"])
            async with contextlib.AsyncExitStack() as stack:  # every pooled connection warm
                engine = store._get_engine()
                conns = [await stack.enter_async_context(engine.connect()) for _ in calls]
                drivers = [(await c.get_raw_connection()).driver_connection for c in conns]
            proxy.stall()
            started = time.monotonic()
            running = asyncio.gather(
                *(call(store) for call in calls.values()), return_exceptions=True
            )
            outcomes = await asyncio.wait_for(running, 10.0)
            assert time.monotonic() - started < deadline + 1.5
            for name, outcome in zip(calls, outcomes, strict=True):
                assert isinstance(outcome, StoreUnavailableError), (name, outcome)
            # Each connection was closed, not put back in the pool mid-transaction.
            assert all(sql_engine._driver_closed(driver) for driver in drivers)
            proxy.resume()
            # The stalled writes reach the server now, and may land: let them end
            # first, or a stalled clear could land after the write below.
            await _stalled_writes_ended(url, proxy)
            # The same store works again.
            await store.append_items("s", "u", ["after"])
            assert (await store.get_items("s", "u", 1))[0].data == "after"
