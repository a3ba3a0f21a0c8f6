"""The SQL backend when the server stalls, when writes race an import, and at the packet limit.

A stalled server is a loopback proxy (``tests/tcp_proxy.py``) in front of
the real one that stops forwarding: the TCP connections stay open, nothing
comes back, as when a server hangs or the network drops packets. Each call
is guarded by ``asyncio.wait_for`` so that a call that would hang fails the
test instead of the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from sessionstore import (
    InvalidParameterError,
    SessionManager,
    SessionQAUpdate,
    SessionTraceStep,
    StoreError,
    StoreUnavailableError,
)
from sessionstore.backends.sql import SQLStore
from sessionstore.backends.sql import engine as sql_engine
from sessionstore.backends.sql.engine import driver_url
from sessionstore.clock import now_utc
from sessionstore.records import SessionData
from sessionstore.validation import DEFAULT_MAX_FIELD_BYTES
from tests.backends.sql_fixtures import SERVERS, drop_namespace
from tests.servers import server_url
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.timeout(120)

DEADLINE = 0.5  # command_timeout of the stalled stores
SLACK = 1.5  # what a loaded machine may add to a deadline
GUARD = 10.0  # a call still running after this would have hung


@pytest.fixture(params=SERVERS)
async def url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    prefixed = f"{server_url(request.param)}?table_prefix=f{uuid.uuid4().hex[:12]}_"
    yield prefixed
    await drop_namespace(prefixed)


@pytest.fixture
async def proxy(url: str) -> AsyncIterator[TcpProxy]:
    async with TcpProxy.to(url) as started:
        yield started


async def _export(store: SQLStore) -> object:
    return [dump async for dump in store.export_sessions()]


async def _lock(store: SQLStore) -> object:
    async with SessionManager(store).improve_lock("s", "u") as held:
        return held


async def _import(store: SQLStore) -> object:
    dump = SessionData("i", "u", now_utc(), now_utc(), "graph", [], []).to_dump()
    return await store.import_sessions([dump])


async def _times_out(call: Awaitable[object], within: float, match: str) -> None:
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError, match=match):
        await asyncio.wait_for(call, GUARD)
    assert time.monotonic() - started < within


async def _pooled_drivers(store: SQLStore, count: int) -> list[object]:
    """Open ``count`` connections in the store's pool; return their driver connections."""
    async with contextlib.AsyncExitStack() as stack:
        engine = store._get_engine()
        conns = [await stack.enter_async_context(engine.connect()) for _ in range(count)]
        return [(await conn.get_raw_connection()).driver_connection for conn in conns]


async def test_a_server_stalling_under_pooled_connections_times_out_every_call(
    url: str, proxy: TcpProxy
) -> None:
    calls: dict[str, Callable[[SQLStore], Awaitable[object]]] = {
        "create": lambda store: store.create_qa_entry("s", "u", "q", "a"),
        "update": lambda store: store.update_qa_entry(
            "s", "u", str(uuid.uuid4()), SessionQAUpdate(feedback_score=2)
        ),
        "delete entry": lambda store: store.delete_qa_entry("s", "u", str(uuid.uuid4())),
        "latest": lambda store: store.get_latest_qa_entries("s", "u", 5),
        "count": lambda store: store.count_qa_entries("s", "u"),
        "list": lambda store: store.list_sessions("u"),
        "graph": lambda store: store.set_graph_context("s", "u", "g"),
        "trace": lambda store: store.save_trace_step(
            "s", "u", SessionTraceStep(origin_function="f", status="ok")
        ),
        "delete session": lambda store: store.delete_session("gone", "u"),
        "import": _import,
        "export": _export,
        "prune": lambda store: store.prune(),
        "sweep": lambda store: store.sweep_expired(),
        "improve_lock": _lock,
    }
    # One pooled connection per call, all warm: each call runs on one that was fine.
    store = SQLStore.from_url(
        proxy.url(url), command_timeout=DEADLINE, pool_size=len(calls), max_overflow=0
    )
    async with store:
        await store.create_qa_entry("s", "u", "before", "a")
        drivers = await _pooled_drivers(store, len(calls))
        proxy.stall()
        started = time.monotonic()
        running = asyncio.gather(*(call(store) for call in calls.values()), return_exceptions=True)
        outcomes = await asyncio.wait_for(running, GUARD)
        assert time.monotonic() - started < DEADLINE + SLACK
        for name, outcome in zip(calls, outcomes, strict=True):
            assert isinstance(outcome, StoreUnavailableError), (name, outcome)
            assert "command_timeout" in str(outcome), name
        # Each was closed, not put back in the pool, where it would answer the next call wrongly.
        assert all(sql_engine._driver_closed(driver) for driver in drivers)
        proxy.resume()
        # The same store works again, on fresh connections.
        await store.create_qa_entry("s", "u", "after", "a")
        questions = [e.question for e in await store.get_all_qa_entries("s", "u")]
        # The stalled create may reach the server when the proxy lets it through,
        # before or after this one: a write that timed out may have landed.
        assert questions[0] == "before"
        assert sorted(questions[1:]) in (["after"], ["after", "q"])


