"""The Redis backend's connection side: URLs, options, the client, its errors.

:class:`RedisConnection` is the client a store has: one it builds from a URL
(and closes), or one it is given (and leaves open). :func:`translate_errors`
is the one place redis-py's exceptions become the store's. Everything here
that needs redis-py imports it lazily, so that ``import sessionstore`` never
imports redis.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any, Final

from sessionstore.backends.redis.scripts import run_script
from sessionstore.errors import InvalidParameterError, StoreError, StoreUnavailableError
from sessionstore.extras import require
from sessionstore.urls import OptionParser, parse_optional_float, redact_url
from sessionstore.validation import check_seconds

__all__ = [
    "OPTIONS",
    "SCHEMES",
    "ClientSettings",
    "RedisConnection",
    "driver_url",
    "translate_errors",
]

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
        if any(c in rest.rpartition("@")[0] for c in "/?#"):
            # redis-py would end the host there and take the rest of the password as a path.
            raise ValueError("a raw '/', '?' or '#' in the password")
        require("redis.asyncio.connection", "redis").parse_url(plain)
    except ValueError:
        # Not the driver's message: it quotes pieces of the URL, password included.
        raise InvalidParameterError(
            f"bad Redis URL {redact_url(url)!r}: its host, port or database number does not "
            "parse, or its password holds a raw '/', '?' or '#'; percent-encode '/', '?', '#', "
            "'@' and '%' in a password (%2F, %3F, %23, %40, %25)"
        ) from None
    return plain, scheme.lower() == "redis+cluster"


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """How the store builds its own client (unused for a client passed in)."""

    socket_timeout: float | None = 5.0
    connect_timeout: float | None = 5.0
    max_connections: int | None = None

    def __post_init__(self) -> None:
        for name in ("socket_timeout", "connect_timeout"):
            value = getattr(self, name)
            if value is not None:
                check_seconds(value, name)
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


@cache
def _driver_exceptions() -> tuple[tuple[type[BaseException], ...], type[BaseException]]:
    """Return redis-py's "cannot reach the server" exceptions, and its root exception."""
    errors = require("redis.exceptions", "redis")
    unreachable = (
        errors.ConnectionError,
        errors.TimeoutError,
        errors.ClusterDownError,
        errors.RedisClusterException,
        OSError,
        TimeoutError,
    )
    return unreachable, errors.RedisError


@contextmanager
def translate_errors(where: str) -> Iterator[None]:
    """Translate redis-py's exceptions into the store's, once, at the edge.

    Args:
        where: the server as shown to users (no credentials).

    Raises:
        StoreUnavailableError: cannot connect, timed out, Cluster down.
        StoreError: any other Redis error.

    """
    unreachable, failed = _driver_exceptions()
    try:
        yield
    except unreachable as exc:
        raise StoreUnavailableError(
            f"Redis at {where} is unreachable or did not answer in time "
            f"({type(exc).__name__}); check that it runs, or raise socket_timeout"
        ) from exc
    except failed as exc:
        raise StoreError(f"Redis at {where} failed: {exc}") from exc


class RedisConnection:
    """A store's redis-py client: built from a URL and owned, or given and borrowed.

    Attributes:
        client: the redis-py client; ``None`` while an owned one is not
            built yet or is closed.
        cluster: whether ``client`` is a ``RedisCluster``.
        where: the server as shown to users (the URL without its password).

    Args:
        url: a Redis URL of one of :data:`SCHEMES`; ``None`` when ``client``
            is given.
        client: a ready ``redis.asyncio.Redis`` or ``RedisCluster``; used as
            it is and never closed.
        settings: how to build the client from ``url``.

    Raises:
        InvalidParameterError: not exactly one of ``url`` and ``client``, or
            a bad URL.
        MissingDependencyError: ``redis`` is not installed.

    """

    def __init__(self, url: str | None, client: Any, settings: ClientSettings) -> None:
        redis = require("redis.asyncio", "redis")
        self._noscript: type[Exception] = require("redis.exceptions", "redis").NoScriptError
        if (url is None) == (client is None):
            raise InvalidParameterError("pass exactly one of url and client to RedisStore")
        self.client: Any = client
        # The URL and settings of the client built here, and so closed here.
        self._owned: tuple[str, ClientSettings] | None = None
        if url is None:
            self.cluster: bool = isinstance(client, redis.RedisCluster)
            self.where = f"{type(client).__name__} (given)"
        else:
            plain_url, self.cluster = driver_url(url)
            self._owned = plain_url, settings
            self.where = redact_url(url)

    def errors(self) -> AbstractContextManager[None]:
        """Return the block that translates this client's exceptions (:func:`translate_errors`)."""
        return translate_errors(self.where)

    async def open(self) -> None:
        """Build the owned client; on a Cluster, learn its slot map.

        Raises:
            StoreUnavailableError: the Cluster cannot be reached.
            StoreError: any other Redis error.

        """
        if self.client is None and self._owned is not None:
            plain_url, settings = self._owned
            with self.errors():
                self.client = settings.new_client(plain_url, cluster=self.cluster)
        if self.cluster:
            # Learn the slot map now: when many first calls race to do it, the
            # driver closes connections other calls are still using.
            with self.errors():
                await self.client.initialize()

    async def close(self) -> None:
        """Close the client if it was built here; forget it either way."""
        client, self.client = self.client, None
        if self._owned is not None and client is not None:
            with self.errors():
                await client.aclose()

    async def run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """Run the script ``scripts/<name>.lua`` and return its reply.

        Raises:
            StoreUnavailableError: the server cannot be reached or timed out.
            StoreError: the script or the server failed, or the connection
                is not open.

        """
        client = self.live_client()
        with self.errors():
            return await run_script(client, self._noscript, name, keys, args)

    def live_client(self) -> Any:
        """Return the client.

        Raises:
            StoreError: the connection is not open (or closed again).

        """
        if self.client is None:
            raise StoreError(f"the Redis client for {self.where} is not open")
        return self.client
