"""One store from any event loop and any thread, on every backend.

These are plain (sync) tests that run their own loops, as scripts, Celery
tasks, Flask views and the OpenAI Agents SDK's ``Runner.run_sync`` do: the
same store object across successive ``asyncio.run`` calls, from threads
each running its own loop at the same time, from a loop per call in a fresh
thread, and after loops closed by hand. A ResourceWarning (an unclosed
socket or transport) fails a test, and the connections a store holds are
counted: on the server where there is one (Redis ``CLIENT LIST`` by client
name, PostgreSQL ``pg_stat_activity`` by application name, MariaDB's process
list by a user made for the test), else the process's open file descriptors.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import pytest

from sessionstore import SessionStore, StoreError, open_store
from tests.contract.cases import BackendCase

pytestmark = pytest.mark.timeout(240)

T = TypeVar("T")
GUARD = 60.0  # a call still running after this would have hung
SLACK = 2  # connections (or descriptors) a store may hold beyond its first loop's
THREADS = 4


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


def run_in_fresh_thread(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``make()`` with ``asyncio.run`` in a new thread: ``Runner.run_sync`` from a worker."""
    results: list[T] = []
    errors: list[BaseException] = []

    def body() -> None:
        try:
            results.append(run(make()))
        except BaseException as exc:  # re-raised in the test's thread below
            errors.append(exc)

    thread = threading.Thread(target=body)
    thread.start()
    thread.join(GUARD + 10)
    assert not thread.is_alive(), "the call hangs"
    if errors:
        raise errors[0]
    return results[0]


def run_threads(count: int, work: Callable[[int], T]) -> list[T]:
    """Run ``work(i)`` in ``count`` threads released together; return results in order."""
    results: list[Any] = [None] * count
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def body(i: int) -> None:
        start.wait()
        try:
            results[i] = work(i)
        except BaseException as exc:  # re-raised in the test's thread below
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(GUARD + 10)
    assert not any(thread.is_alive() for thread in threads), "a thread hangs"
    if errors:
        raise errors[0]
    return results


@contextmanager
def no_resource_warnings() -> Iterator[None]:
    """Fail if the block leaves an unclosed socket, transport or client behind.

    ResourceWarnings are errors here; one raised where nobody can catch it
    (a finalizer run by the garbage collector) is an "unraisable" exception,
    collected too. The garbage collector runs before the block ends.
    """
    unraisable: list[str] = []
    previous = sys.unraisablehook

    def collect(hook: Any) -> None:
        unraisable.append(f"{hook.exc_type.__name__}: {hook.exc_value} ({hook.object!r})")

    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        sys.unraisablehook = collect
        try:
            yield
            gc.collect()
        finally:
            sys.unraisablehook = previous
    assert unraisable == [], "\n".join(unraisable)


# -- counting what a store holds ------------------------------------------------


@dataclass
class Watched:
    """A store URL for the test, and how to count the connections a store on it holds."""

    url: str
    count: Callable[[], int]
    on_server: bool
    """Whether :attr:`count` counts server connections (else the process's descriptors)."""

    def settles_at(self, most: int) -> int:
        """Return the count once it is at most ``most``, or the last one seen after 20 s.

        A server ends a connection just after its socket closes, not at once.
        """
        deadline = time.monotonic() + 20
        seen = self.count()
        while seen > most and time.monotonic() < deadline:
            time.sleep(0.05)
            seen = self.count()
        return seen


def _redis_nodes(url: str) -> list[tuple[str, int]]:
    """Return the host and port of the server, or of every node of the Cluster."""
    import redis  # noqa: PLC0415 - the redis extra, needed by the Redis cases only

    parts = urlsplit(url.replace("+cluster", ""))
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    if "+cluster" not in url:
        return [(host, port)]
    with redis.Redis(host=host, port=port) as first:
        listing = first.execute_command("CLUSTER", "NODES")
    text = listing.decode() if isinstance(listing, bytes) else str(listing)
    nodes = []
    for line in text.splitlines():
        address = line.split()[1].split("@")[0]
        node_host, _, node_port = address.rpartition(":")
        nodes.append((node_host or host, int(node_port)))
    return nodes


