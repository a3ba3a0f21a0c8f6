"""The SQL backend's connections and faults: engine building, error translation.

Driver exceptions are translated here, once: a server that cannot be reached,
a dead connection or a pool timeout becomes
:class:`~sessionstore.errors.StoreUnavailableError`; anything else the
database says becomes :class:`~sessionstore.errors.StoreError`. Deadlocks and
serialization failures are marked retryable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from sessionstore.errors import InvalidParameterError, StoreError, StoreUnavailableError

__all__ = [
    "EngineOptions",
    "build_engine",
    "driver_url",
    "is_disconnect",
    "is_retryable",
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
    """Return a pooled engine that pings connections before handing them out."""
    if dialect == "postgresql":
        connect_args: dict[str, Any] = {
            "timeout": options.connect_timeout,
            "server_settings": {"application_name": "sessionstore"},
        }
        # Autocommit by default: one-statement calls need no BEGIN/COMMIT, and
        # the pre-ping is one round trip instead of BEGIN; ROLLBACK around it.
        extra: dict[str, Any] = {"isolation_level": "AUTOCOMMIT"}
    else:
        connect_args = {"connect_timeout": options.connect_timeout, "charset": "utf8mb4"}
        # READ COMMITTED: no gap locks, so concurrent first writes do not deadlock.
        extra = {"isolation_level": "READ COMMITTED"}
    return create_async_engine(
        url,
        pool_size=options.pool_size,
        max_overflow=options.max_overflow,
        pool_timeout=options.pool_timeout,
        pool_recycle=options.pool_recycle,
        pool_pre_ping=options.pre_ping,
        connect_args={**connect_args, **options.connect_args},
        **extra,
    )


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
