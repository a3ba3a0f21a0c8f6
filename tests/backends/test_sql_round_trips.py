"""Round trips per call of the SQL backend, counted on the wire by a TCP relay.

The relay passes bytes unchanged between the store and the real server and
counts how often the client starts talking again after the server answered:
that is one round trip. Speed depends on it more than on anything else.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

import pytest

from sessionstore import SessionQAUpdate
from sessionstore.backends.sql import SQLStore
from sessionstore.backends.sql import engine as sql_engine
from tests.backends.sql_fixtures import SERVERS, drop_namespace
from tests.servers import server_url

pytestmark = pytest.mark.timeout(120)


class Relay:
    """A TCP relay to one server that counts the client's turns to speak."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.trips = 0
        self._client_spoke_last = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def stop(self) -> None:
        self.server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        for task in (
            asyncio.create_task(self._pipe(reader, up_writer, client=True)),
            asyncio.create_task(self._pipe(up_reader, writer, client=False)),
        ):
            self._tasks.add(task)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, client: bool
    ) -> None:
        try:
            while data := await reader.read(65536):
                if client and not self._client_spoke_last:
                    self.trips += 1
                self._client_spoke_last = client
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


@pytest.fixture(params=SERVERS)
async def relayed(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, Relay]]:
    """Yield a store URL that goes through a counting relay, and the relay."""
    url = f"{server_url(request.param)}?table_prefix=r{uuid.uuid4().hex[:12]}_"
    parts = urlsplit(url)
    relay = Relay(parts.hostname or "127.0.0.1", parts.port or 0)
    port = await relay.start()
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"
    yield urlunsplit(parts._replace(netloc=netloc)), relay
    await relay.stop()
    await drop_namespace(url)


async def _trips(relay: Relay, call: Callable[[], Awaitable[object]], times: int = 20) -> float:
    await call()  # first use: statements are prepared, connections opened
    before = relay.trips
    for _ in range(times):
        await call()
    return (relay.trips - before) / times


async def test_every_hot_call_is_one_round_trip(relayed: tuple[str, Relay]) -> None:
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
    relayed: tuple[str, Relay], pre_ping: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, relay = relayed
    async with SQLStore.from_url(url, pre_ping=pre_ping) as store:
        assert await _trips(relay, lambda: store.count_qa_entries("s", "u")) == 1.0
        # Every connection now counts as idle: with pre_ping each checkout pings first.
        monkeypatch.setattr(sql_engine, "PING_IDLE", -1.0)
        trips = await _trips(relay, lambda: store.count_qa_entries("s", "u"))
    assert trips == (2.0 if pre_ping else 1.0)


async def test_a_write_right_after_the_server_killed_the_connection_works(
    relayed: tuple[str, Relay],
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
