"""One resource per event loop: a network client usable from any loop and any thread.

A driver's connections belong to the event loop that opened them: used from
another loop they fail (the second ``asyncio.run`` of a script, a thread
with its own loop). So a store that builds its client keeps one per running
loop, built on the first call in that loop, in a dict keyed by the loop
(:class:`PerLoop`); a call costs one lookup of the running loop there
(:attr:`PerLoop.by_loop`, which a hot path may read itself). The dict changes
only under a :class:`threading.Lock`.

A resource ends with its loop, and closes its connections then:

- ``asyncio.run``, ``asyncio.Runner`` (and so pytest-asyncio, ``asgiref``
  and frameworks that run a loop per call) close a loop's async generators
  (``loop.shutdown_asyncgens()``) before closing it. Each resource
  registers one such generator when built; closing it ends the resource
  while its loop still runs (:meth:`LoopResource.end`), so each connection
  says goodbye to the server.
- A loop closed without that (``loop.close()`` right after
  ``run_until_complete``) leaves its connections' sockets open. They are
  closed synchronously, without a word to the server
  (:meth:`LoopResource.abandon`), the next time the store builds a
  resource or is closed.

:meth:`PerLoop.dispose` (the store's ``close()``) ends the resource of the
loop it runs in, asks every other *running* loop to end its own (waiting up
to a grace period), and abandons those of loops that have closed. The
resource of a loop that is neither running nor closed is left to that
loop's shutdown, as above: it is kept until then, since the loop holds its
async generator only weakly.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["LoopResource", "PerLoop", "close_transport_now"]


class LoopResource(Protocol):
    """What :class:`PerLoop` holds for each loop: a client, and how it ends."""

    async def end(self) -> None:
        """Close it in its own loop (running this); idempotent; never raises a driver error."""

    def abandon(self) -> None:
        """Close its sockets now, sending nothing: its loop is closed; idempotent."""


R = TypeVar("R", bound=LoopResource)


class _Slot(Generic[R]):
    """A loop's resource, and the async generator whose closing ends it."""

    __slots__ = ("hook", "loop", "resource")

    def __init__(self, resource: R, loop: asyncio.AbstractEventLoop) -> None:
        self.resource = resource
        self.loop = loop
        self.hook: AsyncGenerator[None, None] | None = None

    def abandon(self) -> None:
        # Its loop is closed: collecting the generator schedules nothing there.
        self.hook = None
        self.resource.abandon()

    async def close(self) -> None:
        """End the resource now, in its own loop (running this)."""
        hook, self.hook = self.hook, None
        if hook is not None:
            # Already closing (the loop's shutdown is at it): end() below waits for nothing.
            with contextlib.suppress(RuntimeError):
                await hook.aclose()
        await self.resource.end()


