"""Round trips per call of the SQL backend, counted on the wire by a TCP relay.

The relay (``tests/tcp_proxy.py``) passes bytes unchanged between the store
and the real server and counts how often the client starts talking again
after the server answered: that is one round trip. Speed depends on it more
than on anything else.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from sessionstore import SessionQAUpdate
from sessionstore.backends.sql import SQLStore
from sessionstore.backends.sql import engine as sql_engine
from tests.backends.sql_fixtures import SERVERS, drop_namespace
from tests.servers import server_url
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(params=SERVERS)
async def relayed(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, TcpProxy]]:
    """Yield a store URL that goes through a counting relay, and the relay."""
    url = f"{server_url(request.param)}?table_prefix=r{uuid.uuid4().hex[:12]}_"
    async with TcpProxy.to(url) as relay:
        yield relay.url(url), relay
    await drop_namespace(url)


async def _trips(relay: TcpProxy, call: Callable[[], Awaitable[object]], times: int = 20) -> float:
    await call()  # first use: statements are prepared, connections opened
    before = relay.trips
    for _ in range(times):
        await call()
    return (relay.trips - before) / times


async def test_every_hot_call_is_one_round_trip(relayed: tuple[str, TcpProxy]) -> None:
    url, relay = relayed
    # One connection, so each statement is prepared once (on first use) and reused.
    async with SQLStore.from_url(url, ttl=3600, pool_size=1, max_overflow=0) as store:
        ids = [await store.create_qa_entry("s", "u", f"q{i}", "a") for i in range(30)]
        if store._sweeper is not None:  # the first write started the background sweep
            await store._sweeper
        spare = iter(ids)
        update = SessionQAUpdate(feedback_score=1)
        unknown = str(uuid.uuid4())
        calls: dict[str, Callable[[], Awaitable[object]]] = {
            "create": lambda: store.create_qa_entry("s", "u", "q", "a"),
            "create in a new session": lambda: store.create_qa_entry(
                uuid.uuid4().hex, "u", "q", "a"
            ),
            "update": lambda: store.update_qa_entry("s", "u", ids[0], update),
            "update of an unknown id": lambda: store.update_qa_entry("s", "u", unknown, update),
            "delete entry": lambda: store.delete_qa_entry("s", "u", next(spare)),
            "latest 10": lambda: store.get_latest_qa_entries("s", "u", 10),
            "count": lambda: store.count_qa_entries("s", "u"),
            "delete session": lambda: store.delete_session(uuid.uuid4().hex, "u"),
        }
        trips = {name: await _trips(relay, call) for name, call in calls.items()}
    assert trips == dict.fromkeys(calls, 1.0)


@pytest.mark.parametrize("pre_ping", [True, False])
async def test_only_idle_connections_are_pinged(
    relayed: tuple[str, TcpProxy], pre_ping: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, relay = relayed
    async with SQLStore.from_url(url, pre_ping=pre_ping) as store:
        assert await _trips(relay, lambda: store.count_qa_entries("s", "u")) == 1.0
        # Every connection now counts as idle: with pre_ping each checkout pings first.
        monkeypatch.setattr(sql_engine, "PING_IDLE", -1.0)
        trips = await _trips(relay, lambda: store.count_qa_entries("s", "u"))
    assert trips == (2.0 if pre_ping else 1.0)


async def test_a_write_right_after_the_server_killed_the_connection_works(
    relayed: tuple[str, TcpProxy],
) -> None:
    url, _ = relayed
    async with SQLStore.from_url(url, pool_size=1, max_overflow=0) as store:
        await store.create_qa_entry("s", "u", "before", "a")
        async with store._get_engine().connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
        # End the store's only connection from the server side, as a restart would.
        if store.dialect == "postgresql":
            pid = driver.get_server_pid()
            sql = f"SELECT pg_terminate_backend({int(pid)})"
        else:
            sql = f"KILL {int(driver.thread_id())}"
        async with SQLStore.from_url(url) as killer, killer._get_engine().connect() as conn:
            await conn.exec_driver_sql(sql)
        # The driver learns it from the closed socket, without a round trip.
        for _ in range(500):
            if sql_engine._driver_closed(driver):
                break
            await asyncio.sleep(0.01)
        assert sql_engine._driver_closed(driver)
        # Not a read (which is retried once anyway): a write, which never is.
        await store.create_qa_entry("s", "u", "after", "a")
        assert [e.question for e in await store.get_all_qa_entries("s", "u")] == [
            "before",
            "after",
        ]


async def test_the_relay_counts_round_trips_on_each_connection_apart() -> None:
    # The relay itself, on interleaved traffic: two clients speak before either is answered.
    heard: list[asyncio.StreamWriter] = []
    both_spoke = asyncio.Event()

    async def answer_when_both_spoke(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while await reader.read(1):
            heard.append(writer)
            if len(heard) % 2 == 0:
                both_spoke.set()

    server = await asyncio.start_server(answer_when_both_spoke, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with TcpProxy("127.0.0.1", port) as relay:
            clients = [await asyncio.open_connection("127.0.0.1", relay.port) for _ in range(2)]
            for _ in range(2):  # each round: A asks, B asks, then both are answered
                both_spoke.clear()
                for _, writer in clients:
                    writer.write(b"?")
                    await writer.drain()
                await asyncio.wait_for(both_spoke.wait(), 5)
                for writer in heard[-2:]:
                    writer.write(b"!")
                for reader, _ in clients:
                    assert await asyncio.wait_for(reader.readexactly(1), 5) == b"!"
            assert relay.trips == 4
            for _, writer in clients:
                writer.close()
    finally:
        for writer in heard:
            writer.close()
        server.close()
        await server.wait_closed()
