"""The blocking twins of the item log and state calls (``docs/items.md``).

:class:`BlockingItemMethods` is part of :class:`sessionstore.sync.SessionStore`:
each method runs the async store's method of the same name in the store's
own event loop and raises what it raises.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from sessionstore.models import JsonValue, SessionItem, SessionState, TurnResult

if TYPE_CHECKING:
    from sessionstore.store import SessionStore as AsyncSessionStore
    from sessionstore.sync.loop import LoopThread

__all__ = ["BlockingItemMethods"]


class BlockingItemMethods:
    """The item log and the session, user and app states, blocking."""

    _store: AsyncSessionStore
    _loop: LoopThread

    # -- items -------------------------------------------------------------

    def append_items(
        self,
        session_id: str,
        user_id: str | None,
        items: Sequence[JsonValue],
        *,
        state: Mapping[str, JsonValue] | None = None,
        expected_revision: int | None = None,
    ) -> list[str]:
        """Append JSON values to the session's item log as one atomic write; return their ids.

        Raises:
            InvalidParameterError: bad ids, items, ``state`` or ``expected_revision``.
            ConflictError: the state is not at ``expected_revision``.

        """
        return self._loop.run(
            self._store.append_items(
                session_id, user_id, items, state=state, expected_revision=expected_revision
            )
        )

    def append_turn(
        self,
        session_id: str,
        user_id: str | None,
        items: Sequence[JsonValue] = (),
        *,
        state: Mapping[str, JsonValue] | None = None,
        expected_revision: int | None = None,
    ) -> TurnResult:
        """Append a turn's items and apply its state delta in one write; return ids and revision.

        Raises:
            InvalidParameterError: as :meth:`append_items`.
            ConflictError: the state is not at ``expected_revision``.

        """
        return self._loop.run(
            self._store.append_turn(
                session_id, user_id, items, state=state, expected_revision=expected_revision
            )
        )

    def get_items(
        self, session_id: str, user_id: str | None, last_n: int | None = None
    ) -> list[SessionItem]:
        """Return the session's items (the newest ``last_n``), oldest first."""
        return self._loop.run(self._store.get_items(session_id, user_id, last_n))

    def pop_item(self, session_id: str, user_id: str | None) -> SessionItem | None:
        """Remove and return the newest item, atomically; ``None`` when there is none."""
        return self._loop.run(self._store.pop_item(session_id, user_id))

    def delete_item(self, session_id: str, user_id: str | None, item_id: str) -> bool:
        """Delete one item; ``True`` only if it existed."""
        return self._loop.run(self._store.delete_item(session_id, user_id, item_id))

    def count_items(self, session_id: str, user_id: str | None) -> int:
        """Return how many items the session holds."""
        return self._loop.run(self._store.count_items(session_id, user_id))

    def clear_items(self, session_id: str, user_id: str | None) -> bool:
        """Delete the session's items (nothing else); ``True`` if there were any."""
        return self._loop.run(self._store.clear_items(session_id, user_id))

    # -- states ------------------------------------------------------------

    def get_state(self, session_id: str, user_id: str | None) -> SessionState:
        """Return the session's state: its data (keys sorted) and revision."""
        return self._loop.run(self._store.get_state(session_id, user_id))

    def get_states(self, session_ids: Sequence[str], user_id: str | None) -> list[SessionState]:
        """Return the states of several sessions of one user, in the order asked."""
        return self._loop.run(self._store.get_states(session_ids, user_id))

    def update_state(
        self,
        session_id: str,
        user_id: str | None,
        changes: Mapping[str, JsonValue],
        *,
        expected_revision: int | None = None,
    ) -> SessionState:
        """Merge ``changes`` into the session's state (``None`` removes a key); return it.

        Raises:
            InvalidParameterError: bad ids, changes or ``expected_revision``.
            ConflictError: the state is not at ``expected_revision``.

        """
        return self._loop.run(
            self._store.update_state(
                session_id, user_id, changes, expected_revision=expected_revision
            )
        )

    def get_user_state(self, user_id: str | None) -> SessionState:
        """Return the state of a user, shared by all its sessions."""
        return self._loop.run(self._store.get_user_state(user_id))

    def update_user_state(
        self,
        user_id: str | None,
        changes: Mapping[str, JsonValue],
        *,
        expected_revision: int | None = None,
    ) -> SessionState:
        """Merge ``changes`` into a user's state; return it.

        Raises:
            InvalidParameterError: bad user id, changes or ``expected_revision``.
            ConflictError: the state is not at ``expected_revision``.

        """
        return self._loop.run(
            self._store.update_user_state(user_id, changes, expected_revision=expected_revision)
        )

    def get_app_state(self, app: str) -> SessionState:
        """Return the state of an app (shared by every user and session)."""
        return self._loop.run(self._store.get_app_state(app))

    def update_app_state(
        self, app: str, changes: Mapping[str, JsonValue], *, expected_revision: int | None = None
    ) -> SessionState:
        """Merge ``changes`` into an app's state; return it.

        Raises:
            InvalidParameterError: bad app name, changes or ``expected_revision``.
            ConflictError: the state is not at ``expected_revision``.

        """
        return self._loop.run(
            self._store.update_app_state(app, changes, expected_revision=expected_revision)
        )
