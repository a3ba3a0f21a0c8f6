"""The Redis backend's connection side: URLs, the clients, their errors.

:class:`RedisConnection` is what a store has: the clients it builds from a
URL (one per event loop, see :mod:`sessionstore.per_loop`, and closes), or
one it is given (and leaves open). :func:`translate_errors` is the one place
redis-py's exceptions become the store's. Everything here that needs
redis-py imports it lazily, so that ``import sessionstore`` never imports
redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Final

from sessionstore.backends.redis.options import OPTIONS
from sessionstore.backends.redis.scripts import run_script, script
from sessionstore.errors import InvalidParameterError, StoreError, StoreUnavailableError
from sessionstore.extras import require
from sessionstore.per_loop import PerLoop, close_transport_now
from sessionstore.urls import redact_url
from sessionstore.validation import check_seconds

__all__ = [
    "OPTIONS",
    "SCHEMES",
    "ClientSettings",
    "LoopClient",
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
    "rediss+cluster": "rediss",
}
_CLOSE_GRACE: Final = 5.0
"""Seconds a client has to close its connections when its loop ends or the store closes."""


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
    _url_parts(url, plain)
    return plain, scheme.lower().endswith("+cluster")


def _url_parts(url: str, plain: str) -> Mapping[str, Any]:
    """Return what redis-py reads from ``plain`` (host, port, db, user, password)."""
    try:
        if any(c in plain.partition("://")[2].rpartition("@")[0] for c in "/?#"):
            # redis-py would end the host there and take the rest of the password as a path.
            raise ValueError("a raw '/', '?' or '#' in the password")
        parts: Mapping[str, Any] = require("redis.asyncio.connection", "redis").parse_url(plain)
    except ValueError:
        # Not the driver's message: it quotes pieces of the URL, password included.
        raise InvalidParameterError(
            f"bad Redis URL {redact_url(url)!r}: its host, port or database number does not "
            "parse, or its password holds a raw '/', '?' or '#'; percent-encode '/', '?', '#', "
            "'@' and '%' in a password (%2F, %3F, %23, %40, %25)"
        ) from None
    return parts


def _no_second_value(url: str, plain: str, driver: Mapping[str, Any]) -> None:
    """Refuse a database number or credential given both in the URL and as an option.

    redis-py would silently take the URL's; either one alone is fine.
    """
    in_url = _url_parts(url, plain)
    for name in ("db", "username", "password"):
        if name in driver and name in in_url and in_url[name] != driver[name]:
            where = "path" if name == "db" else "user part"
            raise InvalidParameterError(
                f"{name} is given twice, in the URL's {where} and as an option, with "
                f"different values; give it once ({redact_url(url)!r})"
            )


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """How the store builds its own clients (unused for a client passed in)."""

    socket_timeout: float | None = 5.0
    connect_timeout: float | None = 5.0
    max_connections: int | None = None
    driver: Mapping[str, Any] = field(default_factory=dict)
    """redis-py's own options, checked (:func:`.options.check_driver_options`)."""

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
            **self.driver,
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
def _refused_credentials() -> type[BaseException]:
    """Return redis-py's "wrong or missing user name or password" exception."""
    exception: type[BaseException] = require("redis.exceptions", "redis").AuthenticationError
    return exception


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


def _tls_failure(exc: BaseException) -> ssl.SSLError | ssl.CertificateError | None:
    """Return the TLS error in ``exc``'s chain (a certificate refused, ...), if any."""
    seen: BaseException | None = exc
    for _ in range(10):  # a chain is short; this bounds a cyclic one
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLError | ssl.CertificateError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _tls_detail(tls: ssl.SSLError | ssl.CertificateError) -> str:
    """Say what TLS refused, in the verifier's words: they name no credential."""
    verified = getattr(tls, "verify_message", None)
    if verified:
        return f"{type(tls).__name__}: certificate verify failed: {verified}"
    reason = getattr(tls, "reason", None)
    return f"{type(tls).__name__}: {reason}" if reason else type(tls).__name__


