"""Every statement the SQLite store sends, named (the tables are in ``schema.py``).

Parameters are named: ``:user_key`` and ``:session_id`` pick a session,
``:now`` is the current time in microseconds, ``:qa_id`` an entry's id,
``:limit`` a row count (``-1``: no limit) and ``:after_...`` where a page
starts. An entry's own fields are ``:<field name>`` (see ``codec.py``). The
statements a call sends walk an index; ``tests/backends/test_sqlite.py``
explains these very strings to keep it so.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from sessionstore.backends.sqlite.codec import ENTRY_COLUMNS, column_of
from sessionstore.stored import ENTRY_FIELDS

__all__ = [
    "COUNT_ENTRIES",
    "DELETE_ENTRY",
    "DELETE_SESSION_ROWS",
    "ENTRY_EXISTS",
    "EXPIRED_SESSIONS",
    "INSERT_ENTRY",
    "INSERT_GRAPH_CONTEXT",
    "INSERT_SESSION",
    "INSERT_TRACE",
    "LATEST_ENTRIES",
    "LATEST_ENTRY_ID",
    "LATEST_TRACES",
    "LIST_SESSIONS",
    "LIST_SESSIONS_AFTER",
    "LIVE_GRAPH_CONTEXT",
    "NEXT_SEQ",
    "ONE_ENTRY",
    "PRUNE",
    "SESSION_FOR_WRITE",
    "SESSION_KEYS",
    "SESSION_KEYS_OF_USER",
    "SESSION_TABLES",
    "SESSION_TIMES",
    "SNAPSHOT_ENTRIES",
    "SNAPSHOT_GRAPH_CONTEXT",
    "SNAPSHOT_TRACES",
    "START_SESSION",
    "TOUCH_SESSION",
    "update_entry",
]

SESSION_TABLES: Final = ("entries", "trace_steps", "graph_contexts", "sessions")
"""Every table holding a session's rows; ``sessions`` last, as it says the session exists."""

_SESSION = "user_key = :user_key AND session_id = :session_id"
_UNEXPIRED = "(expires_us IS NULL OR expires_us > :now)"
_LIVE = (
    "EXISTS (SELECT 1 FROM sessions s WHERE s.user_key = :user_key"
    " AND s.session_id = :session_id AND (s.expires_us IS NULL OR s.expires_us > :now))"
)
_ENTRY_COLUMNS = ", ".join(ENTRY_COLUMNS)

# -- entries ----------------------------------------------------------------

INSERT_ENTRY: Final = (
    f"INSERT INTO entries (user_key, session_id, seq, {_ENTRY_COLUMNS})"
    f" VALUES (:user_key, :session_id, :seq, {', '.join(':' + f.name for f in ENTRY_FIELDS)})"
)
LATEST_ENTRIES: Final = (
    f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE {_SESSION} AND {_LIVE}"
    " ORDER BY seq DESC LIMIT :limit"
)
ONE_ENTRY: Final = (
    f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE {_SESSION} AND id = :qa_id AND {_LIVE}"
)
ENTRY_EXISTS: Final = f"SELECT 1 FROM entries WHERE {_SESSION} AND id = :qa_id"
LATEST_ENTRY_ID: Final = (
    f"SELECT id FROM entries WHERE {_SESSION} AND {_LIVE} ORDER BY seq DESC LIMIT 1"
)
COUNT_ENTRIES: Final = f"SELECT qa_count FROM sessions WHERE {_SESSION} AND {_UNEXPIRED}"
DELETE_ENTRY: Final = f"DELETE FROM entries WHERE {_SESSION} AND id = :qa_id"


def update_entry(fields: Iterable[str]) -> str:
    """Return the ``UPDATE`` setting each of ``fields`` to the parameter named after it."""
    assignments = ", ".join(f"{column_of(name)} = :{name}" for name in fields)
    return f"UPDATE entries SET {assignments} WHERE {_SESSION} AND id = :qa_id"


# -- sessions -----------------------------------------------------------------

