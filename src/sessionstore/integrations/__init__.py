"""Drop-in memory for agent frameworks, one module per framework.

Each module imports its framework (installed by its extra, e.g.
``pip install 'sessionstore[openai-agents]'``) only when it is imported
itself; ``import sessionstore`` never imports any of them.
"""

from __future__ import annotations

from sessionstore.store import SessionStore
from sessionstore.urls import open_store

__all__ = ["take_store"]


def take_store(store: SessionStore | str) -> tuple[SessionStore, bool]:
    """Return the store an adapter uses, and whether the adapter opened it.

    A :class:`SessionStore` stays its caller's to close; a URL is opened here,
    and the adapter that asked closes it.

    Raises:
        InvalidParameterError: a bad URL.

    """
    if isinstance(store, SessionStore):
        return store, False
    return open_store(store), True
