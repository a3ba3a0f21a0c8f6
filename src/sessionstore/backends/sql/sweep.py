"""Deleting a SQL store's expired sessions: now, or in the background after writes.

Reads filter ``expires_at`` and never delete. A sweep deletes at most
``batch`` expired sessions per statement, found through the ``expires_at``
index (the dialect's ``sweep`` statement), and their children go with them
(``ON DELETE CASCADE``). A store with a ``ttl`` starts one sweep of at most
:data:`BACKGROUND_BATCHES` batches after a write once ``interval`` seconds
have passed, never on the request path, and none once the store is closing
(a write that finishes after :meth:`Sweeper.close` starts nothing).

A background sweep is a task of the loop whose write started it, and one
runs at a time, whichever loop: a store used from several threads does not
sweep the same tables from each. A sweep whose loop ended (cancelled by
``asyncio.run``, or left pending by a loop closed without that) no longer
counts, and the next write in any loop starts a new one when due.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from typing import TYPE_CHECKING, Final

from sessionstore.clock import now_utc, to_micros
from sessionstore.errors import StoreError
from sessionstore.observe import logger_for

if TYPE_CHECKING:
    from sqlalchemy import TextClause

    from sessionstore.backends.sql.connection import SQLConnection

__all__ = ["BACKGROUND_BATCHES", "Sweeper"]

BACKGROUND_BATCHES: Final = 20
"""The most batches one background sweep deletes."""
_log = logger_for(__name__)


class Sweeper:
    """Sweeps one namespace's expired sessions through the store's connection.

    Args:
        connection: the store's connection.
        statement: the dialect's bounded delete of expired sessions.
        interval: seconds between background sweeps.
        batch: sessions deleted per statement.
        background: sweep in the background after writes (the store has a ttl).

    """

    def __init__(
        self,
        connection: SQLConnection,
        statement: TextClause,
        *,
        interval: float,
        batch: int,
        background: bool,
    ) -> None:
        self.task: asyncio.Task[int] | None = None
        """The background sweep running or last run, if any."""
        self._connection = connection
        self._statement = statement
        self._interval = interval
        self._batch = batch
        self._background = background
        self._next = 0.0
        self._closed = False
        self._starting = threading.Lock()  # writes in several threads may find a sweep due

    def start(self) -> None:
        """Make a background sweep due now (the store has just opened)."""
        self._next = time.monotonic()

    async def sweep(self, max_batches: int | None = None) -> int:
        """Delete expired sessions now; return how many.

        Args:
            max_batches: stop after this many ``batch``-sized deletes.

        Raises:
            StoreError: the database failed.

        """
        deleted, batches = 0, 0
        while max_batches is None or batches < max_batches:
            params = {"now": to_micros(now_utc()), "n": self._batch}
            count = await self._connection.rowcount(self._statement, params)
            deleted += count
            batches += 1
            if count < self._batch:
                break
        level = logging.INFO if deleted else logging.DEBUG
        _log.log(
            level, "%s: expiry sweep removed %d expired sessions", self._connection.where, deleted
        )
        return deleted

    def wrote(self) -> None:
        """Start a background sweep when one is due (never on the request path, nor once closed)."""
        if self._closed or self._connection.closed:
            return
        if not self._background or time.monotonic() < self._next:
            return
        with self._starting:
            if self._running() or time.monotonic() < self._next:
                return
            self._next = time.monotonic() + self._interval
            self.task = asyncio.get_running_loop().create_task(self._sweep_in_background())

    def _running(self) -> bool:
        """Return whether a background sweep still runs, in this loop or another live one."""
        task = self.task
        return task is not None and not task.done() and not task.get_loop().is_closed()

    async def _sweep_in_background(self) -> int:
        try:
            return await self.sweep(BACKGROUND_BATCHES)
        except StoreError as exc:
            _log.warning("sessionstore: sweeping expired sessions failed: %s", exc)
            return 0

    async def close(self) -> None:
        """Start no more background sweeps; wait for the one still running.

        A sweep running in another thread's loop is cancelled there instead
        (its loop may be busy or blocked: nothing waits for it).
        """
        self._closed = True
        with self._starting:
            task, self.task = self.task, None
        if task is None or task.done():
            return
        loop = task.get_loop()
        if loop is asyncio.get_running_loop():
            await asyncio.gather(task, return_exceptions=True)
        elif not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # that loop closed meanwhile
                loop.call_soon_threadsafe(task.cancel)
