"""One SQL store from any event loop and any thread: an engine per loop, none leaked.

These tests are plain functions that run their own loops (``asyncio.run``,
threads, loops closed by hand), as scripts, Celery tasks and Flask views do.
Server connections are counted exactly: on PostgreSQL by the store's own
``application_name``, on MariaDB by a user made for the test. ResourceWarnings
are errors here, and the garbage collector runs at the end of each test, so
an unclosed socket or transport fails it.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Coroutine, Iterator
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from sessionstore import InvalidParameterError, StoreError, open_store
from sessionstore.backends.sql import SQLStore
from sessionstore.backends.sql.engine import driver_url
from sessionstore.backends.sql.schema import Schema
from sessionstore.clock import now_utc, set_clock
from sessionstore.validation import DEFAULT_MAX_FIELD_BYTES
from tests.backends.sql_fixtures import SERVERS, drop_namespace
from tests.servers import server_url

pytestmark = pytest.mark.timeout(180)

T = TypeVar("T")
GUARD = 30.0  # a call still running after this would have hung


@pytest.fixture(autouse=True)
def _no_resource_warnings() -> Iterator[None]:
    """Make a ResourceWarning an error, and collect garbage before the test ends."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        yield
        gc.collect()


def run(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` in a new event loop, as a script's ``asyncio.run`` does."""
    return asyncio.run(asyncio.wait_for(work, GUARD))


def run_closing_by_hand(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` in a new loop closed without closing its async generators first."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(asyncio.wait_for(work, GUARD))
    finally:
        loop.close()


def _with_user(url: str, user: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


async def _scalar(url: str, sql: str, **params: Any) -> Any:
    """Run one statement on a connection of its own; return its first value, if any."""
    engine = create_async_engine(driver_url(url), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            result = await conn.execute(text(sql), params)
            return result.scalar() if result.returns_rows else None
    finally:
        await engine.dispose()


class Counted:
    """A store URL whose server connections can be counted, and nobody else's."""

    def __init__(self, url: str, admin: str, count_sql: str, **params: str) -> None:
        self.url = url
        self._admin = admin
        self._sql = count_sql
        self._params = params

    def count(self) -> int:
        """Return how many server connections the store at :attr:`url` has open now."""
        return int(asyncio.run(_scalar(self._admin, self._sql, **self._params)))

    def settles_at(self, most: int) -> int:
        """Return the count once it is at most ``most`` (closing is asynchronous server-side).

        Returns the last count seen after 20 seconds, if it never gets there.
        """
        deadline = time.monotonic() + 20
        seen = self.count()
        while seen > most and time.monotonic() < deadline:
            time.sleep(0.05)  # the server ends a session just after its socket closes
            seen = self.count()
        return seen


@pytest.fixture(params=SERVERS)
def counted(request: pytest.FixtureRequest) -> Iterator[Counted]:
    """A fresh namespace on each server, its connections counted; its tables dropped after."""
    server = server_url(request.param)
    token = uuid.uuid4().hex[:12]
    prefix = f"l{token}_"
    if request.param == "postgresql":
        name = f"sessionstore-{token}"
        url = f"{server}?table_prefix={prefix}&application_name={name}"
        sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"
        yield Counted(url, server, sql, name=name)
        run(drop_namespace(url))
        return
    user = f"u{token}"
    hosts = ("'%'", "'localhost'")  # 'localhost' beats an anonymous user there
    for host in hosts:
        run(_scalar(server, f"CREATE USER '{user}'@{host}"))
        run(_scalar(server, f"GRANT ALL ON test.* TO '{user}'@{host}"))
    url = f"{_with_user(server, user)}?table_prefix={prefix}"
    sql = "SELECT count(*) FROM information_schema.PROCESSLIST WHERE USER = :user"
    try:
        yield Counted(url, server, sql, user=user)
        run(drop_namespace(url))
    finally:
        for host in hosts:
            run(_scalar(server, f"DROP USER IF EXISTS '{user}'@{host}"))


async def _write_and_count(store: SQLStore, session: str, n: int) -> int:
    await store.create_qa_entry(session, "u", f"q{n}", "a")
    counts = await asyncio.gather(*(store.count_qa_entries(session, "u") for _ in range(3)))
    assert len(set(counts)) == 1
    return counts[0]


def test_one_store_in_successive_event_loops(counted: Counted) -> None:
    store = open_store(counted.url)
    assert [run(_write_and_count(store, "s", n)) for n in range(5)] == [1, 2, 3, 4, 5]
    entries = run(store.get_all_qa_entries("s", "u"))
    assert [e.question for e in entries] == [f"q{n}" for n in range(5)]
    run(store.close())
    assert counted.settles_at(0) == 0


def test_threads_each_with_its_own_loop_use_a_fresh_store_at_once(counted: Counted) -> None:
    store = open_store(counted.url)
    start = threading.Barrier(4)
    results: dict[int, object] = {}

    def worker(n: int) -> None:
        start.wait()  # the first calls race: the store opens once, in one of the loops
        try:
            results[n] = [run(_write_and_count(store, f"s{n}", k)) for k in range(3)]
        except BaseException as exc:  # shown by the assertion below
            results[n] = exc

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {n: [1, 2, 3] for n in range(4)}
    sessions = run(store.list_sessions("u"))
    assert sorted(info.session_id for info in sessions.items) == ["s0", "s1", "s2", "s3"]
    run(store.close())
    assert counted.settles_at(0) == 0


def test_the_schema_is_prepared_once_per_store_whatever_the_loops(
    counted: Counted, monkeypatch: pytest.MonkeyPatch
) -> None:
    prepared: list[int] = []
    original = Schema.prepare

    async def counting(self: Schema, *, auto_migrate: bool) -> str:
        prepared.append(threading.get_ident())
        return await original(self, auto_migrate=auto_migrate)

    monkeypatch.setattr(Schema, "prepare", counting)
    store = open_store(counted.url)
    for n in range(3):
        run(_write_and_count(store, "s", n))
    threads = [
        threading.Thread(target=lambda: run(store.count_qa_entries("s", "u"))) for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run(store.close())
    assert len(prepared) == 1


@pytest.mark.parametrize("ending", [run, run_closing_by_hand], ids=["asyncio.run", "loop.close"])
def test_connections_do_not_pile_up_with_loops(
    counted: Counted, ending: Callable[[Coroutine[Any, Any, int]], int]
) -> None:
    """Twenty loops of three concurrent calls each: a leak would leave 60 connections open."""
    store = open_store(counted.url)
    for n in range(20):
        assert ending(_write_and_count(store, "s", n)) == n + 1
    # A loop ended by asyncio.run closes its connections as it ends; one closed by
    # hand leaves them until the store's next engine or close: at most one loop's.
    assert counted.settles_at(0 if ending is run else 3) <= (0 if ending is run else 3)
    run(store.close())
    assert counted.settles_at(0) == 0


def test_a_store_opened_in_one_loop_is_closed_in_another(counted: Counted) -> None:
    store = open_store(counted.url)
    run(store.open())
    run(_write_and_count(store, "s", 0))
    run(store.close())
    assert counted.settles_at(0) == 0
    with pytest.raises(StoreError, match="closed"):
        run(store.count_qa_entries("s", "u"))


def test_close_ends_the_engine_of_another_threads_running_loop(counted: Counted) -> None:
    """As a sync facade or a worker thread keeps a loop running while the app closes the store."""
    store = open_store(counted.url)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever)
    thread.start()

    def there(work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, loop).result(GUARD)

    try:
        assert there(_write_and_count(store, "s", 0)) == 1
        assert counted.count() >= 1
        run(store.close())  # in another loop and thread
        assert counted.settles_at(0) == 0
        with pytest.raises(StoreError, match="closed"):
            there(store.count_qa_entries("s", "u"))
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


def test_close_leaves_a_stopped_loops_engine_to_that_loops_shutdown(counted: Counted) -> None:
    """A loop neither running nor closed when the store closes: its own shutdown ends it."""
    store = open_store(counted.url)
    stopped = asyncio.new_event_loop()
    assert stopped.run_until_complete(_write_and_count(store, "s", 0)) == 1
    run(store.close())  # in another loop, while `stopped` is idle
    with pytest.raises(StoreError, match="closed"):
        stopped.run_until_complete(store.count_qa_entries("s", "u"))
    assert counted.count() >= 1  # still open: nothing can run in that loop meanwhile
    stopped.run_until_complete(stopped.shutdown_asyncgens())  # as asyncio.Runner.close does
    stopped.close()
    assert counted.settles_at(0) == 0


@pytest.mark.parametrize("server", SERVERS)
def test_the_expiry_sweep_runs_in_the_loop_of_the_write_that_starts_it(server: str) -> None:
    url = f"{server_url(server)}?table_prefix=w{uuid.uuid4().hex[:12]}_"
    store = open_store(url, ttl=60, sweep_interval=0)
    assert isinstance(store, SQLStore)
    start = now_utc()

    async def write_then_sweep(session: str) -> bool:
        await store.create_qa_entry(session, "u", "q", "a")
        sweep = store._sweeper
        assert sweep is not None
        assert sweep.get_loop() is asyncio.get_running_loop()
        await sweep
        async with store._get_engine().connect() as conn:
            rows = await conn.scalar(
                text(f"SELECT count(*) FROM {store.tables.sessions} WHERE session_key = :s"),
                {"s": store._codec.key("old")},
            )
        return bool(rows)

    try:
        assert run(write_then_sweep("old"))  # this loop's sweep found nothing expired
        with set_clock(lambda: start + timedelta(seconds=120)):  # "old" has expired
            assert not run(write_then_sweep("new"))  # the next loop's sweep deleted it
    finally:
        run(store.drop_tables())
        run(store.close())


def test_the_packet_limit_is_checked_on_every_loops_engine() -> None:
    server = server_url("mariadb")
    prefix = f"p{uuid.uuid4().hex[:12]}_"
    store = SQLStore(server, table_prefix=prefix, max_field_bytes=DEFAULT_MAX_FIELD_BYTES)
    packet = int(run(_scalar(server, "SELECT @@max_allowed_packet")))

    async def import_over_the_packet() -> None:
        await store.create_qa_entry("s", "u", "kept", "a")
        dump = await anext(aiter(store.export_sessions()))
        # Each field fits max_field_bytes; escaped, they are over the packet together.
        half = "\\" * (packet // 4 + 1)
        huge = {**dump["entries"][0], "question": half, "answer": half}
        with pytest.raises(InvalidParameterError, match="max_allowed_packet"):
            await store.import_sessions([{**dump, "entries": [huge]}])
        assert [e.question for e in await store.get_all_qa_entries("s", "u")] == ["kept"]

    try:
        run(store.open())  # reads max_allowed_packet, in this loop
        run(import_over_the_packet())  # an import's statements, on another loop's engine
    finally:
        run(store.drop_tables())
        run(store.close())


@pytest.mark.parametrize("server", SERVERS)
def test_a_borrowed_engine_is_used_as_it_is_and_left_open(server: str) -> None:
    prefix = f"b{uuid.uuid4().hex[:12]}_"

    async def borrow() -> None:
        engine = create_async_engine(driver_url(server_url(server)))
        try:
            store = SQLStore(engine=engine, table_prefix=prefix)
            async with store:
                await store.create_qa_entry("s", "u", "q", "a")
                assert store._get_engine() is engine
            async with engine.connect() as conn:  # not disposed by the store
                assert await conn.scalar(text("SELECT 1")) == 1
            await SQLStore(engine=engine, table_prefix=prefix).drop_tables()
        finally:
            await engine.dispose()

    run(borrow())
