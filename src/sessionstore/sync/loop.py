"""The private event loop behind a blocking store: one daemon thread per store.

Every call of a blocking store becomes a coroutine submitted with
``asyncio.run_coroutine_threadsafe`` to the store's own loop, and the calling
thread waits for its result. The async store therefore only ever runs in that
one loop, whichever threads, loops or ``asyncio.run`` calls its callers use.

Why a loop per store rather than one per process: a store's connections
(asyncpg, asyncmy and redis-py pools, SQLite's worker, its ``asyncio`` locks)
belong to the loop they were opened in. A loop per store lives exactly as long
as the store, so ``close()`` ends both and nothing process-wide must be torn
down in the right order at exit; and nothing one store runs in its loop (an
LLM client that blocks, a CPU-heavy step) can stall another store's calls. It
costs one mostly idle thread per open store; applications open one or a few.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures.thread  # registers its exit hook before ours (see below)
import functools
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent import futures
from typing import Any, Final, TypeVar

from sessionstore.errors import StoreError

__all__ = ["CLOSE_TIMEOUT", "LoopThread"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

CLOSE_TIMEOUT: Final = 10.0
"""Seconds ``close()`` waits for running calls and the store's own close."""


class _End:
    """What ``_next`` returns when an async iterator is exhausted."""


_END: Final = _End()


async def _next(items: AsyncIterator[T]) -> T | _End:
    try:
        return await anext(items)
    except StopAsyncIteration:
        return _END


