"""The SQLite schema and its in-place migrations.

``MIGRATIONS[i]`` takes a database from version ``i`` to ``i + 1``. Opening a
store runs the missing ones inside one ``BEGIN IMMEDIATE`` transaction, so
several processes opening a new file at once migrate it exactly once.
"""

from __future__ import annotations

import sqlite3

from sessionstore.backends.sqlite.codec import trace_id_of_body
from sessionstore.errors import StoreError
from sessionstore.observe import logger_for

__all__ = ["ITEMS_AND_STATE", "MIGRATIONS", "SCHEMA_VERSION", "TRACE_IDS", "migrate"]

_log = logger_for(__name__)

_V1 = """
CREATE TABLE sessions (
    user_key    TEXT    NOT NULL,  -- '' is the anonymous user (real ids are non-empty)
    session_id  TEXT    NOT NULL,
    created_us  INTEGER NOT NULL,  -- microseconds since the Unix epoch, UTC
    updated_us  INTEGER NOT NULL,
    expires_us  INTEGER,
    next_seq    INTEGER NOT NULL,  -- shared by entries and trace steps, gaps are fine
    qa_count    INTEGER NOT NULL,
    trace_count INTEGER NOT NULL,
    has_graph   INTEGER NOT NULL,
    PRIMARY KEY (user_key, session_id)
) WITHOUT ROWID;
CREATE INDEX sessions_by_recent ON sessions (user_key, updated_us DESC, session_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_us) WHERE expires_us IS NOT NULL;

CREATE TABLE entries (
    user_key       TEXT    NOT NULL,
    session_id     TEXT    NOT NULL,
    seq            INTEGER NOT NULL,
    id             TEXT    NOT NULL,
    created_us     INTEGER NOT NULL,
    question       TEXT    NOT NULL,
    answer         TEXT    NOT NULL,
    context        TEXT,
    feedback_text  TEXT,
    feedback_score INTEGER,
    graph_ids      TEXT,  -- JSON
    memify         TEXT,  -- JSON
    metadata       TEXT,  -- JSON
    PRIMARY KEY (user_key, session_id, seq)
);
CREATE UNIQUE INDEX entries_by_id ON entries (user_key, session_id, id);

CREATE TABLE graph_contexts (
    user_key   TEXT NOT NULL,
    session_id TEXT NOT NULL,
    context    TEXT NOT NULL,
    PRIMARY KEY (user_key, session_id)
);

CREATE TABLE trace_steps (
    user_key   TEXT    NOT NULL,
    session_id TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    body       TEXT    NOT NULL,  -- JSON of the step
    PRIMARY KEY (user_key, session_id, seq)
);
"""

# The item log and versioned state (issue #14). Items share the session's
# ``next_seq`` with entries and trace steps; the session row counts them and
# holds the state's revision and size, so appending a turn reads no state row
# it does not change. A state is one row per key; a user's or an app's state
# (``scoped_*``) belongs to no session.
ITEMS_AND_STATE = """
ALTER TABLE sessions ADD COLUMN item_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN state_revision INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN state_bytes INTEGER NOT NULL DEFAULT 0;

CREATE TABLE items (
    user_key   TEXT    NOT NULL,
    session_id TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    id         TEXT    NOT NULL,
    created_us INTEGER NOT NULL,
    data       TEXT    NOT NULL,  -- the item's JSON text, as the store made it
    PRIMARY KEY (user_key, session_id, seq)
);
CREATE UNIQUE INDEX items_by_id ON items (user_key, session_id, id);

CREATE TABLE state_values (
    user_key   TEXT NOT NULL,
    session_id TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,  -- JSON text
    PRIMARY KEY (user_key, session_id, key)
) WITHOUT ROWID;

CREATE TABLE scoped_states (
    kind     TEXT    NOT NULL,  -- 'user' or 'app'
    name     TEXT    NOT NULL,  -- the user id ('' is the anonymous user) or the app name
    revision INTEGER NOT NULL,
    bytes    INTEGER NOT NULL,  -- items.state_size of its values
    PRIMARY KEY (kind, name)
) WITHOUT ROWID;

CREATE TABLE scoped_values (
    kind  TEXT NOT NULL,
    name  TEXT NOT NULL,
    key   TEXT NOT NULL,
    value TEXT NOT NULL,  -- JSON text
    PRIMARY KEY (kind, name, key)
) WITHOUT ROWID;
"""

# A trace id is unique within its session (issue #12): the id gets a column
# and a UNIQUE index, filled from each step's JSON body by the function
# ``sessionstore_trace_id`` that ``migrate`` registers (SQLite's own
# json_extract would cut an id at a NUL). A database written before may hold
# a session with one id twice: every step stays as it is (its body keeps its
# id, so reads and exports are unchanged), but only the earliest of them gets
# the id in the column; the later ones hold NULL, which the index lets repeat.
TRACE_IDS = """
ALTER TABLE trace_steps ADD COLUMN trace_id TEXT;
UPDATE trace_steps SET trace_id = sessionstore_trace_id(body);
UPDATE trace_steps SET trace_id = NULL WHERE rowid IN (
    SELECT rowid FROM (
        SELECT rowid, row_number() OVER (
            PARTITION BY user_key, session_id, trace_id ORDER BY seq
        ) AS nth
        FROM trace_steps WHERE trace_id IS NOT NULL
    ) WHERE nth > 1
);
CREATE UNIQUE INDEX trace_steps_by_id ON trace_steps (user_key, session_id, trace_id);
"""

MIGRATIONS: list[str] = [_V1, TRACE_IDS, ITEMS_AND_STATE]
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection, path: str) -> None:
    """Bring the database at ``path`` to :data:`SCHEMA_VERSION`.

    Raises:
        StoreError: the database was made by a newer sessionstore.

    """
    # Up to date is the common case: check it without taking the write lock,
    # so opening a store never waits for another process's writes.
    if _version(conn, path) == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS sessionstore_schema (version INTEGER NOT NULL)")
        version = _version(conn, path)
        conn.create_function("sessionstore_trace_id", 1, trace_id_of_body, deterministic=True)
        for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
            _log.info("migrating %s from schema version %d to %d", path, number - 1, number)
            for statement in step.split(";"):
                if statement.strip():
                    conn.execute(statement)
        if version < SCHEMA_VERSION:
            conn.execute("DELETE FROM sessionstore_schema")
            conn.execute("INSERT INTO sessionstore_schema VALUES (?)", (SCHEMA_VERSION,))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _version(conn: sqlite3.Connection, path: str) -> int:
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sessionstore_schema'"
    ).fetchone()
    if not exists:
        return 0
    version = int(conn.execute("SELECT max(version) FROM sessionstore_schema").fetchone()[0] or 0)
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} has schema version {version} but this sessionstore knows only "
            f"up to {SCHEMA_VERSION}; upgrade sessionstore to use this database"
        )
    return version
