"""``memory://``: in-process dicts, the readable reference for the contract.

Each store is private. Every step runs without awaiting, so each call is
atomic with respect to other tasks on the event loop (``prune`` empties the
store at once, then frees the old objects a batch at a time). Sessions are kept by
user, so ``list_sessions`` reads only that user's. Items and states are kept
as the JSON text the store made (:mod:`sessionstore.items`); user and app
states live beside the sessions, keyed by their :class:`StateScope`.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Self

from sessionstore.clock import now_utc
from sessionstore.items import ItemRecord, StateRecord, StateScope, apply_changes, check_revision
from sessionstore.keys import select_page
from sessionstore.models import SessionInfo, SessionQAEntry, SessionTraceStep
from sessionstore.records import SessionData
from sessionstore.store import AllUsers, PageCursor, SessionKey, SessionStore
from sessionstore.urls import split_options

__all__ = ["MemoryStore"]

_FREE_BATCH = 1_000  # sessions freed between two yields to the event loop


@dataclass(slots=True)
class _Session:
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    # Insertion-ordered: the dict order is the creation order.
    entries: dict[str, SessionQAEntry] = field(default_factory=dict)
    graph_context: str | None = None
    traces: list[SessionTraceStep] = field(default_factory=list)
    trace_ids: set[str] = field(default_factory=set)  # a trace id is unique per session
    # Insertion-ordered too: the order of the appends.
    items: dict[str, ItemRecord] = field(default_factory=dict)
    state: StateRecord = field(default_factory=StateRecord)

    def is_empty(self) -> bool:
        return (
            not self.entries
            and not self.traces
            and self.graph_context is None
            and not self.items
            and self.state.revision == 0
        )


class MemoryStore(SessionStore):
    """Keeps everything in this process's memory; gone when the store is."""

    _db_system_name = "sessionstore.memory"  # OpenTelemetry's db.system.name

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Self:
        """Build a store from ``memory://`` and the common options."""
        _, merged = split_options(url, options, {})
        return cls(**merged)

    def describe(self) -> str:
        """Return ``memory://``."""
        return "memory://"

    async def _open(self) -> None:
        self._users: dict[str | None, dict[str, _Session]] = {}
        self._scoped: dict[StateScope, StateRecord] = {}

    async def _close(self) -> None:
        self._users.clear()
        self._scoped.clear()

    def _drop(self, key: SessionKey) -> _Session | None:
        """Remove a session (and its user, once empty); return it if it was there."""
        sessions = self._users.get(key.user_id, {})
        session = sessions.pop(key.session_id, None)
        if not sessions:
            self._users.pop(key.user_id, None)
        return session

    def _live(self, key: SessionKey) -> _Session | None:
        """Return the session if it exists and has not expired (dropping it if so)."""
        session = self._users.get(key.user_id, {}).get(key.session_id)
        expires_at = None if session is None else session.expires_at
        if expires_at is not None and expires_at <= now_utc():
            self._drop(key)
            self._log.debug("dropped 1 expired session of %s", self.describe())
            return None
        return session

    def _write(self, key: SessionKey) -> _Session:
        """Return the session for a write, creating it, and slide its expiry."""
        now = now_utc()
        session = self._live(key)
        if session is None:
            session = _Session(now, now, None)
            self._users.setdefault(key.user_id, {})[key.session_id] = session
        session.updated_at = now
        session.expires_at = self._expires_at(now)
        return session

    def _end_if_empty(self, key: SessionKey, session: _Session) -> None:
        if session.is_empty():
            self._drop(key)

    async def _append(self, key: SessionKey, entry: SessionQAEntry) -> None:
        self._write(key).entries[entry.id] = entry

    async def _latest(self, key: SessionKey, last_n: int) -> list[SessionQAEntry]:
        session = self._live(key)
        if session is None:
            return []
        newest = list(itertools.islice(reversed(session.entries.values()), last_n))
        return newest[::-1]

    async def _all(self, key: SessionKey) -> list[SessionQAEntry]:
        session = self._live(key)
        return [] if session is None else list(session.entries.values())

    async def _get(self, key: SessionKey, qa_id: str) -> SessionQAEntry | None:
        session = self._live(key)
        return None if session is None else session.entries.get(qa_id)

    async def _count(self, key: SessionKey) -> int:
        session = self._live(key)
        return 0 if session is None else len(session.entries)

    async def _update(self, key: SessionKey, qa_id: str, changes: dict[str, Any]) -> bool:
        session = self._live(key)
        if session is None or qa_id not in session.entries:
            return False
        session = self._write(key)
        session.entries[qa_id] = session.entries[qa_id].model_copy(update=changes)
        return True

    async def _delete_entry(self, key: SessionKey, qa_id: str) -> bool:
        session = self._live(key)
        if session is None or qa_id not in session.entries:
            return False
        session = self._write(key)
        del session.entries[qa_id]
        self._end_if_empty(key, session)
        return True

    async def _latest_id(self, key: SessionKey) -> str | None:
        session = self._live(key)
        if session is None or not session.entries:
            return None
        return next(reversed(session.entries))

    async def _delete_session(self, key: SessionKey) -> bool:
        return self._live(key) is not None and self._drop(key) is not None

    async def _prune(self) -> None:
        # Everything goes at once (fresh dicts); the old objects are freed a
        # batch at a time, as freeing 100,000 sessions in one go stalls the loop.
        users, self._users, self._scoped = self._users, {}, {}
        for sessions in users.values():
            while sessions:
                for _ in range(min(_FREE_BATCH, len(sessions))):
                    sessions.popitem()
                await asyncio.sleep(0)

    async def _list_sessions(
        self, user_id: str | None, limit: int, after: PageCursor | None
    ) -> list[SessionInfo]:
        keys = [SessionKey(session_id, user_id) for session_id in self._users.get(user_id, {})]
        live = [(key, s) for key in keys if (s := self._live(key)) is not None]
        infos = (
            SessionInfo.model_construct(
                session_id=key.session_id,
                user_id=key.user_id,
                created_at=session.created_at,
                updated_at=session.updated_at,
                qa_count=len(session.entries),
                item_count=len(session.items),
            )
            for key, session in live
        )
        return select_page(infos, limit, after)

    async def _get_graph_context(self, key: SessionKey) -> str | None:
        session = self._live(key)
        return None if session is None else session.graph_context

    async def _set_graph_context(self, key: SessionKey, context: str) -> None:
        self._write(key).graph_context = context

    async def _save_trace(self, key: SessionKey, step: SessionTraceStep) -> bool:
        session = self._live(key)
        if session is not None and step.trace_id in session.trace_ids:
            return False
        session = self._write(key)
        session.traces.append(step)
        session.trace_ids.add(step.trace_id)
        return True

    async def _read_traces(self, key: SessionKey, last_n: int | None) -> list[SessionTraceStep]:
        session = self._live(key)
        if session is None:
            return []
        return list(session.traces if last_n is None else session.traces[-last_n:])

    # -- item log and state ----------------------------------------------------

    def _merged(
        self, current: StateRecord, changes: dict[str, str | None], expected: int | None
    ) -> StateRecord:
        """Return ``current`` after ``changes``; ConflictError or InvalidParameterError first."""
        check_revision(current.revision, expected)
        values = apply_changes(current.values, changes, self.max_field_bytes)
        return StateRecord(values, current.revision + 1)

    async def _append_items(
        self,
        key: SessionKey,
        items: list[ItemRecord],
        changes: dict[str, str | None] | None,
        expected_revision: int | None,
    ) -> int:
        live = self._live(key)
        state = StateRecord() if live is None else live.state
        if changes is not None:
            state = self._merged(state, changes, expected_revision)
        else:
            check_revision(state.revision, expected_revision)
        session = self._write(key)  # nothing can fail from here on
        session.items.update((item.id, item) for item in items)
        session.state = state
        return state.revision

    async def _items(self, key: SessionKey, last_n: int | None) -> list[ItemRecord]:
        session = self._live(key)
        if session is None:
            return []
        if last_n is None:
            return list(session.items.values())
        return list(itertools.islice(reversed(session.items.values()), last_n))[::-1]

    async def _pop_item(self, key: SessionKey) -> ItemRecord | None:
        live = self._live(key)
        if live is None or not live.items:
            return None
        session = self._write(key)
        _, item = session.items.popitem()
        self._end_if_empty(key, session)
        return item

    async def _delete_item(self, key: SessionKey, item_id: str) -> bool:
        live = self._live(key)
        if live is None or item_id not in live.items:
            return False
        session = self._write(key)
        del session.items[item_id]
        self._end_if_empty(key, session)
        return True

    async def _count_items(self, key: SessionKey) -> int:
        session = self._live(key)
        return 0 if session is None else len(session.items)

    async def _clear_items(self, key: SessionKey) -> bool:
        live = self._live(key)
        if live is None or not live.items:
            return False
        session = self._write(key)
        session.items.clear()
        self._end_if_empty(key, session)
        return True

    async def _update_state(
        self, key: SessionKey, changes: dict[str, str | None], expected_revision: int | None
    ) -> StateRecord:
        live = self._live(key)
        state = self._merged(live.state if live else StateRecord(), changes, expected_revision)
        self._write(key).state = state
        return state

    async def _get_state(self, key: SessionKey) -> StateRecord:
        session = self._live(key)
        return StateRecord() if session is None else session.state

    async def _scoped_state(self, scope: StateScope) -> StateRecord:
        return self._scoped.get(scope, StateRecord())

    async def _update_scoped_state(
        self, scope: StateScope, changes: dict[str, str | None], expected_revision: int | None
    ) -> StateRecord:
        current = self._scoped.get(scope, StateRecord())
        state = self._merged(current, changes, expected_revision)
        self._scoped[scope] = state
        return state

    async def _session_keys(self, user_filter: str | AllUsers | None) -> AsyncIterator[SessionKey]:
        users = list(self._users) if isinstance(user_filter, AllUsers) else [user_filter]
        for user_id in users:
            for session_id in list(self._users.get(user_id, {})):
                yield SessionKey(session_id, user_id)

    async def _read_sessions(self, keys: list[SessionKey]) -> list[SessionData | None]:
        return [self._snapshot(key) for key in keys]

    def _snapshot(self, key: SessionKey) -> SessionData | None:
        session = self._live(key)
        if session is None:
            return None
        return SessionData(
            session_id=key.session_id,
            user_id=key.user_id,
            created_at=session.created_at,
            updated_at=session.updated_at,
            graph_context=session.graph_context,
            entries=list(session.entries.values()),
            traces=list(session.traces),
            items=list(session.items.values()),
            state=session.state,
        )

    async def _write_session(self, data: SessionData) -> None:
        key = SessionKey(data.session_id, data.user_id)
        session = _Session(
            created_at=data.created_at,
            updated_at=data.updated_at,
            expires_at=self._expires_at(now_utc()),
            entries={entry.id: entry for entry in data.entries},
            graph_context=data.graph_context,
            traces=list(data.traces),
            trace_ids={step.trace_id for step in data.traces},
            items={item.id: item for item in data.items},
            state=data.state,
        )
        self._drop(key)
        if not session.is_empty():
            self._users.setdefault(key.user_id, {})[key.session_id] = session
