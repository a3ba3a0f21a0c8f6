"""The Redis backend when the server goes away, stalls or comes back; many processes."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from sessionstore import SessionQAUpdate, StoreUnavailableError, open_store
from tests.servers import free_port, throwaway_redis, wait_for_port

pytest.importorskip("redis.asyncio")


@contextmanager
def redis_on_port(port: int) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``redis-server`` again on a port a stopped one used."""
    binary = shutil.which("redis-server")
    assert binary is not None
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd="/tmp",  # nothing is saved there
    )
    try:
        wait_for_port(port)
        yield proc
    finally:
        proc.kill()
        proc.wait()


async def test_killed_server_raises_unavailable_and_same_store_recovers() -> None:
    with throwaway_redis() as (port, proc):
        store = open_store(f"redis://127.0.0.1:{port}/0?socket_timeout=1&connect_timeout=1")
        qa_id = await store.create_qa_entry("s", "u", "before", "a")
        proc.kill()
        proc.wait()
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError, match="unreachable"):
            await store.create_qa_entry("s", "u", "while down", "a")
        with pytest.raises(StoreUnavailableError):
            await store.get_qa_entry("s", "u", qa_id)
        with pytest.raises(StoreUnavailableError):
            await store.list_sessions("u")
        assert time.monotonic() - started < 3
        with redis_on_port(port):
            # An empty server (nothing was saved): the same store object writes again.
            again = await store.create_qa_entry("s", "u", "after", "a")
            assert [e.id for e in await store.get_all_qa_entries("s", "u")] == [again]
            assert [i.session_id for i in (await store.list_sessions("u")).items] == ["s"]
            await store.close()


async def test_stalled_server_times_out_and_recovers() -> None:
    with throwaway_redis() as (port, proc):
        store = open_store(f"redis://127.0.0.1:{port}/0?socket_timeout=0.5")
        qa_id = await store.create_qa_entry("s", "u", "q", "a")
        proc.send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(StoreUnavailableError, match="in time"):
                await store.update_qa_entry("s", "u", qa_id, SessionQAUpdate(feedback_score=2))
            assert time.monotonic() - started < 2.0
        finally:
            proc.send_signal(signal.SIGCONT)
        assert await store.count_qa_entries("s", "u") == 1
        entry = await store.get_qa_entry("s", "u", qa_id)
        assert entry is not None
        await store.close()


async def test_server_that_never_ran_raises_unavailable_quickly() -> None:
    store = open_store(f"redis://127.0.0.1:{free_port()}/0?connect_timeout=1")
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError):
        await store.count_qa_entries("s", "u")
    assert time.monotonic() - started < 3
    await store.close()


async def test_failed_open_leaves_store_usable_once_server_is_up() -> None:
    port = free_port()
    store = open_store(f"redis://127.0.0.1:{port}/0?connect_timeout=1")
    with pytest.raises(StoreUnavailableError):
        await store.create_qa_entry("s", "u", "q", "a")
    with redis_on_port(port):
        await store.create_qa_entry("s", "u", "q", "a")
        assert await store.count_qa_entries("s", "u") == 1
        await store.close()
