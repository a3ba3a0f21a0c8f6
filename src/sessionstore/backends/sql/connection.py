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

A store that builds its engine builds one per event loop it is used in
(``loops.py``): a store works from successive loops (``asyncio.run`` per
request) and from several threads at once, each with its own loop. An
engine passed in by the application is used as it is, in whatever loop
calls: it belongs to the application's loop, as its connections do.

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

from sessionstore.backends.sql.engine import (
    build_engine,
    driver_url,
    is_disconnect,
    is_retryable,
    translate,
)
from sessionstore.backends.sql.loops import loop_engines
from sessionstore.errors import SessionError, StoreError, StoreUnavailableError
from sessionstore.observe import logger_for

if TYPE_CHECKING:
    from sqlalchemy import TextClause
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

    from sessionstore.backends.sql.codec import Row
    from sessionstore.backends.sql.dialect import Dialect
    from sessionstore.backends.sql.options import EngineOptions

__all__ = ["SQLConnection"]

_log = logger_for(__name__)

T = TypeVar("T")


class SQLConnection:
    """A store's engines: built from a URL (one per event loop) and owned, or given and borrowed.

    Args:
        dialect: the store's dialect.
        where: the store as shown in errors (no credentials).
        url: a ``postgresql://``, ``mysql://`` or ``mariadb://`` URL; not
            used when ``engine`` is given.
        engine: an ``AsyncEngine`` to use as it is; never disposed.
        options: the pool settings of the engines built from ``url``.
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
        self._borrowed = engine
        self._retries = retries
        self._engines = loop_engines(self._build, command_timeout)
        self._by_loop = self._engines.by_loop

    @property
    def closed(self) -> bool:
        """Whether :meth:`dispose` ran: no engine is built or handed out again."""
        return self._engines.closed

    @property
    def engine(self) -> AsyncEngine:
        """The running loop's engine, built on its first use there when the store owns it.

        Raises:
            StoreError: the store was closed.

        """
        mine = self._by_loop.get(asyncio.get_running_loop())
        return mine.engine if mine is not None else self._engine_elsewhere()

    def _engine_elsewhere(self) -> AsyncEngine:
        """Return the borrowed engine, or build the running loop's (its first call)."""
        if self._borrowed is not None and not self.closed:
            return self._borrowed
        mine = None if self._borrowed is not None else self._engines.get()
        if mine is None:
            raise StoreError(f"{self.where}: the store is closed; open a new store")
        return mine.engine

    def _build(self) -> AsyncEngine:
        return build_engine(self._url, self._dialect, self.options)

    async def dispose(self) -> None:
        """Close the pools this connection built, in every loop; idempotent.

        The running loop's pool is closed here; each pooled connection says
        goodbye to the server, unless that takes more than
        ``command_timeout`` in all (the server stopped answering): the rest
        are then closed at once, without one. The pools of other loops are
        closed as ``per_loop.PerLoop.dispose`` says. From now on
        :attr:`engine` raises: nothing builds a new pool behind the store's
        back. A borrowed engine is left to its owner.
        """
        if self._borrowed is not None and not self.closed:
            self._dialect.unwatch(self._borrowed)
        await self._engines.dispose()

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
                    _log.info("%s: retrying a read after %s", self.where, _cause(exc))
                    continue
                if attempt < self._retries and is_retryable(exc):
                    attempt += 1
                    _log.info("%s: retry %d after %s", self.where, attempt, _cause(exc))
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


def _cause(exc: Exception) -> str:
    """Name a driver error for the log: its class only, since its text may quote values."""
    return type(getattr(exc, "orig", None) or exc).__name__