@contextmanager
def translate_errors(where: str, *, over_tls: bool = False) -> Iterator[None]:
    """Translate redis-py's exceptions into the store's, once, at the edge.

    Args:
        where: the server as shown to users (no credentials).
        over_tls: whether the connections use TLS: a server that refuses the
            client's certificate may just drop the connection, so a lost
            connection is worth a hint about certificates.

    Raises:
        StoreUnavailableError: cannot connect, the TLS handshake failed,
            timed out, Cluster down.
        StoreError: the server refused the credentials, or any other Redis
            error.

    """
    unreachable, failed = _driver_exceptions()
    try:
        yield
    except _refused_credentials() as exc:
        # Not the server's words: they are safe, but say nothing a user can act on.
        raise StoreError(
            f"Redis at {where} refused the credentials ({type(exc).__name__}); check the "
            "user name and password (in the URL, or the username and password options)"
        ) from exc
    except unreachable as exc:
        tls = _tls_failure(exc)
        if tls is not None:
            raise StoreUnavailableError(
                f"Redis at {where}: the TLS connection failed ({_tls_detail(tls)}); check "
                "ssl_ca_certs, the client certificate and key (ssl_certfile, ssl_keyfile, "
                "ssl_password), and that the server's certificate names the host you "
                "connect to"
            ) from exc
        hint = (
            "; over TLS, also that the server takes the client certificate "
            "(ssl_certfile, ssl_keyfile) if it asks for one"
            if over_tls
            else ""
        )
        raise StoreUnavailableError(
            f"Redis at {where} is unreachable or did not answer in time "
            f"({type(exc).__name__}); check that it runs, or raise socket_timeout{hint}"
        ) from exc
    except failed as exc:
        raise StoreError(f"Redis at {where} failed: {exc}") from exc


class LoopClient:
    """One event loop's redis-py client, and how it ends (a :class:`.per_loop.LoopResource`).

    Args:
        client: the ``Redis`` or ``RedisCluster`` built for the loop.
        cluster: whether it is a ``RedisCluster``: then it must learn the
            Cluster's slot map (:attr:`ready`) before calls share it.

    """

    def __init__(self, client: Any, *, cluster: bool) -> None:
        self.client = client
        self.ready = not cluster
        """Whether calls may use it: a Cluster's client learns the slot map first."""
        # Created unbound; it only ever waits in this client's loop.
        self.preparing = asyncio.Lock()
        self._ended = False

    async def end(self) -> None:
        """Close the client's connections in its loop; past the grace period, drop them."""
        if self._ended:
            return
        self._ended = True
        unreachable, failed = _driver_exceptions()
        try:
            async with asyncio.timeout(_CLOSE_GRACE):
                await self.client.aclose()
        except (*unreachable, failed):  # a goodbye the server did not take changes nothing
            _drop_connections(self.client, loop_closed=False)

    def abandon(self) -> None:
        """Close the sockets of a closed loop's client, sending nothing."""
        self._ended = True
        _drop_connections(self.client, loop_closed=True)


def _connections(client: Any) -> Iterator[Any]:
    """Yield the connections of a ``Redis``'s pool, or of every node of a ``RedisCluster``."""
    pool = getattr(client, "connection_pool", None)
    if pool is not None:
        yield from list(getattr(pool, "_available_connections", ()))
        yield from list(getattr(pool, "_in_use_connections", ()))
    nodes = getattr(client, "nodes_manager", None)
    if nodes is not None:
        for by_name in (nodes.nodes_cache, nodes.startup_nodes):
            for node in list(by_name.values()):
                yield from list(getattr(node, "_connections", ()))


def _drop_connections(client: Any, *, loop_closed: bool) -> None:
    """Close every connection of ``client`` now, without a goodbye.

    redis-py keeps each connection's stream writer in ``_writer`` (and warns
    when it collects a connection that still has one); with ``loop_closed``
    the socket is closed under the transport (:func:`close_transport_now`),
    else the transport is aborted in its running loop.
    """
    for connection in _connections(client):
        writer = getattr(connection, "_writer", None)
        if writer is None:
            continue
        if loop_closed:
            close_transport_now(writer.transport)
        else:
            writer.transport.abort()
        with contextlib.suppress(AttributeError):
            connection._parser.on_disconnect()
        connection._writer = connection._reader = None
    if hasattr(client, "nodes_manager"):
        client._initialize = True  # a RedisCluster warns when it collects one still "open"


