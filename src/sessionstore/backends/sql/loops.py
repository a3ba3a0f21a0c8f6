"""One engine per event loop: a SQL store usable from any loop and any thread.

An asyncpg or asyncmy connection, and SQLAlchemy's asyncio pool, belong to
the event loop that opened them: used from another loop they fail (the
second ``asyncio.run`` of a script, a thread with its own loop). So a store
that builds its engine keeps one per running loop, built on the first call
in that loop from the same settings, with :class:`~sessionstore.per_loop.PerLoop`
(:func:`loop_engines`): it ends each engine with its loop, or in
``dispose()`` (the store's ``close()``), as that module says.

What is SQL's own is here (:class:`LoopEngine`): an engine ends by disposing
of its pool, each connection saying goodbye to the server within the grace
period, the rest then closed without one; the engine of a loop closed
without ending it has its connections' sockets closed directly (the server
then ends those sessions at once); and a connection a running call gives
back after the store closed is closed, not kept in the disposed pool.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import event

from sessionstore.backends.sql.engine import abort
from sessionstore.per_loop import PerLoop, close_transport_now

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["LoopEngine", "loop_engines"]


class LoopEngine:
    """One event loop's engine, and how it ends (a :class:`~sessionstore.per_loop.LoopResource`).

    Args:
        engine: the engine built for the running loop.
        grace: seconds its connections have to say goodbye when it ends;
            past them the rest are closed without one.
        owner: the store's engines; a connection given back once they are
            disposed (a call still running then) is closed.

    """

    def __init__(self, engine: AsyncEngine, grace: float, owner: PerLoop[LoopEngine]) -> None:
        self.engine = engine
        self._grace = grace
        self._owner = owner
        self._hurry = False
        self._ended = False
        # The pool's records holding an open connection, checked out or not.
        self._open: set[Any] = set()
        pool = engine.sync_engine.pool
        event.listen(pool, "connect", self._connected)
        event.listen(pool, "close", self._closing)
        event.listen(pool, "checkin", self._returned)

    def _connected(self, dbapi_connection: Any, record: Any) -> None:
        self._open.add(record)

    def _closing(self, dbapi_connection: Any, record: Any) -> None:
        """Forget a closed connection; once :meth:`end` hurries, close it without a goodbye."""
        self._open.discard(record)
        if self._hurry and dbapi_connection is not None:
            abort(dbapi_connection.driver_connection)

    def _returned(self, dbapi_connection: Any, record: Any) -> None:
        """Close a connection given back after the store closed (a call still running then).

        Its pool is disposed already: kept there, it would stay open until
        the garbage collector found it.
        """
        if self._owner.closed and dbapi_connection is not None:
            record.close()

    async def end(self) -> None:
        """Dispose of the engine in its own loop; idempotent.

        Each connection says goodbye to the server, unless that takes more
        than the grace period in all (the server stopped answering): the
        rest are then closed at once, without one.
        """
        if self._ended:
            return
        self._ended = True
        try:
            async with asyncio.timeout(self._grace):
                await self.engine.dispose()
        except TimeoutError:
            self._hurry = True
            await self.engine.dispose()

    def abandon(self) -> None:
        """Close the sockets of a closed loop's connections now, waiting for nothing.

        Nothing can run in that loop any more. The driver is told first
        (asyncpg still writes its goodbye to the socket), and fails to
        schedule the transport's close on the closed loop; the socket is
        then closed under the transport (``close_transport_now``), so that
        nothing warns of it when collected.
        """
        self._ended = True
        for record in list(self._open):
            dbapi_connection = record.dbapi_connection
            if dbapi_connection is not None:
                driver = dbapi_connection.driver_connection
                with contextlib.suppress(Exception):  # it schedules on the closed loop
                    abort(driver)
                close_transport_now(getattr(driver, "_transport", None))
        self._open.clear()


def loop_engines(build: Callable[[], AsyncEngine], grace: float) -> PerLoop[LoopEngine]:
    """Return a store's engines, one per running loop, each built by ``build`` (no I/O).

    ``grace`` bounds both an engine's goodbyes and how long ``dispose()``
    waits for another running loop to end its engine.
    """

    def build_one() -> LoopEngine:
        return LoopEngine(build(), grace, engines)

    engines: PerLoop[LoopEngine] = PerLoop(build_one, grace)
    return engines
