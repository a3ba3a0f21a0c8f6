"""The SQL backend's connections and faults: engine, bare statements, errors.

Hot calls run on the driver's own connection of a pooled connection
(:func:`run_pg`, :func:`run_batch`): one round trip each, without
SQLAlchemy's statement layer.

Driver exceptions are translated here, once: a server that cannot be reached,
a dead connection or a pool timeout becomes
:class:`~sessionstore.errors.StoreUnavailableError`; anything else the
database says becomes :class:`~sessionstore.errors.StoreError`. Deadlocks and
serialization failures are marked retryable.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.util import greenlet_spawn

if TYPE_CHECKING:
    from sessionstore.backends.sql_statements import Batch, Positional

from sessionstore.errors import InvalidParameterError, StoreError, StoreUnavailableError

__all__ = [
    "PING_IDLE",
    "EngineOptions",
    "build_engine",
    "driver_url",
    "is_disconnect",
    "is_retryable",
    "run_batch",
    "run_pg",
    "translate",
]

_DRIVERS = {
    "postgresql": ("postgresql+asyncpg", "postgresql"),
    "postgres": ("postgresql+asyncpg", "postgresql"),
    "mysql": ("mysql+asyncmy", "mysql"),
    "mariadb": ("mysql+asyncmy", "mysql"),
}
# PostgreSQL SQLSTATEs and MySQL error numbers.
_PG_RETRY = frozenset({"40001", "40P01"})
_PG_GONE = frozenset({"57P01", "57P02", "57P03", "53300"})
_MY_RETRY = frozenset({1205, 1213})
_MY_GONE = frozenset({1040, 1053, 2002, 2003, 2005, 2006, 2013, 2055})
PING_IDLE = 5.0
"""Seconds a pooled connection may sit idle before a checkout pings it."""
_CHECKED_IN = "sessionstore_checked_in"


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """Pool and timeout settings of an engine the store builds itself."""

    pool_size: int = 5
    max_overflow: int = 10
    pool_timeout: float = 10.0
    pool_recycle: float = 1800.0
    connect_timeout: float = 5.0
    pre_ping: bool = True
    connect_args: dict[str, Any] = field(default_factory=dict)


def driver_url(url: str) -> tuple[str, str]:
    """Return the SQLAlchemy URL for a store URL and its dialect name.

    Raises:
        InvalidParameterError: not a PostgreSQL/MySQL/MariaDB URL.
    """
    scheme, sep, rest = url.partition("://")
    target = _DRIVERS.get(scheme.lower())
    if not sep or target is None:
        raise InvalidParameterError(
            f"expected a postgresql://, postgres://, mysql:// or mariadb:// URL, got {scheme!r}"
        )
    driver, dialect = target
    try:
        make_url(f"{driver}://{rest}")
    except (sa_exc.ArgumentError, ValueError) as exc:
        raise InvalidParameterError(f"cannot parse the {scheme} URL: {exc}") from None
    return f"{driver}://{rest}", dialect


def build_engine(url: str, dialect: str, options: EngineOptions) -> AsyncEngine:
    """Return a pooled engine whose connections run one statement per round trip.

    Both databases run in autocommit: a one-statement call needs no
    ``BEGIN``/``COMMIT``, and a connection goes back to the pool without a
    ``ROLLBACK`` (on MySQL/MariaDB only a connection still inside a
    transaction is rolled back). Checkouts are checked by :func:`_check_out`.
    """
    if dialect == "postgresql":
        connect_args: dict[str, Any] = {
            "timeout": options.connect_timeout,
            "server_settings": {"application_name": "sessionstore"},
        }
    else:
        connect_args = {"connect_timeout": options.connect_timeout, "charset": "utf8mb4"}
    engine = create_async_engine(
        url,
        pool_size=options.pool_size,
        max_overflow=options.max_overflow,
        pool_timeout=options.pool_timeout,
        pool_recycle=options.pool_recycle,
        pool_pre_ping=False,  # _check_out pings only connections that sat idle
        pool_use_lifo=True,  # the most recently used connection: warm, and never idle
        # asyncpg's rollback is free outside a transaction; asyncmy's is not (see _reset).
        pool_reset_on_return="rollback" if dialect == "postgresql" else None,
        connect_args={**connect_args, **options.connect_args},
        isolation_level="AUTOCOMMIT",
    )
    pool = engine.sync_engine.pool
    event.listen(pool, "checkin", _checked_in)
    event.listen(
        pool, "checkout", partial(_check_out, engine.sync_engine.dialect, options.pre_ping)
    )
    if dialect != "postgresql":
        event.listen(pool, "reset", _reset)
    return engine


def _checked_in(dbapi_connection: Any, record: Any) -> None:
    record.info[_CHECKED_IN] = time.monotonic()


def _check_out(dialect: Any, ping: bool, dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """Hand out only live connections, at no round trip for a busy one.

    A connection the driver already knows is closed (the server ended it and
    the socket said so) is replaced at once. One idle for more than
    :data:`PING_IDLE` seconds is pinged first (with ``pre_ping``), since a
    server restart or a firewall may have dropped it silently.

    Raises:
        DisconnectionError: the pool replaces the connection and checks out another.
    """
    if _driver_closed(dbapi_connection.driver_connection):
        raise sa_exc.DisconnectionError("the server closed this pooled connection")
    idle_since = record.info.get(_CHECKED_IN)
    if ping and idle_since is not None and time.monotonic() - idle_since > PING_IDLE:
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise sa_exc.DisconnectionError("a pooled connection failed its ping") from exc


def _driver_closed(driver: Any) -> bool:
    """Return whether an asyncpg or asyncmy connection is known dead, locally."""
    is_closed = getattr(driver, "is_closed", None)  # asyncpg
    if is_closed is not None:
        return bool(is_closed())
    # asyncmy: set when the socket saw EOF or an error, without a round trip.
    return not getattr(driver, "connected", True) or bool(getattr(driver, "_stream_broken", False))


def _reset(dbapi_connection: Any, record: Any, state: Any) -> None:
    """Roll back a MySQL connection on its way back only if it is inside a transaction."""
    if state.terminate_only or not state.asyncio_safe:
        return
    if dbapi_connection.driver_connection.get_transaction_status():
        dbapi_connection.rollback()


@asynccontextmanager
async def _bare(engine: AsyncEngine, what: str) -> AsyncIterator[Any]:
    """Yield the driver's own connection of a pooled connection.

    This skips SQLAlchemy's ``Connection``, compilation and result layers
    (about 0.1 ms a call), not its pool: checkout checks, ``pool_recycle``
    and the return to the pool apply as usual. A driver error comes out as
    ``DBAPIError`` with ``connection_invalidated`` set when the connection
    died (it is then discarded), as SQLAlchemy itself would raise it.
    """
    proxied = await engine.raw_connection()
    driver = proxied.driver_connection
    try:
        yield driver
    except Exception as exc:
        dead = _driver_closed(driver)
        if dead:
            await greenlet_spawn(proxied.invalidate, exc)
        raise sa_exc.DBAPIError(what, None, exc, connection_invalidated=dead) from exc
    except BaseException:  # cancelled mid-statement: the connection's state is unknown
        await greenlet_spawn(proxied.invalidate)
        raise
    finally:
        await greenlet_spawn(proxied.close)


async def run_pg(
    engine: AsyncEngine, statement: Positional, params: dict[str, Any], how: str
) -> Any:
    """Run one PostgreSQL statement on a bare asyncpg connection, outside any transaction.

    asyncpg prepares each statement once per connection and reuses it.
    ``how`` is ``rows`` (all rows), ``value`` (first column of the first row
    or ``None``) or ``count`` (rows changed).
    """
    args = [params[name] for name in statement.names]
    async with _bare(engine, statement.sql) as conn:
        if how == "rows":
            return await conn.fetch(statement.sql, *args)
        if how == "value":
            return await conn.fetchval(statement.sql, *args)
        status: str = await conn.execute(statement.sql, *args)
        return int(status.rsplit(" ", 1)[-1])


async def run_batch(engine: AsyncEngine, batch: Batch, params: dict[str, Any]) -> Any:
    """Run MySQL/MariaDB statements as one multi-statement query: one round trip.

    Returns the rows of the statement ``batch.result`` names, or its row
    count when it returns none. On an error the open transaction is rolled
    back before the error is raised.
    """
    async with _bare(engine, batch.sql) as conn:
        cursor = conn.cursor()
        try:
            await cursor.execute(batch.sql, params)
            index, outcome = 0, None
            while True:
                if index == batch.result:
                    outcome = await cursor.fetchall() if cursor.description else cursor.rowcount
                if not await cursor.nextset():
                    return outcome
                index += 1
        except Exception:
            if not _driver_closed(conn):
                await conn.rollback()
            raise
        finally:
            await cursor.close()


def _codes(exc: BaseException) -> tuple[str | None, int | None]:
    """Return the SQLSTATE and MySQL error number found in ``exc``'s chain."""
    seen: BaseException | None = exc
    while seen is not None:
        state = getattr(seen, "sqlstate", None) or getattr(seen, "pgcode", None)
        if isinstance(state, str):
            return state, None
        args = getattr(seen, "args", ())
        if args and isinstance(args[0], int) and not isinstance(args[0], bool):
            return None, args[0]
        seen = getattr(seen, "orig", None) or seen.__cause__
    return None, None


