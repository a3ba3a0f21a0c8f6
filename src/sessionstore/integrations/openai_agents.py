"""The OpenAI Agents SDK's ``Session``, kept in a sessionstore.

``SessionstoreSession`` is what ``Runner.run``, ``Runner.run_sync`` and
``Runner.run_streamed`` take as ``session=``, alone or wrapped by the SDK's
``EncryptedSession``. The session's Responses items live in the store's item
log (``docs/items.md``): each ``add_items`` call is one atomic append whose
items stay contiguous whatever else writes to the session, every item comes
back exactly as it went in, and ``get_items(limit)`` reads only the newest
``limit`` items.

Importing this module imports the SDK; without it the import raises
:class:`~sessionstore.errors.MissingDependencyError` naming
``pip install 'sessionstore[openai-agents]'``. Guide:
``docs/integrations/openai-agents.md``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sessionstore.extras import require
from sessionstore.integrations import ClosingConversation
from sessionstore.store import SessionStore

require("agents", "openai-agents")

from agents.memory.session import SessionABC  # noqa: E402  (after the dependency check)
from agents.memory.session_settings import (  # noqa: E402
    SessionSettings,
    coerce_session_settings,
    resolve_session_limit,
)

if TYPE_CHECKING:
    from agents.items import TResponseInputItem

__all__ = ["SessionstoreSession"]

_T = TypeVar("_T")


class SessionstoreSession(ClosingConversation, SessionABC):
    """An Agents SDK session whose items are kept in a sessionstore.

    Sessions are named by ``(session_id, user_id)`` like everything else in
    the store: two users' sessions of the same id never meet, and the CLI
    (``sessionstore show SESSION -u USER --items``), ``export``/``copy``,
    expiry (``ttl``) and listing all see them.

    Example::

        session = SessionstoreSession("chat-1", "sqlite:///agents.db", user_id="alice")
        result = await Runner.run(agent, "Hi!", session=session)

    Args:
        session_id: the conversation (1 to 256 characters, no NUL).
        store: a :class:`~sessionstore.SessionStore`, which stays the
            caller's to close, or a store URL, which this session opens and
            closes in :meth:`close`.
        user_id: the user the conversation belongs to; ``None`` is the
            anonymous user.
        session_settings: the SDK's ``SessionSettings`` (or its dict form);
            ``limit`` is how many of the newest items ``get_items()`` returns
            when it is called without one. Default: ``SessionSettings()``, all.

    Raises:
        InvalidParameterError: a bad ``session_id``, ``user_id`` or store URL.
        TypeError: unknown ``session_settings`` fields (the SDK's own check).

    """

    session_settings: SessionSettings | None = None

    def __init__(
        self,
        session_id: str,
        store: SessionStore | str,
        *,
        user_id: str | None = None,
        session_settings: SessionSettings | dict[str, Any] | None = None,
    ) -> None:
        self._bind(session_id, store, user_id)
        self.session_settings = (
            SessionSettings()
            if session_settings is None
            else coerce_session_settings(session_settings)
        )

    # -- the Session protocol ----------------------------------------------------

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """Return the session's items, oldest first: the newest ``limit`` of them.

        ``limit=None`` uses ``session_settings.limit`` (``None`` there: every
        item). ``0`` gives ``[]``; a negative limit gives every item, as the
        SDK's ``SQLiteSession`` does. The read costs the same however long the
        session is.
        """
        limit = resolve_session_limit(limit, self.session_settings)
        last_n = None if limit is None or limit < 0 else limit
        items = await self._store.get_items(self.session_id, self.user_id, last_n)
        return [cast("TResponseInputItem", item.data) for item in items]

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        """Append ``items`` in order, as one atomic write.

        All of them are stored or none is, and no other writer's items land
        between them. A cancelled call still waits for the write to finish or
        fail before the cancellation goes on: once the caller sees the
        ``CancelledError``, what the session holds is final.

        Raises:
            InvalidParameterError: an item is not a JSON value (or is over the
                store's ``max_field_bytes``); nothing is written.

        """
        await _settled(self._store.append_items(self.session_id, self.user_id, list(items)))

    async def pop_item(self) -> TResponseInputItem | None:
        """Remove and return the newest item, atomically; ``None`` when there is none."""
        popped = await _settled(self._store.pop_item(self.session_id, self.user_id))
        return None if popped is None else cast("TResponseInputItem", popped.data)

    async def clear_session(self) -> None:
        """Remove every item of the session (its entries, traces and state stay)."""
        await _settled(self._store.clear_items(self.session_id, self.user_id))


async def _settled(write: Awaitable[_T]) -> _T:
    """Await ``write`` to its end even when the caller is cancelled meanwhile.

    The write runs as its own task; a cancellation of the caller is held until
    that task has finished, then raised. A caller that was cancelled (the
    SDK's runner, when a run is cancelled) can then read the session to learn
    whether the write happened: it is no longer in flight.
    """
    task = asyncio.ensure_future(write)
    held: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.wait((task,))
        except asyncio.CancelledError as cancelled:
            held = held or cancelled
    if held is not None:
        if not task.cancelled():
            task.exception()  # retrieved, so asyncio logs no "never retrieved" error
        raise held
    return task.result()