async def test_a_store_closes_in_time_on_a_stalled_server(url: str, proxy: TcpProxy) -> None:
    store = SQLStore.from_url(proxy.url(url), command_timeout=DEADLINE)
    await store.create_qa_entry("s", "u", "q", "a")
    drivers = await _pooled_drivers(store, 3)
    proxy.stall()
    started = time.monotonic()
    await asyncio.wait_for(store.close(), GUARD)
    assert time.monotonic() - started < DEADLINE + SLACK
    assert all(sql_engine._driver_closed(driver) for driver in drivers)


async def test_a_server_stalling_in_the_handshake_times_out_with_connect_timeout(
    url: str, proxy: TcpProxy
) -> None:
    # command_timeout far away: only connect_timeout can end these calls in time.
    store = SQLStore.from_url(proxy.url(url), connect_timeout=DEADLINE, command_timeout=60)
    async with store:
        await store.create_qa_entry("s", "u", "q", "a")
        await store._get_engine().dispose()  # no pooled connection: the next call connects
        proxy.stall()
        await _times_out(store.count_qa_entries("s", "u"), DEADLINE + SLACK, "cannot reach")
        await _times_out(store.create_qa_entry("s", "u", "q", "a"), DEADLINE + SLACK, "reach")
        proxy.resume()
        assert await store.count_qa_entries("s", "u") == 1


async def test_a_store_first_opened_on_a_stalled_server_times_out_then_works(
    url: str, proxy: TcpProxy
) -> None:
    store = SQLStore.from_url(proxy.url(url), connect_timeout=DEADLINE, command_timeout=DEADLINE)
    proxy.stall()
    await _times_out(store.open(), DEADLINE + SLACK, "cannot reach|command_timeout")
    proxy.resume()
    await store.create_qa_entry("s", "u", "q", "a")
    assert await store.count_qa_entries("s", "u") == 1
    await store.close()


async def _connections_left(proxy: TcpProxy) -> int:
    """Return the connections still open through ``proxy`` once closes have arrived."""
    for _ in range(200):  # a closed socket reaches the proxy within a few loop turns
        if not proxy.connections:
            break
        await asyncio.sleep(0.01)
    return proxy.connections