def is_retryable(exc: BaseException) -> bool:
    """Return whether ``exc`` is a deadlock or serialization failure."""
    state, number = _codes(exc)
    return state in _PG_RETRY or number in _MY_RETRY


def is_disconnect(exc: BaseException) -> bool:
    """Return whether ``exc`` says a pooled connection had died (now discarded)."""
    return isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated


def _unreachable(exc: BaseException) -> bool:
    if isinstance(exc, (OSError, TimeoutError, sa_exc.TimeoutError)):
        return True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    state, number = _codes(exc)
    if state is not None and (state.startswith("08") or state in _PG_GONE):
        return True
    if number in _MY_GONE:
        return True
    cause = exc.__cause__
    return isinstance(cause, (OSError, TimeoutError))


def translate(exc: BaseException, where: str) -> StoreError:
    """Return the sessionstore error for a driver or SQLAlchemy exception."""
    orig = getattr(exc, "orig", None) or exc
    detail = f"{type(orig).__name__}: {str(orig).strip().splitlines()[0] if str(orig) else ''}"
    if _unreachable(exc):
        return StoreUnavailableError(
            f"{where}: cannot reach the database ({detail}); check that the server runs and "
            "accepts connections, or raise connect_timeout / pool_timeout"
        )
    return StoreError(f"{where}: the database refused the operation ({detail})")
