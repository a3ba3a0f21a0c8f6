"""``memory://``: in-process dicts, the readable reference for the contract.

Each store is private. Every step runs without awaiting, so each call is
atomic with respect to other tasks on the event loop. Sessions are kept by
user, so ``list_sessions`` reads only that user's.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Self

from sessionstore.clock import now_utc
from sessionstore.keys import select_page
from sessionstore.models import SessionInfo, SessionQAEntry, SessionTraceStep
from sessionstore.records import SessionData
from sessionstore.store import AllUsers, PageCursor, SessionKey, SessionStore
from sessionstore.urls import split_options

__all__ = ["MemoryStore"]


@dataclass(slots=True)
class _Session:
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    # Insertion-ordered: the dict order is the creation order.
    entries: dict[str, SessionQAEntry] = field(default_factory=dict)
    graph_context: str | None = None
    traces: list[SessionTraceStep] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not self.entries and not self.traces and self.graph_context is None


class MemoryStore(SessionStore):
    """Keeps everything in this process's memory; gone when the store is."""

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

    async def _close(self) -> None:
        self._users.clear()

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
        self._users.clear()

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
            )
            for key, session in live
        )
        return select_page(infos, limit, after)

    async def _get_graph_context(self, key: SessionKey) -> str | None:
        session = self._live(key)
        return None if session is None else session.graph_context

    async def _set_graph_context(self, key: SessionKey, context: str) -> None:
        self._write(key).graph_context = context

    async def _save_trace(self, key: SessionKey, step: SessionTraceStep) -> None:
        self._write(key).traces.append(step)

    async def _read_traces(self, key: SessionKey, last_n: int | None) -> list[SessionTraceStep]:
        session = self._live(key)
        if session is None:
            return []
        return list(session.traces if last_n is None else session.traces[-last_n:])

    async def _session_keys(self, user_filter: str | AllUsers | None) -> AsyncIterator[SessionKey]:
        users = list(self._users) if isinstance(user_filter, AllUsers) else [user_filter]
        for user_id in users:
            for session_id in list(self._users.get(user_id, {})):
                yield SessionKey(session_id, user_id)

    async def _read_session(self, key: SessionKey) -> SessionData | None:
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
        )
        self._drop(key)
        if not session.is_empty():
            self._users.setdefault(key.user_id, {})[key.session_id] = session