async def test_a_store_closed_during_a_write_leaves_no_connection_open(
    url: str, proxy: TcpProxy
) -> None:
    # ttl and sweep_interval=0: before the fix, the write's end started a sweep on a new engine.
    store = SQLStore.from_url(
        proxy.url(url), ttl=3600, sweep_interval=0, pool_size=1, max_overflow=0
    )
    await store.create_qa_entry("s", "u", "first", "a")
    if store._sweeper is not None:
        await store._sweeper
    async with SQLStore.from_url(url) as other:
        # Another transaction holds the session row: the next write waits on the server.
        engine = other._get_engine().execution_options(isolation_level="READ COMMITTED")
        key = other._codec.key
        lock = text(
            f"SELECT qa_count FROM {other.tables.sessions} "
            "WHERE user_key = :u AND session_key = :s FOR UPDATE"
        )
        async with engine.connect() as holder:
            await holder.execute(lock, {"u": key("u"), "s": key("s")})
            sent = proxy.trips
            write = asyncio.create_task(store.create_qa_entry("s", "u", "second", "a"))
            for _ in range(500):  # until the write is on the wire, waiting for the lock
                if proxy.trips > sent:
                    break
                await asyncio.sleep(0.01)
            assert proxy.trips > sent
            await asyncio.wait_for(store.close(), GUARD)
            assert not write.done()
            await holder.rollback()
        await asyncio.wait_for(write, GUARD)  # it landed: it was sent before the close
        if store._sweeper is not None:
            await store._sweeper
        # Neither the write's connection nor one of a sweep started after the close is left.
        assert await _connections_left(proxy) == 0
        assert [e.question for e in await other.get_all_qa_entries("s", "u")] == [
            "first",
            "second",
        ]
    with pytest.raises(StoreError, match="closed"):
        await store.count_qa_entries("s", "u")


async def test_imports_and_writes_of_one_session_queue_like_other_writes(url: str) -> None:
    async with SQLStore.from_url(url, pool_size=10, max_overflow=40) as store:
        await store.create_qa_entry("s", "u", "imported 1", "a")
        await store.create_qa_entry("s", "u", "imported 2", "a")
        await store.set_graph_context("s", "u", "graph")
        dump = await anext(aiter(store.export_sessions()))
        imported = [entry["id"] for entry in dump["entries"]]
        for _ in range(2):
            await store.delete_session("s", "u")  # each round starts on a new session

            async def import_it() -> object:
                return await store.import_sessions([dump])

            async def write() -> object:
                return await store.create_qa_entry("s", "u", "written", "a")

            calls = [import_it() if i % 2 else write() for i in range(60)]
            results = await asyncio.gather(*calls, return_exceptions=True)
            assert [r for r in results if isinstance(r, BaseException)] == []
            # The last import replaced the session whole; only writes after it follow it.
            entries = await store.get_all_qa_entries("s", "u")
            assert [e.id for e in entries][:2] == imported
            assert {e.question for e in entries[2:]} <= {"written"}
            assert await store.count_qa_entries("s", "u") == len(entries)
            assert await store.get_graph_context("s", "u") == "graph"


# -- the packet limit of MySQL/MariaDB ------------------------------------------------


async def _max_allowed_packet(store: SQLStore) -> int:
    async with store._get_engine().connect() as conn:
        return int(await conn.scalar(text("SELECT @@max_allowed_packet")))


async def test_the_default_field_limit_is_a_field_the_server_takes(url: str) -> None:
    async with SQLStore.from_url(url) as store:
        if store.dialect == "mysql":
            # Lowered to what one packet always carries, escaping included.
            assert store.max_field_bytes <= await _max_allowed_packet(store) // 2
        else:
            assert store.max_field_bytes == DEFAULT_MAX_FIELD_BYTES
        # Quotes: each one is escaped into two characters on MySQL, the worst case.
        biggest = "'" * store.max_field_bytes
        qa_id = await store.create_qa_entry("s", "u", biggest, "a")
        entry = await store.get_qa_entry("s", "u", qa_id)
        assert entry is not None
        assert entry.question == biggest
        with pytest.raises(InvalidParameterError, match="max_field_bytes"):
            await store.create_qa_entry("s", "u", biggest + "'", "a")


FIRST_WRITES: dict[str, Callable[[SQLStore, str], Awaitable[object]]] = {
    "create": lambda store, big: store.create_qa_entry("s", "u", big, "a"),
    "update": lambda store, big: store.update_qa_entry(
        "s", "u", str(uuid.uuid4()), SessionQAUpdate(answer=big)
    ),
    "graph": lambda store, big: store.set_graph_context("s", "u", big),
    "trace": lambda store, big: store.save_trace_step(
        "s", "u", SessionTraceStep(origin_function="f", status="ok", memory_query=big)
    ),
    "import": lambda store, big: store.import_sessions(
        [SessionData("s", "u", now_utc(), now_utc(), big, [], []).to_dump()]
    ),
}


