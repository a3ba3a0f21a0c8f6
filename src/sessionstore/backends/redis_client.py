"""The Redis backend's connection side: URLs, options, the client, its errors.

Everything here that needs redis-py imports it lazily (``require``), so that
``import sessionstore`` never imports redis.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

from sessionstore.errors import InvalidParameterError, StoreError, StoreUnavailableError
from sessionstore.urls import OptionParser, parse_optional_float, redact_url, require

__all__ = ["OPTIONS", "SCHEMES", "ClientSettings", "driver_errors", "driver_url"]

SCHEMES: Final = {
    "redis": "redis",
    "rediss": "rediss",
    "valkey": "redis",
    "valkeys": "rediss",
    "redis+cluster": "redis",
}
OPTIONS: Final[Mapping[str, OptionParser]] = {
    "prefix": str,
    "socket_timeout": parse_optional_float,
    "connect_timeout": parse_optional_float,
    "max_connections": int,
}


def driver_url(url: str) -> tuple[str, bool]:
    """Return the URL redis-py understands, and whether it names a Cluster.

    Raises:
        InvalidParameterError: not one of our schemes, or a malformed URL.
    """
    scheme, sep, rest = url.partition("://")
    driver_scheme = SCHEMES.get(scheme.lower()) if sep else None
    if driver_scheme is None:
        raise InvalidParameterError(
            f"not a Redis URL: {redact_url(url)!r}; use one of "
            + ", ".join(f"{s}://" for s in SCHEMES)
        )
    plain = f"{driver_scheme}://{rest}"
    try:
        require("redis.asyncio.connection", "redis").parse_url(plain)
    except ValueError as exc:
        raise InvalidParameterError(f"bad Redis URL {redact_url(url)!r}: {exc}") from None
    return plain, scheme.lower() == "redis+cluster"


def _seconds(name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InvalidParameterError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """How the store builds its own client (unused for a client passed in)."""

    socket_timeout: float | None = 5.0
    connect_timeout: float | None = 5.0
    max_connections: int | None = None

    def __post_init__(self) -> None:
        _seconds("socket_timeout", self.socket_timeout)
        _seconds("connect_timeout", self.connect_timeout)
        size = self.max_connections
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise InvalidParameterError(f"max_connections must be an int >= 1, got {size!r}")

    def new_client(self, url: str, *, cluster: bool) -> Any:
        """Return a new ``Redis`` or ``RedisCluster`` with its own pool (no I/O yet)."""
        redis = require("redis.asyncio", "redis")
        no_backoff = require("redis.backoff", "redis").NoBackoff()
        options: dict[str, Any] = {
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": self.connect_timeout,
            # A retried script could apply twice: the caller sees the error instead.
            "retry": require("redis.asyncio.retry", "redis").Retry(no_backoff, 0),
        }
        if self.max_connections is not None:
            options["max_connections"] = self.max_connections
        factory = redis.RedisCluster if cluster else redis.Redis
        return factory.from_url(url, **options)


@contextmanager
def driver_errors(where: str) -> Iterator[None]:
    """Translate redis-py's exceptions into the store's, once, at the edge.

    Args:
        where: the server as shown to users (no credentials).

    Raises:
        StoreUnavailableError: cannot connect, timed out, Cluster down.
        StoreError: any other Redis error.
    """
    errors = require("redis.exceptions", "redis")
    try:
        yield
    except (
        errors.ConnectionError,
        errors.TimeoutError,
        errors.ClusterDownError,
        errors.RedisClusterException,
        OSError,
        TimeoutError,
    ) as exc:
        raise StoreUnavailableError(
            f"Redis at {where} is unreachable or did not answer in time "
            f"({type(exc).__name__}); check that it runs, or raise socket_timeout"
        ) from exc
    except errors.RedisError as exc:
        raise StoreError(f"Redis at {where} failed: {exc}") from exc
