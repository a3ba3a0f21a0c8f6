"""The SQLite store's write transactions, which keep each session's row current.

The ``sessions`` row holds a session's order (``next_seq``, shared by entries
and trace steps), its counts and its expiry. Every write is one ``BEGIN
IMMEDIATE`` transaction: the write lock is taken before the first read, so a
read-modify-write never interleaves with another process's. A write that
finds its session expired deletes it first and starts afresh, and now and
then a write purges a bounded batch of expired sessions through the expiry
index.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Final

from sessionstore.backends.sqlite import statements as sql
from sessionstore.backends.sqlite.codec import key_params
from sessionstore.clock import now_utc, to_micros
from sessionstore.keys import SessionKey
from sessionstore.observe import logger_for

__all__ = ["Transactions", "delete_session_rows", "session_params"]

_log = logger_for(__name__)

_PURGE_EVERY_S: Final = 5.0
_PURGE_BATCH: Final = 100


def session_params(key: SessionKey) -> dict[str, Any]:
    """Return the parameters naming ``key``'s session and the current time."""
    params = key_params(key)
    params["now"] = to_micros(now_utc())
    return params


def delete_session_rows(conn: sqlite3.Connection, params: dict[str, Any]) -> None:
    """Delete every row of the session ``params`` names, from every table."""
    for statement in sql.DELETE_SESSION_ROWS:
        conn.execute(statement, params)


class Transactions:
    """Write transactions for one store.

    Args:
        expires_at: the store's rule for when a session written at a given
            time expires (``None``: never).

    """

    def __init__(self, expires_at: Callable[[datetime], datetime | None]) -> None:
        self._expires_at = expires_at
        self._next_purge = 0.0

    def _stamp(self, key: SessionKey) -> dict[str, Any]:
        """Return :func:`session_params` plus the expiry of a write made now."""
        now = now_utc()
        expires = self._expires_at(now)
        params = key_params(key)
        params.update(
            now=to_micros(now), expires_us=None if expires is None else to_micros(expires)
        )
        return params

    @contextmanager
    def begin(self, conn: sqlite3.Connection) -> Iterator[None]:
        """Run the block in one ``BEGIN IMMEDIATE`` transaction, committed at its end.

        The block may end the transaction itself with ``ROLLBACK``.
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
    def write(self, conn: sqlite3.Connection, key: SessionKey) -> Iterator[sqlite3.Row | None]:
        """Open a write transaction and yield the live session row (or ``None``).

        The row holds ``next_seq``, ``qa_count``, ``trace_count``,
        ``has_graph``, ``item_count``, ``state_revision``, ``state_bytes`` and
        ``expires_us``. An expired session found here is
        deleted first, so the write starts a fresh session.
        """
        params = session_params(key)
        with self.begin(conn):
            row: sqlite3.Row | None = conn.execute(sql.SESSION_FOR_WRITE, params).fetchone()
            if (
                row is not None
                and row["expires_us"] is not None
                and row["expires_us"] <= params["now"]
            ):
                delete_session_rows(conn, params)
                row = None
            yield row

    def next_seq(self, conn: sqlite3.Connection, key: SessionKey, *, qa: int, traces: int) -> int:
        """Take the sequence number for one more entry (``qa=1``) or trace step (``traces=1``).

        Inside :meth:`begin`. The common case is one ``UPDATE ... RETURNING``
        on a live session; a new or expired session is (re)started.
        """
        params = self._stamp(key)
        params.update(qa=qa, traces=traces)
        row = conn.execute(sql.NEXT_SEQ, params).fetchone()
        if row is not None:
            return int(row["seq"])
        delete_session_rows(conn, params)  # an expired session ends here
        params.update(has_graph=0, seqs=1, items=0, state_revision=0, state_bytes=0)
        conn.execute(sql.START_SESSION, params)
        return 1

    def touch(
        self,
        conn: sqlite3.Connection,
        key: SessionKey,
        row: sqlite3.Row | None,
        *,
        qa: int = 0,
        traces: int = 0,
        items: int = 0,
        seqs: int = 0,
        graph: bool | None = None,
        state: tuple[int, int] | None = None,
    ) -> None:
        """Record a write in the session row :meth:`write` yielded.

        ``qa``, ``traces`` and ``items`` change the counts, ``seqs`` sequence
        numbers are taken (from the row's ``next_seq``, 1 for a new session),
        and ``state`` is the state's new ``(revision, bytes)``. Creates the
        row for a new session, and deletes the session when the write left it
        with no entry, trace step, graph context, item or state revision.
        """
        params = self._stamp(key)
        params.update(qa=qa, traces=traces, items=items, seqs=seqs)
        if state is None:
            state = (0, 0) if row is None else (row["state_revision"], row["state_bytes"])
        params.update(state_revision=state[0], state_bytes=state[1])
        if row is None:
            params["has_graph"] = int(bool(graph))
            conn.execute(sql.START_SESSION, params)
            return
        has_graph = row["has_graph"] if graph is None else int(graph)
        if (
            row["qa_count"] + qa == 0
            and row["trace_count"] + traces == 0
            and row["item_count"] + items == 0
            and not has_graph
            and not state[0]
        ):
            delete_session_rows(conn, params)
            return
        params["has_graph"] = has_graph
        conn.execute(sql.TOUCH_SESSION, params)

    def _purge_expired(self, conn: sqlite3.Connection, now: int) -> None:
        self._next_purge = time.monotonic() + _PURGE_EVERY_S
        expired = conn.execute(sql.EXPIRED_SESSIONS, {"now": now, "limit": _PURGE_BATCH}).fetchall()
        for row in expired:
            delete_session_rows(
                conn, {"user_key": row["user_key"], "session_id": row["session_id"]}
            )
        level = logging.INFO if expired else logging.DEBUG
        _log.log(level, "expiry purge removed %d expired sessions", len(expired))
