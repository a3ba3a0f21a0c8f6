"""The ``SessionStore`` contract every backend implements (README.md, docs/items.md).

Public methods validate their arguments, build ids and timestamps, and then
call one small step (``_append``, ``_latest``, ...) declared, with what it must
guarantee, in :mod:`sessionstore.backend_steps`. A backend is only storage: it
never re-validates or re-formats.
"""

from __future__ import annotations

import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self

from sessionstore.backend_steps import SESSIONS_AT_ONCE
from sessionstore.clock import now_utc
from sessionstore.errors import InvalidParameterError, StoreError
from sessionstore.item_methods import ItemMethods
from sessionstore.keys import ALL_USERS, AllUsers, PageCursor, SessionKey
from sessionstore.loop_lock import AnyLoopLock
from sessionstore.models import (
    SessionPage,
    SessionQAEntry,
    SessionQAUpdate,
    SessionTraceStep,
    UsedGraphElementIds,
    UserInfo,
)
from sessionstore.observe import ObservedStore, check_otel_ids, check_slow_call_ms
from sessionstore.records import SessionData, shown_id
from sessionstore.validation import (
    DEFAULT_MAX_FIELD_BYTES,
    check_json,
    check_last_n,
    check_limit,
    check_max_field_bytes,
    check_session_id,
    check_text,
    check_ttl,
    check_user_id,
    normalize_qa_id,
)

__all__ = ["ALL_USERS", "AllUsers", "PageCursor", "SessionKey", "SessionStore"]


