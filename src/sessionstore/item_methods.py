"""The item log and versioned state of ``SessionStore`` (issue #14, ``docs/items.md``).

:class:`ItemMethods` holds the public item and state calls; ``SessionStore``
inherits them. Like every public call they validate and encode first (with
the rules of :mod:`sessionstore.items`), make ids and timestamps, run one
backend step (declared in :mod:`sessionstore.backend_steps`) and decode what
it returns.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from sessionstore.backend_steps import BackendSteps
from sessionstore.clock import now_utc
from sessionstore.errors import InvalidParameterError
from sessionstore.items import (
    ItemRecord,
    StateRecord,
    StateScope,
    check_delta_size,
    check_encoded_size,
    check_expected_revision,
    check_item_id,
    check_revision,
    check_sequence,
    decode_item,
    decode_state,
    encode_changes,
    encode_items,
    state_size,
)
from sessionstore.models import JsonValue, SessionItem, SessionState, TurnResult
from sessionstore.validation import (
    MAX_PAGE_LIMIT,
    check_app_name,
    check_last_n,
    check_user_id,
)

if TYPE_CHECKING:
    from sessionstore.keys import SessionKey

__all__ = ["ItemMethods"]


class ItemMethods(BackendSteps):
    """The item log and the session, user and app states of a store.

    Items are JSON values appended in order and returned exactly; a state is
    a dict of JSON values with a revision that counts its updates, so a
    writer can refuse to overwrite what it has not seen
    (``expected_revision``; a stale one raises
    :class:`~sessionstore.errors.ConflictError` and writes nothing).
    """

    max_field_bytes: int

    if TYPE_CHECKING:  # provided by SessionStore

        async def _ready(self) -> None: ...

        @staticmethod
        def _key(session_id: object, user_id: object) -> SessionKey: ...

    # -- items -------------------------------------------------------------

    async def append_items(
        self,
        session_id: str,
        user_id: str | None,
        items: Sequence[JsonValue],
        *,
        state: Mapping[str, JsonValue] | None = None,
        expected_revision: int | None = None,
    ) -> list[str]:
        """Append JSON values to the session's item log, in order, as one atomic write.

        Concurrent calls never interleave their items. An empty ``items``
        without ``state`` writes nothing and returns ``[]``.

        Args:
            session_id: the session.
            user_id: its user; ``None`` is the anonymous user.
            items: a list or tuple of JSON values (up to 10,000).
            state: a shallow delta for the session's state, applied in the
                same write (a ``None`` value removes its key); passing it,
                even ``{}``, raises the state's revision by one.
            expected_revision: refuse the write unless the session's state
                is at this revision (``0``: no state yet).

        Returns:
            The new item ids (lowercase UUID4), in the order of ``items``.

        Raises:
            InvalidParameterError: bad ids, ``items`` not a sequence of JSON
                values, an item (as JSON) or the merged state over
                ``max_field_bytes``, a bad ``state`` or ``expected_revision``.
            ConflictError: the state is not at ``expected_revision``.
            StoreError: the backend failed.

        """
        result = await self._write_turn(session_id, user_id, items, state, expected_revision)
        return result.item_ids

    async def append_turn(
        self,
        session_id: str,
        user_id: str | None,
        items: Sequence[JsonValue] = (),
        *,
        state: Mapping[str, JsonValue] | None = None,
        expected_revision: int | None = None,
    ) -> TurnResult:
        """Append a turn's items and apply its state delta in one atomic write.

        The write of :meth:`append_items`; it also returns the state's
        revision after it (what an agent framework keeps to detect a stale
        copy of the session). With neither items nor ``state`` it writes
        nothing and returns the current revision (checking
        ``expected_revision`` if given).

        Raises:
            InvalidParameterError: as :meth:`append_items`.
            ConflictError: the state is not at ``expected_revision``.
            StoreError: the backend failed.

        """
        return await self._write_turn(session_id, user_id, items, state, expected_revision)

    async def _write_turn(
        self,
        session_id: str,
        user_id: str | None,
        items: Sequence[JsonValue],
        state: Mapping[str, JsonValue] | None,
        expected_revision: int | None,
    ) -> TurnResult:
        key = self._key(session_id, user_id)
        texts = encode_items(items)
        changes = None if state is None else encode_changes(state, "state")
        expected = check_expected_revision(expected_revision)
        await self._ready()  # opening may lower max_field_bytes
        check_encoded_size(texts, self.max_field_bytes)
        if changes is not None:
            check_delta_size(changes, self.max_field_bytes)
        if not texts and changes is None:
            revision = (await self._get_state(key)).revision
            check_revision(revision, expected)
            return TurnResult.model_construct(item_ids=[], revision=revision)
        created_at = now_utc()
        records = [ItemRecord(str(uuid.uuid4()), text, created_at) for text in texts]
        revision = await self._append_items(key, records, changes, expected)
        return TurnResult.model_construct(item_ids=[r.id for r in records], revision=revision)

    async def get_items(
        self, session_id: str, user_id: str | None, last_n: int | None = None
    ) -> list[SessionItem]:
        """Return the session's items (the newest ``last_n``), oldest first.

        ``last_n`` is ``None`` (all) or any int >= 0, as for
        ``get_latest_qa_entries``; its cost does not grow with the session.

        Raises:
            InvalidParameterError: bad ids, or ``last_n`` negative or not an int.

        """
        key = self._key(session_id, user_id)
        count = check_last_n(last_n, allow_none=True)
        await self._ready()
        if count == 0:
            return []
        return [decode_item(record) for record in await self._items(key, count)]

    async def pop_item(self, session_id: str, user_id: str | None) -> SessionItem | None:
        """Remove and return the newest item, atomically; ``None`` when there is none.

        Two concurrent pops never return the same item. Removing the last
        thing a session holds ends the session.
        """
        key = self._key(session_id, user_id)
        await self._ready()
        record = await self._pop_item(key)
        return None if record is None else decode_item(record)

    async def delete_item(self, session_id: str, user_id: str | None, item_id: str) -> bool:
        """Delete one item; ``True`` only if it existed.

        ``item_id`` may be any spelling of a UUID; a str that is no UUID
        names no item.

        Raises:
            InvalidParameterError: bad ids, or ``item_id`` is not a str.

        """
        key = self._key(session_id, user_id)
        normalized = check_item_id(item_id)
        await self._ready()
        return False if normalized is None else await self._delete_item(key, normalized)

    async def count_items(self, session_id: str, user_id: str | None) -> int:
        """Return how many items the session holds."""
        key = self._key(session_id, user_id)
        await self._ready()
        return await self._count_items(key)

    async def clear_items(self, session_id: str, user_id: str | None) -> bool:
        """Delete the session's items (nothing else); ``True`` if there were any."""
        key = self._key(session_id, user_id)
        await self._ready()
        return await self._clear_items(key)

    # -- session state -------------------------------------------------------

    async def get_state(self, session_id: str, user_id: str | None) -> SessionState:
        """Return the session's state: its data (keys sorted) and revision (``0``: none)."""
        key = self._key(session_id, user_id)
        await self._ready()
        return decode_state(await self._get_state(key))

    async def get_states(
        self, session_ids: Sequence[str], user_id: str | None
    ) -> list[SessionState]:
        """Return the states of several sessions of one user, in the order asked.

        One read of the backend (a query, a pipeline, a thread hop) instead of
        one per session: what a listing that shows each session's state needs.
        A session without state, expired or unknown gives ``{}`` at revision 0.

        Args:
            session_ids: up to 1,000 session ids (repeats allowed).
            user_id: their user; ``None`` is the anonymous user.

        Raises:
            InvalidParameterError: a bad id, a str instead of a sequence, or
                more than 1,000 ids.

        """
        ids = check_sequence(session_ids, "session_ids", "session ids", MAX_PAGE_LIMIT)
        keys = [self._key(session_id, user_id) for session_id in ids]
        if not keys:
            return []
        await self._ready()
        return [decode_state(record) for record in await self._get_states(keys)]

    async def update_state(
        self,
        session_id: str,
        user_id: str | None,
        changes: Mapping[str, JsonValue],
        *,
        expected_revision: int | None = None,
    ) -> SessionState:
        """Merge ``changes`` into the session's state in one atomic write.

        A key whose value is ``None`` is removed; the revision goes up by one.
        Two concurrent updates of different keys both land.

        Returns:
            The state this update made.

        Raises:
            InvalidParameterError: bad ids, ``changes`` not a dict of str keys
                to JSON values, the merged state over ``max_field_bytes``, a
                bad ``expected_revision``.
            ConflictError: the state is not at ``expected_revision``.

        """
        key = self._key(session_id, user_id)
        encoded, expected = await self._checked_changes(changes, expected_revision)
        return decode_state(await self._update_state(key, encoded, expected))

    # -- user and app state ----------------------------------------------------

    async def get_user_state(self, user_id: str | None) -> SessionState:
        """Return the state of a user, shared by all its sessions (``None``: anonymous).

        No session id or user id of a session can reach it.
        """
        scope = StateScope("user", check_user_id(user_id))
        await self._ready()
        return decode_state(await self._scoped_state(scope))

    async def update_user_state(
        self,
        user_id: str | None,
        changes: Mapping[str, JsonValue],
        *,
        expected_revision: int | None = None,
    ) -> SessionState:
        """Merge ``changes`` into a user's state, as :meth:`update_state` does a session's.

        A user's state never expires; ``delete_session`` leaves it and
        ``prune`` removes it.

        Raises:
            InvalidParameterError: as :meth:`update_state`.
            ConflictError: the state is not at ``expected_revision``.

        """
        scope = StateScope("user", check_user_id(user_id))
        encoded, expected = await self._checked_changes(changes, expected_revision)
        return decode_state(await self._update_scoped_state(scope, encoded, expected))

    async def get_app_state(self, app: str) -> SessionState:
        """Return the state of an app (a namespace shared by every user and session).

        ``app`` follows the rules of a session id; an app's state is distinct
        from any user's state of the same name.
        """
        scope = StateScope("app", check_app_name(app))
        await self._ready()
        return decode_state(await self._scoped_state(scope))

    async def update_app_state(
        self, app: str, changes: Mapping[str, JsonValue], *, expected_revision: int | None = None
    ) -> SessionState:
        """Merge ``changes`` into an app's state, as :meth:`update_state` does a session's.

        Raises:
            InvalidParameterError: as :meth:`update_state`, or a bad ``app``.
            ConflictError: the state is not at ``expected_revision``.

        """
        scope = StateScope("app", check_app_name(app))
        encoded, expected = await self._checked_changes(changes, expected_revision)
        return decode_state(await self._update_scoped_state(scope, encoded, expected))

    async def _checked_changes(
        self, changes: Mapping[str, JsonValue], expected_revision: int | None
    ) -> tuple[dict[str, str | None], int | None]:
        encoded = encode_changes(changes)
        expected = check_expected_revision(expected_revision)
        await self._ready()
        check_delta_size(encoded, self.max_field_bytes)
        return encoded, expected

    def _check_item_sizes(self, items: Sequence[ItemRecord], state: StateRecord) -> None:
        """Apply ``max_field_bytes`` to stored items and a stored state (import checks)."""
        check_encoded_size([item.data for item in items], self.max_field_bytes)
        size = state_size(state.values)
        if size > self.max_field_bytes:
            raise InvalidParameterError(
                f"the state holds {size} bytes, over max_field_bytes={self.max_field_bytes}"
            )