class PerLoop(Generic[R]):
    """A store's resources, one per running event loop, built when first needed.

    Args:
        build: builds the running loop's resource; no I/O (it connects on
            first use).
        grace: seconds :meth:`dispose` waits for another running loop to
            end its resource.

    """

    def __init__(self, build: Callable[[], R], grace: float) -> None:
        self.closed = False
        """Whether :meth:`dispose` ran: nothing is built any more."""
        self._resources: dict[asyncio.AbstractEventLoop, R] = {}
        self.by_loop: Mapping[asyncio.AbstractEventLoop, R] = self._resources
        """The live resources by loop; read without the lock (one lookup per call)."""
        self._slots: dict[asyncio.AbstractEventLoop, _Slot[R]] = {}  # the same, and their ends
        # Slots of loops neither running nor closed at dispose(): kept until those loops
        # shut down, since only their hooks, held weakly by the loop, end them then.
        self._left: set[_Slot[R]] = set()
        self._build = build
        self._grace = grace
        self._lock = threading.Lock()

    def get(self) -> R | None:
        """Return the running loop's resource, built now if it has none.

        Resources of loops that have closed since are abandoned first.

        Returns:
            ``None`` once :meth:`dispose` ran.

        Raises:
            RuntimeError: no event loop runs in this thread.

        """
        loop = asyncio.get_running_loop()
        mine = self._resources.get(loop)  # read without the lock: one lookup per call
        return mine if mine is not None else self._add(loop)

    def peek(self) -> R | None:
        """Return the running loop's resource if it has one; build nothing."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        return self._resources.get(loop)

    def _add(self, loop: asyncio.AbstractEventLoop) -> R | None:
        with self._lock:
            if self.closed:
                return None
            mine = self._resources.get(loop)
            if mine is None:
                for ended in [s for s in self._slots.values() if s.loop.is_closed()]:
                    self._drop(ended.loop)
                    ended.abandon()
                slot = _Slot(self._build(), loop)
                if not _shutting_down(loop):
                    hook = self._end_with_loop(slot)
                    if _started(hook):
                        slot.hook = hook
                self._slots[loop] = slot
                mine = self._resources[loop] = slot.resource
            return mine

    def _drop(self, loop: asyncio.AbstractEventLoop) -> None:
        del self._slots[loop]
        del self._resources[loop]

    async def _end_with_loop(self, slot: _Slot[R]) -> AsyncGenerator[None, None]:
        """Wait, suspended, for the loop's shutdown to close it; then end the resource."""
        try:
            yield
        finally:
            with self._lock:
                if self._slots.get(slot.loop) is slot:
                    self._drop(slot.loop)
                self._left.discard(slot)
            await slot.resource.end()

    async def dispose(self) -> None:
        """End every resource as well as each one's loop allows; idempotent.

        The running loop's resource is ended here; another running loop's
        is ended in that loop, waited for up to the grace period; a closed
        loop's is abandoned at once. A loop neither running nor closed ends
        its resource when it shuts down; it is held here until then. From
        now on nothing is built.
        """
        with self._lock:
            self.closed = True
            slots = list(self._slots.values())
            self._slots.clear()
            self._resources.clear()
        here = asyncio.get_running_loop()
        waits = []
        for slot in slots:
            if slot.loop is here:
                waits.append(slot.close())
            elif slot.loop.is_closed():
                slot.abandon()
            elif slot.loop.is_running():
                waits.append(self._close_elsewhere(slot))
            elif slot.hook is not None:
                with self._lock:
                    self._left.add(slot)
        await asyncio.gather(*waits)

    async def _close_elsewhere(self, slot: _Slot[R]) -> None:
        """Have another running loop end its resource; wait up to the grace period."""
        closing = slot.close()
        try:
            done = asyncio.run_coroutine_threadsafe(closing, slot.loop)
        except RuntimeError:  # that loop closed meanwhile
            closing.close()
            slot.abandon()
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._grace):
                await asyncio.wrap_future(done)
        if slot.loop.is_closed() and not done.done():  # it closed before running it
            with contextlib.suppress(RuntimeError):
                closing.close()
            slot.abandon()


def _shutting_down(loop: asyncio.AbstractEventLoop) -> bool:
    """Return whether ``loop`` already closed its async generators (it is about to close)."""
    return bool(getattr(loop, "_asyncgens_shutdown_called", False))


def _started(hook: AsyncGenerator[None, None]) -> bool:
    """Run ``hook`` to its ``yield`` now, registering it with the running loop.

    The loop's first-iteration hook (``sys.set_asyncgen_hooks``, set by every
    asyncio loop while it runs) makes the loop close it at shutdown. Its
    first step awaits nothing, so it is taken here without awaiting.

    Returns:
        Whether the running loop took it (a loop without those hooks does not).

    """
    if sys.get_asyncgen_hooks().firstiter is None:
        return False
    step = hook.asend(None)
    try:
        step.send(None)
    except StopIteration:
        return True
    raise AssertionError("the hook's first step awaits nothing")  # pragma: no cover


def close_transport_now(transport: Any) -> None:
    """Close an asyncio transport's socket whose loop is closed, sending nothing.

    Nothing can run in that loop any more, so the transport cannot close
    itself (it would schedule its last step there). Its socket is closed
    here and dropped from it, from under TLS if need be, so that neither it
    nor its stream warns of it when collected.
    """
    ssl_protocol = getattr(transport, "_ssl_protocol", None)
    if ssl_protocol is not None:  # asyncio's TLS transport, over the socket's own
        transport._closed = True
        transport = getattr(ssl_protocol, "_transport", None)
    if transport is None:
        return
    # Marks it closing; then fails to schedule the rest on the closed loop.
    with contextlib.suppress(RuntimeError):
        transport.abort()
    sock = getattr(transport, "_sock", None)
    if sock is not None:
        transport._sock = None
        sock.close()
