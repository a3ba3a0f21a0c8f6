"""The SQL backend's engine, options, schema check, sweeping and retries.

:class:`SQLConnection` is everything :class:`~sessionstore.backends.sql.SQLStore`
needs besides the contract's steps: it builds (or borrows) the engine, checks
and migrates the schema on open, runs statements with bounded retries of
deadlocks and serialization failures, translates driver errors once, and
sweeps expired sessions in the background in bounded, indexed batches.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any, Self, TypeVar

from sessionstore.errors import InvalidParameterError, StoreError
from sessionstore.records import now_utc, to_micros
from sessionstore.store import SessionKey, SessionStore
from sessionstore.urls import parse_bool, redact_url, require, split_options

if TYPE_CHECKING:
    from sqlalchemy import TextClause
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

try:  # the extras; from_url says which one to install when they are missing
    from sessionstore.backends import sql_schema
    from sessionstore.backends.sql_codec import Codec
    from sessionstore.backends.sql_engine import (
        EngineOptions,
        build_engine,
        driver_url,
        is_disconnect,
        is_retryable,
        run_batch,
        run_pg,
        translate,
    )
    from sessionstore.backends.sql_statements import Batch, Statements
except ImportError:  # pragma: no cover - exercised by installs without the extra
    pass

__all__ = ["SQLConnection"]

T = TypeVar("T")
_log = logging.getLogger(__name__)
_PREFIX = re.compile(r"[a-z][a-z0-9_]{0,31}")
_OPTIONS: dict[str, Callable[[str], Any]] = {
    "table_prefix": str,
    "auto_migrate": parse_bool,
    "pool_size": int,
    "max_overflow": int,
    "pool_timeout": float,
    "pool_recycle": float,
    "connect_timeout": float,
    "pre_ping": parse_bool,
    "lock_timeout": float,
    "retries": int,
    "sweep_interval": float,
    "sweep_batch": int,
}


class SQLConnection(SessionStore):
    """Engine, schema and maintenance of a store in ``<table_prefix>*`` tables.

    Args:
        url: ``postgresql://user:pw@host/db``, ``mysql://...`` or
            ``mariadb://...``; ignored when ``engine`` is given.
        engine: an ``AsyncEngine`` to use instead of building one; the store
            never disposes it.
        table_prefix: namespace of this store's tables (lowercase letters,
            digits, ``_``; up to 32 characters).
        auto_migrate: create or upgrade the schema on first use; with
            ``False`` an old schema raises :class:`StoreError` until
            :meth:`migrate` is called.
        pool_size, max_overflow, pool_timeout, pool_recycle, connect_timeout:
            pool settings of the engine the store builds (seconds).
        pre_ping: ping a pooled connection before use when it sat idle for
            more than ``sql_engine.PING_IDLE`` (5) seconds, so a server
            restart or a silently dropped connection costs no failed call.
            A busy connection is not pinged (no extra round trip); one the
            server closed is replaced at checkout either way. Reads on a
            connection that died anyway are retried once; writes fail with
            StoreUnavailableError.
        lock_timeout: seconds to wait for another process's migration.
        retries: how often a deadlock or serialization failure is retried.
        sweep_interval: seconds between background sweeps of expired sessions.
        sweep_batch: sessions deleted per sweep statement.
        connect_args: extra keyword arguments for the driver's ``connect``
            (``ssl``, ``server_settings``, ...); keyword only, not in URLs.
        ttl, max_field_bytes: see :class:`SessionStore`.

    Raises:
        InvalidParameterError: a bad option.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        engine: AsyncEngine | None = None,
        table_prefix: str = "",
        auto_migrate: bool = True,
        pool_size: int = 5,
        max_overflow: int = 10,
        pool_timeout: float = 10.0,
        pool_recycle: float = 1800.0,
        connect_timeout: float = 5.0,
        pre_ping: bool = True,
        lock_timeout: float = 60.0,
        retries: int = 5,
        sweep_interval: float = 60.0,
        sweep_batch: int = 500,
        connect_args: dict[str, Any] | None = None,
        **base: Any,
    ) -> None:
        super().__init__(**base)
        if not isinstance(table_prefix, str) or (
            table_prefix and not _PREFIX.fullmatch(table_prefix)
        ):
            raise InvalidParameterError(
                "table_prefix must be lowercase letters, digits and '_', starting with a "
                f"letter, at most 32 characters; got {table_prefix!r}"
            )
        if engine is None:
            if url is None:
                raise InvalidParameterError("SQLStore needs a url or an engine")
            _require_extra(url)
            self._url, dialect = driver_url(url)
            self._shown = redact_url(url)
        else:
            dialect = "postgresql" if engine.dialect.name == "postgresql" else "mysql"
            self._url = ""
            self._shown = engine.url.render_as_string(hide_password=True)
        self.dialect = dialect
        self.auto_migrate = auto_migrate
        self._engine = engine
        self._owns_engine = engine is None
        self._engine_options = EngineOptions(
            pool_size,
            max_overflow,
            pool_timeout,
            pool_recycle,
            connect_timeout,
            pre_ping,
            connect_args or {},
        )
        self._lock_timeout = lock_timeout
        self._retries = retries
        self._sweep_interval = sweep_interval
        self._sweep_batch = sweep_batch
        self._next_sweep = 0.0
        self._sweeper: asyncio.Task[int] | None = None
        self.tables = sql_schema.TableNames(table_prefix)
        self._sql = Statements(self.tables, dialect)
        self._codec = Codec(dialect)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Self:
        """Build a store from a URL; options may also be URL query parameters.

        Raises:
            InvalidParameterError: an unknown or bad option.
            MissingDependencyError: the ``postgres`` or ``mysql`` extra is missing.
        """
        _require_extra(url)
        base_url, merged = split_options(
            url, options, {**_OPTIONS, "engine": _no_text, "connect_args": _no_text}
        )
        return cls(base_url, **merged)

    def describe(self) -> str:
        """Return the database URL without its password, and the table prefix."""
        return f"{self._shown} table_prefix={self.tables.prefix!r}"

    # -- lifecycle and maintenance ------------------------------------------

    def _get_engine(self) -> AsyncEngine:
        if self._engine is None:
            self._engine = build_engine(self._url, self.dialect, self._engine_options)
        return self._engine

    async def _open(self) -> None:
        engine = self._get_engine()
        # Multi-statement work done through SQLAlchemy says its isolation explicitly.
        self._transactional = engine.execution_options(isolation_level="READ COMMITTED")

        async def version() -> int:
            async with engine.connect() as conn:
                return await sql_schema.read_version(conn, self.tables)

        current = await self._run(version)
        sql_schema.check_not_newer(current, self.describe())
        if current < sql_schema.SCHEMA_VERSION:
            if not self.auto_migrate:
                raise StoreError(
                    f"{self.describe()} is at schema version {current}, this sessionstore needs "
                    f"{sql_schema.SCHEMA_VERSION}; run `await store.migrate()` or open the store "
                    "with auto_migrate=True"
                )
            await self._migrate(engine)
        self._next_sweep = time.monotonic()

    async def _migrate(self, engine: AsyncEngine) -> None:
        await self._run(
            lambda: sql_schema.migrate(engine, self.tables, self.describe(), self._lock_timeout)
        )

    async def migrate(self) -> None:
        """Create or upgrade this namespace's tables now (safe from many processes).

        Raises:
            StoreError: the database is newer than this code, or it failed.
        """
        if self._state == "closed":
            raise StoreError(f"{self!r} is closed; open a new store")
        await self._migrate(self._get_engine())

    async def drop_tables(self) -> None:
        """Drop this namespace's tables, schema version included (tests, uninstall).

        Raises:
            StoreError: the database failed.
        """
        if self._state == "closed":
            raise StoreError(f"{self!r} is closed; open a new store")
        engine = self._get_engine()
        await self._run(lambda: sql_schema.drop_tables(engine, self.tables))

    async def close(self) -> None:
        """Release the pool (only if the store built the engine); idempotent."""
        await super().close()
        # migrate() and drop_tables() may have built the engine without opening.
        await self._close()

    async def _close(self) -> None:
        if self._sweeper is not None:
            await asyncio.gather(self._sweeper, return_exceptions=True)
            self._sweeper = None
        if self._owns_engine and self._engine is not None:
            engine, self._engine = self._engine, None
            await engine.dispose()

    async def sweep_expired(self, max_batches: int | None = None) -> int:
        """Delete expired sessions in bounded, indexed batches; return how many.

        Args:
            max_batches: stop after this many ``sweep_batch``-sized deletes.

        Raises:
            StoreError: the database failed.
        """
        await self._ready()
        deleted, batches = 0, 0
        while max_batches is None or batches < max_batches:
            params = {"now": self._now(), "n": self._sweep_batch}
            count = await self._run(partial(self._rowcount, self._sql.sweep, params))
            deleted += count
            batches += 1
            if count < self._sweep_batch:
                break
        return deleted

    def _wrote(self) -> None:
        """Start a background sweep when one is due (never on the request path)."""
        if self.ttl is None or time.monotonic() < self._next_sweep:
            return
        if self._sweeper is not None and not self._sweeper.done():
            return
        self._next_sweep = time.monotonic() + self._sweep_interval
        self._sweeper = asyncio.get_running_loop().create_task(self._background_sweep())

    async def _background_sweep(self) -> int:
        try:
            return await self.sweep_expired(max_batches=20)
        except StoreError as exc:
            _log.warning("sessionstore: sweeping expired sessions failed: %s", exc)
            return 0

    # -- running statements ----------------------------------------------

    async def _run(self, op: Callable[[], Awaitable[T]], *, idempotent: bool = False) -> T:
        """Run ``op``, retrying deadlocks; translate every driver error once.

        An ``idempotent`` op (a read) is also retried once on a connection
        that turned out dead; a write is not, since it may have landed.
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
                raise translate(exc, self.describe()) from exc

    async def _rows(self, statement: TextClause, params: dict[str, Any]) -> list[Any]:
        """Run one read on a bare pooled connection (a dead one is retried once)."""
        if self.dialect == "postgresql":
            prepared = self._sql.pg(statement)
            rows: list[Any] = await self._run(
                lambda: run_pg(self._get_engine(), prepared, params, "rows"), idempotent=True
            )
        else:
            batch = self._sql.my_batch(statement, write=False)
            rows = await self._run(
                lambda: run_batch(self._get_engine(), batch, params), idempotent=True
            )
        return rows

    async def _rowcount(self, statement: TextClause, params: dict[str, Any]) -> int:
        """Run one write statement in its own transaction; return its row count."""
        if self.dialect == "postgresql":
            count: int = await run_pg(self._get_engine(), self._sql.pg(statement), params, "count")
        else:
            batch = self._sql.my_batch(statement, write=True)
            count = await run_batch(self._get_engine(), batch, params)
        return count

    async def _value(self, statement: TextClause, params: dict[str, Any]) -> Any:
        """Run one PostgreSQL statement (autocommit) and return its single value."""
        return await run_pg(self._get_engine(), self._sql.pg(statement), params, "value")

    async def _batch(self, batch: Batch, params: dict[str, Any]) -> Any:
        """Run a MySQL/MariaDB multi-statement transaction in one round trip."""
        return await run_batch(self._get_engine(), batch, params)

    async def _transaction(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        async def op() -> T:
            async with self._transactional.begin() as conn:
                return await work(conn)

        return await self._run(op)

    def _key_params(self, key: SessionKey) -> dict[str, Any]:
        return {"u": self._codec.key(key.user_id), "s": self._codec.key(key.session_id)}

    @staticmethod
    def _now() -> int:
        return to_micros(now_utc())

    def _params(self, key: SessionKey) -> dict[str, Any]:
        now = self._now()
        exp = None if self.ttl is None else now + int(self.ttl * 1_000_000)
        return {**self._key_params(key), "now": now, "exp": exp}


def _require_extra(url: str) -> None:
    """Import SQLAlchemy and the URL's driver, or name the extra that installs them."""
    postgres = url.split("://", 1)[0].lower() in {"postgresql", "postgres"}
    extra = "postgres" if postgres else "mysql"
    require("sqlalchemy.ext.asyncio", extra)
    require("asyncpg" if postgres else "asyncmy", extra)


def _no_text(text: str) -> Any:
    raise ValueError("only a keyword argument can pass this, not the URL")
