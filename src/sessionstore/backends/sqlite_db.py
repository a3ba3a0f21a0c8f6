"""The SQLite connection, its worker thread and its write transactions.

``SQLiteStore`` (in ``sqlite.py``, where the design is described) builds the
contract's steps on this: the worker thread that owns the connection, the
translation of sqlite3 errors, and the write transactions that keep the
``sessions`` row current.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self, TypeVar

from sessionstore.backends.sqlite_schema import migrate
from sessionstore.errors import InvalidParameterError, StoreError, StoreUnavailableError
from sessionstore.models import SessionQAEntry, UsedGraphElementIds
from sessionstore.records import from_micros, now_utc, to_micros
from sessionstore.store import SessionKey, SessionStore
from sessionstore.urls import split_options

__all__ = [
    "ENTRY_COLUMNS",
    "LIVE",
    "Row",
    "SQLiteConnection",
    "dumps",
    "entry_from_row",
    "user_id_of",
    "user_key_of",
]

T = TypeVar("T")
Row = tuple[Any, ...]

ENTRY_COLUMNS = (
    "id, created_us, question, answer, context, feedback_text, feedback_score, "
    "graph_ids, memify, metadata"
)
LIVE = (
    "EXISTS (SELECT 1 FROM sessions s WHERE s.user_key = ? AND s.session_id = ?"
    " AND (s.expires_us IS NULL OR s.expires_us > ?))"
)
_PURGE_EVERY_S = 5.0
_PURGE_BATCH = 100


def dumps(value: Any) -> str | None:
    """Return ``value`` as compact JSON text, ``None`` as SQL NULL."""
    if value is None:
        return None
    if isinstance(value, UsedGraphElementIds):
        value = {"node_ids": value.node_ids, "edge_ids": value.edge_ids}
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def user_key_of(user_id: str | None) -> str:
    """Return the ``user_key`` column value: ``''`` for the anonymous user."""
    return "" if user_id is None else user_id


def user_id_of(user_key: str) -> str | None:
    """Invert :func:`user_key_of`."""
    return None if user_key == "" else user_key


def entry_from_row(key: SessionKey, row: Row) -> SessionQAEntry:
    """Build an entry from a row selected with :data:`ENTRY_COLUMNS`."""
    graph = None if row[7] is None else UsedGraphElementIds.model_construct(**json.loads(row[7]))
    return SessionQAEntry.model_construct(
        id=row[0],
        session_id=key.session_id,
        user_id=key.user_id,
        created_at=from_micros(row[1]),
        question=row[2],
        answer=row[3],
        context=row[4],
        feedback_text=row[5],
        feedback_score=row[6],
        used_graph_element_ids=graph,
        memify_metadata=None if row[8] is None else json.loads(row[8]),
        metadata=None if row[9] is None else json.loads(row[9]),
    )


def _path_from_url(url: str) -> Path:
    rest = url.split("://", 1)[1]
    if not rest.startswith("/") or rest == "/":
        raise InvalidParameterError(
            f"SQLite URL must be sqlite:///relative/path.db or sqlite:////absolute/path.db, "
            f"got {url!r}"
        )
    return Path(rest[1:])


class SQLiteConnection(SessionStore):
    """The connection side of :class:`~sessionstore.backends.sqlite.SQLiteStore`.

    Owns the worker thread and the connection, translates sqlite3 errors
    once, and runs write transactions that keep the ``sessions`` row (order,
    counts, expiry) current.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout: float = 5.0,
        synchronous: str = "normal",
        **options: Any,
    ) -> None:
        super().__init__(**options)
        if synchronous not in {"normal", "full"}:
            raise InvalidParameterError(
                f"synchronous must be 'normal' or 'full', got {synchronous!r}"
            )
        if isinstance(busy_timeout, bool) or not isinstance(busy_timeout, (int, float)):
            raise InvalidParameterError(f"busy_timeout must be seconds, got {busy_timeout!r}")
        if busy_timeout < 0:
            raise InvalidParameterError(f"busy_timeout must be >= 0, got {busy_timeout}")
        self.path = Path(path)
        self._busy_timeout = float(busy_timeout)
        self._synchronous = synchronous
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._next_purge = 0.0

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

    # -- the worker thread -------------------------------------------------

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` on the connection in the worker thread, translating errors."""
        assert self._executor is not None
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call, work)

    def _call(self, work: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn
        if conn is None:
            raise StoreError(f"{self.describe()} is not open")
        try:
            return work(conn)
        except sqlite3.OperationalError as exc:
            if conn.in_transaction:
                conn.rollback()
            if "locked" in str(exc) or "busy" in str(exc):
                raise StoreUnavailableError(
                    f"{self.path} stayed locked by another writer for over "
                    f"{self._busy_timeout}s; raise busy_timeout or find the stuck process"
                ) from exc
            raise StoreError(f"SQLite failed on {self.path}: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            if conn.in_transaction:
                conn.rollback()
            raise StoreError(
                f"{self.path} is not a usable sessionstore SQLite database ({exc}); "
                "move it away or point the store at another file"
            ) from exc

    async def _open(self) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="sessionstore-sqlite")
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._connect)
        except BaseException:
            self._executor.shutdown(wait=False)
            raise

    def _connect(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open SQLite database {self.path}: {exc}") from exc
        self._conn = conn
        try:
            self._call(self._prepare)
        except BaseException:
            conn.close()
            self._conn = None
            raise

    def _prepare(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout * 1000)}")
        # Switching a new file to WAL can report "locked" at once, without the
        # busy handler, while another process does the same: retry it.
        deadline = time.monotonic() + self._busy_timeout
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        conn.execute(f"PRAGMA synchronous={self._synchronous.upper()}")
        migrate(conn, str(self.path))

    async def _close(self) -> None:
        executor = self._executor
        if executor is None:
            return
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.get_running_loop().run_in_executor(executor, conn.close)
        executor.shutdown(wait=True)
        self._executor = None

    # -- transactions --------------------------------------------------------

    @contextmanager
    def _begin(self, conn: sqlite3.Connection) -> Iterator[None]:
        """Run the block in one ``BEGIN IMMEDIATE`` transaction.

        Now and then a bounded batch of expired sessions is purged first,
        through the expiry index.
        """
        conn.execute("BEGIN IMMEDIATE")
        try:
            if time.monotonic() >= self._next_purge:
                self._purge_expired(conn, to_micros(now_utc()))
            yield
            if conn.in_transaction:
                conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @contextmanager
    def _write(self, conn: sqlite3.Connection, key: SessionKey) -> Iterator[Row | None]:
        """Open a write transaction and yield the live session row (or ``None``).

        An expired session found here is deleted first, so the write starts a
        fresh session.
        """
        now = to_micros(now_utc())
        with self._begin(conn):
            row = conn.execute(
                "SELECT next_seq, qa_count, trace_count, has_graph, expires_us FROM sessions"
                " WHERE user_key = ? AND session_id = ?",
                (user_key_of(key.user_id), key.session_id),
            ).fetchone()
            if row is not None and row[4] is not None and row[4] <= now:
                self._delete_rows(conn, user_key_of(key.user_id), key.session_id)
                row = None
            yield row

    def _next_seq(self, conn: sqlite3.Connection, key: SessionKey, *, qa: int, traces: int) -> int:
        """Take the sequence number for one more entry or trace step.

        Inside a write transaction. The common case is one ``UPDATE ...
        RETURNING`` on a live session; a new or expired session is (re)started.
        """
        now = now_utc()
        now_us = to_micros(now)
        expires = self._expires_at(now)
        expires_us = None if expires is None else to_micros(expires)
        uk = user_key_of(key.user_id)
        row = conn.execute(
            "UPDATE sessions SET next_seq = next_seq + 1, qa_count = qa_count + ?,"
            " trace_count = trace_count + ?, updated_us = ?, expires_us = ?"
            " WHERE user_key = ? AND session_id = ? AND (expires_us IS NULL OR expires_us > ?)"
            " RETURNING next_seq - 1",
            (qa, traces, now_us, expires_us, uk, key.session_id, now_us),
        ).fetchone()
        if row is not None:
            return int(row[0])
        self._delete_rows(conn, uk, key.session_id)  # an expired session ends here
        conn.execute(
            "INSERT INTO sessions VALUES (?, ?, ?, ?, ?, 2, ?, ?, 0)",
            (uk, key.session_id, now_us, now_us, expires_us, qa, traces),
        )
        return 1

    def _purge_expired(self, conn: sqlite3.Connection, now: int) -> None:
        self._next_purge = time.monotonic() + _PURGE_EVERY_S
        expired = conn.execute(
            "SELECT user_key, session_id FROM sessions WHERE expires_us <= ? LIMIT ?",
            (now, _PURGE_BATCH),
        ).fetchall()
        for user_key, session_id in expired:
            self._delete_rows(conn, user_key, session_id)

    @staticmethod
    def _delete_rows(conn: sqlite3.Connection, user_key: str, session_id: str) -> None:
        for table in ("entries", "trace_steps", "graph_contexts", "sessions"):
            conn.execute(
                f"DELETE FROM {table} WHERE user_key = ? AND session_id = ?",
                (user_key, session_id),
            )

    def _touch(
        self,
        conn: sqlite3.Connection,
        key: SessionKey,
        row: Row | None,
        *,
        qa: int = 0,
        traces: int = 0,
        graph: bool | None = None,
    ) -> int:
        """Create or update the session row for a write; return the seq it took."""
        now = now_utc()
        now_us = to_micros(now)
        expires = self._expires_at(now)
        expires_us = None if expires is None else to_micros(expires)
        uk = user_key_of(key.user_id)
        if row is None:
            conn.execute(
                "INSERT INTO sessions VALUES (?, ?, ?, ?, ?, 2, ?, ?, ?)",
                (uk, key.session_id, now_us, now_us, expires_us, qa, traces, int(bool(graph))),
            )
            return 1
        has_graph = row[3] if graph is None else int(graph)
        if row[1] + qa == 0 and row[2] + traces == 0 and not has_graph:
            self._delete_rows(conn, uk, key.session_id)
            return int(row[0])
        conn.execute(
            "UPDATE sessions SET next_seq = next_seq + 1, qa_count = qa_count + ?,"
            " trace_count = trace_count + ?, has_graph = ?, updated_us = ?, expires_us = ?"
            " WHERE user_key = ? AND session_id = ?",
            (qa, traces, has_graph, now_us, expires_us, uk, key.session_id),
        )
        return int(row[0])

    def _key_args(self, key: SessionKey) -> tuple[str, str, str, str, int]:
        """Arguments for ``WHERE user_key = ? AND session_id = ? AND <LIVE>``."""
        uk = user_key_of(key.user_id)
        return (uk, key.session_id, uk, key.session_id, to_micros(now_utc()))
