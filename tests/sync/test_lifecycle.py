"""Opening and closing a blocking store: its loop's thread lives exactly as long as it."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from sessionstore import InvalidParameterError, StoreError, open_store, sync
from sessionstore.backends.memory import MemoryStore
from tests.sync.conftest import OpenSync
from tests.sync.threads import run_threads


def _loop_threads() -> int:
    return sum(thread.name == "sessionstore-sync" for thread in threading.enumerate())


def _gone(thread: threading.Thread, within: float = 10.0) -> bool:
    thread.join(within)
    return not thread.is_alive()


def test_with_block_opens_and_closes_the_store_and_its_loop(store_url: str) -> None:
    with sync.open_store(store_url) as store:
        thread = store._loop._thread
        assert thread.is_alive()
        store.create_qa_entry("s", "u", "q", "a")
        assert store.describe() in repr(store)
        store.prune()
    assert _gone(thread)
    with pytest.raises(StoreError, match="is closed"):
        store.count_qa_entries("s", "u")


def test_close_from_many_threads_at_once(open_sync: OpenSync) -> None:
    store = open_sync()
    store.create_qa_entry("s", "u", "q", "a")
    thread = store._loop._thread
    run_threads(6, lambda _: store.close())
    assert _gone(thread, 0)


def test_a_failed_open_in_with_stops_the_loop(tmp_path: Path) -> None:
    blocker = tmp_path / "a file"
    blocker.write_text("not a directory")
    before = _loop_threads()
    with pytest.raises(StoreError), sync.open_store(f"sqlite:///{blocker}/sub/x.db"):
        pass
    assert _loop_threads() == before


def test_a_forgotten_store_is_closed_when_collected() -> None:
    store = sync.open_store("memory://")
    store.create_qa_entry("s", "u", "q", "a")
    thread = store._loop._thread
    del store
    gc.collect()
    assert _gone(thread)


def test_an_iterator_keeps_its_store_open() -> None:
    store = sync.open_store("memory://")
    for sid in ("a", "b"):
        store.create_qa_entry(sid, "u", "q", "a")
    dumps = store.export_sessions()
    thread = store._loop._thread
    del store
    gc.collect()
    assert sorted(d["session_id"] for d in dumps) == ["a", "b"]
    del dumps
    assert _gone(thread)


def test_a_store_collected_inside_its_own_loop_still_closes() -> None:
    store = sync.open_store("memory://")
    store.open()
    loop = store._loop
    cycle: list[Any] = [store]
    cycle.append(cycle)  # only the cycle collector can free the store now
    dropped = asyncio.Event()

    async def collect_here() -> None:
        await dropped.wait()
        gc.collect()  # the finalizer runs in the loop's own thread

    gc.disable()
    try:
        collected = asyncio.run_coroutine_threadsafe(collect_here(), loop._loop)
        del store, cycle
        loop._loop.call_soon_threadsafe(dropped.set)
        collected.result(10)
    finally:
        gc.enable()
    assert _gone(loop._thread)
    with pytest.raises(StoreError, match="is closed"):
        loop.run(asyncio.sleep(0))


async def test_an_opened_store_is_not_wrapped() -> None:
    async with open_store("memory://") as opened:
        with pytest.raises(InvalidParameterError, match="already opened"):
            sync.SessionStore(opened)


def test_only_async_stores_are_wrapped() -> None:
    with pytest.raises(InvalidParameterError, match="SessionStore"):
        sync.SessionStore("memory://")  # type: ignore[arg-type]
    with sync.SessionStore(MemoryStore(ttl=5)) as store:
        assert store.ttl == 5
        assert isinstance(store.async_store, MemoryStore)


FORGETFUL_SCRIPT = """
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from sessionstore.sync import open_store

store = open_store(sys.argv[1])
store.create_qa_entry("s", "u", "written by the main thread", "a")
idle = ThreadPoolExecutor(2)  # left open: its workers wait for exit too
idle.submit(store.count_qa_entries, "s", "u").result()


def late_writer():
    time.sleep(0.3)  # the main thread has finished by now
    store.create_qa_entry("s", "u", "written after the main thread ended", "a")
    print("late write done", flush=True)


threading.Thread(target=late_writer).start()
print("main done", flush=True)
"""


def test_a_store_never_closed_is_closed_at_exit_without_hanging(store_url: str) -> None:
    """Closed once the threads Python waits for have ended, and without a hang."""
    started = time.monotonic()
    finished = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(FORGETFUL_SCRIPT), store_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (finished.returncode, finished.stderr) == (0, "")
    assert finished.stdout == "main done\nlate write done\n"
    assert time.monotonic() - started < 30
    if not store_url.startswith("memory:"):
        with sync.open_store(store_url) as store:
            assert store.count_qa_entries("s", "u") == 2
            store.prune()