class RedisConnection:
    """A store's redis-py clients: built from a URL and owned, or given and borrowed.

    A built client belongs to one event loop, so the store builds one per
    running loop, on its first call there (:class:`~sessionstore.per_loop.PerLoop`).
    A given client is used as it is, from whatever loop calls: it belongs to
    its owner's loop.

    Attributes:
        cluster: whether the clients are ``RedisCluster``.
        where: the server as shown to users (the URL without its password).

    Args:
        url: a Redis URL of one of :data:`SCHEMES`; ``None`` when ``client``
            is given.
        client: a ready ``redis.asyncio.Redis`` or ``RedisCluster``; used as
            it is and never closed.
        settings: how to build clients from ``url``.

    Raises:
        InvalidParameterError: not exactly one of ``url`` and ``client``, a
            bad URL, or a database number or credential both in the URL and
            in the options.
        MissingDependencyError: ``redis`` is not installed.

    """

    def __init__(self, url: str | None, client: Any, settings: ClientSettings) -> None:
        redis = require("redis.asyncio", "redis")
        self._noscript: type[Exception] = require("redis.exceptions", "redis").NoScriptError
        if (url is None) == (client is None):
            raise InvalidParameterError("pass exactly one of url and client to RedisStore")
        self._given: Any = client
        self._clients: PerLoop[LoopClient] | None = None
        self._tls = False
        if url is None:
            self.cluster: bool = isinstance(client, redis.RedisCluster)
            self.where = f"{type(client).__name__} (given)"
        else:
            plain_url, self.cluster = driver_url(url)
            self._tls = plain_url.startswith("rediss:")
            _no_second_value(url, plain_url, settings.driver)
            self.where = redact_url(url)

            def build() -> LoopClient:
                with self.errors():
                    client = settings.new_client(plain_url, cluster=self.cluster)
                return LoopClient(client, cluster=self.cluster)

            self._clients = PerLoop(build, _CLOSE_GRACE)

    @property
    def client(self) -> Any:
        """The client calls in the running loop use (``None``: none yet, or closed)."""
        if self._clients is None:
            return self._given
        mine = self._clients.peek()
        return None if mine is None else mine.client

    def errors(self) -> AbstractContextManager[None]:
        """Return the block that translates this client's exceptions (:func:`translate_errors`)."""
        return translate_errors(self.where, over_tls=self._tls)

    async def open(self) -> None:
        """Build the running loop's client; on a Cluster, learn its slot map.

        Raises:
            StoreUnavailableError: the Cluster cannot be reached.
            StoreError: any other Redis error, or the connection is closed.

        """
        if self._clients is None:
            if self.cluster and self._given is not None:
                with self.errors():
                    await self._given.initialize()
            return
        await self.ready()

    async def ready(self) -> None:
        """Make the running loop's client ready for calls that share it.

        Calls in a loop its client is new to wait here while a Cluster's
        client learns the slot map: when many first calls race to do it,
        redis-py closes connections other calls are still using.

        Raises:
            StoreUnavailableError: the Cluster cannot be reached.
            StoreError: any other Redis error, or the connection is closed.

        """
        if self._clients is None:
            return
        mine = self._clients.get()
        if mine is None:
            raise StoreError(f"the Redis client for {self.where} is closed")
        if not mine.ready:
            async with mine.preparing:
                if not mine.ready:
                    with self.errors():
                        await mine.client.initialize()
                    mine.ready = True

    async def close(self) -> None:
        """Close every client built here (see :meth:`.PerLoop.dispose`); forget a given one."""
        self._given = None
        if self._clients is not None:
            await self._clients.dispose()

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

    async def run_many(self, name: str, calls: list[tuple[list[str], list[Any]]]) -> list[Any]:
        """Run the script ``name`` once per ``(keys, args)`` in one pipeline; replies in order.

        Each run is atomic on its own, not the whole: for reads of many
        sessions at once. A node that lacks the script gets it on a retry.

        Raises:
            StoreUnavailableError: the server cannot be reached or timed out.
            StoreError: a script or the server failed.

        """
        client = self.live_client()
        sha = script(name).sha
        with self.errors():
            pipe = client.pipeline(transaction=False)
            for keys, args in calls:
                pipe.execute_command("EVALSHA", sha, len(keys), *keys, *args)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
            for i, reply in enumerate(replies):
                if isinstance(reply, self._noscript):
                    keys, args = calls[i]
                    replies[i] = await run_script(client, self._noscript, name, keys, args)
                elif isinstance(reply, Exception):
                    raise reply
        return replies

    def live_client(self) -> Any:
        """Return the running loop's client, built now if the loop has none.

        Raises:
            StoreError: the connection is closed.

        """
        if self._clients is None:
            if self._given is None:
                raise StoreError(f"the Redis client for {self.where} is not open")
            return self._given
        mine = self._clients.get()
        if mine is None:
            raise StoreError(f"the Redis client for {self.where} is closed")
        return mine.client
