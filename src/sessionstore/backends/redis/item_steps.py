"""The item log and state steps of :class:`~.store.RedisStore` (see :mod:`sessionstore.items`).

A session's items are a sorted set of ids scored by the session's item
sequence plus a hash of id -> stored item; its state is a hash of key -> JSON
text, with its revision and size in the session's meta hash (:mod:`.layout`).
Every write is one script, in the session's slot, that checks the expected
revision and the size before it writes anything. A user's or an app's state
has its own two keys (its own slot) and never expires.
"""

from __future__ import annotations

import abc
from datetime import datetime
from typing import Any

from sessionstore.backends.redis.client import RedisConnection
from sessionstore.backends.redis.codec import (
    as_text,
    decode_item,
    decode_listed_items,
    decode_state,
    encode_item,
    encode_state_changes,
)
from sessionstore.backends.redis.layout import SessionKeys, scope_keys
from sessionstore.errors import ConflictError, InvalidParameterError
from sessionstore.items import ItemRecord, StateRecord, StateScope
from sessionstore.keys import SessionKey
from sessionstore.store import SessionStore

__all__ = ["RedisItemSteps"]


class RedisItemSteps(SessionStore):
    """The item and state steps; :class:`~.store.RedisStore` supplies the plumbing below."""

    _conn: RedisConnection
    _prefix: str

    @abc.abstractmethod
    def _keys(self, key: SessionKey) -> SessionKeys:
        """Return every key of the session."""

    @abc.abstractmethod
    async def _write(
        self, name: str, key: SessionKey, *args: Any, now: datetime | None = None
    ) -> Any:
        """Run a session write script; on a standalone server it also updates the index."""

    @abc.abstractmethod
    async def _index_written(self, key: SessionKey, updated: bytes | str, mode: str = "LT") -> None:
        """Cluster only: move the session to its new place in the user's index."""

    @abc.abstractmethod
    async def _index_ended(self, key: SessionKey, updated: bytes | str) -> None:
        """Cluster only: drop an ended session from the index unless written since."""

    # -- items -------------------------------------------------------------

    async def _append_items(
        self,
        key: SessionKey,
        items: list[ItemRecord],
        changes: dict[str, str | None] | None,
        expected_revision: int | None,
    ) -> int:
        changing = "0" if changes is None else "1"
        args = [changing, *self._state_args(changes or {}, expected_revision)]
        for item in items:
            args += [item.id, encode_item(item)]
        now = items[0].created_at if items else None
        reply = await self._write("append_items", key, *args, now=now)
        self._check_state_reply(reply, expected_revision)
        if reply[1] is not None:
            await self._index_written(key, reply[1])
        return int(reply[2])

    async def _items(self, key: SessionKey, last_n: int | None) -> list[ItemRecord]:
        keys = self._keys(key)
        count = -1 if last_n is None else last_n
        stored = await self._conn.run("read_ordered", [keys.item_order, keys.items], [count, "1"])
        return decode_listed_items(stored)

    async def _pop_item(self, key: SessionKey) -> ItemRecord | None:
        reply = await self._write("pop_item", key)
        if reply is None:
            return None
        alive, updated, item_id, stored = reply
        await self._removed(key, alive, updated)
        return decode_item(item_id, stored)

    async def _delete_item(self, key: SessionKey, item_id: str) -> bool:
        return await self._remove("delete_item", key, item_id)

    async def _clear_items(self, key: SessionKey) -> bool:
        return await self._remove("clear_items", key)

    async def _count_items(self, key: SessionKey) -> int:
        with self._conn.errors():
            count: int = await self._conn.live_client().hlen(self._keys(key).items)
        return count

    async def _remove(self, script: str, key: SessionKey, *args: Any) -> bool:
        """Run a script that removes items; ``False`` when it found none."""
        reply = await self._write(script, key, *args)
        if reply is None:
            return False
        await self._removed(key, *reply)
        return True

    async def _removed(self, key: SessionKey, alive: int, updated: bytes | str) -> None:
        """Cluster only: after a removal, move the session in the index or drop it."""
        if alive:
            await self._index_written(key, updated)
        else:
            await self._index_ended(key, updated)

    # -- states --------------------------------------------------------------

    async def _get_state(self, key: SessionKey) -> StateRecord:
        keys = self._keys(key)
        revision, flat = await self._conn.run("read_state", [keys.meta, keys.state], [])
        return decode_state(revision, flat)

    async def _get_states(self, keys: list[SessionKey]) -> list[StateRecord]:
        calls: list[tuple[list[str], list[Any]]] = [
            ([k.meta, k.state], []) for k in map(self._keys, keys)
        ]
        replies = await self._conn.run_many("read_state", calls)
        return [decode_state(revision, flat) for revision, flat in replies]

    async def _update_state(
        self, key: SessionKey, changes: dict[str, str | None], expected_revision: int | None
    ) -> StateRecord:
        args = self._state_args(changes, expected_revision)
        reply = await self._write("update_state", key, *args)
        _, updated, revision, flat = self._check_state_reply(reply, expected_revision)
        await self._index_written(key, updated)
        return decode_state(revision, flat)

    async def _scoped_state(self, scope: StateScope) -> StateRecord:
        revision, flat = await self._conn.run("read_state", scope_keys(self._prefix, scope).all, [])
        return decode_state(revision, flat)

    async def _update_scoped_state(
        self, scope: StateScope, changes: dict[str, str | None], expected_revision: int | None
    ) -> StateRecord:
        keys = scope_keys(self._prefix, scope).all
        args = self._state_args(changes, expected_revision)
        reply = await self._conn.run("update_scoped_state", keys, args)
        _, revision, flat = self._check_state_reply(reply, expected_revision)
        return decode_state(revision, flat)

    def _state_args(
        self, changes: dict[str, str | None], expected_revision: int | None
    ) -> list[Any]:
        """Return a state change as the state scripts take it (see ``_state.lua``).

        The expected revision (``""``: none), the largest state in bytes, the
        number of changed keys, then each key and its JSON text (``""``: remove).
        """
        expected = "" if expected_revision is None else str(expected_revision)
        return [expected, self.max_field_bytes, len(changes), *encode_state_changes(changes)]

    def _check_state_reply(self, reply: list[Any], expected_revision: int | None) -> list[Any]:
        """Return a state script's ``ok`` reply; raise for its refusals.

        Raises:
            ConflictError: the state was not at the expected revision.
            InvalidParameterError: the state would have been too large.

        """
        status = as_text(reply[0])
        if status == "conflict":
            raise ConflictError(expected_revision or 0, int(reply[1]))
        if status == "too_big":
            raise InvalidParameterError(
                f"the state would hold {int(reply[1])} bytes, "
                f"over max_field_bytes={self.max_field_bytes}"
            )
        return reply
