"""AnyLoopLock: a store's open/close lock, shared by coroutines of any loop and any thread."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest

from sessionstore.loop_lock import AnyLoopLock

pytestmark = pytest.mark.timeout(60)


async def _until(condition: Callable[[], bool], within: float = 10.0) -> None:
    """Yield to the loop until ``condition()`` holds (other threads make it true)."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.001)


def test_coroutines_of_threads_with_their_own_loops_take_turns() -> None:
    lock = AnyLoopLock()
    holders: list[str] = []
    inside = 0
    first_in = threading.Event()

    async def hold(name: str) -> None:
        nonlocal inside
        async with lock:
            inside += 1
            assert inside == 1
            holders.append(name)
            if name == "first":
                first_in.set()
                await _until(lambda: len(lock._waiters) == 2)  # the others wait, in their loops
            inside -= 1

    def in_thread(name: str) -> None:
        if name != "first":
            first_in.wait()
        asyncio.run(asyncio.wait_for(hold(name), 20))

    threads = [threading.Thread(target=in_thread, args=(n,)) for n in ("first", "b", "c")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert holders[0] == "first"
    assert sorted(holders[1:]) == ["b", "c"]
    assert not lock.locked()


async def test_a_waiter_cancelled_after_the_lock_was_handed_to_it_passes_it_on() -> None:
    lock = AnyLoopLock()
    await lock.acquire()
    first = asyncio.create_task(lock.acquire())
    second = asyncio.create_task(lock.acquire())
    await _until(lambda: len(lock._waiters) == 2)
    lock.release()  # handed to the first waiter, which has not run yet
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.wait_for(second, 10)  # the second got it from the first
    assert lock.locked()
    lock.release()
    assert not lock.locked()


async def test_a_waiter_cancelled_while_waiting_leaves_the_queue() -> None:
    lock = AnyLoopLock()
    await lock.acquire()
    waiter = asyncio.create_task(lock.acquire())
    await _until(lambda: len(lock._waiters) == 1)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert not lock._waiters
    lock.release()
    assert not lock.locked()
    async with lock:
        assert lock.locked()


def test_releasing_a_free_lock_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="not held"):
        AnyLoopLock().release()
