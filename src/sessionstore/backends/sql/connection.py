"""The engine a SQL store has, and how every operation on it runs.

:class:`SQLConnection` builds the engine from the store's URL (and disposes
it on close) or uses the one it is given (and leaves it alone). It runs each
operation with bounded retries of deadlocks and serialization failures, and
retries a read once on a connection that turned out dead; every driver error
leaves it translated once, by :func:`~sessionstore.backends.sql.engine.translate`.

Each operation has a deadline, ``command_timeout`` seconds for all of it
(waiting for a pooled connection, connecting, the statements, the retries),
enforced here with :func:`asyncio.timeout`, since no driver bounds every
step: a server that stops answering on an open connection would hold the
call forever. The cancelled connection is closed, never returned to the pool
(``engine.bare`` and the pool's ``invalidate`` listener see to it), and the
call raises :class:`~sessionstore.errors.StoreUnavailableError`.

Once disposed (the store closed), a connection builds no engine again: what
asks for it then (a call started later, a retry of one still running) gets
:class:`~sessionstore.errors.StoreError` instead of a new pool nobody would
close, and a connection a running call gives back is closed, not kept in the
disposed pool.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import event

from sessionstore.backends.sql.engine import (
    abort,
    build_engine,
    driver_url,
    is_disconnect,
    is_retryable,
    translate,
)
from sessionstore.errors import SessionError, StoreError, StoreUnavailableError

if TYPE_CHECKING:
    from sqlalchemy import TextClause
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

    from sessionstore.backends.sql.codec import Row
    from sessionstore.backends.sql.dialect import Dialect
    from sessionstore.backends.sql.options import EngineOptions

__all__ = ["SQLConnection"]

T = TypeVar("T")


class SQLConnection:
    """A store's engine: built from a URL and owned, or given and borrowed.

    Args:
        dialect: the store's dialect.
        where: the store as shown in errors (no credentials).
        url: a ``postgresql://``, ``mysql://`` or ``mariadb://`` URL; not
            used when ``engine`` is given.
        engine: an ``AsyncEngine`` to use as it is; never disposed.
        options: the pool settings of an engine built from ``url``.
        retries: how often a deadlock or serialization failure is retried.
        command_timeout: the seconds an operation may take in all.

    """

    def __init__(
        self,
        dialect: Dialect,
        where: str,
        *,
        url: str | None = None,
        engine: AsyncEngine | None = None,
        options: EngineOptions,
        retries: int,
        command_timeout: float,
    ) -> None:
        self.where = where
        self.options = options
        self.command_timeout = command_timeout
        self._dialect = dialect
        self._url = "" if url is None else driver_url(url)
        self._engine = engine
        self._owns_engine = engine is None
        self._retries = retries
        self._hurry = False
        self.closed = False
        """Whether :meth:`dispose` ran: no engine is built or handed out again."""

    @property
    def engine(self) -> AsyncEngine:
        """The engine, built on first use when the store owns it.

        Raises:
            StoreError: the store was closed.

        """
        if self.closed:
            raise StoreError(f"{self.where}: the store is closed; open a new store")
        if self._engine is None:
            self._engine = build_engine(self._url, self._dialect, self.options)
            pool = self._engine.sync_engine.pool
            event.listen(pool, "close", self._closing)
            event.listen(pool, "checkin", self._returned)
        return self._engine

    async def dispose(self) -> None:
        """Close the pool if this connection built the engine; idempotent.

        Each pooled connection says goodbye to the server, unless that takes
        more than ``command_timeout`` in all (the server stopped answering):
        the rest are then closed at once, without one. From now on
        :attr:`engine` raises: nothing builds a new pool behind the store's back.
        """
        self.closed = True
        if self._engine is not None and not self._owns_engine:
            self._dialect.unwatch(self._engine)
        if self._owns_engine and self._engine is not None:
            engine, self._engine = self._engine, None
            try:
                async with asyncio.timeout(self.command_timeout):
                    await engine.dispose()
            except TimeoutError:
                self._hurry = True
                await engine.dispose()

    def _returned(self, dbapi_connection: Any, record: Any) -> None:
        """Close a connection given back after :meth:`dispose` (a call still running then).

        Its pool is disposed already: kept there, it would stay open until
        the garbage collector found it.
        """
        if self.closed and dbapi_connection is not None:
            record.close()

    def _closing(self, dbapi_connection: Any, record: Any) -> None:
        """Close a pooled connection without a goodbye once :meth:`dispose` hurries."""
        if self._hurry and dbapi_connection is not None:
            abort(dbapi_connection.driver_connection)

    async def run(
        self,
        op: Callable[[], Awaitable[T]],
        *,
        idempotent: bool = False,
        limit: float | None = None,
    ) -> T:
        """Run ``op`` within the deadline, retrying deadlocks; translate every driver error once.

        An ``idempotent`` op (a read) is also retried once on a connection
        that turned out dead; a write is not, since it may have landed.

        Args:
            op: the operation; it checks out its own connection.
            idempotent: whether ``op`` may run again after a dead connection.
            limit: seconds for all of it; ``command_timeout`` when ``None``.

        Raises:
            StoreUnavailableError: the database cannot be reached, or did not
                answer within the deadline.
            StoreError: the database refused the operation.

        """
        seconds = self.command_timeout if limit is None else limit
        try:
            async with asyncio.timeout(seconds):
                return await self._attempts(op, idempotent=idempotent)
        except TimeoutError as exc:
            # Only the deadline's own: _attempts translates every error it sees.
            raise StoreUnavailableError(
                f"{self.where}: no answer from the database within {seconds:g} s "
                "(command_timeout); the call was abandoned and its connection closed. Check "
                "the server and the network, or raise command_timeout for slow statements"
            ) from exc

    async def _attempts(self, op: Callable[[], Awaitable[T]], *, idempotent: bool) -> T:
        attempt = 0
        while True:
            try:
                return await op()
            except SessionError:
                raise
            except Exception as exc:
                if idempotent and attempt == 0 and is_disconnect(exc):
                    attempt += 1
                    continue
                if attempt < self._retries and is_retryable(exc):
                    attempt += 1
                    await asyncio.sleep(random.uniform(0, 0.005 * 2**attempt))
                    continue
                raise translate(exc, self.where) from exc

    async def rows(self, statement: TextClause, params: Mapping[str, Any]) -> list[Row]:
        """Run one read on a bare pooled connection (a dead one is retried once)."""
        return await self.run(
            lambda: self._dialect.rows(self.engine, statement, params), idempotent=True
        )

    async def rowcount(self, statement: TextClause, params: Mapping[str, Any]) -> int:
        """Run one write statement in its own transaction; return its row count."""
        return await self.run(lambda: self._dialect.rowcount(self.engine, statement, params))

    async def transaction(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run ``work`` in one ``READ COMMITTED`` transaction."""
        return await self.run(lambda: self._isolated(work, "READ COMMITTED"))

    async def _isolated(self, work: Callable[[AsyncConnection], Awaitable[T]], level: str) -> T:
        """Run ``work`` in one transaction at isolation ``level`` on a pooled connection.

        The level is set on the connection, inside ``async with``, not by an
        engine's execution options: those set it while the connection is
        being checked out (a round trip on MySQL), and a call cancelled
        there would leave the connection checked out for good.
        """
        async with self.engine.connect() as plain:
            conn = await plain.execution_options(isolation_level=level)
            async with conn.begin():
                return await work(conn)

    async def snapshot(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run ``work`` in one ``REPEATABLE READ`` transaction: reads that agree."""
        return await self.run(lambda: self._isolated(work, "REPEATABLE READ"))
