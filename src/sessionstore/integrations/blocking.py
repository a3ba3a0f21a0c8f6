"""Blocking calls for the frameworks' sync interfaces (LlamaIndex, LangChain).

A framework's sync method (``BaseChatStore.get_messages``,
``BaseChatMessageHistory.messages``) must call the async store from a thread
that may or may not run an event loop of its own. Those calls run in one
event loop shared by the integrations, in a daemon thread, as the blocking
facade's calls do (``docs/sync.md``): the store keeps one connection pool in
that loop (``docs/connections.md``), so a blocking call costs a hand-off
between two threads, not a new connection. A call from a thread whose loop is
running blocks that loop until it returns, like any blocking call.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from sessionstore.sync.loop import LoopThread

__all__ = ["run_blocking"]

T = TypeVar("T")

_lock = threading.Lock()
_loop: LoopThread | None = None


async def _nothing_to_close() -> None:
    """The shared loop owns no store: each adapter closes the store it opened."""


def _shared_loop() -> LoopThread:
    global _loop  # noqa: PLW0603  (one loop per process, made on first use)
    with _lock:
        if _loop is None or _loop._pid != os.getpid():  # none yet, or made before a fork
            _loop = LoopThread("sessionstore integrations", _nothing_to_close)
        return _loop


def run_blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` in the integrations' loop and block until it returns.

    Its exception, if any, is raised here unchanged.
    """
    return _shared_loop().run(coro)