class SessionStore(ObservedStore, ItemMethods):
    """Conversation memory: per user and session, entries, a graph context, traces, items, state.

    The item log and the states (``append_items``, ``update_state``, ...)
    come from :class:`~sessionstore.item_methods.ItemMethods`.

    Use it as an async context manager, or call :meth:`open` (optional; the
    first call opens it) and :meth:`close`. Every method raises
    :class:`InvalidParameterError` for bad input before any I/O (a field
    over ``max_field_bytes``: once the store is open, since opening may lower
    that limit), :class:`StoreError` when the backend fails or the store is
    closed.

    Args:
        ttl: seconds after its last write that a session expires; ``None``
            keeps sessions forever.
        max_field_bytes: the largest text field accepted, in UTF-8 bytes.
        slow_call_ms: log a WARNING for each call that takes longer than
            this many milliseconds; ``None`` (the default) logs none.
        otel_ids: put the ids of each call in its OpenTelemetry span's
            attributes, and error messages in its error events (by default
            neither: they are user data). See ``docs/observability.md``.

    """

    def __init__(
        self,
        *,
        ttl: float | None = None,
        max_field_bytes: int = DEFAULT_MAX_FIELD_BYTES,
        slow_call_ms: float | None = None,
        otel_ids: bool = False,
    ) -> None:
        self.ttl: float | None = check_ttl(ttl)
        self.max_field_bytes: int = check_max_field_bytes(max_field_bytes)
        self.slow_call_ms: float | None = check_slow_call_ms(slow_call_ms)
        self.otel_ids: bool = check_otel_ids(otel_ids)
        self._state = "new"
        self._open_lock = AnyLoopLock()  # open/close from any loop and any thread

    # -- lifecycle -------------------------------------------------------

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"

    def describe(self) -> str:
        """Return where this store keeps its data, without credentials."""
        return type(self).__name__

    async def open(self) -> None:
        """Connect or create storage now rather than on the first call.

        Raises:
            StoreError: the store is closed or the backend failed.

        """
        if self._state == "open":
            return
        async with self._open_lock:
            if self._state == "closed":
                raise StoreError(f"{self!r} is closed; open a new store")
            if self._state == "new":
                await self._open()
                self._state = "open"
                self._log.info("opened %s", self.describe())

    async def close(self) -> None:
        """Release connections and files; calling it again does nothing."""
        async with self._open_lock:
            was_open = self._state == "open"
            self._state = "closed"
            if was_open:
                await self._close()
                self._log.info("closed %s", self.describe())

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _ready(self) -> None:
        if self._state != "open":
            await self.open()

    def _expires_at(self, now: datetime) -> datetime | None:
        """Return when a session written at ``now`` expires (``None``: never)."""
        return None if self.ttl is None else now + timedelta(seconds=self.ttl)

    # -- validation ------------------------------------------------------

    @staticmethod
    def _key(session_id: object, user_id: object) -> SessionKey:
        return SessionKey(check_session_id(session_id), check_user_id(user_id))

    def _check_sizes(self, fields: Mapping[str, Any]) -> None:
        for name, value in fields.items():
            if isinstance(value, str):
                check_text(value, name, self.max_field_bytes)
            elif isinstance(value, UsedGraphElementIds):
                check_json(value.node_ids + value.edge_ids, name, self.max_field_bytes)
            elif isinstance(value, (dict, list)):
                check_json(value, name, self.max_field_bytes)

    def _check_step_sizes(self, step: SessionTraceStep) -> None:
        self._check_sizes({name: getattr(step, name) for name in type(step).model_fields})

    # -- entries ---------------------------------------------------------

    async def create_qa_entry(
        self,
        session_id: str,
        user_id: str | None,
        question: str,
        answer: str,
        context: str | None = None,
        *,
        feedback_text: str | None = None,
        feedback_score: int | None = None,
        used_graph_element_ids: UsedGraphElementIds | Mapping[str, Any] | None = None,
        memify_metadata: dict[str, bool] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        """Append a question/answer entry and return its new ``qa_id``.

        Raises:
            InvalidParameterError: a bad id, text, score or field type.
            StoreError: the backend failed.

        """
        key = self._key(session_id, user_id)
        if isinstance(used_graph_element_ids, Mapping):
            used_graph_element_ids = UsedGraphElementIds(**used_graph_element_ids)
        fields: dict[str, Any] = {
            "question": question,
            "answer": answer,
            "context": context,
            "feedback_text": feedback_text,
            "feedback_score": feedback_score,
            "used_graph_element_ids": used_graph_element_ids,
            "memify_metadata": memify_metadata,
            "metadata": metadata,
        }
        entry = SessionQAEntry(
            id=str(uuid.uuid4()),
            session_id=key.session_id,
            user_id=key.user_id,
            created_at=now_utc(),
            **fields,
        )
        await self._ready()  # opening may lower max_field_bytes (SQLStore on MySQL)
        self._check_sizes(fields)
        await self._append(key, entry)
        return entry.id

    async def get_latest_qa_entries(
        self, session_id: str, user_id: str | None, last_n: int
    ) -> list[SessionQAEntry]:
        """Return the newest ``last_n`` entries, oldest first.

        ``last_n`` is any int >= 0; past the session's length it means all.

        Raises:
            InvalidParameterError: a bad id, or ``last_n`` negative or not an int.

        """
        key = self._key(session_id, user_id)
        count = check_last_n(last_n)
        await self._ready()
        if not count:
            return []
        return await self._latest(key, count)

    async def get_all_qa_entries(
        self, session_id: str, user_id: str | None
    ) -> list[SessionQAEntry]:
        """Return every entry of the session, oldest first."""
        key = self._key(session_id, user_id)
        await self._ready()
        return await self._all(key)

    async def get_qa_entry(
        self, session_id: str, user_id: str | None, qa_id: str
    ) -> SessionQAEntry | None:
        """Return one entry, or ``None`` if the session holds no such id."""
        key = self._key(session_id, user_id)
        normalized = normalize_qa_id(qa_id)
        await self._ready()
        return None if normalized is None else await self._get(key, normalized)

    async def count_qa_entries(self, session_id: str, user_id: str | None) -> int:
        """Return how many entries the session holds."""
        key = self._key(session_id, user_id)
        await self._ready()
        return await self._count(key)

    async def update_qa_entry(
        self, session_id: str, user_id: str | None, qa_id: str, updates: SessionQAUpdate
    ) -> bool:
        """Apply a tri-state update atomically; ``False`` if the entry is unknown.

        Raises:
            InvalidParameterError: ``updates`` is not a SessionQAUpdate or a
                field is over ``max_field_bytes``.

        """
        key = self._key(session_id, user_id)
        if not isinstance(updates, SessionQAUpdate):
            raise InvalidParameterError(
                f"updates must be a SessionQAUpdate, got {type(updates).__name__}"
            )
        changes = updates.changes()
        normalized = normalize_qa_id(qa_id)
        await self._ready()
        self._check_sizes(changes)
        return False if normalized is None else await self._update(key, normalized, changes)

    async def delete_qa_entry(self, session_id: str, user_id: str | None, qa_id: str) -> bool:
        """Delete one entry; ``True`` only if it existed."""
        key = self._key(session_id, user_id)
        normalized = normalize_qa_id(qa_id)
        await self._ready()
        return False if normalized is None else await self._delete_entry(key, normalized)

    async def latest_qa_id(self, session_id: str, user_id: str | None) -> str | None:
        """Return the id of the newest entry, or ``None`` for an empty session."""
        key = self._key(session_id, user_id)
        await self._ready()
        return await self._latest_id(key)

    # -- sessions --------------------------------------------------------

    async def delete_session(self, session_id: str, user_id: str | None) -> bool:
        """Delete the session's entries, graph context, trace steps, items and state.

        The user's and the app's states are left alone; the session's state
        starts again at revision 0.

        Returns:
            ``True`` if any of them existed.

        """
        key = self._key(session_id, user_id)
        await self._ready()
        return await self._delete_session(key)

    async def prune(self) -> None:
        """Delete every session, user state and app state in this store's namespace only."""
        await self._ready()
        await self._prune()

    async def list_sessions(
        self, user_id: str | None, *, limit: int = 50, cursor: str | None = None
    ) -> SessionPage:
        """Return one page of the user's sessions, most recently written first.

        Args:
            user_id: whose sessions; ``None`` is the anonymous user.
            limit: page size, 1 to 1000.
            cursor: ``next_cursor`` of the previous page.

        Raises:
            InvalidParameterError: bad user id, limit or cursor.

        """
        user = check_user_id(user_id)
        size = check_limit(limit)
        after = None if cursor is None else PageCursor.decode(cursor)
        await self._ready()
        infos = await self._list_sessions(user, size + 1, after)
        if len(infos) <= size:
            return SessionPage(items=infos, next_cursor=None)
        items = infos[:size]
        last = items[-1]
        return SessionPage(
            items=items, next_cursor=PageCursor(last.updated_at, last.session_id).encode()
        )

    async def list_users(self) -> list[UserInfo]:
        """Return every user that has a live session, with how many sessions each has.

        The anonymous user (``user_id=None``) comes first when it has
        sessions, then the others by id. It walks the session keys once,
        reading no session, and holds one count per user.

        Raises:
            StoreError: the backend failed.

        """
        await self._ready()
        counts: Counter[str | None] = Counter()
        async for key in self._session_keys(ALL_USERS):
            counts[key.user_id] += 1
        users = sorted(counts, key=lambda user: (user is not None, user or ""))
        return [UserInfo(user_id=user, session_count=counts[user]) for user in users]

    # -- graph context and traces ---------------------------------------

    async def get_graph_context(self, session_id: str, user_id: str | None) -> str | None:
        """Return the session's graph context; ``""`` is a value, unlike ``None``."""
        key = self._key(session_id, user_id)
        await self._ready()
        return await self._get_graph_context(key)

    async def set_graph_context(self, session_id: str, user_id: str | None, context: str) -> None:
        """Store the session's graph context, replacing any previous one."""
        key = self._key(session_id, user_id)
        check_text(context, "context", sys.maxsize)  # its type, before any I/O
        await self._ready()
        check_text(context, "context", self.max_field_bytes)
        await self._set_graph_context(key, context)

    async def save_trace_step(
        self, session_id: str, user_id: str | None, step: SessionTraceStep
    ) -> str:
        """Append a trace step (its ``created_at`` set to now); return its trace id.

        A trace id is unique within its session: the same id in another
        session is fine, and ids compare exactly, as strings.

        Raises:
            InvalidParameterError: ``step`` is not a SessionTraceStep, a field
                is over ``max_field_bytes``, or the session already holds a
                step with ``step.trace_id``; nothing is written then, and of
                concurrent saves of one id exactly one succeeds.
            StoreError: the backend failed.

        """
        key = self._key(session_id, user_id)
        if not isinstance(step, SessionTraceStep):
            raise InvalidParameterError(
                f"step must be a SessionTraceStep, got {type(step).__name__}"
            )
        stamped = step.model_copy(update={"created_at": now_utc()})
        await self._ready()
        self._check_step_sizes(step)
        if not await self._save_trace(key, stamped):
            raise InvalidParameterError(
                f"session {shown_id(key.session_id)} already holds trace id "
                f"{shown_id(step.trace_id)}; a trace id is unique within its session "
                "(leave trace_id out to get a new UUID)"
            )
        return step.trace_id

    async def read_trace_steps(
        self, session_id: str, user_id: str | None, last_n: int | None = None
    ) -> list[SessionTraceStep]:
        """Return the session's trace steps (the newest ``last_n``), oldest first.

        ``last_n`` is ``None`` (all) or any int >= 0, as for
        :meth:`get_latest_qa_entries`.
        """
        key = self._key(session_id, user_id)
        count = check_last_n(last_n, allow_none=True)
        await self._ready()
        if count == 0:
            return []
        return await self._read_traces(key, count)

    # -- export and import -------------------------------------------------

    def export_sessions(
        self, *, user_id: str | AllUsers | None = ALL_USERS
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield one plain JSON-compatible dict per session.

        Args:
            user_id: omit for every user; ``None`` for the anonymous user only.

        """
        user_filter = user_id if isinstance(user_id, AllUsers) else check_user_id(user_id)
        return self._export(user_filter)

    async def _export(self, user_filter: str | AllUsers | None) -> AsyncIterator[dict[str, Any]]:
        await self._ready()
        batch: list[SessionKey] = []
        async for key in self._session_keys(user_filter):
            batch.append(key)
            if len(batch) == SESSIONS_AT_ONCE:
                for data in await self._read_sessions(batch):
                    if data is not None:
                        yield data.to_dump()
                batch = []
        if batch:
            for data in await self._read_sessions(batch):
                if data is not None:
                    yield data.to_dump()

    async def import_sessions(
        self, dumps: Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]]
    ) -> int:
        """Import sessions made by ``export_sessions``; return how many.

        Each imported session replaces one with the same ids, all or nothing:
        the whole dump is checked before anything of the old session is
        replaced. Besides the rules of every field, a dump must hold each
        entry id, each trace id and each item id once, and its times must lie from
        :data:`~sessionstore.records.EARLIEST_TIME` (1970-01-01) to
        :data:`~sessionstore.records.LATEST_TIME` (2255-06-05).

        Sessions are written 100 at a time; whatever stops an import (an
        invalid dump, ``dumps`` raising), the sessions before that point are
        imported when it raises.

        Raises:
            InvalidParameterError: an unknown format or an invalid session;
                that session is left as it was, and the sessions before it
                are already imported.

        """
        await self._ready()
        batch = _ImportBatch(self)
        try:
            if isinstance(dumps, AsyncIterable):
                async for dump in dumps:
                    await batch.add(dump)
            else:
                for dump in dumps:
                    await batch.add(dump)
        except Exception:
            # A bad dump, or ``dumps`` itself failing: the sessions before it are
            # imported, as if each had been written on its own. (A failed write
            # took its batch with it, so this writes nothing twice.)
            await batch.write()
            raise
        await batch.write()
        return batch.imported

    async def check_dump(self, dump: Mapping[str, Any]) -> SessionData:
        """Check one session dump as :meth:`import_sessions` would, writing nothing.

        Opens the store (some limits, like MySQL's field size, come from it).

        Returns:
            The session the dump holds.

        Raises:
            InvalidParameterError: the dump could not be imported into this store.
            StoreError: the store could not be opened.

        """
        data = SessionData.from_dump(dump)
        await self._ready()
        for entry in data.entries:
            self._check_sizes(entry.model_dump(exclude={"created_at"}))
        for step in data.traces:
            self._check_step_sizes(step)
        if data.graph_context is not None:
            check_text(data.graph_context, "graph_context", self.max_field_bytes)
        self._check_item_sizes(data.items, data.state)
        return data


class _ImportBatch:
    """The checked sessions of an import not written yet: up to ``SESSIONS_AT_ONCE``."""

    def __init__(self, store: SessionStore) -> None:
        self._store = store
        self._pending: dict[SessionKey, SessionData] = {}
        self.imported = 0

    async def add(self, dump: Mapping[str, Any]) -> None:
        """Check ``dump`` and queue its session; write the batch once it is full.

        Raises:
            InvalidParameterError: ``dump`` is invalid (nothing of it is queued).

        """
        data = await self._store.check_dump(dump)
        key = SessionKey(data.session_id, data.user_id)
        self._pending.pop(key, None)  # a later dump of a session replaces the earlier one
        self._pending[key] = data
        self.imported += 1
        if len(self._pending) == SESSIONS_AT_ONCE:
            await self.write()

    async def write(self) -> None:
        """Write the queued sessions, in the order they came."""
        if self._pending:
            batch, self._pending = list(self._pending.values()), {}
            await self._store._write_sessions(batch)
