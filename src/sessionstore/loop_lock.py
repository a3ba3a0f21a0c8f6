"""A lock for coroutines of any event loop and any thread: a store's open/close lock.

:class:`asyncio.Lock` belongs to one loop (the first that waits on it) and
to one thread: a store used from several threads, each with its own loop,
would wait on it from another loop (``RuntimeError``) or never be woken (its
waiter's loop is told from the wrong thread). :class:`AnyLoopLock` keeps
its state under a :class:`threading.Lock` and wakes each waiter in its own
loop (``call_soon_threadsafe``); it never blocks a loop while it waits.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from types import TracebackType

__all__ = ["AnyLoopLock"]


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class AnyLoopLock:
    """A mutual-exclusion lock for coroutines, first come first served, across loops.

    Use it as ``async with lock:``. Release hands the lock to the oldest
    waiter whose loop is still open; a waiter cancelled after being handed
    the lock passes it on.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locked = False
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()

    def locked(self) -> bool:
        """Return whether some coroutine holds the lock."""
        return self._locked

    async def acquire(self) -> None:
        """Wait until the lock is free, then take it."""
        with self._guard:
            if not self._locked:
                self._locked = True
                return
            loop = asyncio.get_running_loop()
            waiting = (loop, loop.create_future())
            self._waiters.append(waiting)
        try:
            await waiting[1]
        except BaseException:
            with self._guard:
                handed = waiting not in self._waiters
                if not handed:
                    self._waiters.remove(waiting)
            if handed:  # the lock was handed over as this waiter was cancelled: pass it on
                self.release()
            raise

    def release(self) -> None:
        """Hand the lock to the oldest live waiter, or free it.

        Raises:
            RuntimeError: the lock is not held.

        """
        with self._guard:
            if not self._locked:
                raise RuntimeError("release of an AnyLoopLock that is not held")
            while self._waiters:
                loop, waiter = self._waiters.popleft()
                try:
                    loop.call_soon_threadsafe(_wake, waiter)
                except RuntimeError:  # its loop closed: its task is gone
                    continue
                return
            self._locked = False

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
