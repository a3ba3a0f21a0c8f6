"""What only Redis shows of its clients per event loop (the rule is in the contract suite).

``tests/contract/test_event_loops.py`` runs one store across loops and
threads on every backend. Here: which client a loop gets, what ``close()``
does to the client of a loop that still runs in another thread or that is
idle, and a Cluster client new to a loop learning the slot map once, however
many calls arrive at once. Connections are counted by client name on the
server.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest

from sessionstore import StoreError, open_store
from tests.contract.test_event_loops import Watched, no_resource_warnings, run

redis = pytest.importorskip("redis")

from sessionstore.backends.redis import RedisStore  # noqa: E402 - after the extra's check

T = TypeVar("T")


def _counter(url: str, name: str) -> Callable[[], int]:
    parts = urlsplit(url)

    def count() -> int:
        with redis.Redis(host=parts.hostname, port=parts.port) as admin:
            return sum(1 for c in admin.client_list() if c.get("name") == name)

    return count


@pytest.fixture
def watched(redis_server_url: str) -> Iterator[Watched]:
    name = "sessionstore-" + uuid.uuid4().hex[:12]
    base = redis_server_url.partition("?")[0]
    url = f"{base}?prefix=l{uuid.uuid4().hex[:10]}&client_name={name}"
    with no_resource_warnings():
        yield Watched(url, _counter(base, name), on_server=True)
    cleaner = open_store(url)
    run(cleaner.prune())
    run(cleaner.close())


class LoopInThread:
    """An event loop running in its own thread until :meth:`stop`."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever)
        self._thread.start()

    def call(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(30)

    def stop(self) -> None:
        """Shut it down as ``asyncio.run`` does: async generators first, then close."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(30)
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


async def _client_of(store: RedisStore) -> Any:
    await store.count_qa_entries("s", "u")
    return store.client


def test_a_client_per_loop_reused_within_it(watched: Watched) -> None:
    store = open_store(watched.url)
    assert isinstance(store, RedisStore)

    async def twice() -> tuple[Any, Any]:
        return await _client_of(store), await _client_of(store)

    first, again = run(twice())
    assert first is again
    other, _ = run(twice())
    assert other is not first
    assert store.client is None  # no loop runs here
    run(store.close())


def test_close_ends_the_client_of_a_loop_running_in_another_thread(watched: Watched) -> None:
    store = open_store(watched.url)
    elsewhere = LoopInThread()
    try:
        elsewhere.call(store.create_qa_entry("s", "u", "q", "a"))
        assert watched.count() >= 1
        run(store.close())  # from this thread's own loop, while the other one runs
        assert watched.settles_at(0) == 0
        with pytest.raises(StoreError, match="closed"):
            elsewhere.call(store.count_qa_entries("s", "u"))
    finally:
        elsewhere.stop()


def test_an_idle_loop_keeps_its_client_until_it_shuts_down(watched: Watched) -> None:
    """Documented: a loop neither running nor closed cannot be asked to close its client."""
    store = open_store(watched.url)
    idle = asyncio.new_event_loop()
    try:
        idle.run_until_complete(store.create_qa_entry("s", "u", "q", "a"))
        run(store.close())
        assert watched.count() >= 1
    finally:
        idle.run_until_complete(idle.shutdown_asyncgens())  # what asyncio.run does at its end
        idle.close()
    assert watched.settles_at(0) == 0


def test_cluster_client_new_to_a_loop_learns_the_slot_map_once(redis_cluster_url: str) -> None:
    """redis-py fails calls when many first calls race to learn the slot map: they wait."""
    store = open_store(f"{redis_cluster_url}?prefix=c{uuid.uuid4().hex[:10]}")

    async def burst(tag: str) -> list[str]:
        return await asyncio.gather(
            *(store.create_qa_entry(f"s{n}", "u", tag, "a") for n in range(60))
        )

    with no_resource_warnings():
        for tag in ("first loop", "second loop", "third loop"):
            assert len(set(run(burst(tag)))) == 60
        assert run(store.count_qa_entries("s7", "u")) == 3
        run(store.prune())
        run(store.close())
