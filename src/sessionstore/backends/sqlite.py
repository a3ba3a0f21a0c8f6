"""``sqlite:///path.db``: the embedded default, on the standard library's sqlite3.

One connection per store lives in one worker thread, so the event loop never
blocks and the connection is never shared between threads. WAL journaling
lets readers run beside a writer; every read-modify-write is one
``BEGIN IMMEDIATE`` transaction, and ``busy_timeout`` makes other processes
wait their turn instead of failing. Order comes from a per-session sequence in
the ``sessions`` row; counts live there too, so ``count`` and ``list_sessions``
never scan entries.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

from sessionstore.backends.sqlite_db import (
    ENTRY_COLUMNS,
    LIVE,
    Row,
    SQLiteConnection,
    dumps,
    entry_from_row,
    user_id_of,
    user_key_of,
)
from sessionstore.models import SessionInfo, SessionQAEntry, SessionTraceStep
from sessionstore.records import (
    SessionData,
    from_micros,
    now_utc,
    to_micros,
    trace_from_record,
    trace_to_record,
)
from sessionstore.store import AllUsers, PageCursor, SessionKey

__all__ = ["SQLiteStore"]

# Entry fields stored as JSON text, with their column names.
_JSON_COLUMNS = {
    "used_graph_element_ids": "graph_ids",
    "memify_metadata": "memify",
    "metadata": "metadata",
}


class SQLiteStore(SQLiteConnection):
    """Stores sessions in one SQLite database file, safe for several processes.

    Open it with ``open_store("sqlite:///path.db")`` or construct it directly.

    Args:
        path: the database file; its directory is created on first use.
        busy_timeout: seconds to wait for another process's write lock before
            raising :class:`StoreUnavailableError` (default 5).
        synchronous: ``"normal"`` (the default) keeps every acknowledged
            write through a crash of the process; ``"full"`` also through a
            power loss, at the cost of an fsync per write.
        **options: ``ttl`` and ``max_field_bytes`` (see :class:`SessionStore`).

    """

    # -- entries -------------------------------------------------------------

    async def _append(self, key: SessionKey, entry: SessionQAEntry) -> None:
        values = (
            entry.id,
            to_micros(entry.created_at),
            entry.question,
            entry.answer,
            entry.context,
            entry.feedback_text,
            entry.feedback_score,
            dumps(entry.used_graph_element_ids),
            dumps(entry.memify_metadata),
            dumps(entry.metadata),
        )

        def work(conn: sqlite3.Connection) -> None:
            with self._begin(conn):
                seq = self._next_seq(conn, key, qa=1, traces=0)
                conn.execute(
                    f"INSERT INTO entries (user_key, session_id, seq, {ENTRY_COLUMNS})"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (user_key_of(key.user_id), key.session_id, seq, *values),
                )

        await self._run(work)

    async def _select_entries(
        self, key: SessionKey, last_n: int | None, qa_id: str | None = None
    ) -> list[SessionQAEntry]:
        where = "user_key = ? AND session_id = ?"
        args: list[Any] = [user_key_of(key.user_id), key.session_id]
        if qa_id is not None:
            where += " AND id = ?"
            args.append(qa_id)
        sql = (
            f"SELECT {ENTRY_COLUMNS} FROM entries WHERE {where} AND {LIVE}"
            " ORDER BY seq DESC LIMIT ?"
        )
        params = (*args, *self._key_args(key)[2:], -1 if last_n is None else last_n)

        def work(conn: sqlite3.Connection) -> list[Row]:
            return conn.execute(sql, params).fetchall()

        rows = await self._run(work)
        return [entry_from_row(key, row) for row in reversed(rows)]

    async def _latest(self, key: SessionKey, last_n: int) -> list[SessionQAEntry]:
        return await self._select_entries(key, last_n)

    async def _all(self, key: SessionKey) -> list[SessionQAEntry]:
        return await self._select_entries(key, None)

    async def _get(self, key: SessionKey, qa_id: str) -> SessionQAEntry | None:
        found = await self._select_entries(key, 1, qa_id)
        return found[0] if found else None

    async def _scalar(self, sql: str, params: tuple[Any, ...]) -> Any:
        def work(conn: sqlite3.Connection) -> Any:
            row = conn.execute(sql, params).fetchone()
            return None if row is None else row[0]

        return await self._run(work)

    async def _count(self, key: SessionKey) -> int:
        count = await self._scalar(
            "SELECT qa_count FROM sessions s WHERE user_key = ? AND session_id = ?"
            " AND (s.expires_us IS NULL OR s.expires_us > ?)",
            self._key_args(key)[2:],
        )
        return int(count or 0)

    async def _latest_id(self, key: SessionKey) -> str | None:
        latest: str | None = await self._scalar(
            f"SELECT id FROM entries WHERE user_key = ? AND session_id = ? AND {LIVE}"
            " ORDER BY seq DESC LIMIT 1",
            self._key_args(key),
        )
        return latest

    async def _update(self, key: SessionKey, qa_id: str, changes: dict[str, Any]) -> bool:
        columns = [_JSON_COLUMNS.get(name, name) for name in changes]
        values = [
            dumps(value) if name in _JSON_COLUMNS else value for name, value in changes.items()
        ]
        where = "user_key = ? AND session_id = ? AND id = ?"
        where_args = (user_key_of(key.user_id), key.session_id, qa_id)

        def work(conn: sqlite3.Connection) -> bool:
            with self._write(conn, key) as row:
                found = (
                    row is not None
                    and conn.execute(f"SELECT 1 FROM entries WHERE {where}", where_args).fetchone()
                )
                if not found:
                    conn.execute("ROLLBACK")
                    return False
                if columns:
                    assignments = ", ".join(f"{column} = ?" for column in columns)
                    conn.execute(
                        f"UPDATE entries SET {assignments} WHERE {where}", (*values, *where_args)
                    )
                self._touch(conn, key, row)
                return True

        return await self._run(work)

    async def _delete_entry(self, key: SessionKey, qa_id: str) -> bool:
        def work(conn: sqlite3.Connection) -> bool:
            with self._write(conn, key) as row:
                deleted = (
                    row is not None
                    and conn.execute(
                        "DELETE FROM entries WHERE user_key = ? AND session_id = ? AND id = ?",
                        (user_key_of(key.user_id), key.session_id, qa_id),
                    ).rowcount
                )
                if not deleted:
                    conn.execute("ROLLBACK")
                    return False
                self._touch(conn, key, row, qa=-1)
                return True

        return await self._run(work)

    # -- sessions --------------------------------------------------------------

    async def _delete_session(self, key: SessionKey) -> bool:
        def work(conn: sqlite3.Connection) -> bool:
            with self._write(conn, key) as row:
                if row is not None:
                    self._delete_rows(conn, user_key_of(key.user_id), key.session_id)
                return row is not None

        return await self._run(work)

    async def _prune(self) -> None:
        def work(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            for table in ("entries", "trace_steps", "graph_contexts", "sessions"):
                conn.execute(f"DELETE FROM {table}")
            conn.execute("COMMIT")

        await self._run(work)

    async def _list_sessions(
        self, user_id: str | None, limit: int, after: PageCursor | None
    ) -> list[SessionInfo]:
        sql = (
            "SELECT session_id, created_us, updated_us, qa_count FROM sessions"
            " WHERE user_key = ? AND (expires_us IS NULL OR expires_us > ?)"
        )
        args: list[Any] = [user_key_of(user_id), to_micros(now_utc())]
        if after is not None:
            at = to_micros(after.updated_at)
            sql += " AND (updated_us < ? OR (updated_us = ? AND session_id > ?))"
            args += [at, at, after.session_id]
        sql += " ORDER BY updated_us DESC, session_id ASC LIMIT ?"
        args.append(limit)

        def work(conn: sqlite3.Connection) -> list[Row]:
            return conn.execute(sql, args).fetchall()

        return [
            SessionInfo.model_construct(
                session_id=sid,
                user_id=user_id,
                created_at=from_micros(created),
                updated_at=from_micros(updated),
                qa_count=count,
            )
            for sid, created, updated, count in await self._run(work)
        ]

    # -- graph context and traces --------------------------------------------

    async def _get_graph_context(self, key: SessionKey) -> str | None:
        context: str | None = await self._scalar(
            f"SELECT context FROM graph_contexts WHERE user_key = ? AND session_id = ? AND {LIVE}",
            self._key_args(key),
        )
        return context

    async def _set_graph_context(self, key: SessionKey, context: str) -> None:
        def work(conn: sqlite3.Connection) -> None:
            with self._write(conn, key) as row:
                self._touch(conn, key, row, graph=True)
                conn.execute(
                    "INSERT OR REPLACE INTO graph_contexts VALUES (?, ?, ?)",
                    (user_key_of(key.user_id), key.session_id, context),
                )

        await self._run(work)

    async def _save_trace(self, key: SessionKey, step: SessionTraceStep) -> None:
        body = dumps(trace_to_record(step))

        def work(conn: sqlite3.Connection) -> None:
            with self._begin(conn):
                seq = self._next_seq(conn, key, qa=0, traces=1)
                conn.execute(
                    "INSERT INTO trace_steps VALUES (?, ?, ?, ?)",
                    (user_key_of(key.user_id), key.session_id, seq, body),
                )

        await self._run(work)

    async def _read_traces(self, key: SessionKey, last_n: int | None) -> list[SessionTraceStep]:
        sql = (
            f"SELECT body FROM trace_steps WHERE user_key = ? AND session_id = ? AND {LIVE}"
            " ORDER BY seq DESC LIMIT ?"
        )
        params = (*self._key_args(key), -1 if last_n is None else last_n)

        def work(conn: sqlite3.Connection) -> list[Row]:
            return conn.execute(sql, params).fetchall()

        rows = await self._run(work)
        return [trace_from_record(json.loads(body)) for (body,) in reversed(rows)]

    # -- export and import ---------------------------------------------------

    async def _session_keys(self, user_filter: str | AllUsers | None) -> AsyncIterator[SessionKey]:
        every_user = isinstance(user_filter, AllUsers)
        after = ("", "")
        while True:
            sql = "SELECT user_key, session_id FROM sessions WHERE (user_key, session_id) > (?, ?)"
            args: list[Any] = list(after)
            if not every_user:
                sql += " AND user_key = ?"
                args.append(user_key_of(user_filter))  # type: ignore[arg-type]
            sql += " ORDER BY user_key, session_id LIMIT 500"

            def work(conn: sqlite3.Connection, sql: str = sql, args: list[Any] = args) -> list[Row]:
                return conn.execute(sql, args).fetchall()

            rows = await self._run(work)
            for user_key, session_id in rows:
                yield SessionKey(session_id, user_id_of(user_key))
            if len(rows) < 500:
                return
            after = rows[-1]

    async def _read_session(self, key: SessionKey) -> SessionData | None:
        def work(conn: sqlite3.Connection) -> tuple[Row | None, list[Row], Any, list[Row]]:
            args = self._key_args(key)
            conn.execute("BEGIN")
            try:
                session = conn.execute(
                    "SELECT created_us, updated_us FROM sessions s WHERE user_key = ?"
                    " AND session_id = ? AND (s.expires_us IS NULL OR s.expires_us > ?)",
                    args[2:],
                ).fetchone()
                entries = conn.execute(
                    f"SELECT {ENTRY_COLUMNS} FROM entries WHERE user_key = ? AND session_id = ?"
                    " ORDER BY seq",
                    args[:2],
                ).fetchall()
                graph = conn.execute(
                    "SELECT context FROM graph_contexts WHERE user_key = ? AND session_id = ?",
                    args[:2],
                ).fetchone()
                traces = conn.execute(
                    "SELECT body FROM trace_steps WHERE user_key = ? AND session_id = ?"
                    " ORDER BY seq",
                    args[:2],
                ).fetchall()
            finally:
                conn.execute("COMMIT")
            return session, entries, graph, traces

        session, entries, graph, traces = await self._run(work)
        if session is None:
            return None
        return SessionData(
            session_id=key.session_id,
            user_id=key.user_id,
            created_at=from_micros(session[0]),
            updated_at=from_micros(session[1]),
            graph_context=None if graph is None else graph[0],
            entries=[entry_from_row(key, row) for row in entries],
            traces=[trace_from_record(json.loads(body)) for (body,) in traces],
        )

    async def _write_session(self, data: SessionData) -> None:
        key = SessionKey(data.session_id, data.user_id)
        uk = user_key_of(key.user_id)
        expires = self._expires_at(now_utc())
        entry_rows = [
            (
                uk,
                key.session_id,
                seq,
                e.id,
                to_micros(e.created_at),
                e.question,
                e.answer,
                e.context,
                e.feedback_text,
                e.feedback_score,
                dumps(e.used_graph_element_ids),
                dumps(e.memify_metadata),
                dumps(e.metadata),
            )
            for seq, e in enumerate(data.entries, start=1)
        ]
        first_trace = len(entry_rows) + 1
        trace_rows = [
            (uk, key.session_id, seq, dumps(trace_to_record(step)))
            for seq, step in enumerate(data.traces, start=first_trace)
        ]
        session_row = (
            uk,
            key.session_id,
            to_micros(data.created_at),
            to_micros(data.updated_at),
            None if expires is None else to_micros(expires),
            first_trace + len(trace_rows),
            len(entry_rows),
            len(trace_rows),
            int(data.graph_context is not None),
        )

        def work(conn: sqlite3.Connection) -> None:
            with self._write(conn, key):
                self._delete_rows(conn, uk, key.session_id)
                if not entry_rows and not trace_rows and data.graph_context is None:
                    return
                conn.execute("INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", session_row)
                conn.executemany(
                    f"INSERT INTO entries (user_key, session_id, seq, {ENTRY_COLUMNS})"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    entry_rows,
                )
                conn.executemany("INSERT INTO trace_steps VALUES (?, ?, ?, ?)", trace_rows)
                if data.graph_context is not None:
                    conn.execute(
                        "INSERT INTO graph_contexts VALUES (?, ?, ?)",
                        (uk, key.session_id, data.graph_context),
                    )

        await self._run(work)