class LoopThread:
    """An event loop running forever in a daemon thread, until :meth:`shutdown`.

    A loop still running when the interpreter exits is shut down then.

    Args:
        owner: how error messages name the store, e.g. its ``repr``.
        close: makes the coroutine that closes the store, run by :meth:`shutdown`.

    """

    def __init__(self, owner: str, close: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self.owner = owner
        self._close = close
        self._loop = asyncio.new_event_loop()
        self._pid = os.getpid()
        # Orders submissions against shutdown. Reentrant: garbage collection may
        # run a store's finalizer (shutdown) in this loop's thread while it holds it.
        self._guard = threading.RLock()
        self._closing = False
        self._calls: set[futures.Future[Any]] = set()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="sessionstore-sync", daemon=True)
        self._thread.start()
        _watch_for_exit(self)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()
            self._stopped.set()

    # -- calls -------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` in the loop and block this thread until it finishes.

        Its exception, if any, is raised here unchanged.

        Raises:
            StoreError: the store is closed (also when it closed while the
                call ran), or was created in another process before a fork.
            RuntimeError: called from a coroutine running in this very loop,
                which would wait for itself forever.

        """
        future = self._submit(coro)
        try:
            return future.result()
        except futures.CancelledError:
            raise StoreError(f"{self.owner} was closed while the call was running") from None
        finally:
            if not future.done():  # interrupted while waiting (Ctrl-C): stop the call too
                future.cancel()

    def iterate(self, items: AsyncIterator[T]) -> Iterator[T]:
        """Return a plain iterator over ``items``, pulling one item per call.

        Leaving the loop early closes ``items`` in the store's loop.
        """
        try:
            while not isinstance(item := self.run(_next(items)), _End):
                yield item
        finally:
            if self._refusal(closing=False) is None:
                self.run(_aclose(items))

    def _submit(self, coro: Coroutine[Any, Any, T], *, closing: bool = False) -> futures.Future[T]:
        with self._guard:
            refusal = self._refusal(closing=closing)
            if refusal is not None:
                coro.close()  # never awaited; closed so that Python does not warn about it
                raise refusal
            future = asyncio.run_coroutine_threadsafe(coro, self._loop)
            self._calls.add(future)
        future.add_done_callback(self._forget)
        return future

    def _refusal(self, *, closing: bool) -> BaseException | None:
        if os.getpid() != self._pid:
            return StoreError(
                f"{self.owner} was created in process {self._pid}, before a fork; "
                "open a new blocking store in each process (Celery: in worker_process_init)"
            )
        if threading.current_thread() is self._thread:
            return RuntimeError(
                f"a blocking call of {self.owner} from a coroutine in its own event loop "
                "would wait for itself; await the async store there instead"
            )
        if self._closing and not closing:
            return StoreError(f"{self.owner} is closed; open a new store")
        return None

    def _forget(self, future: futures.Future[Any]) -> None:
        with self._guard:
            self._calls.discard(future)

    # -- shutdown ------------------------------------------------------------

    def shutdown(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Refuse new calls, let running ones finish, close the store, stop the loop.

        Waits at most ``timeout`` seconds in all; calling it again waits for
        the first call to finish and does nothing else. In a forked child it
        only refuses calls: the loop's thread stayed in the parent.

        Raises:
            StoreError: the store did not close within ``timeout``.
            Exception: whatever closing the store raised, unchanged.

        """
        with self._guard:
            first, self._closing = not self._closing, True
            running = set(self._calls)
        own_thread = threading.current_thread() is self._thread
        if os.getpid() != self._pid or (own_thread and not first):
            return
        if not first:
            self._stopped.wait(timeout)
        elif own_thread:
            # Garbage collection ran the finalizer inside the loop: finish elsewhere.
            threading.Thread(target=self._finish, args=(running, timeout)).start()
        else:
            self._finish(running, timeout)

    def _finish(self, running: set[futures.Future[Any]], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        try:
            futures.wait(running, timeout)
            closing = self._submit(self._close(), closing=True)
            try:
                closing.result(max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                raise StoreError(f"{self.owner} did not close within {timeout} s") from None
        finally:
            winding_down = self._submit(_wind_down(), closing=True)
            futures.wait([winding_down], max(0.0, deadline - time.monotonic()))
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(max(0.0, deadline - time.monotonic()))


async def _aclose(items: AsyncIterator[Any]) -> None:
    """Close an async generator (a no-op for other async iterators)."""
    close = getattr(items, "aclose", None)
    if close is not None:
        await close()


async def _wind_down() -> None:
    """Cancel what still runs in the loop, then finish its async generators and executor."""
    loop = asyncio.get_running_loop()
    rest = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in rest:
        task.cancel()
    await asyncio.gather(*rest, return_exceptions=True)
    await loop.shutdown_asyncgens()
    await loop.shutdown_default_executor()


# -- interpreter exit ---------------------------------------------------------

_RUNNING: weakref.WeakSet[LoopThread] = weakref.WeakSet()
_watching = threading.Lock()


def _watch_for_exit(loop: LoopThread) -> None:
    with _watching:
        _register_exit_hook()
        _RUNNING.add(loop)


@functools.cache
def _register_exit_hook() -> None:
    # Threading's exit hooks run before concurrent.futures' one, which makes
    # every executor refuse work (SQLite's worker, to_thread), and an ordinary
    # atexit hook runs after it: too late to close a store. Importing
    # concurrent.futures.thread above registered its hook first, so ours runs
    # before it. Not a public API, hence the fallback to atexit.
    register = getattr(threading, "_register_atexit", atexit.register)
    register(_shut_down_forgotten)


def _shut_down_forgotten() -> None:
    """Close, at interpreter exit, every store nobody closed.

    It runs when the main thread has finished, before Python waits for the
    other non-daemon threads; so it waits for them first, as they may still
    use a store.
    """
    if all(loop._closing for loop in list(_RUNNING)):
        return  # every store was closed: leave the exit as Python orders it
    while waiting := _threads_python_waits_for():
        for thread in waiting:
            thread.join()
    for loop in list(_RUNNING):
        try:
            loop.shutdown()
        except Exception:  # at exit nobody can handle it: say it and go on
            logger.warning("could not close %s at exit", loop.owner, exc_info=True)


def _threads_python_waits_for() -> list[threading.Thread]:
    """The non-daemon threads still running, but for executors' idle workers.

    Those end only after this hook, so waiting for them would never end.
    """
    workers = set(getattr(concurrent.futures.thread, "_threads_queues", {}))
    processes = sys.modules.get("concurrent.futures.process")
    workers.update(getattr(processes, "_threads_wakeups", {}))
    return [
        thread
        for thread in threading.enumerate()
        if not thread.daemon
        and thread is not threading.current_thread()
        and thread is not threading.main_thread()
        and thread not in workers
    ]
