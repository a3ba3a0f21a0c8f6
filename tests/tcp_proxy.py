"""A loopback TCP proxy in front of a real server, for faults no server fakes well.

It passes bytes unchanged between clients and the server, and on request:

- counts round trips (:attr:`TcpProxy.trips`: how often a client starts
  talking again after the server answered it, on each connection), and the
  connections clients hold open (:attr:`TcpProxy.connections`);
- stalls (:meth:`TcpProxy.stall`): it stops forwarding in both directions,
  on open connections and on new ones (accepted, then left without a word),
  like a server that hangs or a network that drops packets; :meth:`TcpProxy.resume`
  forwards again, what was held included;
- resets (:meth:`TcpProxy.reset`): it aborts every open connection.

It runs in the test's event loop: ``async with TcpProxy(host, port) as proxy``
and ``proxy.url(url)`` is ``url`` with its host and port replaced by the proxy's.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit, urlunsplit

__all__ = ["TcpProxy"]


class TcpProxy:
    """A TCP proxy on ``127.0.0.1`` to ``host:port`` that can count, stall and reset."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        """The port the proxy listens on (set by :meth:`start`)."""
        self.trips = 0
        """Round trips seen: each time a client spoke after the server did, on its connection."""
        self.connections = 0
        """Connections open now: accepted, and not yet closed by their client."""
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    @classmethod
    def to(cls, url: str) -> Self:
        """Return a proxy (not started) to the host and port of ``url``."""
        parts = urlsplit(url)
        return cls(parts.hostname or "127.0.0.1", parts.port or 0)

    async def start(self) -> int:
        """Listen on a free port; return it."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        """Stop listening and close every connection."""
        if self._server is not None:
            self._server.close()
        self.reset()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def url(self, url: str) -> str:
        """Return ``url`` (user, path and query kept) pointed at the proxy."""
        parts = urlsplit(url)
        userinfo = parts.netloc.rpartition("@")[0]
        where = f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=f"{userinfo}@{where}" if userinfo else where))

    def stall(self) -> None:
        """Stop forwarding, both ways, on every connection, open or new."""
        self._flowing.clear()

    def resume(self) -> None:
        """Forward again, starting with what was held."""
        self._flowing.set()

    def reset(self) -> None:
        """Abort every open connection, on both sides, as a crash or a firewall would."""
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        self.connections += 1
        link = _Link()
        for task in (
            asyncio.create_task(self._pipe(reader, up_writer, link, client=True)),
            asyncio.create_task(self._pipe(up_reader, writer, link, client=False)),
        ):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        link: _Link,
        *,
        client: bool,
    ) -> None:
        try:
            while data := await reader.read(65536):
                await self._flowing.wait()
                if client and not link.client_spoke_last:
                    self.trips += 1
                link.client_spoke_last = client
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            if client:
                self.connections -= 1
            self._writers.discard(writer)
            writer.close()


class _Link:
    """One client connection and its server connection, as the round-trip count sees them."""

    def __init__(self) -> None:
        self.client_spoke_last = False
        """Whether the last bytes on this link came from the client."""
