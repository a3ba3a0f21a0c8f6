"""``sqlite:///path.db``: the embedded default, on the standard library's sqlite3.

One connection per store lives in one worker thread (``connection.py``), so the
event loop never blocks. WAL journaling lets readers run beside a writer;
every read-modify-write is one ``BEGIN IMMEDIATE`` transaction
(``transactions.py``), and ``busy_timeout`` makes other processes wait their
turn instead of failing. Order comes from a per-session sequence in the
``sessions`` row; counts live there too, so ``count`` and ``list_sessions``
never scan entries.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Self

from sessionstore.backends.sqlite import item_log, state_rows
from sessionstore.backends.sqlite import statements as sql
from sessionstore.backends.sqlite.codec import (
    changes_to_params,
    entry_from_row,
    entry_to_params,
    item_and_state_rows,
    item_from_row,
    key_params,
    session_from_rows,
    session_info_from_row,
    session_to_rows,
    state_from_rows,
    trace_to_params,
    user_id_of,
    user_key_of,
)
from sessionstore.backends.sqlite.connection import SQLiteConnection
from sessionstore.backends.sqlite.lock import SQLiteLockBackend
from sessionstore.backends.sqlite.transactions import (
    Transactions,
    delete_session_rows,
    session_params,
)
from sessionstore.clock import now_utc, to_micros
from sessionstore.errors import InvalidParameterError
from sessionstore.items import ItemRecord, StateRecord, StateScope
from sessionstore.keys import AllUsers, PageCursor, SessionKey
from sessionstore.locks import LockBackend
from sessionstore.models import SessionInfo, SessionQAEntry, SessionTraceStep
from sessionstore.records import SessionData
from sessionstore.store import SessionStore
from sessionstore.stored import trace_from_json
from sessionstore.urls import redact_url, split_options

__all__ = ["SQLiteStore"]

_KEYS_PAGE = 500
_IN_MEMORY = frozenset({":memory:"})


def _path_from_url(url: str) -> Path:
    rest = url.split("://", 1)[1]
    if not rest.startswith("/") or rest == "/":
        raise InvalidParameterError(
            f"SQLite URL must be sqlite:///relative/path.db or sqlite:////absolute/path.db, "
            f"got {redact_url(url)!r}"
        )
    return Path(rest[1:])


class SQLiteStore(SessionStore):
    """Stores sessions in one SQLite database file, safe for several processes.

    Open it with ``open_store("sqlite:///path.db")`` or construct it directly.

    Args:
        path: the database file; its directory is created on first use.
        busy_timeout: seconds to wait for another process's write lock before
            raising :class:`StoreUnavailableError` (default 5).
        synchronous: ``"normal"`` (the default) keeps every acknowledged
            write through a crash of the process; ``"full"`` also through a
            power loss, at the cost of an fsync per write.
        **options: ``ttl``, ``max_field_bytes``, ``slow_call_ms``, ``otel_ids``
            (see :class:`SessionStore`).

    Raises:
        InvalidParameterError: a bad option.

    """

    _db_system_name = "sqlite"  # OpenTelemetry's db.system.name

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout: float = 5.0,
        synchronous: str = "normal",
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.path = Path(path)
        self._db = SQLiteConnection(self.path, busy_timeout=busy_timeout, synchronous=synchronous)
        self._tx = Transactions(self._expires_at)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Self:
        """Build a store from ``sqlite:///rel.db`` or ``sqlite:////abs.db``."""
        base, merged = split_options(
            url, options, {"busy_timeout": float, "synchronous": str.lower}
        )
        return cls(_path_from_url(base), **merged)

    def describe(self) -> str:
        """Return the database file's URL."""
        return f"sqlite:///{self.path}"

    def _lock_backend(self) -> LockBackend | None:
        if str(self.path) in _IN_MEMORY:
            return None
        return SQLiteLockBackend(self.path, busy_timeout=self._db.busy_timeout)

    async def _open(self) -> None:
        await self._db.open()

    async def _close(self) -> None:
        await self._db.close()

    async def _rows(self, statement: str, params: dict[str, Any]) -> list[sqlite3.Row]:
        def work(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            return conn.execute(statement, params).fetchall()

        return await self._db.run(work)

    async def _value(self, statement: str, column: str, params: dict[str, Any]) -> Any:
        """Return ``column`` of the first row, or ``None`` without a row."""

        def work(conn: sqlite3.Connection) -> Any:
            row = conn.execute(statement, params).fetchone()
            return None if row is None else row[column]

        return await self._db.run(work)

    # -- entries -------------------------------------------------------------

    async def _append(self, key: SessionKey, entry: SessionQAEntry) -> None:
        params = entry_to_params(entry)
        params.update(key_params(key))

        def work(conn: sqlite3.Connection) -> None:
            with self._tx.begin(conn):
                params["seq"] = self._tx.next_seq(conn, key, qa=1, traces=0)
                conn.execute(sql.INSERT_ENTRY, params)

        await self._db.run(work)

    async def _latest_entries(self, key: SessionKey, limit: int) -> list[SessionQAEntry]:
        rows = await self._rows(sql.LATEST_ENTRIES, {**session_params(key), "limit": limit})
        return [entry_from_row(row, key) for row in reversed(rows)]

    async def _latest(self, key: SessionKey, last_n: int) -> list[SessionQAEntry]:
        return await self._latest_entries(key, last_n)

    async def _all(self, key: SessionKey) -> list[SessionQAEntry]:
        return await self._latest_entries(key, -1)

    async def _get(self, key: SessionKey, qa_id: str) -> SessionQAEntry | None:
        rows = await self._rows(sql.ONE_ENTRY, {**session_params(key), "qa_id": qa_id})
        return entry_from_row(rows[0], key) if rows else None

    async def _count(self, key: SessionKey) -> int:
        return int(await self._value(sql.COUNT_ENTRIES, "qa_count", session_params(key)) or 0)

    async def _latest_id(self, key: SessionKey) -> str | None:
        latest: str | None = await self._value(sql.LATEST_ENTRY_ID, "id", session_params(key))
        return latest

    async def _update(self, key: SessionKey, qa_id: str, changes: dict[str, Any]) -> bool:
        params = changes_to_params(changes)
        params.update(key_params(key), qa_id=qa_id)
        update = sql.update_entry(changes) if changes else None

        def work(conn: sqlite3.Connection) -> bool:
            with self._tx.write(conn, key) as row:
                if row is None or not conn.execute(sql.ENTRY_EXISTS, params).fetchone():
                    conn.execute("ROLLBACK")
                    return False
                if update is not None:
                    conn.execute(update, params)
                self._tx.touch(conn, key, row)
                return True

        return await self._db.run(work)

    async def _delete_entry(self, key: SessionKey, qa_id: str) -> bool:
        params = {**key_params(key), "qa_id": qa_id}

        def work(conn: sqlite3.Connection) -> bool:
            with self._tx.write(conn, key) as row:
                if row is None or not conn.execute(sql.DELETE_ENTRY, params).rowcount:
                    conn.execute("ROLLBACK")
                    return False
                self._tx.touch(conn, key, row, qa=-1)
                return True

        return await self._db.run(work)

    # -- sessions --------------------------------------------------------------

    async def _delete_session(self, key: SessionKey) -> bool:
        def work(conn: sqlite3.Connection) -> bool:
            with self._tx.write(conn, key) as row:
                if row is not None:
                    delete_session_rows(conn, key_params(key))
                return row is not None

        return await self._db.run(work)

    async def _prune(self) -> None:
        def work(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            for statement in sql.PRUNE:
                conn.execute(statement)
            conn.execute("COMMIT")

        await self._db.run(work)

    async def _list_sessions(
        self, user_id: str | None, limit: int, after: PageCursor | None
    ) -> list[SessionInfo]:
        params: dict[str, Any] = {
            "user_key": user_key_of(user_id),
            "now": to_micros(now_utc()),
            "limit": limit,
        }
        statement = sql.LIST_SESSIONS
        if after is not None:
            statement = sql.LIST_SESSIONS_AFTER
            params.update(after_us=to_micros(after.updated_at), after_id=after.session_id)
        return [session_info_from_row(row, user_id) for row in await self._rows(statement, params)]

    # -- graph context and traces --------------------------------------------

    async def _get_graph_context(self, key: SessionKey) -> str | None:
        context: str | None = await self._value(
            sql.LIVE_GRAPH_CONTEXT, "context", session_params(key)
        )
        return context

    async def _set_graph_context(self, key: SessionKey, context: str) -> None:
        params = key_params(key)

        def work(conn: sqlite3.Connection) -> None:
            with self._tx.write(conn, key) as row:
                self._tx.touch(conn, key, row, graph=True)
                conn.execute(sql.INSERT_GRAPH_CONTEXT, {**params, "context": context})

        await self._db.run(work)

    async def _save_trace(self, key: SessionKey, step: SessionTraceStep) -> bool:
        params = {**key_params(key), **trace_to_params(step)}

        def work(conn: sqlite3.Connection) -> bool:
            with self._tx.begin(conn):
                # After next_seq, which ends an expired session: its ids are free again.
                params["seq"] = self._tx.next_seq(conn, key, qa=0, traces=1)
                if conn.execute(sql.TRACE_ID_TAKEN, params).fetchone():
                    conn.execute("ROLLBACK")
                    return False
                conn.execute(sql.INSERT_TRACE, params)
                return True

        return await self._db.run(work)

    async def _read_traces(self, key: SessionKey, last_n: int | None) -> list[SessionTraceStep]:
        limit = -1 if last_n is None else last_n
        rows = await self._rows(sql.LATEST_TRACES, {**session_params(key), "limit": limit})
        return [trace_from_json(row["body"]) for row in reversed(rows)]

    # -- item log and state (item_log.py, state_rows.py) ----------------------

    async def _append_items(
        self,
        key: SessionKey,
        items: list[ItemRecord],
        changes: dict[str, str | None] | None,
        expected_revision: int | None,
    ) -> int:
        limit = self.max_field_bytes
        return await self._db.run(
            lambda conn: item_log.append(
                conn, self._tx, key, items, changes, expected=expected_revision, max_bytes=limit
            )
        )

    async def _items(self, key: SessionKey, last_n: int | None) -> list[ItemRecord]:
        limit = -1 if last_n is None else last_n
        rows = await self._rows(sql.LATEST_ITEMS, {**session_params(key), "limit": limit})
        return [item_from_row(row) for row in reversed(rows)]

    async def _pop_item(self, key: SessionKey) -> ItemRecord | None:
        return await self._db.run(lambda conn: item_log.pop(conn, self._tx, key))

    async def _delete_item(self, key: SessionKey, item_id: str) -> bool:
        return await self._db.run(lambda conn: item_log.delete(conn, self._tx, key, item_id))

    async def _count_items(self, key: SessionKey) -> int:
        return int(await self._value(sql.COUNT_ITEMS, "item_count", session_params(key)) or 0)

    async def _clear_items(self, key: SessionKey) -> bool:
        return await self._db.run(lambda conn: item_log.clear(conn, self._tx, key))

    async def _update_state(
        self, key: SessionKey, changes: dict[str, str | None], expected_revision: int | None
    ) -> StateRecord:
        limit = self.max_field_bytes
        return await self._db.run(
            lambda conn: item_log.update_state(
                conn, self._tx, key, changes, expected=expected_revision, max_bytes=limit
            )
        )

    async def _get_state(self, key: SessionKey) -> StateRecord:
        rows = await self._rows(sql.LIVE_STATE, session_params(key))
        return state_from_rows(rows, rows[0]["revision"]) if rows else StateRecord()

    async def _get_states(self, keys: list[SessionKey]) -> list[StateRecord]:
        def work(conn: sqlite3.Connection) -> list[StateRecord]:
            states = []
            for key in keys:
                rows = conn.execute(sql.LIVE_STATE, session_params(key)).fetchall()
                states.append(state_from_rows(rows, rows[0]["revision"]) if rows else StateRecord())
            return states

        return await self._db.run(work)  # one hop to the thread for them all

    async def _scoped_state(self, scope: StateScope) -> StateRecord:
        return await self._db.run(lambda conn: state_rows.read_scoped(conn, scope))

    async def _update_scoped_state(
        self, scope: StateScope, changes: dict[str, str | None], expected_revision: int | None
    ) -> StateRecord:
        limit = self.max_field_bytes
        return await self._db.run(
            lambda conn: state_rows.update_scoped(
                conn, self._tx, scope, changes, expected=expected_revision, max_bytes=limit
            )
        )

    # -- export and import ---------------------------------------------------

    async def _session_keys(self, user_filter: str | AllUsers | None) -> AsyncIterator[SessionKey]:
        if isinstance(user_filter, AllUsers):
            statement = sql.SESSION_KEYS
            params: dict[str, Any] = {"after_user_key": "", "after_session_id": ""}
        else:
            statement = sql.SESSION_KEYS_OF_USER
            params = {"user_key": user_key_of(user_filter), "after_session_id": ""}
        params["limit"] = _KEYS_PAGE
        while True:
            rows = await self._rows(statement, dict(params))
            for row in rows:
                yield SessionKey(row["session_id"], user_id_of(row["user_key"]))
            if len(rows) < _KEYS_PAGE:
                return
            params.update(
                after_user_key=rows[-1]["user_key"], after_session_id=rows[-1]["session_id"]
            )

    async def _read_sessions(self, keys: list[SessionKey]) -> list[SessionData | None]:
        def work(conn: sqlite3.Connection) -> list[SessionData | None]:
            conn.execute("BEGIN")  # one read transaction: one snapshot of the whole batch
            try:
                return [_read_one(conn, key) for key in keys]
            finally:
                conn.execute("COMMIT")

        return await self._db.run(work)

    async def _write_session(self, data: SessionData) -> None:
        await self._write_sessions([data])

    async def _write_sessions(self, batch: list[SessionData]) -> None:
        expires = self._expires_at(now_utc())
        expires_us = None if expires is None else to_micros(expires)
        writes = [_SessionWrite(data, expires_us) for data in batch]

        def work(conn: sqlite3.Connection) -> None:
            with self._tx.begin(conn):  # one transaction: the whole batch or none of it
                for write in writes:
                    write.replace(conn)

        await self._db.run(work)


def _read_one(conn: sqlite3.Connection, key: SessionKey) -> SessionData | None:
    """Read one whole session inside the caller's read transaction."""
    params = session_params(key)
    session = conn.execute(sql.SESSION_TIMES, params).fetchone()
    if session is None:
        return None
    entries = conn.execute(sql.SNAPSHOT_ENTRIES, params).fetchall()
    graph = conn.execute(sql.SNAPSHOT_GRAPH_CONTEXT, params).fetchone()
    traces = conn.execute(sql.SNAPSHOT_TRACES, params).fetchall()
    items = conn.execute(sql.SNAPSHOT_ITEMS, params).fetchall()
    state = conn.execute(sql.SESSION_STATE_VALUES.all_values, params).fetchall()
    return session_from_rows(key, session, entries, graph, traces, items=items, state=state)


class _SessionWrite:
    """The rows that replace one session, made before the worker thread runs them."""

    def __init__(self, data: SessionData, expires_us: int | None) -> None:
        self.rows = session_to_rows(data, expires_us)
        self.items, self.state = item_and_state_rows(data)
        self.empty = data.holds_nothing()

    def replace(self, conn: sqlite3.Connection) -> None:
        """Delete the session's rows and insert these, inside the caller's write transaction."""
        rows = self.rows
        delete_session_rows(conn, rows.session)
        if self.empty:
            return
        conn.execute(sql.INSERT_SESSION, rows.session)
        conn.executemany(sql.INSERT_ENTRY, rows.entries)
        conn.executemany(sql.INSERT_TRACE, rows.traces)
        conn.executemany(sql.INSERT_ITEM, self.items)
        conn.executemany(sql.SESSION_STATE_VALUES.set_value, self.state)
        if rows.graph is not None:
            conn.execute(sql.INSERT_GRAPH_CONTEXT, rows.graph)
