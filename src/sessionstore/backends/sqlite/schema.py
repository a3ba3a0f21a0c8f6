"""The SQLite schema and its in-place migrations.

``MIGRATIONS[i]`` takes a database from version ``i`` to ``i + 1``. Opening a
store runs the missing ones inside one ``BEGIN IMMEDIATE`` transaction, so
several processes opening a new file at once migrate it exactly once.
"""

from __future__ import annotations

import sqlite3

from sessionstore.errors import StoreError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate"]

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

MIGRATIONS: list[str] = [_V1]
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
        for step in MIGRATIONS[version:]:
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
