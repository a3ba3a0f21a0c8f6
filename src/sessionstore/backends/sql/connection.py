"""The engine a SQL store has, and how every operation on it runs.

:class:`SQLConnection` builds the engine from the store's URL (and disposes
it on close) or uses the one it is given (and leaves it alone). It runs each
operation with bounded retries of deadlocks and serialization failures, and
retries a read once on a connection that turned out dead; every driver error
leaves it translated once, by :func:`~sessionstore.backends.sql.engine.translate`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from sessionstore.backends.sql.engine import (
    EngineOptions,
    build_engine,
    driver_url,
    is_disconnect,
    is_retryable,
    translate,
)
from sessionstore.errors import StoreError

if TYPE_CHECKING:
    from sqlalchemy import TextClause
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

    from sessionstore.backends.sql.codec import Row
    from sessionstore.backends.sql.dialect import Dialect

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
    ) -> None:
        self.where = where
        self.options = options
        self._dialect = dialect
        self._url = "" if url is None else driver_url(url)[0]
        self._engine = engine
        self._owns_engine = engine is None
        self._retries = retries
        self._transactional: AsyncEngine | None = None

    @property
    def engine(self) -> AsyncEngine:
        """The engine, built on first use when the store owns it."""
        if self._engine is None:
            self._engine = build_engine(self._url, self._dialect, self.options)
        return self._engine

    @property
    def transactional(self) -> AsyncEngine:
        """The engine for multi-statement work, which says its isolation explicitly."""
        if self._transactional is None:
            self._transactional = self.engine.execution_options(isolation_level="READ COMMITTED")
        return self._transactional

    async def dispose(self) -> None:
        """Close the pool if this connection built the engine; idempotent."""
        if self._owns_engine and self._engine is not None:
            engine, self._engine, self._transactional = self._engine, None, None
            await engine.dispose()

    async def run(self, op: Callable[[], Awaitable[T]], *, idempotent: bool = False) -> T:
        """Run ``op``, retrying deadlocks; translate every driver error once.

        An ``idempotent`` op (a read) is also retried once on a connection
        that turned out dead; a write is not, since it may have landed.

        Raises:
            StoreUnavailableError: the database cannot be reached.
            StoreError: the database refused the operation.

        """
        attempt = 0
        while True:
            try:
                return await op()
            except StoreError:
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

        async def op() -> T:
            async with self.transactional.begin() as conn:
                return await work(conn)

        return await self.run(op)

    async def snapshot(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run ``work`` in one ``REPEATABLE READ`` transaction: reads that agree."""

        async def op() -> T:
            async with self.engine.connect() as plain:
                conn = await plain.execution_options(isolation_level="REPEATABLE READ")
                async with conn.begin():
                    return await work(conn)

        return await self.run(op)
