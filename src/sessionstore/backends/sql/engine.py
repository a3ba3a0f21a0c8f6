"""The SQL backend's engine and faults: building the engine, bare connections, errors.

Hot calls run on the driver's own connection of a pooled connection
(:func:`bare`): one round trip each, without SQLAlchemy's statement layer.

A connection the pool invalidates (it died, or a call was cancelled or ran
past its deadline in the middle of a statement, so its state is unknown) is
closed at once, without a word to the server (:func:`abort`): a graceful
goodbye would wait for a server that may be the one not answering.

Driver exceptions are translated here, once (:func:`translate`): a server
that cannot be reached, a dead connection or a pool timeout becomes
:class:`~sessionstore.errors.StoreUnavailableError`; anything else the
database says becomes :class:`~sessionstore.errors.StoreError`. Deadlocks and
serialization failures are retryable (:func:`is_retryable`).
"""

from __future__ import annotations

import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.util import greenlet_spawn

from sessionstore.backends.sql.dialect import family_of
from sessionstore.errors import (
    InvalidParameterError,
    SessionError,
    StoreError,
    StoreUnavailableError,
)
from sessionstore.urls import redact_url

if TYPE_CHECKING:
    from sessionstore.backends.sql.dialect import Dialect
    from sessionstore.backends.sql.options import EngineOptions

__all__ = [
    "PING_IDLE",
    "abort",
    "bare",
    "build_engine",
    "driver_url",
    "is_disconnect",
    "is_retryable",
    "translate",
]

# PostgreSQL SQLSTATEs and MySQL error numbers.
_PG_RETRY = frozenset({"40001", "40P01"})
_PG_GONE = frozenset({"57P01", "57P02", "57P03", "53300"})
_MY_RETRY = frozenset({1205, 1213})
_MY_GONE = frozenset({1040, 1053, 2002, 2003, 2005, 2006, 2013, 2055})
PING_IDLE = 5.0
"""Seconds a pooled connection may sit idle before a checkout pings it."""
_CHECKED_IN = "sessionstore_checked_in"


def driver_url(url: str) -> str:
    """Return the SQLAlchemy URL (with its driver) for a store URL.

    Raises:
        InvalidParameterError: not a PostgreSQL/MySQL/MariaDB URL, or malformed.

    """
    scheme, sep, rest = url.partition("://")
    family = family_of(scheme if sep else "")
    try:
        parsed = make_url(f"{family.url_scheme}://{rest}")
    except (sa_exc.ArgumentError, ValueError):
        parsed = None  # not the driver's message: it quotes pieces of the URL
    # SQLAlchemy ends a password at its first "@": the rest would become the host.
    if parsed is None or "@" in (parsed.host or "") + (parsed.database or ""):
        raise InvalidParameterError(
            f"cannot parse the {scheme} URL {redact_url(url)!r}: check its host and port, "
            "and percent-encode '@' and '%' in the user name and password (%40, %25)"
        )
    return f"{family.url_scheme}://{rest}"


def build_engine(url: str, dialect: Dialect, options: EngineOptions) -> AsyncEngine:
    """Return a pooled engine whose connections run one statement per round trip.

    Every connection runs in autocommit: a one-statement call needs no
    ``BEGIN``/``COMMIT``. Checkouts are checked by :func:`_check_out`, an
    invalidated connection is closed by :func:`abort`; the dialect adds its
    own settings and listeners.
    """
    arguments = dialect.engine_arguments(options)
    engine = create_async_engine(
        url,
        pool_size=options.pool_size,
        max_overflow=options.max_overflow,
        pool_timeout=options.pool_timeout,
        pool_recycle=options.pool_recycle,
        pool_pre_ping=False,  # _check_out pings only connections that sat idle
        pool_use_lifo=True,  # the most recently used connection: warm, and never idle
        isolation_level="AUTOCOMMIT",
        **{
            **arguments,
            "connect_args": {**arguments.get("connect_args", {}), **options.connect_args},
        },
    )
    pool = engine.sync_engine.pool
    event.listen(pool, "checkin", _checked_in)
    event.listen(pool, "invalidate", _invalidated)
    event.listen(
        pool, "checkout", partial(_check_out, engine.sync_engine.dialect, options.pre_ping)
    )
    dialect.watch(engine)
    return engine


