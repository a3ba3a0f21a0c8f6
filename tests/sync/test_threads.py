"""One blocking store shared by threads, event loops and scripts, on every backend."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from sessionstore import InvalidParameterError, StoreError, sync
from tests.contract.cases import pure_logic
from tests.sync.conftest import OpenSync
from tests.sync.threads import run_threads

S, U = "busy", "u"


def test_eight_threads_appending_lose_nothing_and_keep_order(
    sync_store: sync.SessionStore,
) -> None:
    def writer(w: int) -> list[str]:
        return [sync_store.create_qa_entry(S, U, f"{w}:{i}", "a") for i in range(15)]

    written = run_threads(8, writer)
    entries = sync_store.get_all_qa_entries(S, U)
    assert len(entries) == 120
    assert sync_store.count_qa_entries(S, U) == 120
    assert {e.id for e in entries} == {qa_id for ids in written for qa_id in ids}
    for w in range(8):
        mine = [e.question for e in entries if e.question.startswith(f"{w}:")]
        assert mine == [f"{w}:{i}" for i in range(15)]


def test_flask_like_short_lived_threads(sync_store: sync.SessionStore) -> None:
    """A thread per request, each gone after one turn, all sharing one store."""
    results: list[int] = []

    def request(n: int) -> None:
        sid = f"user-session-{n % 5}"
        sync_store.create_qa_entry(sid, U, f"q{n}", "a")
        results.append(len(sync_store.get_latest_qa_entries(sid, U, 100)))

    for wave in range(6):
        threads = [threading.Thread(target=request, args=(wave * 10 + i,)) for i in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert len(results) == 60
    assert sum(sync_store.count_qa_entries(f"user-session-{k}", U) for k in range(5)) == 60
    assert len(sync_store.list_sessions(U).items) == 5


def test_script_calling_asyncio_run_between_calls(sync_store: sync.SessionStore) -> None:
    async def unrelated_work(n: int) -> int:
        await asyncio.sleep(0)
        return n * 2

    ids = []
    for n in range(3):
        ids.append(sync_store.create_qa_entry(S, U, f"q{n}", "a"))
        assert asyncio.run(unrelated_work(n)) == n * 2
        assert sync_store.latest_qa_id(S, U) == ids[-1]
    assert [e.id for e in sync_store.get_all_qa_entries(S, U)] == ids


def test_calls_from_inside_a_running_loop_block_it_and_work(
    sync_store: sync.SessionStore,
) -> None:
    async def handler() -> int:
        # Blocks this loop while it waits; the store runs in its own loop.
        sync_store.create_qa_entry(S, U, "from async code", "a")
        return sync_store.count_qa_entries(S, U)

    assert asyncio.run(handler()) == 1
    assert asyncio.run(handler()) == 2


@pure_logic
def test_exceptions_propagate_unchanged(sync_store: sync.SessionStore) -> None:
    class BoomError(Exception):
        pass

    boom = BoomError("raised in the store's loop")

    async def fail() -> None:
        raise boom

    with pytest.raises(BoomError) as raised:
        sync_store.run(fail())
    assert raised.value is boom
    with pytest.raises(InvalidParameterError) as bad:
        sync_store.create_qa_entry("", U, "q", "a")
    assert type(bad.value) is InvalidParameterError


@pure_logic
def test_a_call_from_the_stores_own_loop_is_refused(sync_store: sync.SessionStore) -> None:
    async def inside() -> int:
        return sync_store.count_qa_entries(S, U)

    with pytest.raises(RuntimeError, match="own event loop"):
        sync_store.run(inside())
    assert sync_store.count_qa_entries(S, U) == 0


def test_close_while_threads_call_hangs_nobody(open_sync: OpenSync) -> None:
    store = open_sync()
    store.open()
    started = threading.Barrier(5)

    def caller(i: int) -> int:
        if i == 4:
            started.wait()
            store.close()
            return 0
        calls = 0
        started.wait()
        try:
            while True:
                store.create_qa_entry(S, U, f"{i}", "a")
                calls += 1
        except StoreError:
            return calls

    run_threads(5, caller)
    with pytest.raises(StoreError, match="is closed"):
        store.latest_qa_id(S, U)


@pure_logic
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_is_refused(sync_store: sync.SessionStore) -> None:
    sync_store.create_qa_entry(S, U, "q", "a")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the store's loop thread stayed in the parent
        try:
            sync_store.count_qa_entries(S, U)
            os.write(write, b"called")
        except StoreError as exc:
            os.write(write, b"refused" if "before a fork" in str(exc) else b"other")
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as answer:
        assert answer.read() == b"refused"
    os.waitpid(pid, 0)
    assert sync_store.count_qa_entries(S, U) == 1
