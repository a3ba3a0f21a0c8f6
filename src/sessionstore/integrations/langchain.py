"""A LangChain chat message history kept in a sessionstore (``docs/integrations/langchain.md``).

:class:`SessionstoreChatMessageHistory` is a ``BaseChatMessageHistory``
(``langchain_core.chat_history``), for ``RunnableWithMessageHistory`` and
code written against it; LangChain deprecated both in favour of LangGraph's
persistence, and this adapter stays as thin as they are. Each message is one
item of the session's item log (``docs/items.md``), as LangChain's
``message_to_dict`` makes it, read back with ``messages_from_dict``.

Importing this module imports ``langchain_core``; without it the import
raises :class:`~sessionstore.errors.MissingDependencyError` naming
``pip install 'sessionstore[langchain]'``.
"""

from __future__ import annotations

from collections.abc import Sequence

from sessionstore.extras import require
from sessionstore.integrations import Conversation
from sessionstore.integrations.blocking import run_blocking
from sessionstore.store import SessionStore

require("langchain_core", "langchain")

from langchain_core.chat_history import BaseChatMessageHistory  # noqa: E402  (after the check)
from langchain_core.messages import (  # noqa: E402
    BaseMessage,
    message_to_dict,
    messages_from_dict,
)

__all__ = ["SessionstoreChatMessageHistory"]


class SessionstoreChatMessageHistory(Conversation, BaseChatMessageHistory):
    """One conversation's LangChain messages, kept in a sessionstore.

    Conversations are named by ``(session_id, user_id)`` like everything
    else in the store: two users' conversations of the same id never meet,
    and the CLI (``sessionstore show SESSION -u USER --items``),
    ``export``/``copy``, expiry (``ttl``) and listing all see them.

    The async methods await the store in the caller's event loop; the sync
    ones (``messages``, ``add_messages``, ``clear``) run them in a loop of
    the integrations' own and block until done, so they work from any thread.

    Example::

        store = sessionstore.open_store("sqlite:///chats.db")
        chain = RunnableWithMessageHistory(
            prompt | model,
            lambda session_id: SessionstoreChatMessageHistory(session_id, store, user_id="alice"),
        )

    Args:
        session_id: the conversation (1 to 256 characters, no NUL).
        store: a :class:`~sessionstore.SessionStore`, which stays the
            caller's to close, or a store URL, which this history opens and
            closes in :meth:`close` / :meth:`aclose`.
        user_id: the user the conversation belongs to; ``None`` is the
            anonymous user.

    Raises:
        InvalidParameterError: a bad ``session_id``, ``user_id`` or store URL;
            in the add methods, a message whose dict is no JSON value
            (nothing is written then).

    """

    def __init__(
        self, session_id: str, store: SessionStore | str, *, user_id: str | None = None
    ) -> None:
        self._bind(session_id, store, user_id)

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]  # a plain attribute there
        """The conversation's messages, oldest first (blocking :meth:`aget_messages`)."""
        return run_blocking(self.aget_messages())

    async def aget_messages(self) -> list[BaseMessage]:
        """Return the conversation's messages, oldest first."""
        items = await self._store.get_items(self.session_id, self.user_id)
        return messages_from_dict([item.data for item in items])

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Blocking :meth:`aadd_messages`."""
        run_blocking(self.aadd_messages(messages))

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Append ``messages`` in order, as one atomic write (all of them or none)."""
        dicts = [message_to_dict(message) for message in messages]
        await self._store.append_items(self.session_id, self.user_id, dicts)

    def clear(self) -> None:
        """Blocking :meth:`aclear`."""
        run_blocking(self.aclear())

    async def aclear(self) -> None:
        """Delete the conversation's messages (its entries, traces and state stay)."""
        await self._store.clear_items(self.session_id, self.user_id)

    async def aclose(self) -> None:
        """Close the store if this history opened it from a URL; idempotent."""
        await self._close_store()

    def close(self) -> None:
        """Blocking :meth:`aclose`."""
        run_blocking(self.aclose())
