"""LlamaIndex chat stores kept in a sessionstore (``docs/integrations/llama-index.md``).

Two classes, one per chat-store interface of ``llama-index-core``:

- :class:`SessionstoreChatStore`, a ``BaseChatStore``: what
  ``ChatMemoryBuffer`` (and anything else taking ``chat_store=``) uses, with
  the sync methods and their async twins.
- :class:`SessionstoreMemoryStore`, an ``AsyncDBChatStore``: what ``Memory``
  uses (``Memory.from_defaults(chat_store=...)``), with its active and
  archived messages.

A chat-store key is a session of the adapter's user (``user_id``, default
``None``, the anonymous user): the messages of key ``K`` are the items of
session ``(K, user_id)`` (``docs/items.md``), one ``ChatMessage`` per item as
``message.model_dump(mode="json")``, read back with ``model_validate``. So
the CLI (``sessionstore show K --items``), ``export``/``copy``, expiry
(``ttl``) and listing all see them, and two users' keys never meet.

Importing this module imports ``llama_index.core``; without it the import
raises :class:`~sessionstore.errors.MissingDependencyError` naming
``pip install 'sessionstore[llama-index]'``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Final

from sessionstore.errors import InvalidParameterError
from sessionstore.extras import require
from sessionstore.integrations import take_store
from sessionstore.integrations.blocking import run_blocking
from sessionstore.models import SessionItem
from sessionstore.store import SessionStore
from sessionstore.validation import MAX_ID_LENGTH, check_session_id, check_user_id

require("llama_index.core", "llama-index")

from llama_index.core.bridge.pydantic import PrivateAttr  # noqa: E402  (after the check)
from llama_index.core.llms import ChatMessage  # noqa: E402
from llama_index.core.storage.chat_store.base import BaseChatStore  # noqa: E402
from llama_index.core.storage.chat_store.base_db import (  # noqa: E402
    AsyncDBChatStore,
    MessageStatus,
)

__all__ = ["ARCHIVED_SUFFIX", "SessionstoreChatStore", "SessionstoreMemoryStore"]

ARCHIVED_SUFFIX: Final = " (archived)"
"""Appended to a key to name the session that keeps its archived messages."""


# -- messages as items ------------------------------------------------------------


def _dump(message: ChatMessage) -> Any:
    return message.model_dump(mode="json")


def _load(item: SessionItem) -> ChatMessage:
    return ChatMessage.model_validate(item.data)


async def _messages(store: SessionStore, key: str, user_id: str | None) -> list[ChatMessage]:
    return [_load(item) for item in await store.get_items(key, user_id)]


async def _replace(
    store: SessionStore,
    user_id: str | None,
    key: str,
    messages: Sequence[ChatMessage],
    *,
    emptied: Sequence[str] = (),
) -> None:
    """Make ``messages`` the items of ``key``, and empty the sessions ``emptied`` too.

    The new messages are appended first, as one atomic write that stores all
    or none of them (a message that is no JSON, or too large, leaves
    everything as it was); then the old items are deleted by id. A reader in
    between sees both; a failure in between leaves both, never neither.
    """
    old = {session: await store.get_items(session, user_id) for session in (key, *emptied)}
    await store.append_items(key, user_id, [_dump(message) for message in messages])
    await asyncio.gather(
        *(
            store.delete_item(session, user_id, item.id)
            for session, items in old.items()
            for item in items
        )
    )


async def _delete_at(
    store: SessionStore, key: str, user_id: str | None, idx: int
) -> ChatMessage | None:
    """Delete the message at position ``idx`` of ``key`` (as a list index); ``None`` if none."""
    items = await store.get_items(key, user_id)
    if not -len(items) <= idx < len(items):
        return None
    item = items[idx]
    return _load(item) if await store.delete_item(key, user_id, item.id) else None


async def _keys(store: SessionStore, user_id: str | None) -> list[str]:
    """The user's sessions that hold items, most recently written first."""
    keys: list[str] = []
    cursor: str | None = None
    while True:
        page = await store.list_sessions(user_id, limit=1000, cursor=cursor)
        keys.extend(info.session_id for info in page.items if info.item_count)
        if page.next_cursor is None:
            return keys
        cursor = page.next_cursor