def _checked_in(dbapi_connection: Any, record: Any) -> None:
    record.info[_CHECKED_IN] = time.monotonic()


def _invalidated(dbapi_connection: Any, record: Any, exception: BaseException | None) -> None:
    if dbapi_connection is not None:
        abort(dbapi_connection.driver_connection)


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


def abort(driver: Any) -> None:
    """Close an asyncpg or asyncmy connection's socket now, sending nothing.

    What is left of the connection (SQLAlchemy's own close) then finds it
    closed and waits for nothing.
    """
    terminate = getattr(driver, "terminate", None)  # asyncpg
    if terminate is not None:
        terminate()
    else:
        driver.close()  # asyncmy: closes the transport


async def _discard(proxied: Any, exc: BaseException | None = None) -> None:
    """Close a checked-out connection and take it out of the pool."""
    abort(proxied.driver_connection)
    await greenlet_spawn(proxied.invalidate, exc)


@asynccontextmanager
async def bare(
    engine: AsyncEngine, what: str, *, recover: Callable[[Any], Awaitable[object]] | None = None
) -> AsyncIterator[Any]:
    """Yield the driver's own connection of a pooled connection.

    This skips SQLAlchemy's ``Connection``, compilation and result layers
    (about 0.1 ms a call), not its pool: checkout checks, ``pool_recycle``
    and the return to the pool apply as usual. A driver error comes out as
    ``DBAPIError`` with ``connection_invalidated`` set when the connection
    died (it is then discarded), as SQLAlchemy itself would raise it. A
    cancellation (the deadline) discards the connection too: its state is
    unknown. A :class:`~sessionstore.errors.SessionError` passes as it is:
    the body raises one only before it sends anything.

    Args:
        engine: the store's engine.
        what: the statement, for the error.
        recover: called with the driver connection after an error when it
            is still alive (MySQL rolls back the transaction it left open);
            if that fails too, the connection is discarded.

    """
    proxied = await engine.raw_connection()
    driver = proxied.driver_connection
    try:
        yield driver
    except SessionError:  # ours, raised before the statement was sent: the connection is fine
        raise
    except Exception as exc:
        dead = _driver_closed(driver)
        if not dead and recover is not None:
            try:
                await recover(driver)
            except Exception:  # noqa: BLE001 - whatever failed, the connection is unusable
                dead = True
            except BaseException:
                await _discard(proxied, exc)
                raise
        if dead:
            await _discard(proxied, exc)
        raise sa_exc.DBAPIError(what, None, exc, connection_invalidated=dead) from exc
    except BaseException:  # cancelled mid-statement: the connection's state is unknown
        await _discard(proxied)
        raise
    finally:
        await greenlet_spawn(proxied.close)


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


def _tls_failed(exc: BaseException) -> bool:
    """Return whether ``exc``'s chain holds a TLS failure (a certificate refused, ...)."""
    seen: BaseException | None = exc
    for _ in range(10):  # a chain is short; this bounds a cyclic one
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLError | ssl.CertificateError):
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__ or seen.__context__
    return False


def translate(exc: BaseException, where: str) -> StoreError:
    """Return the sessionstore error for a driver or SQLAlchemy exception.

    Args:
        exc: what the driver or SQLAlchemy raised.
        where: the store or lock as shown to users (no credentials).

    """
    orig = getattr(exc, "orig", None) or exc
    said = str(orig).strip()
    detail = f"{type(orig).__name__}: {said.splitlines()[0]}" if said else type(orig).__name__
    if _tls_failed(exc):
        return StoreUnavailableError(
            f"{where}: the TLS connection to the database failed ({detail}); check the CA "
            "(sslrootcert / ssl_ca), the client certificate and key, and that the server's "
            "certificate names the host you connect to"
        )
    if _unreachable(exc):
        return StoreUnavailableError(
            f"{where}: cannot reach the database ({detail}); check that the server runs and "
            "accepts connections, or raise connect_timeout / pool_timeout"
        )
    return StoreError(f"{where}: the database refused the operation ({detail})")