def _redis_counter(url: str, name: str) -> Callable[[], int]:
    import redis  # noqa: PLC0415 - the redis extra, needed by the Redis cases only

    nodes = _redis_nodes(url)

    def count() -> int:
        total = 0
        for host, port in nodes:
            with redis.Redis(host=host, port=port) as admin:
                total += sum(1 for c in admin.client_list() if c.get("name") == name)
        return total

    return count


def _sql(url: str, statement: str, **params: Any) -> Any:
    """Run one statement on a connection of its own; return its first value, if any."""
    from sqlalchemy import text  # noqa: PLC0415 - the SQL extras, needed by their cases only
    from sqlalchemy.ext.asyncio import create_async_engine  # noqa: PLC0415
    from sqlalchemy.pool import NullPool  # noqa: PLC0415

    from sessionstore.backends.sql.engine import driver_url  # noqa: PLC0415

    async def go() -> Any:
        engine = create_async_engine(driver_url(url.partition("?")[0]), poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                result = await conn.execute(text(statement), params)
                return result.scalar() if result.returns_rows else None
        finally:
            await engine.dispose()

    return asyncio.run(go())


def _with_user(url: str, user: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


def _descriptors() -> int:
    return sum(1 for _ in Path("/proc/self/fd").iterdir())


async def _prune_at(url: str) -> None:
    cleaner = open_store(url)
    try:
        await cleaner.prune()
    finally:
        await cleaner.close()


@pytest.fixture
def watched(case: BackendCase, store_url: str) -> Iterator[Watched]:
    """The test's namespace on its backend, with a count of the store's connections."""
    name = "sessionstore-" + uuid.uuid4().hex[:12]
    if case.name.startswith("redis"):
        url = f"{store_url}&client_name={name}"
        yield Watched(url, _redis_counter(store_url, name), on_server=True)
        run(_prune_at(url))  # the server is shared: leave no keys behind
    elif case.name == "postgresql":
        url = f"{store_url}&application_name={name}"
        sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"
        yield Watched(url, lambda: int(_sql(store_url, sql, name=name)), on_server=True)
    elif case.name == "mariadb":
        user = "u" + name[-12:]
        database = urlsplit(store_url).path.lstrip("/")
        hosts = ("'%'", "'localhost'")  # 'localhost' beats an anonymous user there
        for host in hosts:
            _sql(store_url, f"CREATE USER '{user}'@{host}")
            _sql(store_url, f"GRANT ALL ON `{database}`.* TO '{user}'@{host}")
        sql = "SELECT count(*) FROM information_schema.PROCESSLIST WHERE USER = :user"
        try:
            yield Watched(
                _with_user(store_url, user),
                lambda: int(_sql(store_url, sql, user=user)),
                on_server=True,
            )
        finally:
            for host in hosts:
                _sql(store_url, f"DROP USER IF EXISTS '{user}'@{host}")
    else:
        if not Path("/proc/self/fd").is_dir():
            pytest.skip("counting open file descriptors needs /proc (Linux)")
        yield Watched(store_url, _descriptors, on_server=False)


async def _write_and_read(store: SessionStore, n: int) -> int:
    """Write one entry, then read from several tasks at once; return the count read."""
    await store.create_qa_entry("s", "u", f"q{n}", "a")
    counts = await asyncio.gather(*(store.count_qa_entries("s", "u") for _ in range(3)))
    assert len(set(counts)) == 1
    return counts[0]


async def _close(store: SessionStore) -> None:
    await store.prune()
    await store.close()


def _assert_closed(store: SessionStore) -> None:
    with pytest.raises(StoreError, match="closed"):
        run(store.count_qa_entries("s", "u"))


# -- the tests ------------------------------------------------------------------------


def test_one_store_across_successive_event_loops(watched: Watched) -> None:
    store = open_store(watched.url)
    with no_resource_warnings():
        for i in range(4):
            run(store.create_qa_entry("s", "u", f"q{i}", "a"))
            entries = run(store.get_all_qa_entries("s", "u"))
            assert [e.question for e in entries] == [f"q{j}" for j in range(i + 1)]
        assert run(store.latest_qa_id("s", "u")) == entries[-1].id
        run(_close(store))
        _assert_closed(store)


def test_one_store_from_threads_each_running_its_own_loop(watched: Watched) -> None:
    store = open_store(watched.url)  # not open yet: the threads race to open it
    per_thread = 6

    async def work(i: int) -> list[str]:
        # Concurrent first calls in a loop that has never used the store.
        ids = await asyncio.gather(
            *(store.create_qa_entry("s", "u", f"t{i}-{n}", "a") for n in range(per_thread))
        )
        found = await asyncio.gather(*(store.get_qa_entry("s", "u", qa_id) for qa_id in ids))
        assert [entry.question if entry else None for entry in found] == [
            f"t{i}-{n}" for n in range(per_thread)
        ]
        return list(ids)

    with no_resource_warnings():
        written = run_threads(THREADS, lambda i: run(work(i)))
        entries = run(store.get_all_qa_entries("s", "u"))
        assert sorted(e.id for e in entries) == sorted(qa for ids in written for qa in ids)
        assert run(store.count_qa_entries("s", "u")) == THREADS * per_thread
        run_threads(THREADS, lambda i: run(store.count_qa_entries("s", "u")))
        run(_close(store))
        _assert_closed(store)


def test_connections_stay_bounded_across_twenty_loops(watched: Watched) -> None:
    store = open_store(watched.url)
    with no_resource_warnings():

        async def use_and_count(n: int) -> int:
            assert await _write_and_read(store, n) == n + 1
            return await asyncio.to_thread(watched.count)

        in_use = run(use_and_count(0))
        if watched.on_server:
            assert in_use >= 1  # the count sees the store's connections
        first = watched.settles_at(in_use)
        for n in range(1, 21):
            run(use_and_count(n))
        assert watched.settles_at(first + SLACK) <= first + SLACK
        assert run(store.count_qa_entries("s", "u")) == 21
        run(_close(store))
        if watched.on_server:
            assert watched.settles_at(0) == 0


def test_a_loop_per_call_in_a_fresh_thread(watched: Watched) -> None:
    """As ``Runner.run_sync`` called from a worker thread: a new loop and thread per call."""
    store = open_store(watched.url)
    with no_resource_warnings():
        first = run_in_fresh_thread(lambda: _counted_use(store, watched, 0))
        for n in range(1, 8):
            run_in_fresh_thread(functools.partial(_counted_use, store, watched, n))
        assert watched.settles_at(first + SLACK) <= first + SLACK
        entries = run_in_fresh_thread(lambda: store.get_all_qa_entries("s", "u"))
        assert [e.question for e in entries] == [f"q{n}" for n in range(8)]
        run_in_fresh_thread(lambda: _close(store))
        _assert_closed(store)
        if watched.on_server:
            assert watched.settles_at(0) == 0


async def _counted_use(store: SessionStore, watched: Watched, n: int) -> int:
    assert await _write_and_read(store, n) == n + 1
    return await asyncio.to_thread(watched.count)


def test_loops_closed_by_hand_leave_nothing_open(watched: Watched) -> None:
    """``loop.close()`` right after ``run_until_complete``: no async generators closed."""
    store = open_store(watched.url)
    with no_resource_warnings():
        first = run_closing_by_hand(_counted_use(store, watched, 0))
        for n in range(1, 6):
            run_closing_by_hand(_counted_use(store, watched, n))
        # The next call, in a new loop, closes what the closed loops left open.
        assert run(store.count_qa_entries("s", "u")) == 6
        assert watched.settles_at(first + SLACK) <= first + SLACK
        run_closing_by_hand(_write_and_read(store, 6))
        run(_close(store))  # closes those of the last loop closed by hand
        _assert_closed(store)
        if watched.on_server:
            assert watched.settles_at(0) == 0


def test_store_closed_in_another_loop_than_it_was_used_in(watched: Watched) -> None:
    store = open_store(watched.url)
    with no_resource_warnings():
        run_in_fresh_thread(lambda: _write_and_read(store, 0))
        run(_write_and_read(store, 1))
        run_in_fresh_thread(lambda: _close(store))
        _assert_closed(store)
        with pytest.raises(StoreError, match="closed"):
            run_in_fresh_thread(lambda: store.create_qa_entry("s", "u", "q", "a"))
        if watched.on_server:
            assert watched.settles_at(0) == 0