# -- ChatMemoryBuffer's chat store ------------------------------------------------------


class SessionstoreChatStore(BaseChatStore):
    """A LlamaIndex ``BaseChatStore`` whose messages are kept in a sessionstore.

    Give it to ``ChatMemoryBuffer.from_defaults(chat_store=..., chat_store_key=...)``.
    The ``a*`` methods (and ``async_add_message``) await the store in the
    caller's event loop; the sync ones run them in a loop of the
    integrations' own and block until done, so they work from any thread.

    Example::

        store = SessionstoreChatStore("sqlite:///chats.db", user_id="alice")
        memory = ChatMemoryBuffer.from_defaults(chat_store=store, chat_store_key="chat-1")

    Where it differs from ``SimpleChatStore``: a key without messages does
    not exist (``get_keys`` leaves it out, ``delete_messages`` returns
    ``None``), and ``add_message`` takes no ``idx`` (it only appends).

    Args:
        store: a :class:`~sessionstore.SessionStore`, which stays the
            caller's to close, or a store URL, which this chat store opens
            and closes in :meth:`close` / :meth:`aclose`.
        user_id: the user whose sessions the keys name; ``None`` is the
            anonymous user.

    Raises:
        InvalidParameterError: a bad ``user_id`` or store URL; in any method,
            a key that is no legal session id (1 to 256 characters, no NUL)
            or a message that is no JSON value.

    """

    user_id: str | None = None
    _store: SessionStore = PrivateAttr()
    _owns_store: bool = PrivateAttr(default=False)

    def __init__(self, store: SessionStore | str, *, user_id: str | None = None) -> None:
        super().__init__(user_id=check_user_id(user_id))
        self._store, self._owns_store = take_store(store)

    @classmethod
    def class_name(cls) -> str:
        """The name LlamaIndex serializes this class under."""
        return "SessionstoreChatStore"

    @property
    def store(self) -> SessionStore:
        """The store that keeps the messages."""
        return self._store

    # -- async -----------------------------------------------------------------

    async def aset_messages(self, key: str, messages: list[ChatMessage]) -> None:
        """Replace the messages of ``key`` (see ``_replace`` for the order of writes)."""
        await _replace(self._store, self.user_id, key, messages)

    async def aget_messages(self, key: str) -> list[ChatMessage]:
        """Return the messages of ``key``, oldest first."""
        return await _messages(self._store, key, self.user_id)

    async def async_add_message(self, key: str, message: ChatMessage) -> None:
        """Append ``message`` to ``key``."""
        await self._store.append_items(key, self.user_id, [_dump(message)])

    async def adelete_messages(self, key: str) -> list[ChatMessage] | None:
        """Delete every message of ``key``; return them, or ``None`` if it had none.

        The messages returned are those read just before the delete, which
        also removes any message added in between.
        """
        messages = await _messages(self._store, key, self.user_id)
        removed = await self._store.clear_items(key, self.user_id)
        return messages if removed else None

    async def adelete_message(self, key: str, idx: int) -> ChatMessage | None:
        """Delete the message at ``idx`` (a list index) of ``key``; ``None`` if out of range."""
        return await _delete_at(self._store, key, self.user_id, idx)

    async def adelete_last_message(self, key: str) -> ChatMessage | None:
        """Delete and return the newest message of ``key``, atomically; ``None`` if none."""
        popped = await self._store.pop_item(key, self.user_id)
        return None if popped is None else _load(popped)

    async def aget_keys(self) -> list[str]:
        """Return the keys that hold messages, most recently written first."""
        return await _keys(self._store, self.user_id)

    # -- sync ------------------------------------------------------------------

    def set_messages(self, key: str, messages: list[ChatMessage]) -> None:
        """Blocking :meth:`aset_messages`."""
        run_blocking(self.aset_messages(key, messages))

    def get_messages(self, key: str) -> list[ChatMessage]:
        """Blocking :meth:`aget_messages`."""
        return run_blocking(self.aget_messages(key))

    def add_message(self, key: str, message: ChatMessage) -> None:
        """Blocking :meth:`async_add_message`."""
        run_blocking(self.async_add_message(key, message))

    def delete_messages(self, key: str) -> list[ChatMessage] | None:
        """Blocking :meth:`adelete_messages`."""
        return run_blocking(self.adelete_messages(key))

    def delete_message(self, key: str, idx: int) -> ChatMessage | None:
        """Blocking :meth:`adelete_message`."""
        return run_blocking(self.adelete_message(key, idx))

    def delete_last_message(self, key: str) -> ChatMessage | None:
        """Blocking :meth:`adelete_last_message`."""
        return run_blocking(self.adelete_last_message(key))

    def get_keys(self) -> list[str]:
        """Blocking :meth:`aget_keys`."""
        return run_blocking(self.aget_keys())

    # -- the store it opened ---------------------------------------------------

    async def aclose(self) -> None:
        """Close the store if this chat store opened it from a URL; idempotent."""
        if self._owns_store:
            await self._store.close()

    def close(self) -> None:
        """Blocking :meth:`aclose`."""
        run_blocking(self.aclose())


