"""``improve_lock`` on the store's own database: server session locks.

PostgreSQL takes ``pg_try_advisory_lock``, MySQL/MariaDB ``GET_LOCK(name, 0)``
(the dialect holds the SQL and the key's format), each on a connection kept
checked out for as long as the lock is held. The server drops the lock with
the connection, so a crashed holder frees it at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from sessionstore.locks import HeldLock, lock_digest

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from sessionstore.backends.sql.connection import SQLConnection
    from sessionstore.backends.sql.dialect import Dialect

__all__ = ["SQLLockBackend"]


class _Held:
    """A server lock held on its own connection until released."""

    def __init__(
        self, connection: SQLConnection, conn: AsyncConnection, unlock: str, key: int | str
    ) -> None:
        self._connection = connection
        self._conn: AsyncConnection | None = conn
        self._unlock = unlock
        self._key = key

    async def release(self) -> None:
        """Release the lock and give the connection back; calling it again does nothing."""
        conn, self._conn = self._conn, None
        if conn is None:
            return

        async def op() -> None:
            try:
                await conn.execute(text(self._unlock), {"key": self._key})
                await conn.rollback()
            except sa_exc.SQLAlchemyError:
                # Dropping the connection releases the server-side lock.
                await conn.invalidate()
            finally:
                # Even when the deadline cancelled the unlock: back to the pool (or
                # discarded, if it was invalidated), never left checked out.
                await conn.close()

        await self._connection.run(op)


class SQLLockBackend:
    """Server session locks on the database of a SQL store.

    A lock is named by the store's database and table prefix and the lock's
    name, so every store on the same database and prefix shares its locks,
    however its URL was spelled, and stores on different prefixes never do.

    Args:
        connection: the store's connection: its engine, and its error
            translation (:class:`StoreError`, :class:`StoreUnavailableError`).
        dialect: the store's dialect: the lock SQL and the key's format.
        namespace: the identity of the store's data (database and table prefix).

    """

    def __init__(self, connection: SQLConnection, dialect: Dialect, namespace: str) -> None:
        self._connection = connection
        self._dialect = dialect
        self._namespace = namespace

    def __repr__(self) -> str:
        return f"<SQLLockBackend {self._dialect.name} {self._namespace}>"

    def key(self, name: str) -> int | str:
        """Return the server's name for lock ``name``."""
        return self._dialect.improve_lock_key(lock_digest(self._namespace, name))

    async def try_acquire(self, name: str, lease: float) -> HeldLock | None:
        """Take the server lock on a connection of its own, or return ``None``.

        Raises:
            StoreUnavailableError: the database cannot be reached.
            StoreError: the database failed.

        """
        key = self.key(name)

        async def op() -> HeldLock | None:
            conn = await self._connection.engine.connect()
            try:
                got = await conn.scalar(text(self._dialect.improve_lock), {"key": key})
            except BaseException:
                await conn.close()
                raise
            if got not in (True, 1):
                await conn.close()
                return None
            return _Held(self._connection, conn, self._dialect.improve_unlock, key)

        return await self._connection.run(op)
