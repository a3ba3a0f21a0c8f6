"""One sqlite3 connection owned by one worker thread, and the one translation of its errors.

Every call runs on the connection in the worker thread, so the event loop
never blocks and the connection is never shared between threads. Rows come
back as :class:`sqlite3.Row`, read by column name. :func:`translate_error` is
the only place sqlite3 errors become sessionstore's; the improve locks in
``lock.py`` use it too.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Final, TypeVar

from sessionstore.backends.sqlite.schema import migrate
from sessionstore.backends.sqlite.worker import Worker
from sessionstore.errors import InvalidParameterError, StoreError, StoreUnavailableError
from sessionstore.observe import logger_for
from sessionstore.validation import check_seconds

__all__ = ["SYNCHRONOUS", "SQLiteConnection", "translate_error"]

_log = logger_for(__name__)

T = TypeVar("T")

SYNCHRONOUS: Final = frozenset({"normal", "full"})
"""The accepted ``synchronous`` settings."""


def translate_error(exc: sqlite3.Error, path: Path, busy_timeout: float) -> StoreError:
    """Return the sessionstore error to raise ``from`` a sqlite3 error on the file ``path``.

    A lock held past ``busy_timeout`` becomes :class:`StoreUnavailableError`;
    any other failure :class:`StoreError`.
    """
    if isinstance(exc, sqlite3.OperationalError):
        if "locked" in str(exc) or "busy" in str(exc):
            return StoreUnavailableError(
                f"{path} stayed locked by another writer for over "
                f"{busy_timeout}s; raise busy_timeout or find the stuck process"
            )
        return StoreError(f"SQLite failed on {path}: {exc}")
    return StoreError(
        f"{path} is not a usable sessionstore SQLite database ({exc}); "
        "move it away or point the store at another file"
    )


class SQLiteConnection:
    """The connection to one database file, opened in a worker thread of its own.

    Args:
        path: the database file; its directory is created on open.
        busy_timeout: seconds to wait for another process's write lock.
        synchronous: ``"normal"`` or ``"full"`` (see ``SQLiteStore``).

    Raises:
        InvalidParameterError: a bad ``busy_timeout`` or ``synchronous``.

    """

    def __init__(self, path: Path, *, busy_timeout: float, synchronous: str) -> None:
        if synchronous not in SYNCHRONOUS:
            raise InvalidParameterError(
                f"synchronous must be 'normal' or 'full', got {synchronous!r}"
            )
        self.path = path
        self.busy_timeout = check_seconds(busy_timeout, "busy_timeout", allow_zero=True)
        self._synchronous = synchronous
        self._worker: Worker | None = None
        self._conn: sqlite3.Connection | None = None

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` on the connection in the worker thread.

        Raises:
            StoreError: the connection is not open, or sqlite3 failed (an open
                transaction is rolled back first).

        """
        worker = self._worker
        if worker is None:
            raise StoreError(f"sqlite:///{self.path} is not open")
        try:
            return await worker.call(lambda: self._call(work))
        except RuntimeError as exc:
            if worker is not self._worker:  # closed meanwhile
                raise StoreError(f"sqlite:///{self.path} is not open") from exc
            raise

    def _call(self, work: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn
        if conn is None:
            raise StoreError(f"sqlite:///{self.path} is not open")
        try:
            return work(conn)
        except sqlite3.DatabaseError as exc:
            if conn.in_transaction:
                conn.rollback()
            raise translate_error(exc, self.path, self.busy_timeout) from exc

    async def open(self) -> None:
        """Start the worker thread, connect, and bring the schema up to date.

        Raises:
            StoreError: the file cannot be created or opened, is not a
                sessionstore database, or was made by a newer sessionstore.

        """
        worker = self._worker = Worker("sessionstore-sqlite")
        self._stop_at_collection = weakref.finalize(self, worker.stop)
        try:
            await worker.call(self._connect)
        except BaseException:
            worker.stop()
            self._worker = None
            raise

    def _connect(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open SQLite database {self.path}: {exc}") from exc
        conn.row_factory = sqlite3.Row
        self._conn = conn
        try:
            self._call(self._prepare)
        except BaseException:
            conn.close()
            self._conn = None
            raise

    def _prepare(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
        # Switching a new file to WAL can report "locked" at once, without the
        # busy handler, while another process does the same: retry it.
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                _log.debug("retrying the switch of %s to WAL: %s", self.path, exc)
                time.sleep(0.01)
        conn.execute(f"PRAGMA synchronous={self._synchronous.upper()}")
        migrate(conn, str(self.path))

    async def close(self) -> None:
        """Close the connection and stop the worker thread; calling it again does nothing."""
        worker, self._worker = self._worker, None
        if worker is None:
            return
        conn, self._conn = self._conn, None
        try:
            if conn is not None:
                await worker.call(conn.close)
        finally:
            worker.stop()
            await asyncio.get_running_loop().run_in_executor(None, worker.join)
