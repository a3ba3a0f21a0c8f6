"""Pydantic AI message histories kept in a sessionstore (``docs/integrations/pydantic-ai.md``).

:class:`SessionstoreMessageHistory` loads a conversation's ``ModelMessage``
list for ``agent.run(..., message_history=...)`` and stores what the run
added. Each message is one item of the session's item log
(``docs/items.md``), as the JSON that Pydantic AI's own
``ModelMessagesTypeAdapter`` writes, and is read back through it: a loaded
history is what that adapter's JSON round trip gives, to the byte.

Importing this module imports ``pydantic_ai``; without it the import raises
:class:`~sessionstore.errors.MissingDependencyError` naming
``pip install 'sessionstore[pydantic-ai]'``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from sessionstore.extras import require
from sessionstore.integrations import ClosingConversation
from sessionstore.store import SessionStore

require("pydantic_ai", "pydantic-ai")

from pydantic_ai.messages import ModelMessage, ModelMessagesTypeAdapter  # noqa: E402

__all__ = ["SessionstoreMessageHistory"]


def _dump(messages: Sequence[ModelMessage]) -> list[Any]:
    """The messages as the JSON values ``ModelMessagesTypeAdapter`` writes, one per message."""
    values: list[Any] = json.loads(ModelMessagesTypeAdapter.dump_json(list(messages)))
    return values


def _load(values: Sequence[Any]) -> list[ModelMessage]:
    # Through JSON text, not Python objects: bytes are base64 only in the JSON form.
    return ModelMessagesTypeAdapter.validate_json(json.dumps(list(values), ensure_ascii=False))


class SessionstoreMessageHistory(ClosingConversation):
    """One conversation's Pydantic AI messages, kept in a sessionstore.

    Conversations are named by ``(session_id, user_id)`` like everything
    else in the store: two users' conversations of the same id never meet,
    and the CLI (``sessionstore show SESSION -u USER --items``),
    ``export``/``copy``, expiry (``ttl``) and listing all see them.

    Example::

        history = SessionstoreMessageHistory("chat-1", "sqlite:///chats.db", user_id="alice")
        result = await agent.run("Hi!", message_history=await history.load())
        await history.append(result.new_messages())

    Args:
        session_id: the conversation (1 to 256 characters, no NUL).
        store: a :class:`~sessionstore.SessionStore`, which stays the
            caller's to close, or a store URL, which this history opens and
            closes in :meth:`close`.
        user_id: the user the conversation belongs to; ``None`` is the
            anonymous user.

    Raises:
        InvalidParameterError: a bad ``session_id``, ``user_id`` or store URL.

    """

    def __init__(
        self, session_id: str, store: SessionStore | str, *, user_id: str | None = None
    ) -> None:
        self._bind(session_id, store, user_id)

    async def load(self, limit: int | None = None) -> list[ModelMessage]:
        """Return the conversation's messages, oldest first: the newest ``limit`` of them.

        ``None`` gives all of them; the read costs the same however long the
        conversation is. A window may start inside a turn (say with a tool
        result whose call it left out): Pydantic AI repairs such a history
        before it sends it.

        Raises:
            InvalidParameterError: ``limit`` negative or not an int.

        """
        items = await self._store.get_items(self.session_id, self.user_id, limit)
        return _load([item.data for item in items])

    async def append(self, messages: Sequence[ModelMessage]) -> None:
        """Append ``messages`` (a run's ``new_messages()``) as one atomic write.

        All of them are stored or none is, and no other writer's messages
        land between them.

        Raises:
            InvalidParameterError: a message is over the store's
                ``max_field_bytes``; nothing is written.

        """
        await self._store.append_items(self.session_id, self.user_id, _dump(messages))

    async def save(self, messages: Sequence[ModelMessage]) -> None:
        """Make ``messages`` (a run's ``all_messages()``) the conversation's history.

        When the stored history is the start of ``messages``, only the rest is
        appended, as :meth:`append` does. Otherwise (the history was
        rewritten, say trimmed or summarized) the new history is appended
        first, then the old messages are deleted: a reader in between sees
        both, and a failure in between leaves both, never neither.
        """
        values = _dump(messages)
        stored = await self._store.get_items(self.session_id, self.user_id)
        if [item.data for item in stored] == values[: len(stored)]:
            await self._store.append_items(self.session_id, self.user_id, values[len(stored) :])
            return
        await self._store.append_items(self.session_id, self.user_id, values)
        await asyncio.gather(
            *(self._store.delete_item(self.session_id, self.user_id, i.id) for i in stored)
        )

    async def clear(self) -> None:
        """Delete the conversation's messages (its entries, traces and state stay)."""
        await self._store.clear_items(self.session_id, self.user_id)
