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
from dataclasses import dataclass
from typing import Final

from sessionstore.backends.sqlite.codec import ENTRY_COLUMNS, column_of
from sessionstore.stored import ENTRY_FIELDS

__all__ = [
    "CLEAR_ITEMS",
    "COUNT_ENTRIES",
    "COUNT_ITEMS",
    "DELETE_ENTRY",
    "DELETE_ITEM",
    "DELETE_ITEM_AT",
    "DELETE_SESSION_ROWS",
    "ENTRY_EXISTS",
    "EXPIRED_SESSIONS",
    "INSERT_ENTRY",
    "INSERT_GRAPH_CONTEXT",
    "INSERT_ITEM",
    "INSERT_SESSION",
    "INSERT_TRACE",
    "LATEST_ENTRIES",
    "LATEST_ENTRY_ID",
    "LATEST_ITEMS",
    "LATEST_TRACES",
    "LIST_SESSIONS",
    "LIST_SESSIONS_AFTER",
    "LIVE_GRAPH_CONTEXT",
    "LIVE_STATE",
    "NEWEST_ITEM",
    "NEXT_SEQ",
    "ONE_ENTRY",
    "PRUNE",
    "SCOPED_FOR_WRITE",
    "SCOPED_STATE",
    "SCOPED_STATE_VALUES",
    "SCOPED_TABLES",
    "SESSION_FOR_WRITE",
    "SESSION_KEYS",
    "SESSION_KEYS_OF_USER",
    "SESSION_STATE_VALUES",
    "SESSION_TABLES",
    "SESSION_TIMES",
    "SNAPSHOT_ENTRIES",
    "SNAPSHOT_GRAPH_CONTEXT",
    "SNAPSHOT_ITEMS",
    "SNAPSHOT_TRACES",
    "START_SESSION",
    "STORE_SCOPED",
    "TOUCH_SESSION",
    "TRACE_ID_TAKEN",
    "StateStatements",
    "update_entry",
]

SESSION_TABLES: Final = (
    "entries",
    "trace_steps",
    "graph_contexts",
    "items",
    "state_values",
    "sessions",
)
"""Every table holding a session's rows; ``sessions`` last, as it says the session exists."""
SCOPED_TABLES: Final = ("scoped_values", "scoped_states")
"""The tables of the states that belong to no session (a user's, an app's)."""

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
    "SELECT session_id, created_us, updated_us, qa_count, item_count FROM sessions"
    f" WHERE user_key = :user_key AND {_UNEXPIRED}"
    " ORDER BY updated_us DESC, session_id ASC LIMIT :limit"
)
LIST_SESSIONS_AFTER: Final = (
    "SELECT session_id, created_us, updated_us, qa_count, item_count FROM sessions"
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
    "SELECT next_seq, qa_count, trace_count, has_graph, item_count, state_revision,"
    f" state_bytes, expires_us FROM sessions WHERE {_SESSION}"
)
NEXT_SEQ: Final = (
    "UPDATE sessions SET next_seq = next_seq + 1, qa_count = qa_count + :qa,"
    " trace_count = trace_count + :traces, updated_us = :now, expires_us = :expires_us"
    f" WHERE {_SESSION} AND {_UNEXPIRED} RETURNING next_seq - 1 AS seq"
)
TOUCH_SESSION: Final = (
    "UPDATE sessions SET next_seq = next_seq + :seqs, qa_count = qa_count + :qa,"
    " trace_count = trace_count + :traces, has_graph = :has_graph,"
    " item_count = item_count + :items, state_revision = :state_revision,"
    " state_bytes = :state_bytes, updated_us = :now,"
    f" expires_us = :expires_us WHERE {_SESSION}"
)
INSERT_SESSION: Final = (
    "INSERT INTO sessions (user_key, session_id, created_us, updated_us, expires_us,"
    " next_seq, qa_count, trace_count, has_graph, item_count, state_revision, state_bytes)"
    " VALUES (:user_key, :session_id, :created_us, :updated_us, :expires_us, :next_seq,"
    " :qa, :traces, :has_graph, :items, :state_revision, :state_bytes)"
)
START_SESSION: Final = (
    "INSERT INTO sessions (user_key, session_id, created_us, updated_us, expires_us,"
    " next_seq, qa_count, trace_count, has_graph, item_count, state_revision, state_bytes)"
    " VALUES (:user_key, :session_id, :now, :now, :expires_us, 1 + :seqs, :qa, :traces,"
    " :has_graph, :items, :state_revision, :state_bytes)"
)
"""The row of a session whose first write (taking seqs 1 to ``:seqs``) is being made."""
EXPIRED_SESSIONS: Final = (
    "SELECT user_key, session_id FROM sessions WHERE expires_us <= :now LIMIT :limit"
)
PRUNE: Final = tuple(f"DELETE FROM {table}" for table in (*SESSION_TABLES, *SCOPED_TABLES))
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
    "INSERT INTO trace_steps (user_key, session_id, seq, trace_id, body)"
    " VALUES (:user_key, :session_id, :seq, :trace_id, :body)"
)
TRACE_ID_TAKEN: Final = f"SELECT 1 FROM trace_steps WHERE {_SESSION} AND trace_id = :trace_id"
"""Whether the session holds the trace id (its UNIQUE index refuses a second one anyway)."""
LATEST_TRACES: Final = (
    f"SELECT body FROM trace_steps WHERE {_SESSION} AND {_LIVE} ORDER BY seq DESC LIMIT :limit"
)

