"""Improve locks for SQLite stores: lock rows with an expiry in ``<database>.locks``.

Every process reaching the same database file shares the same locks, however
its URL spells the path: the lock file sits beside the *resolved* database
path, and each row is named within that path by
:func:`sessionstore.locks.lock_digest`. The lock file is separate from the
database so that lock traffic never waits on the store's write lock. The file
backend uses the same locks, in ``<root>.locks`` beside its directory.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

from sessionstore.backends.sqlite.connection import translate_error
from sessionstore.locks import HeldLock, LeasedLock, lock_digest
from sessionstore.validation import check_seconds

__all__ = ["SQLiteLockBackend"]

_P = ParamSpec("_P")
_T = TypeVar("_T")


class SQLiteLockBackend:
    """Lock rows with an expiry in ``<database>.locks``, beside the data they guard.

    Args:
        database: the store's database file (or the file store's directory);
            the lock namespace is its resolved path.
        busy_timeout: seconds to wait for another process's write to the lock file.

    Raises:
        InvalidParameterError: ``busy_timeout`` is not zero or more seconds.

    """

    def __init__(self, database: str | Path, *, busy_timeout: float = 5.0) -> None:
        self._namespace = str(Path(database).resolve())
        self.path = Path(f"{self._namespace}.locks")
        self._busy_timeout = check_seconds(busy_timeout, "busy_timeout", allow_zero=True)

    def __repr__(self) -> str:
        return f"<SQLiteLockBackend {self.path}>"

    async def try_acquire(self, name: str, lease: float) -> HeldLock | None:
        """Insert the lock row unless a live one exists; expired rows are dropped first.

        Raises:
            StoreUnavailableError: the lock file stayed locked past ``busy_timeout``.
            StoreError: the lock file failed otherwise.

        """
        row_name = lock_digest(self._namespace, name).hex()
        token = uuid.uuid4().hex
        if not await self._run(self._insert, row_name, token, lease):
            return None
        return LeasedLock(
            lambda: self._run(self._renew, row_name, token, lease),
            lambda: self._run(self._delete, row_name, token),
            lease,
        )

    async def _run(self, step: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return await asyncio.to_thread(step, *args, **kwargs)
        except sqlite3.Error as exc:
            raise translate_error(exc, self.path, self._busy_timeout) from exc

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None)
        conn.execute(
            "CREATE TABLE IF NOT EXISTS improve_locks ("
            "name TEXT PRIMARY KEY, token TEXT NOT NULL, expires_at REAL NOT NULL)"
        )
        return conn

    def _insert(self, name: str, token: str, lease: float) -> bool:
        conn = self._connect()
        try:
            now = time.time()
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("DELETE FROM improve_locks WHERE expires_at <= ?", (now,))
                inserted = conn.execute(
                    "INSERT OR IGNORE INTO improve_locks (name, token, expires_at)"
                    " VALUES (?, ?, ?)",
                    (name, token, now + lease),
                ).rowcount
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return inserted == 1
        finally:
            conn.close()

    def _renew(self, name: str, token: str, lease: float) -> bool:
        conn = self._connect()
        try:
            updated = conn.execute(
                "UPDATE improve_locks SET expires_at = ? WHERE name = ? AND token = ?",
                (time.time() + lease, name, token),
            ).rowcount
            return updated == 1
        finally:
            conn.close()

    def _delete(self, name: str, token: str) -> None:
        conn = self._connect()
        try:
            conn.execute("DELETE FROM improve_locks WHERE name = ? AND token = ?", (name, token))
        finally:
            conn.close()
