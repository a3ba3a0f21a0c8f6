"""``file://``: conversation memory as plain files a person can read and grep.

One directory per user and per session under the root, entries and trace
steps as JSON Lines, the graph context as a small JSON file (names in
``layout.py``, what the lines hold in ``codec.py``, the commit protocol in
``session.py``, all of it in ``docs/backends/files.md``). Every call takes the
session's ``flock``, so several processes and threads can share one root; every
blocking call runs in a worker thread (:meth:`StoreRoot.run`); no symbolic
link inside the root is ever followed (``directory.py``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Self, TypeVar
from urllib.parse import unquote

from sessionstore.backends.files import item_steps
from sessionstore.backends.files.codec import (
    ADD,
    UPDATE,
    decode_entry,
    decode_trace,
    delete_line,
    encode_entry,
    encode_trace,
    entry_line,
)
from sessionstore.backends.files.layout import user_dir_name
from sessionstore.backends.files.lock import file_locks
from sessionstore.backends.files.root import StoreRoot
from sessionstore.backends.files.scoped import read_scope, update_scope
from sessionstore.backends.files.session import SessionDir
from sessionstore.backends.files.state import State, Write
from sessionstore.clock import now_utc
from sessionstore.errors import InvalidParameterError
from sessionstore.items import ItemRecord, StateRecord, StateScope
from sessionstore.keys import AllUsers, PageCursor, SessionKey, select_page
from sessionstore.locks import LockBackend
from sessionstore.models import SessionInfo, SessionQAEntry, SessionTraceStep
from sessionstore.records import SessionData
from sessionstore.store import SessionStore
from sessionstore.urls import redact_url, split_options
from sessionstore.validation import DEFAULT_MAX_FIELD_BYTES

__all__ = ["FileStore"]

DURABILITY = ("flush", "fsync")
T = TypeVar("T")


class FileStore(SessionStore):
    """Keeps sessions as directories of JSON Lines files under ``root``.

    Args:
        root: the directory holding the store; created on first use.
        durability: ``"flush"`` (default) hands every write to the operating
            system before the call returns, so it survives the process being
            killed; ``"fsync"`` also waits for the disk, so it survives a power
            loss, at a large cost per write.
        ttl: seconds after its last write that a session expires.
        max_field_bytes: the largest text field accepted, in UTF-8 bytes.
        **observing: ``slow_call_ms`` and ``otel_ids``, see :class:`SessionStore`.

    Raises:
        InvalidParameterError: an unknown durability, a bad ttl or size.
    """

    _db_system_name = "sessionstore.files"  # OpenTelemetry's db.system.name

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        durability: str = "flush",
        ttl: float | None = None,
        max_field_bytes: int = DEFAULT_MAX_FIELD_BYTES,
        **observing: Any,
    ) -> None:
        super().__init__(ttl=ttl, max_field_bytes=max_field_bytes, **observing)
        if durability not in DURABILITY:
            raise InvalidParameterError(
                f"durability must be one of {', '.join(DURABILITY)}, got {durability!r}"
            )
        self.root = Path(root).absolute()
        self.durability = durability
        self._dir = StoreRoot(self.root, sync=durability == "fsync")

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Self:
        """Build a store from ``file:///abs/dir`` or ``file://rel/dir``.

        Raises:
            InvalidParameterError: no directory in the URL, or a bad option.
        """
        base, merged = split_options(url, options, {"durability": str})
        rest = base.split("://", 1)[1]
        if "@" in rest and not rest.startswith("/"):
            # It would be read as user:password@host everywhere it is shown.
            raise InvalidParameterError(
                f"a file store URL names a directory, not a user or password: got "
                f"{redact_url(url)!r}; percent-encode '@' in a directory name as %40"
            )
        path = unquote(rest)
        if not path:
            raise InvalidParameterError(
                "a file store URL names a directory: file:///abs/dir or file://rel/dir"
            )
        return cls(path, **merged)

    def describe(self) -> str:
        """Return ``file://`` and the root directory."""
        return f"file://{self.root}"

    def _lock_backend(self) -> LockBackend | None:
        """Return SQLite lock rows beside the root, named by its resolved path."""
        assert self._dir.resolved is not None  # set by open(), which runs first
        return file_locks(self._dir.resolved)

    # -- plumbing ------------------------------------------------------------

    def _session(self, key: SessionKey) -> SessionDir:
        return self._dir.session(key)

    def _sweep(self, now: datetime) -> None:
        if self.ttl is not None:
            self._dir.sweep(now)

    def _times(self) -> tuple[datetime, datetime | None]:
        now = now_utc()
        return now, self._expires_at(now)

    # -- lifecycle -------------------------------------------------------------

    async def _open(self) -> None:
        await self._dir.run(self._dir.open)

    async def _close(self) -> None:
        """Nothing to release: no file stays open between calls."""

    # -- entries ---------------------------------------------------------------

    async def _append(self, key: SessionKey, entry: SessionQAEntry) -> None:
        await self._dir.run(self._append_sync, key, entry)

    def _append_sync(self, key: SessionKey, entry: SessionQAEntry) -> None:
        session = self._session(key)
        now, expires = self._times()
        with session.writing(now, expires, create=True) as write:
            assert write is not None
            state = write.state
            session.append_entries(write, [entry_line(state.take_n(), ADD, encode_entry(entry))])
            state.qa_count += 1
        self._sweep(now)

    async def _latest(self, key: SessionKey, last_n: int) -> list[SessionQAEntry]:
        return await self._dir.run(self._latest_sync, key, last_n)

    def _latest_sync(self, key: SessionKey, last_n: int) -> list[SessionQAEntry]:
        session = self._session(key)
        with session.reading(now_utc()) as state:
            records = [] if state is None else session.latest_entries(state, last_n)
        return [decode_entry(r) for r in records]

    async def _all(self, key: SessionKey) -> list[SessionQAEntry]:
        return await self._dir.run(self._all_sync, key)

    def _all_sync(self, key: SessionKey) -> list[SessionQAEntry]:
        session = self._session(key)
        with session.reading(now_utc()) as state:
            live = {} if state is None else session.live_entries(state)
        return [decode_entry(record) for _, record in live.values()]

    async def _get(self, key: SessionKey, qa_id: str) -> SessionQAEntry | None:
        return await self._dir.run(self._get_sync, key, qa_id)

    def _get_sync(self, key: SessionKey, qa_id: str) -> SessionQAEntry | None:
        session = self._session(key)
        with session.reading(now_utc()) as state:
            record = None if state is None else session.find_entry(state, qa_id)
        return None if record is None else decode_entry(record)

    async def _count(self, key: SessionKey) -> int:
        return await self._dir.run(self._count_sync, key)

    def _count_sync(self, key: SessionKey) -> int:
        with self._session(key).reading(now_utc()) as state:
            return 0 if state is None else state.qa_count

    async def _update(self, key: SessionKey, qa_id: str, changes: dict[str, Any]) -> bool:
        return await self._dir.run(self._change_sync, key, qa_id, changes)

    async def _delete_entry(self, key: SessionKey, qa_id: str) -> bool:
        return await self._dir.run(self._change_sync, key, qa_id, None)

    def _change_sync(self, key: SessionKey, qa_id: str, changes: dict[str, Any] | None) -> bool:
        """Update an entry (``changes``) or delete it (``None``) by appending a record."""
        session = self._session(key)
        now, expires = self._times()
        with session.writing(now, expires, create=False) as write:
            if write is None:
                return False
            state = write.state
            record = session.find_entry(state, qa_id)
            if record is None:
                return False
            if changes is None:
                line = delete_line(state.take_n(), qa_id)
                state.qa_count -= 1
            else:
                entry = decode_entry(record).model_copy(update=changes)
                line = entry_line(state.take_n(), UPDATE, encode_entry(entry))
            session.append_entries(write, [line])
            session.compact_if_needed(write)
        self._sweep(now)
        return True

    async def _latest_id(self, key: SessionKey) -> str | None:
        return await self._dir.run(self._latest_id_sync, key)

    def _latest_id_sync(self, key: SessionKey) -> str | None:
        session = self._session(key)
        with session.reading(now_utc()) as state:
            newest = [] if state is None else session.latest_entries(state, 1)
        return str(newest[0]["id"]) if newest else None

    # -- sessions ----------------------------------------------------------------

    async def _delete_session(self, key: SessionKey) -> bool:
        return await self._dir.run(self._delete_session_sync, key)

    def _delete_session_sync(self, key: SessionKey) -> bool:
        now, expires = self._times()
        with self._session(key).writing(now, expires, create=False) as write:
            if write is None:
                return False
            write.remove = True
            return True

    async def _prune(self) -> None:
        await self._dir.run(self._dir.prune)

    async def _list_sessions(
        self, user_id: str | None, limit: int, after: PageCursor | None
    ) -> list[SessionInfo]:
        return await self._dir.run(self._list_sessions_sync, user_id, limit, after)

    def _list_sessions_sync(
        self, user_id: str | None, limit: int, after: PageCursor | None
    ) -> list[SessionInfo]:
        states = self._dir.live_states(user_dir_name(user_id), now_utc())
        infos = (
            SessionInfo.model_construct(
                session_id=s.session_id,
                user_id=s.user_id,
                created_at=s.created_at,
                updated_at=s.updated_at,
                qa_count=s.qa_count,
                item_count=s.item_count,
            )
            for s in states
            if s.user_id == user_id
        )
        return select_page(infos, limit, after)

    # -- graph context and traces ------------------------------------------------

    async def _get_graph_context(self, key: SessionKey) -> str | None:
        return await self._dir.run(self._get_graph_sync, key)

    def _get_graph_sync(self, key: SessionKey) -> str | None:
        session = self._session(key)
        with session.reading(now_utc()) as state:
            return None if state is None else session.read_graph(state)

    async def _set_graph_context(self, key: SessionKey, context: str) -> None:
        await self._dir.run(self._set_graph_sync, key, context)

    def _set_graph_sync(self, key: SessionKey, context: str) -> None:
        session = self._session(key)
        now, expires = self._times()
        with session.writing(now, expires, create=True) as write:
            assert write is not None
            session.write_graph(write, context)
        self._sweep(now)

    async def _save_trace(self, key: SessionKey, step: SessionTraceStep) -> bool:
        return await self._dir.run(self._save_trace_sync, key, step)

    def _save_trace_sync(self, key: SessionKey, step: SessionTraceStep) -> bool:
        session = self._session(key)
        now, expires = self._times()
        with session.writing(now, expires, create=True) as write:
            assert write is not None
            added = session.add_trace(write, encode_trace(step), step.trace_id)
        self._sweep(now)
        return added

    async def _read_traces(self, key: SessionKey, last_n: int | None) -> list[SessionTraceStep]:
        return await self._dir.run(self._read_traces_sync, key, last_n)

    def _read_traces_sync(self, key: SessionKey, last_n: int | None) -> list[SessionTraceStep]:
        session = self._session(key)
        with session.reading(now_utc()) as state:
            records = [] if state is None else session.trace_records(state, last_n)
        return [decode_trace(r) for r in records]

    # -- item log and state (item_steps.py, scoped.py) ----------------------------

    def _write_sync(
        self, key: SessionKey, create: bool, step: Callable[[SessionDir, Write | None], T]
    ) -> T:
        """Run ``step`` in one write to the session (``None``: it does not exist)."""
        session = self._session(key)
        now, expires = self._times()
        with session.writing(now, expires, create=create) as write:
            result = step(session, write)
        self._sweep(now)
        return result

    def _read_sync(self, key: SessionKey, step: Callable[[SessionDir, State | None], T]) -> T:
        """Run ``step`` under the session's shared lock (``None``: no live session)."""
        session = self._session(key)
        with session.reading(now_utc()) as state:
            return step(session, state)

    async def _append_items(
        self,
        key: SessionKey,
        items: list[ItemRecord],
        changes: dict[str, str | None] | None,
        expected_revision: int | None,
    ) -> int:
        limit = self.max_field_bytes
        return await self._dir.run(
            self._write_sync,
            key,
            True,
            lambda session, write: item_steps.append(
                session, write, items, changes, expected=expected_revision, max_bytes=limit
            ),
        )

    async def _items(self, key: SessionKey, last_n: int | None) -> list[ItemRecord]:
        return await self._dir.run(
            self._read_sync,
            key,
            lambda session, state: [] if state is None else session.items(state, last_n),
        )

    async def _pop_item(self, key: SessionKey) -> ItemRecord | None:
        return await self._dir.run(self._write_sync, key, False, item_steps.pop)

    async def _delete_item(self, key: SessionKey, item_id: str) -> bool:
        return await self._dir.run(
            self._write_sync,
            key,
            False,
            lambda session, write: item_steps.delete(session, write, item_id),
        )

    async def _count_items(self, key: SessionKey) -> int:
        return await self._dir.run(
            self._read_sync, key, lambda _, state: 0 if state is None else state.item_count
        )

    async def _clear_items(self, key: SessionKey) -> bool:
        return await self._dir.run(self._write_sync, key, False, item_steps.clear)

    async def _update_state(
        self, key: SessionKey, changes: dict[str, str | None], expected_revision: int | None
    ) -> StateRecord:
        limit = self.max_field_bytes
        return await self._dir.run(
            self._write_sync,
            key,
            True,
            lambda session, write: item_steps.update_state(
                session, write, changes, expected=expected_revision, max_bytes=limit
            ),
        )

    async def _get_state(self, key: SessionKey) -> StateRecord:
        return await self._dir.run(self._read_sync, key, item_steps.read_state)

    async def _get_states(self, keys: list[SessionKey]) -> list[StateRecord]:
        def work() -> list[StateRecord]:
            return [self._read_sync(key, item_steps.read_state) for key in keys]

        return await self._dir.run(work)  # one hop to the thread for them all

    async def _scoped_state(self, scope: StateScope) -> StateRecord:
        return await self._dir.run(read_scope, self.root, scope)

    async def _update_scoped_state(
        self, scope: StateScope, changes: dict[str, str | None], expected_revision: int | None
    ) -> StateRecord:
        return await self._dir.run(
            update_scope,
            self.root,
            scope,
            changes,
            expected=expected_revision,
            max_bytes=self.max_field_bytes,
            sync=self._dir.sync,
        )

    # -- export and import ---------------------------------------------------------

    async def _session_keys(self, user_filter: str | AllUsers | None) -> AsyncIterator[SessionKey]:
        for key in await self._dir.run(self._session_keys_sync, user_filter):
            yield key

    def _session_keys_sync(self, user_filter: str | AllUsers | None) -> list[SessionKey]:
        every_user = isinstance(user_filter, AllUsers)
        if isinstance(user_filter, AllUsers):
            user_dirs = self._dir.user_dirs()
        else:
            user_dirs = [user_dir_name(user_filter)]
        now = now_utc()
        return [
            SessionKey(s.session_id, s.user_id)
            for user_dir in user_dirs
            for s in self._dir.live_states(user_dir, now)
            if every_user or s.user_id == user_filter
        ]

    async def _read_sessions(self, keys: list[SessionKey]) -> list[SessionData | None]:
        return await self._dir.run(lambda: [self._read_session_sync(key) for key in keys])

    def _read_session_sync(self, key: SessionKey) -> SessionData | None:
        session = self._session(key)
        with session.reading(now_utc()) as state:
            if state is None or state.is_empty():
                return None
            return SessionData(
                session_id=key.session_id,
                user_id=key.user_id,
                created_at=state.created_at,
                updated_at=state.updated_at,
                graph_context=session.read_graph(state),
                entries=[decode_entry(r) for _, r in session.live_entries(state).values()],
                traces=[decode_trace(r) for r in session.trace_records(state, None)],
                items=session.items(state, None),
                state=item_steps.read_state(session, state),
            )

    async def _write_session(self, data: SessionData) -> None:
        await self._dir.run(self._write_session_sync, data)

    async def _write_sessions(self, batch: list[SessionData]) -> None:
        # One hop to the worker thread; each session is still replaced on its own.
        def work() -> None:
            for data in batch:
                self._write_session_sync(data)

        await self._dir.run(work)

    def _write_session_sync(self, data: SessionData) -> None:
        key = SessionKey(data.session_id, data.user_id)
        session = self._session(key)
        now, expires = self._times()
        state = State(key.session_id, key.user_id, data.created_at, data.updated_at, expires)
        state.state_revision = data.state.revision
        lines = [
            entry_line(n, ADD, encode_entry(entry)) for n, entry in enumerate(data.entries, start=1)
        ]
        traces = [encode_trace(step) for step in data.traces]
        values = dict(data.state.values)
        session.replace(state, lines, traces, data.graph_context, data.items, values)
        self._sweep(now)