# -- one session whole, for export (one read transaction) ------------------------

SESSION_TIMES: Final = (
    f"SELECT created_us, updated_us, state_revision FROM sessions WHERE {_SESSION} AND {_UNEXPIRED}"
)
SNAPSHOT_ENTRIES: Final = f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE {_SESSION} ORDER BY seq"
SNAPSHOT_GRAPH_CONTEXT: Final = f"SELECT context FROM graph_contexts WHERE {_SESSION}"
SNAPSHOT_TRACES: Final = f"SELECT body FROM trace_steps WHERE {_SESSION} ORDER BY seq"


# -- the item log and state (``item_log.py``, ``state_rows.py``) ------------------

INSERT_ITEM: Final = (
    "INSERT INTO items (user_key, session_id, seq, id, created_us, data)"
    " VALUES (:user_key, :session_id, :seq, :id, :created_us, :data)"
)
LATEST_ITEMS: Final = (
    f"SELECT id, created_us, data FROM items WHERE {_SESSION} AND {_LIVE}"
    " ORDER BY seq DESC LIMIT :limit"
)
COUNT_ITEMS: Final = f"SELECT item_count FROM sessions WHERE {_SESSION} AND {_UNEXPIRED}"
# Inside a write transaction, which has checked that the session is live.
NEWEST_ITEM: Final = (
    f"SELECT seq, id, created_us, data FROM items WHERE {_SESSION} ORDER BY seq DESC LIMIT 1"
)
DELETE_ITEM_AT: Final = f"DELETE FROM items WHERE {_SESSION} AND seq = :seq"
DELETE_ITEM: Final = f"DELETE FROM items WHERE {_SESSION} AND id = :item_id"
CLEAR_ITEMS: Final = f"DELETE FROM items WHERE {_SESSION}"
SNAPSHOT_ITEMS: Final = f"SELECT id, created_us, data FROM items WHERE {_SESSION} ORDER BY seq"

LIVE_STATE: Final = (
    "SELECT s.state_revision AS revision, v.key AS key, v.value AS value FROM sessions s"
    " LEFT JOIN state_values v ON v.user_key = s.user_key AND v.session_id = s.session_id"
    " WHERE s.user_key = :user_key AND s.session_id = :session_id"
    " AND (s.expires_us IS NULL OR s.expires_us > :now)"
)
"""A live session's revision and values: one row per key, or one row of ``NULL`` key."""
SCOPED_STATE: Final = (
    "SELECT s.revision AS revision, v.key AS key, v.value AS value FROM scoped_states s"
    " LEFT JOIN scoped_values v ON v.kind = s.kind AND v.name = s.name"
    " WHERE s.kind = :kind AND s.name = :name"
)
"""A user's or an app's revision and values, as :data:`LIVE_STATE`."""
SCOPED_FOR_WRITE: Final = (
    "SELECT revision, bytes FROM scoped_states WHERE kind = :kind AND name = :name"
)
STORE_SCOPED: Final = (
    "INSERT OR REPLACE INTO scoped_states (kind, name, revision, bytes)"
    " VALUES (:kind, :name, :revision, :bytes)"
)


@dataclass(frozen=True, slots=True)
class StateStatements:
    """What reads and changes the values of one state, a session's or a scoped one.

    Each is named by its owner's columns as parameters (``:user_key`` and
    ``:session_id``, or ``:kind`` and ``:name``); ``:key`` and ``:value``
    are one key and its JSON text.
    """

    value: str
    set_value: str
    delete_value: str
    all_values: str


def _state_statements(table: str, owner: tuple[str, str]) -> StateStatements:
    where = " AND ".join(f"{column} = :{column}" for column in owner)
    columns = ", ".join(owner)
    names = ", ".join(f":{column}" for column in owner)
    return StateStatements(
        value=f"SELECT value FROM {table} WHERE {where} AND key = :key",
        set_value=(
            f"INSERT OR REPLACE INTO {table} ({columns}, key, value) VALUES ({names}, :key, :value)"
        ),
        delete_value=f"DELETE FROM {table} WHERE {where} AND key = :key",
        all_values=f"SELECT key, value FROM {table} WHERE {where}",
    )


SESSION_STATE_VALUES: Final = _state_statements("state_values", ("user_key", "session_id"))
SCOPED_STATE_VALUES: Final = _state_statements("scoped_values", ("kind", "name"))