LIST_SESSIONS: Final = (
    "SELECT session_id, created_us, updated_us, qa_count FROM sessions"
    f" WHERE user_key = :user_key AND {_UNEXPIRED}"
    " ORDER BY updated_us DESC, session_id ASC LIMIT :limit"
)
LIST_SESSIONS_AFTER: Final = (
    "SELECT session_id, created_us, updated_us, qa_count FROM sessions"
    f" WHERE user_key = :user_key AND {_UNEXPIRED}"
    " AND (updated_us < :after_us OR (updated_us = :after_us AND session_id > :after_id))"
    " ORDER BY updated_us DESC, session_id ASC LIMIT :limit"
)
SESSION_KEYS: Final = (
    "SELECT user_key, session_id FROM sessions"
    " WHERE (user_key, session_id) > (:after_user_key, :after_session_id)"
    " ORDER BY user_key, session_id LIMIT :limit"
)
SESSION_KEYS_OF_USER: Final = (
    "SELECT user_key, session_id FROM sessions"
    " WHERE user_key = :user_key AND session_id > :after_session_id"
    " ORDER BY session_id LIMIT :limit"
)

# The write transactions' bookkeeping of the session row (``transactions.py``).
SESSION_FOR_WRITE: Final = (
    f"SELECT next_seq, qa_count, trace_count, has_graph, expires_us FROM sessions WHERE {_SESSION}"
)
NEXT_SEQ: Final = (
    "UPDATE sessions SET next_seq = next_seq + 1, qa_count = qa_count + :qa,"
    " trace_count = trace_count + :traces, updated_us = :now, expires_us = :expires_us"
    f" WHERE {_SESSION} AND {_UNEXPIRED} RETURNING next_seq - 1 AS seq"
)
TOUCH_SESSION: Final = (
    "UPDATE sessions SET next_seq = next_seq + 1, qa_count = qa_count + :qa,"
    " trace_count = trace_count + :traces, has_graph = :has_graph, updated_us = :now,"
    f" expires_us = :expires_us WHERE {_SESSION}"
)
INSERT_SESSION: Final = (
    "INSERT INTO sessions (user_key, session_id, created_us, updated_us, expires_us,"
    " next_seq, qa_count, trace_count, has_graph) VALUES (:user_key, :session_id,"
    " :created_us, :updated_us, :expires_us, :next_seq, :qa, :traces, :has_graph)"
)
START_SESSION: Final = (
    "INSERT INTO sessions (user_key, session_id, created_us, updated_us, expires_us,"
    " next_seq, qa_count, trace_count, has_graph) VALUES (:user_key, :session_id,"
    " :now, :now, :expires_us, 2, :qa, :traces, :has_graph)"
)
"""The row of a session whose first write (seq 1) is being made."""
EXPIRED_SESSIONS: Final = (
    "SELECT user_key, session_id FROM sessions WHERE expires_us <= :now LIMIT :limit"
)
PRUNE: Final = tuple(f"DELETE FROM {table}" for table in SESSION_TABLES)
"""Empty every table: the whole store is this store's namespace."""
DELETE_SESSION_ROWS: Final = tuple(
    f"DELETE FROM {table} WHERE {_SESSION}" for table in SESSION_TABLES
)
"""Delete one session's rows from every table."""


# -- graph context and traces ---------------------------------------------------

LIVE_GRAPH_CONTEXT: Final = f"SELECT context FROM graph_contexts WHERE {_SESSION} AND {_LIVE}"
INSERT_GRAPH_CONTEXT: Final = (
    "INSERT OR REPLACE INTO graph_contexts (user_key, session_id, context)"
    " VALUES (:user_key, :session_id, :context)"
)
INSERT_TRACE: Final = (
    "INSERT INTO trace_steps (user_key, session_id, seq, body)"
    " VALUES (:user_key, :session_id, :seq, :body)"
)
LATEST_TRACES: Final = (
    f"SELECT body FROM trace_steps WHERE {_SESSION} AND {_LIVE} ORDER BY seq DESC LIMIT :limit"
)

# -- one session whole, for export (one read transaction) ------------------------

SESSION_TIMES: Final = (
    f"SELECT created_us, updated_us FROM sessions WHERE {_SESSION} AND {_UNEXPIRED}"
)
SNAPSHOT_ENTRIES: Final = f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE {_SESSION} ORDER BY seq"
SNAPSHOT_GRAPH_CONTEXT: Final = f"SELECT context FROM graph_contexts WHERE {_SESSION}"
SNAPSHOT_TRACES: Final = f"SELECT body FROM trace_steps WHERE {_SESSION} ORDER BY seq"
