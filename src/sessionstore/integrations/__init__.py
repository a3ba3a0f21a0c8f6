"""Drop-in memory for agent frameworks, one module per framework.

Each module imports its framework (installed by its extra, e.g.
``pip install 'sessionstore[openai-agents]'``) only when it is imported
itself; ``import sessionstore`` never imports any of them.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sessionstore.store import SessionStore
from sessionstore.urls import open_store
from sessionstore.validation import check_session_id, check_user_id

__all__ = ["ClosingConversation", "Conversation", "take_store"]


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


class Conversation:
    """One conversation of a store, as the adapters hold it: its ids and the store.

    An adapter calls :meth:`_bind` from its constructor and
    :meth:`_close_store` from its close method.
    """

    session_id: str
    user_id: str | None
    _store: SessionStore
    _owns_store: bool

    def _bind(self, session_id: str, store: SessionStore | str, user_id: str | None) -> None:
        """Check the ids and take the store (see :func:`take_store`).

        Raises:
            InvalidParameterError: a bad id or store URL.

        """
        self.session_id = check_session_id(session_id)
        self.user_id = check_user_id(user_id)
        self._store, self._owns_store = take_store(store)

    @property
    def store(self) -> SessionStore:
        """The store that keeps the conversation."""
        return self._store

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(session_id={self.session_id!r}, "
            f"user_id={self.user_id!r}, store={self._store!r})"
        )

    async def _close_store(self) -> None:
        """Close the store if it was opened here from a URL; idempotent."""
        if self._owns_store:
            await self._store.close()


class ClosingConversation(Conversation):
    """A conversation closed with ``await close()`` or ``async with``.

    For the adapters whose framework has no close method of its own to follow.
    """

    async def close(self) -> None:
        """Close the store if this adapter opened it from a URL; idempotent."""
        await self._close_store()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
