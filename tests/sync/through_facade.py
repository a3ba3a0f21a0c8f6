"""The async store's API with every call made through the blocking facade.

``pytest tests/contract --through-sync`` gives the contract suite, in place of
each async store, a :class:`ThroughFacade` over a ``sessionstore.sync`` store
on the same URL and options. Each call runs the blocking method in a worker
thread (``asyncio.to_thread``), so the facade is driven from many threads at
once, as a threaded web server would drive it, while the test's own event
loop stays free. What the test then asserts it asserts about the facade.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from types import TracebackType
from typing import Any, Self

from sessionstore import SessionStore, sync

__all__ = ["ThroughFacade", "open_through_facade"]


def _kind(name: str) -> str:
    """``"call"`` for a coroutine method of the async store, ``"iterate"`` for an iterator."""
    attribute = inspect.getattr_static(SessionStore, name, None)
    if inspect.iscoroutinefunction(attribute):
        return "call"
    if name == "export_sessions":  # a plain method returning an async iterator
        return "iterate"
    return "as is"


async def _pull(items: Iterator[Any]) -> AsyncIterator[Any]:
    done = object()
    while (item := await asyncio.to_thread(next, items, done)) is not done:
        yield item


class ThroughFacade:
    """Looks like an async ``SessionStore``; runs every call on a blocking one."""

    def __init__(self, blocking: sync.SessionStore) -> None:
        self.blocking = blocking

    def __repr__(self) -> str:
        return f"ThroughFacade({self.blocking!r})"

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.blocking, name)
        kind = _kind(name)
        if kind == "call":
            return _in_thread(method)
        if kind == "iterate":
            return lambda *args, **kwargs: _pull(iter(method(*args, **kwargs)))
        return method

    async def import_sessions(self, dumps: Any) -> int:
        if isinstance(dumps, AsyncIterable):  # the blocking store takes plain iterables
            dumps = [dump async for dump in dumps]
        return await asyncio.to_thread(self.blocking.import_sessions, dumps)

    async def __aenter__(self) -> Self:
        await asyncio.to_thread(self.blocking.__enter__)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.blocking.__exit__, exc_type, exc, traceback)


def _in_thread(method: Callable[..., Any]) -> Callable[..., Any]:
    async def call(*args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(method, *args, **kwargs)

    return call


async def open_through_facade(url: str, **options: Any) -> ThroughFacade:
    """Open a blocking store on ``url`` (raising what opening raises) and wrap it."""
    blocking = sync.open_store(url, **options)
    try:
        await asyncio.to_thread(blocking.open)
    except BaseException:
        blocking.close()
        raise
    return ThroughFacade(blocking)
