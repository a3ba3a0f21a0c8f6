"""The steps a backend implements, and what each must guarantee.

:class:`~sessionstore.store.SessionStore` validates every call and then runs
one of these steps; a backend subclasses ``SessionStore`` and implements them.
``docs/contributing.md`` walks through adding a backend.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from sessionstore.keys import AllUsers, PageCursor, SessionKey

SESSIONS_AT_ONCE = 100
"""How many sessions ``export_sessions`` reads, and ``import_sessions`` writes, at once.

It bounds the memory of both (a hundred sessions, whatever the store holds)
and lets a backend batch its round trips."""

if TYPE_CHECKING:
    from sessionstore.items import ItemRecord, StateRecord, StateScope
    from sessionstore.locks import LockBackend
    from sessionstore.models import SessionInfo, SessionQAEntry, SessionTraceStep
    from sessionstore.records import SessionData

__all__ = ["BackendSteps"]


class BackendSteps(abc.ABC):
    """The storage steps behind :class:`~sessionstore.store.SessionStore`.

    What every step may rely on: the store is open, every argument was
    validated by the public method (ids, sizes, JSON), ids and timestamps are
    made, and ``key.user_id`` is ``None`` for the anonymous user. What every
    step must guarantee:

    - Atomic: a writing step is all or nothing, as seen by every reader in
      every process sharing the storage, whatever the call's concurrency.
    - Order: entries and trace steps come back in the order their writes
      committed, per session, even when several processes write at once.
    - Expiry (``self.ttl``): every step that writes to a session sets its
      expiry to ``ttl`` seconds from now ("writes slide"); reads never change
      it. An expired session is invisible to every read, and the next write
      to it starts a new, empty session.
    - A session exists while it holds an entry, a trace step, a graph
      context, an item, or a state that was ever updated (revision > 0); the
      write that removes the last of them ends it (it leaves
      ``list_sessions``), and a session that starts again starts its state
      at revision 0.
    - Errors: driver exceptions are translated once, at the backend's edge,
      to StoreError (StoreUnavailableError when the storage cannot be
      reached or did not answer in time), never raised as they are.
    """

    def _lock_backend(self) -> LockBackend | None:
        """Return the lock backend ``SessionManager.improve_lock`` uses: the one hook for locks.

        Called once per store, after it is open. A backend whose storage
        several processes share returns locks kept in that storage, named
        within the identity of its data (a resolved path, a key prefix, a
        database and table prefix; see :func:`sessionstore.locks.lock_digest`),
        so that every process reaching the same data excludes the others
        however its URL was spelled. Driver errors are translated by the
        backend's own translator. ``None`` (the default) means process-local
        locks.
        """
        return None

    @abc.abstractmethod
    async def _open(self) -> None:
        """Connect, create or migrate storage; called once, by :meth:`open`."""

    @abc.abstractmethod
    async def _close(self) -> None:
        """Release what :meth:`_open` acquired; never close an injected client."""

    @abc.abstractmethod
    async def _append(self, key: SessionKey, entry: SessionQAEntry) -> None:
        """Store a new entry after every existing one; create the session if needed.

        Slides expiry. ``entry.id`` is new; ``entry.created_at`` is now.
        """

    @abc.abstractmethod
    async def _latest(self, key: SessionKey, last_n: int) -> list[SessionQAEntry]:
        """Return the newest ``last_n`` (1 to ``validation.MAX_LAST_N``) entries, oldest first.

        Its cost must not grow with the number of entries in the session.
        """

    @abc.abstractmethod
    async def _all(self, key: SessionKey) -> list[SessionQAEntry]:
        """Return every entry, oldest first (``[]`` for no session)."""

    @abc.abstractmethod
    async def _get(self, key: SessionKey, qa_id: str) -> SessionQAEntry | None:
        """Return the entry ``qa_id`` (a canonical UUID) of the session, or ``None``."""

    @abc.abstractmethod
    async def _count(self, key: SessionKey) -> int:
        """Return how many entries the session holds, without reading them."""

    @abc.abstractmethod
    async def _update(self, key: SessionKey, qa_id: str, changes: dict[str, Any]) -> bool:
        """Replace the fields in ``changes`` (maybe none) of one entry, atomically.

        ``changes`` maps field names to new values (``None`` clears). Slides
        expiry when the entry exists; returns ``False`` and writes nothing
        when it does not. Two concurrent updates of different fields both land.
        """

    @abc.abstractmethod
    async def _delete_entry(self, key: SessionKey, qa_id: str) -> bool:
        """Delete one entry; ``True`` only if it existed. Slides expiry if it did."""

    async def _latest_id(self, key: SessionKey) -> str | None:
        """Return the id of the newest entry, or ``None``.

        The default reads the newest entry; override it where the id alone is cheaper.
        """
        newest = await self._latest(key, 1)
        return newest[0].id if newest else None

    @abc.abstractmethod
    async def _delete_session(self, key: SessionKey) -> bool:
        """Delete the session's entries, trace steps, graph context, items and state, atomically.

        Returns:
            ``True`` if any of them existed (an expired session does not).

        """

    @abc.abstractmethod
    async def _prune(self) -> None:
        """Delete every session of this store's namespace, and nothing outside it."""

    @abc.abstractmethod
    async def _list_sessions(
        self, user_id: str | None, limit: int, after: PageCursor | None
    ) -> list[SessionInfo]:
        """Return up to ``limit`` live sessions of ``user_id``, sorted after ``after``.

        The order is ``updated_at`` descending, then ``session_id`` ascending;
        ``after`` is the last session of the previous page. The cost must not
        grow with the number of entries, only with the page.
        """

    @abc.abstractmethod
    async def _get_graph_context(self, key: SessionKey) -> str | None:
        """Return the session's graph context, or ``None`` if it has none."""

    @abc.abstractmethod
    async def _set_graph_context(self, key: SessionKey, context: str) -> None:
        """Replace the session's graph context; create the session if needed. Slides expiry."""

    @abc.abstractmethod
    async def _save_trace(self, key: SessionKey, step: SessionTraceStep) -> bool:
        """Store a trace step after every existing one; create the session if needed.

        Slides expiry. ``step.created_at`` is now. A trace id is unique within
        its session (compared exactly, as a string): when the live session
        already holds ``step.trace_id``, return ``False`` and write nothing.
        The check and the write are one atomic step, so of two concurrent
        saves of one id exactly one returns ``True``.
        """

    @abc.abstractmethod
    async def _read_traces(self, key: SessionKey, last_n: int | None) -> list[SessionTraceStep]:
        """Return the newest ``last_n`` trace steps, oldest first.

        ``last_n`` is 1 to ``validation.MAX_LAST_N``, or ``None`` for all.
        """

    # -- item log and state (see sessionstore.items) ---------------------

    @abc.abstractmethod
    async def _append_items(
        self,
        key: SessionKey,
        items: list[ItemRecord],
        changes: dict[str, str | None] | None,
        expected_revision: int | None,
    ) -> int:
        """Append ``items`` after every existing item and apply ``changes``: one atomic write.

        ``items`` may be empty when ``changes`` is given. ``changes`` maps a
        state key to its new value's JSON text, ``None`` removing the key; when
        ``changes`` is not ``None`` (even ``{}``) the state's revision goes up
        by one. When ``expected_revision`` is not ``None`` and differs from the
        state's revision, raise :class:`~sessionstore.errors.ConflictError`
        (see :func:`sessionstore.items.check_revision`) and write nothing. A
        merged state over ``self.max_field_bytes`` (:func:`~sessionstore.items.state_size`)
        raises InvalidParameterError and writes nothing. Concurrent calls never
        interleave their items. Creates the session if needed; slides expiry.

        Returns:
            The state's revision after the write.

        """

    @abc.abstractmethod
    async def _items(self, key: SessionKey, last_n: int | None) -> list[ItemRecord]:
        """Return the newest ``last_n`` items (1 to ``MAX_LAST_N``; ``None``: all), oldest first.

        Its cost must not grow with the number of items in the session.
        """

    @abc.abstractmethod
    async def _pop_item(self, key: SessionKey) -> ItemRecord | None:
        """Remove and return the newest item, atomically; ``None`` when there is none.

        Two concurrent pops never return the same item. Slides expiry when it
        removed one; ends the session when nothing else is left.
        """

    @abc.abstractmethod
    async def _delete_item(self, key: SessionKey, item_id: str) -> bool:
        """Delete the item ``item_id`` (a canonical UUID); ``True`` only if it existed.

        Slides expiry if it did; ends the session when nothing else is left.
        """

    @abc.abstractmethod
    async def _count_items(self, key: SessionKey) -> int:
        """Return how many items the session holds, without reading them."""

    @abc.abstractmethod
    async def _clear_items(self, key: SessionKey) -> bool:
        """Delete every item (nothing else); ``True`` if there were any.

        Slides expiry if there were; ends the session when nothing else is left.
        """

    @abc.abstractmethod
    async def _update_state(
        self, key: SessionKey, changes: dict[str, str | None], expected_revision: int | None
    ) -> StateRecord:
        """Apply ``changes`` to the session's state, as :meth:`_append_items` does without items.

        The revision goes up by one. Creates the session if needed; slides expiry.

        Returns:
            The state this write made (not a later one).

        """

    @abc.abstractmethod
    async def _get_state(self, key: SessionKey) -> StateRecord:
        """Return the session's state (an empty ``StateRecord()`` for none)."""

    async def _get_states(self, keys: list[SessionKey]) -> list[StateRecord]:
        """Return the states of ``keys``' sessions, in order (at most 1,000 keys).

        This default reads them one by one; a backend that can read many in
        one round trip or one thread hop does so.
        """
        return [await self._get_state(key) for key in keys]

    @abc.abstractmethod
    async def _scoped_state(self, scope: StateScope) -> StateRecord:
        """Return a user's or an app's state (an empty ``StateRecord()`` for none)."""

    @abc.abstractmethod
    async def _update_scoped_state(
        self, scope: StateScope, changes: dict[str, str | None], expected_revision: int | None
    ) -> StateRecord:
        """Apply ``changes`` to a user's or an app's state, as :meth:`_append_items` does.

        The revision goes up by one; a stale ``expected_revision`` raises
        ConflictError, an oversized state InvalidParameterError, and nothing
        is written. Such a state never expires; ``_prune`` removes it.

        Returns:
            The state after the write.

        """

    @abc.abstractmethod
    def _session_keys(self, user_filter: str | AllUsers | None) -> AsyncIterator[SessionKey]:
        """Yield the key of every live session matching ``user_filter``, once each.

        It must not hold the namespace's data in memory, only what it needs to
        yield each key once (Redis keeps the keys it has yielded, since SCAN
        may return one twice); sessions written while it runs may or may not
        be yielded.
        """

    @abc.abstractmethod
    async def _read_sessions(self, keys: list[SessionKey]) -> list[SessionData | None]:
        """Return each whole session, in the order of ``keys`` (``None``: gone).

        ``export_sessions`` asks for at most :data:`SESSIONS_AT_ONCE` keys at
        a time, each once. Each session must be one consistent snapshot; the
        batch need not be one. Read them in as few round trips as the store allows.
        """

    @abc.abstractmethod
    async def _write_session(self, data: SessionData) -> None:
        """Replace the session ``data`` names with ``data``, atomically.

        Keeps the entries' ids, times and order, the items' ids, times and
        order, the state's values and revision, and the session's
        ``created_at``/``updated_at``; the expiry starts again from now. An
        empty ``data`` ends the session. ``data`` is valid (unique entry ids
        and trace ids, every time from ``records.EARLIEST_TIME`` to
        ``records.LATEST_TIME``, every value within the store's limits), so
        nothing in it may make the step fail after it has removed the old
        session.
        """

    async def _write_sessions(self, batch: list[SessionData]) -> None:
        """Run :meth:`_write_session` for each session, in order (``import_sessions``' batches).

        ``batch`` holds at most :data:`SESSIONS_AT_ONCE` sessions, each named
        once. Each session must be replaced atomically, as by
        ``_write_session``; the batch may be written in one transaction (then
        a failure leaves every session of it as it was). Override it to write
        a batch in fewer round trips than one per session.
        """
        for data in batch:
            await self._write_session(data)
