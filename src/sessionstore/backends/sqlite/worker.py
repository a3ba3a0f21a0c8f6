"""The SQLite store's worker thread: calls run one after another, answered a drain at a time.

A thread pool answers each call on its own: one wake-up of the worker and one
of the caller's event loop per call, which is most of what a small SQLite
write costs. This worker takes every call queued when it wakes (a *drain*),
runs them in the order they came, each as it would have run alone (its own
transaction, its own result or exception), and then wakes each caller's loop
once for all of that loop's calls of the drain. Alone, a call costs what it
did; when many tasks wait on the store, the wake-ups are shared and
throughput rises with them.

Calls may come from any event loop and thread. A call cancelled before it
starts does not run (as with an executor); once started it runs to its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Final, TypeVar

__all__ = ["Worker"]

T = TypeVar("T")

MOST_AT_ONCE: Final = 64
"""The most calls one drain runs before their callers hear back."""

_Call = tuple[Callable[[], Any], "asyncio.Future[Any]", asyncio.AbstractEventLoop]
_Outcome = tuple["asyncio.Future[Any]", bool, Any]


class Worker:
    """One daemon thread running the calls given to :meth:`call`, in order.

    Args:
        name: the thread's name.

    """

    def __init__(self, name: str) -> None:
        self._calls: deque[_Call] = deque()
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        # The thread holds the queue, not this object: a worker nobody holds can be
        # collected, and its owner's finalizer can stop it.
        self._thread = threading.Thread(
            target=_serve, args=(self._calls, self._changed, self._stopping), name=name, daemon=True
        )
        self._thread.start()

    async def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` in the worker thread and return (or raise) what it does.

        Raises:
            RuntimeError: the worker has stopped.

        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._changed:
            if self._stopping.is_set():
                raise RuntimeError("the worker has stopped")
            self._calls.append((fn, future, loop))
            self._changed.notify()
        return await future

    def stop(self) -> None:
        """Let the calls queued so far run, then end the thread (without waiting for it)."""
        with self._changed:
            self._stopping.set()
            self._changed.notify()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread to end (after :meth:`stop`)."""
        self._thread.join(timeout)


def _serve(calls: deque[_Call], changed: threading.Condition, stopping: threading.Event) -> None:
    """The thread: drain, run, answer each loop once; until stopped and drained."""
    while True:
        with changed:
            while not calls and not stopping.is_set():
                changed.wait()
            if not calls:
                return
            drain = [calls.popleft() for _ in range(min(len(calls), MOST_AT_ONCE))]
        _run(drain)
        del drain  # hold nothing of the calls (and of their callers) while waiting


def _run(drain: list[_Call]) -> None:
    """Run the calls of one drain in order; wake each caller's loop once."""
    answers: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
    for fn, future, loop in drain:
        if future.cancelled():  # given up before it started: never run it
            continue
        try:
            outcome: _Outcome = (future, True, fn())
        except BaseException as exc:  # noqa: BLE001  (handed to the caller, whatever it is)
            outcome = (future, False, exc)
        answers.setdefault(loop, []).append(outcome)
    for loop, outcomes in answers.items():
        # A loop that has closed has nobody waiting for these any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_answer, outcomes)


def _answer(outcomes: list[_Outcome]) -> None:
    """In the caller's loop: settle each call's future (unless its caller gave up)."""
    for future, ok, value in outcomes:
        if future.cancelled():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