@pytest.mark.parametrize("server", ["mariadb"])
@pytest.mark.parametrize("call", sorted(FIRST_WRITES))
async def test_the_first_write_of_a_new_store_is_checked_against_the_servers_limit(
    server: str, call: str
) -> None:
    url = f"{server_url(server)}?table_prefix=f{uuid.uuid4().hex[:12]}_"
    try:
        async with SQLStore.from_url(url) as opened:
            limit = opened.max_field_bytes
        assert limit < DEFAULT_MAX_FIELD_BYTES  # lowered when the store opened
        # Not opened: the first call opens it, then checks the field against what it read.
        store = SQLStore.from_url(url)
        try:
            with pytest.raises(InvalidParameterError, match="max_field_bytes"):
                await FIRST_WRITES[call](store, "x" * (limit + 1))
            assert store.max_field_bytes == limit
            assert (await store.list_sessions("u")).items == []
        finally:
            await store.close()
    finally:
        await drop_namespace(url)


@pytest.mark.parametrize("server", ["mariadb"])
@pytest.mark.parametrize("borrowed", [False, True], ids=["built engine", "borrowed engine"])
async def test_a_write_over_the_servers_packet_is_refused_before_it_is_sent(
    server: str, borrowed: bool
) -> None:
    prefix = f"f{uuid.uuid4().hex[:12]}_"
    url = f"{server_url(server)}?table_prefix={prefix}"
    engine = create_async_engine(driver_url(server_url(server))) if borrowed else None
    store = SQLStore(
        server_url(server),
        engine=engine,
        table_prefix=prefix,
        max_field_bytes=DEFAULT_MAX_FIELD_BYTES,
    )
    try:
        async with store:
            packet = await _max_allowed_packet(store)
            qa_id = await store.create_qa_entry("s", "u", "kept", "a")
            dump = await anext(aiter(store.export_sessions()))
            # Each field fits max_field_bytes; escaped, they are over the packet together.
            half = "\\" * (packet // 4 + 1)
            huge = {**dump["entries"][0], "question": half, "answer": half}
            too_big: dict[str, Callable[[], Awaitable[object]]] = {
                "create": lambda: store.create_qa_entry("s", "u", half, half),
                "update": lambda: store.update_qa_entry(
                    "s", "u", qa_id, SessionQAUpdate(question=half, answer=half)
                ),
                "import": lambda: store.import_sessions([{**dump, "entries": [huge]}]),
            }
            for call in too_big.values():
                with pytest.raises(InvalidParameterError, match="max_allowed_packet"):
                    await call()
            # Nothing was written, and the store's connections are fine.
            assert [e.question for e in await store.get_all_qa_entries("s", "u")] == ["kept"]
            await store.create_qa_entry("s", "u", half, "a")
            assert await store.count_qa_entries("s", "u") == 2
        if engine is not None:  # left as it came: without the store's packet check
            assert not engine.sync_engine.dispatch.before_cursor_execute
    finally:
        if engine is not None:
            await engine.dispose()
        await drop_namespace(url)


@pytest.mark.parametrize("with_state", [False, True], ids=["append", "append with state"])
async def test_ten_thousand_items_over_one_packet_land_in_one_call(
    url: str, with_state: bool
) -> None:
    async with SQLStore.from_url(url) as store:
        await store.append_items("s", "u", ["first"])
        packet = await _max_allowed_packet(store) if store.dialect == "mysql" else 16 << 20
        each = packet // 10_000 + 1  # 10,000 of them: over one packet, escaping aside
        items = [{"n": i, "text": "\\'" * (each // 2)} for i in range(10_000)]
        state = {"turns": 1} if with_state else None
        ids = await store.append_items("s", "u", items, state=state)
        assert len(ids) == 10_000
        stored = await store.get_items("s", "u")
        assert [item.data for item in stored] == ["first", *items]
        assert [item.id for item in stored[1:]] == ids
        assert await store.count_items("s", "u") == 10_001
        assert (await store.get_state("s", "u")).data == (state or {})
        # Numbering went on from the split inserts: the next append comes last.
        await store.append_items("s", "u", ["last"])
        assert (await store.get_items("s", "u", last_n=2))[0].data == items[-1]