# -- Memory's chat store -------------------------------------------------------------


def _sessions(key: str) -> tuple[str, str]:
    """The sessions that keep the active and the archived messages of ``key``."""
    check_session_id(key)
    if key.endswith(ARCHIVED_SUFFIX) or len(key) > MAX_ID_LENGTH - len(ARCHIVED_SUFFIX):
        raise InvalidParameterError(
            f"a key must be at most {MAX_ID_LENGTH - len(ARCHIVED_SUFFIX)} characters "
            f"and not end in {ARCHIVED_SUFFIX!r} (that names its archived messages)"
        )
    return key, key + ARCHIVED_SUFFIX


class SessionstoreMemoryStore(AsyncDBChatStore):
    """A LlamaIndex ``AsyncDBChatStore`` kept in a sessionstore: the chat store of ``Memory``.

    Give it to ``Memory.from_defaults(session_id=..., chat_store=...)``.
    The active messages of key ``K`` are the items of session ``K``; the
    archived ones (the oldest messages ``Memory`` flushes out of its token
    limit) are the items of session ``K + " (archived)"``. So reading the
    active messages, which ``Memory`` does on every put and get, costs the
    same however long the archive grows. Keys ending in ``" (archived)"``
    are refused.

    Where it differs from LlamaIndex's ``SQLAlchemyChatStore`` (see
    ``docs/integrations/llama-index.md``): ``delete_message`` takes a
    position among the active messages, not a row id; with ``status=None``
    archived messages come before active ones; archiving copies, then
    deletes, so a failure in between leaves a message in both, never neither.

    Args:
        store: a :class:`~sessionstore.SessionStore`, which stays the
            caller's to close, or a store URL, which this chat store opens
            and closes in :meth:`aclose`.
        user_id: the user whose sessions the keys name; ``None`` is the
            anonymous user.

    Raises:
        InvalidParameterError: a bad ``user_id`` or store URL; in any method,
            a bad key or a message that is no JSON value.

    """

    user_id: str | None = None
    _store: SessionStore = PrivateAttr()
    _owns_store: bool = PrivateAttr(default=False)

    def __init__(self, store: SessionStore | str, *, user_id: str | None = None) -> None:
        super().__init__(user_id=check_user_id(user_id))
        self._store, self._owns_store = take_store(store)

    @classmethod
    def class_name(cls) -> str:
        """The name LlamaIndex serializes this class under."""
        return "SessionstoreMemoryStore"

    @property
    def store(self) -> SessionStore:
        """The store that keeps the messages."""
        return self._store

    def _session(self, key: str, status: MessageStatus) -> str:
        active, archived = _sessions(key)
        return archived if status == MessageStatus.ARCHIVED else active

    async def get_messages(
        self,
        key: str,
        status: MessageStatus | None = MessageStatus.ACTIVE,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[ChatMessage]:
        """Return the messages of ``key`` with ``status`` (``None``: both), oldest first.

        ``offset`` and ``limit`` then slice that list. With one ``status`` and
        an ``offset``, only the messages from ``offset`` on are read (a count,
        then the tail), so reading the last few costs the same however long
        the history is; messages appended between the two reads move the
        window later by as many.
        """
        start = offset or 0
        end = None if limit is None else limit
        if status is None:
            active, archived = _sessions(key)
            messages = [
                *await _messages(self._store, archived, self.user_id),
                *await _messages(self._store, active, self.user_id),
            ]
            return messages[start : None if end is None else start + end]
        session = self._session(key, status)
        if not start:
            return (await _messages(self._store, session, self.user_id))[:end]
        wanted = await self._store.count_items(session, self.user_id) - start
        if wanted <= 0:
            return []
        tail = await self._store.get_items(session, self.user_id, wanted)
        return [_load(item) for item in tail[:end]]

    async def count_messages(
        self, key: str, status: MessageStatus | None = MessageStatus.ACTIVE
    ) -> int:
        """Return how many messages ``key`` has with ``status`` (``None``: both)."""
        statuses = list(MessageStatus) if status is None else [status]
        sessions = [self._session(key, one) for one in statuses]
        return sum([await self._store.count_items(s, self.user_id) for s in sessions])

    async def add_message(
        self, key: str, message: ChatMessage, status: MessageStatus = MessageStatus.ACTIVE
    ) -> None:
        """Append ``message`` to the messages of ``key`` with ``status``."""
        await self.add_messages(key, [message], status)

    async def add_messages(
        self,
        key: str,
        messages: list[ChatMessage],
        status: MessageStatus = MessageStatus.ACTIVE,
    ) -> None:
        """Append ``messages`` in order, as one atomic write."""
        dumped = [_dump(message) for message in messages]
        await self._store.append_items(self._session(key, status), self.user_id, dumped)

    async def set_messages(
        self,
        key: str,
        messages: list[ChatMessage],
        status: MessageStatus = MessageStatus.ACTIVE,
    ) -> None:
        """Make ``messages`` (with ``status``) the only messages of ``key``, of either status."""
        active, archived = _sessions(key)
        target = self._session(key, status)
        other = archived if target == active else active
        await _replace(self._store, self.user_id, target, messages, emptied=[other])

    async def delete_message(self, key: str, idx: int) -> ChatMessage | None:
        """Delete the active message at position ``idx``; ``None`` if out of range."""
        return await _delete_at(self._store, _sessions(key)[0], self.user_id, idx)

    async def delete_messages(self, key: str, status: MessageStatus | None = None) -> None:
        """Delete the messages of ``key`` with ``status`` (``None``: all)."""
        statuses = list(MessageStatus) if status is None else [status]
        for one in statuses:
            await self._store.clear_items(self._session(key, one), self.user_id)

    async def delete_oldest_messages(self, key: str, n: int) -> list[ChatMessage]:
        """Delete the ``n`` oldest active messages of ``key`` and return them."""
        return await self._remove_oldest(key, n, archive=False)

    async def archive_oldest_messages(self, key: str, n: int) -> list[ChatMessage]:
        """Move the ``n`` oldest active messages of ``key`` to its archived ones; return them."""
        return await self._remove_oldest(key, n, archive=True)

    async def _remove_oldest(self, key: str, n: int, *, archive: bool) -> list[ChatMessage]:
        active, archived = _sessions(key)
        oldest = (await self._store.get_items(active, self.user_id))[: max(n, 0)]
        if archive and oldest:
            await self._store.append_items(archived, self.user_id, [i.data for i in oldest])
        deleted = await asyncio.gather(
            *(self._store.delete_item(active, self.user_id, item.id) for item in oldest)
        )
        return [_load(item) for item, gone in zip(oldest, deleted, strict=True) if gone]

    async def get_keys(self) -> list[str]:
        """Return the keys with messages of either status, most recently written first."""
        keys = (key.removesuffix(ARCHIVED_SUFFIX) for key in await _keys(self._store, self.user_id))
        return list(dict.fromkeys(keys))

    async def aclose(self) -> None:
        """Close the store if this chat store opened it from a URL; idempotent."""
        if self._owns_store:
            await self._store.close()
