r"""PostgreSQL through asyncpg: its statements, DDL, locks and codec.

Every hot call is one statement in autocommit, sent on the bare asyncpg
connection, which prepares it once per connection and reuses it. A write
upserts the session row (taking its row lock and its next sequence number)
and inserts the child in one ``WITH ... INSERT ... RETURNING``; an update and
an entry delete are one statement each too.

``text`` cannot hold NUL, so a string holding NUL (or starting with the
marker ``\x01``) is stored as the marker followed by its JSON form, and
decoded back on read; every other string is stored as it is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import TextClause, text
from sqlalchemy import exc as sa_exc

from sessionstore.backends.sql.codec import Codec, Row, column_of
from sessionstore.backends.sql.dialect import Dialect, TraceIdTakenError, WriteKind
from sessionstore.backends.sql.item_statements import NOTHING_BUT_ENTRIES, ItemStatements
from sessionstore.backends.sql.options import EngineOptions
from sessionstore.backends.sql.postgres_items import ITEMS_STEP, PostgresItems
from sessionstore.backends.sql.postgres_wire import Positional
from sessionstore.backends.sql.postgres_wire import send as _send
from sessionstore.backends.sql.schema import TableNames
from sessionstore.backends.sql.statements import (
    BUMP,
    ENTRY_NAMES,
    KEY,
    LIVE,
    OWN_KEY,
    SESSION_COLUMNS,
    Statements,
)
from sessionstore.backends.sql.tls import asyncpg_arguments
from sessionstore.stored import COLUMNS, ENTRY_FIELDS, Kind, compact_json

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = ["DIALECT", "PostgreSQL", "escape_nul", "unescape_nul"]

_MARK = "\x01"


def escape_nul(value: str) -> str:
    """Return a string as a ``text`` column can hold it."""
    if "\x00" in value or value.startswith(_MARK):
        return _MARK + compact_json(value)
    return value


def unescape_nul(stored: str) -> str:
    """Return the string :func:`escape_nul` stored."""
    if stored.startswith(_MARK):
        value: str = json.loads(stored[1:])
        return value
    return stored


_KEY = 'varchar(256) COLLATE "C" NOT NULL'
_V1 = """
CREATE TABLE {t.sessions} (
    user_key    {key},
    session_key {key},
    created_at  bigint  NOT NULL,
    updated_at  bigint  NOT NULL,
    expires_at  bigint,
    next_seq    bigint  NOT NULL,
    qa_count    bigint  NOT NULL,
    trace_seq   bigint  NOT NULL,
    trace_count bigint  NOT NULL,
    has_graph   boolean NOT NULL,
    CONSTRAINT {t.prefix}sessions_pk PRIMARY KEY (user_key, session_key)
);
CREATE INDEX {t.prefix}sessions_recent ON {t.sessions} (user_key, updated_at DESC, session_key);
CREATE INDEX {t.prefix}sessions_expiry ON {t.sessions} (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE {t.entries} (
    user_key       {key},
    session_key    {key},
    seq            bigint      NOT NULL,
    entry_id       varchar(36) NOT NULL,
    created_at     bigint      NOT NULL,
    question       text        NOT NULL,
    answer         text        NOT NULL,
    context        text,
    feedback_text  text,
    feedback_score smallint,
    used_graph_element_ids text,
    memify_metadata text,
    metadata       text,
    CONSTRAINT {t.prefix}entries_pk PRIMARY KEY (user_key, session_key, seq),
    CONSTRAINT {t.prefix}entries_id UNIQUE (user_key, session_key, entry_id),
    CONSTRAINT {t.prefix}entries_session FOREIGN KEY (user_key, session_key)
        REFERENCES {t.sessions} (user_key, session_key) ON DELETE CASCADE
);
CREATE TABLE {t.graph} (
    user_key    {key},
    session_key {key},
    context     text NOT NULL,
    CONSTRAINT {t.prefix}graph_pk PRIMARY KEY (user_key, session_key),
    CONSTRAINT {t.prefix}graph_session FOREIGN KEY (user_key, session_key)
        REFERENCES {t.sessions} (user_key, session_key) ON DELETE CASCADE
);
CREATE TABLE {t.traces} (
    user_key    {key},
    session_key {key},
    seq         bigint NOT NULL,
    step        text   NOT NULL,
    CONSTRAINT {t.prefix}traces_pk PRIMARY KEY (user_key, session_key, seq),
    CONSTRAINT {t.prefix}traces_session FOREIGN KEY (user_key, session_key)
        REFERENCES {t.sessions} (user_key, session_key) ON DELETE CASCADE
)
""".replace("{key}", _KEY)

# A trace id is unique within its session (issue #12). The digest is of the
# id's JSON text as the step document holds it (see _trace_digest): the one
# form of it SQL can take from a stored document whatever the id holds (the
# json type cannot turn a NUL back into text). A step document always starts
# with its id, and a string in JSON never holds '","' (its quotes are
# escaped), so the first '","origin_function":' ends the id. A namespace
# written before may hold a session with one id twice: every step stays as it
# is, but only the earliest gets the digest; the later ones keep NULL, which
# the UNIQUE index lets repeat.
_TRACE_ID_TEXT = (
    """CASE WHEN left(step, 13) = '{{"trace_id":"' AND strpos(step, '","origin_function":') > 13 """
    """THEN substring(step, 13, strpos(step, '","origin_function":') - 12) END"""
)
_V2 = f"""
ALTER TABLE {{t.traces}} ADD COLUMN trace_digest bytea;
UPDATE {{t.traces}} SET trace_digest = sha256(convert_to({_TRACE_ID_TEXT}, 'UTF8'));
UPDATE {{t.traces}} d SET trace_digest = NULL FROM (
    SELECT user_key, session_key, seq, row_number() OVER (
        PARTITION BY user_key, session_key, trace_digest ORDER BY seq
    ) AS nth
    FROM {{t.traces}} WHERE trace_digest IS NOT NULL
) n WHERE n.nth > 1 AND d.user_key = n.user_key AND d.session_key = n.session_key
    AND d.seq = n.seq;
CREATE UNIQUE INDEX {{t.prefix}}traces_id ON {{t.traces}} (user_key, session_key, trace_digest)
"""


def _trace_digest(trace_id: str) -> bytes:
    """Return the SHA-256 of ``trace_id``'s JSON text, as a trace step document holds it."""
    return hashlib.sha256(compact_json(trace_id).encode()).digest()


# What a write of each kind sets on a new session row.
_NEW_ROW: Final[dict[WriteKind, str]] = {
    "entry": "1, 1, 0, 0, FALSE",
    "trace": "0, 0, 1, 1, FALSE",
    "graph": "0, 0, 0, 0, TRUE",
}
# The parameter types asyncpg cannot infer from an INSERT ... SELECT; text otherwise.
_CASTS: Final = {Kind.ID: "varchar", Kind.TIME: "bigint", Kind.INT: "smallint"}
_KEYS: Final = "CAST(:u AS varchar), CAST(:s AS varchar)"
_UNIQUE_VIOLATION: Final = "23505"  # SQLSTATE


class PostgreSQL(Dialect):
    """PostgreSQL: one statement per call, advisory locks, NUL-escaped texts."""

    name = "postgresql"
    codec = Codec(
        COLUMNS.but(Kind.TEXT, escape_nul, unescape_nul),
        binary_keys=False,
        trace_digest=_trace_digest,
    )
    migrations = (_V1, _V2, ITEMS_STEP)
    # asyncpg pipelines executemany; a statement naming 100 sessions gets a cached
    # generic plan that, on tables without statistics yet, scans them whole.
    clears_by_pairs = False
    table_columns = (
        "SELECT n.name AS table_name, a.attname AS column_name "
        "FROM unnest(ARRAY[{names}]) AS n(name) "
        "JOIN pg_attribute a ON a.attrelid = to_regclass(n.name) "
        "WHERE a.attnum > 0 AND NOT a.attisdropped"
    )
    current_database = "SELECT current_database()"
    improve_lock = "SELECT pg_try_advisory_lock(:key)"
    improve_unlock = "SELECT pg_advisory_unlock(:key)"

    def __init__(self, table_prefix: str) -> None:
        t = self.tables = TableNames(table_prefix)
        # ctid = ANY(ARRAY(...)): a TID scan of exactly the locked batch.
        self.sql = Statements(
            t,
            on_conflict="ON CONFLICT (user_key, session_key) DO UPDATE SET",
            inserted=lambda column: f"EXCLUDED.{column}",
            sweep=f"DELETE FROM {t.sessions} WHERE ctid = ANY(ARRAY("
            f"SELECT ctid FROM {t.sessions} WHERE expires_at <= :now "
            "ORDER BY expires_at LIMIT :n FOR UPDATE SKIP LOCKED))",
        )
        self.item_sql = ItemStatements(t)
        self.items = PostgresItems(t, self.sql.delete_expired.text)
        self._trace_id_index = f"{t.prefix}traces_id"
        digest = hashlib.sha256(f"sessionstore:{t.prefix}".encode()).digest()
        self._migration_lock_id = self.improve_lock_key(digest)
        self._appends = {kind: Positional(self._append(kind)) for kind in _NEW_ROW}
        self._delete_entry = Positional(self._delete_entry_sql())
        # Built on first use, then reused, so asyncpg's per-connection cache hits.
        self._positional: dict[TextClause, Positional] = {}
        self._updates: dict[frozenset[str], Positional] = {}

    # -- statements ----------------------------------------------------------

    def _upsert(self, kind: WriteKind) -> str:
        """Upsert the session row, returning the child's sequence number.

        The upsert takes the session row's lock and its next sequence number;
        it updates nothing when the session has expired, and then neither
        does the child insert (the caller deletes the expired session and
        tries again).
        """
        bump = BUMP.get(kind)
        if bump:
            changes = f"{bump[0]} = x.{bump[0]} + 1, {bump[1]} = x.{bump[1]} + 1"
        else:
            changes = "has_graph = TRUE"
        seq = f"x.{bump[0]}" if bump else "0"
        return (
            f"WITH s AS (INSERT INTO {self.tables.sessions} AS x ({SESSION_COLUMNS}) "
            f"VALUES (:u, :s, :now, :now, :exp, {_NEW_ROW[kind]}) "
            f"ON CONFLICT (user_key, session_key) DO UPDATE SET {changes}, "
            "updated_at = EXCLUDED.updated_at, expires_at = EXCLUDED.expires_at "
            "WHERE x.expires_at IS NULL OR x.expires_at > EXCLUDED.updated_at "
            f"RETURNING {seq} AS seq) "
        )

    def _append(self, kind: WriteKind) -> str:
        """One statement per write: upsert the session row, then insert the child."""
        t = self.tables
        if kind == "entry":
            values = ", ".join(
                f"CAST(:{column_of(f.name)} AS {_CASTS.get(f.kind, 'text')})" for f in ENTRY_FIELDS
            )
            child = (
                f"INSERT INTO {t.entries} (user_key, session_key, seq, {ENTRY_NAMES}) "
                f"SELECT {_KEYS}, s.seq, {values} FROM s "
            )
        elif kind == "trace":
            child = (
                f"INSERT INTO {t.traces} (user_key, session_key, seq, step, trace_digest) "
                f"SELECT {_KEYS}, s.seq, CAST(:step AS text), CAST(:trace_digest AS bytea) FROM s "
            )
        else:
            child = (
                f"INSERT INTO {t.graph} (user_key, session_key, context) "
                f"SELECT {_KEYS}, CAST(:context AS text) FROM s "
                "ON CONFLICT (user_key, session_key) DO UPDATE SET context = EXCLUDED.context "
            )
        return self._upsert(kind) + child + "RETURNING 1"

    def _delete_entry_sql(self) -> str:
        """Lock, delete the entry, then count it off the session row, or delete the row.

        The row goes when that entry was all it held.
        """
        t = self.tables
        last = f"EXISTS (SELECT 1 FROM s WHERE qa_count = 1 AND {NOTHING_BUT_ENTRIES})"
        return (
            "WITH s AS (SELECT s.qa_count, s.trace_count, s.has_graph, s.item_count, "
            f"s.state_rev FROM {t.sessions} s "
            f"WHERE {KEY} AND {LIVE} FOR UPDATE), "
            f"d AS (DELETE FROM {t.entries} WHERE {OWN_KEY} AND entry_id = :id "
            "AND EXISTS (SELECT 1 FROM s) RETURNING 1), "
            f"c AS (UPDATE {t.sessions} SET qa_count = qa_count - 1, updated_at = :now, "
            f"expires_at = :exp WHERE {OWN_KEY} AND EXISTS (SELECT 1 FROM d) AND NOT {last}), "
            f"x AS (DELETE FROM {t.sessions} WHERE {OWN_KEY} "
            f"AND EXISTS (SELECT 1 FROM d) AND {last}) "
            "SELECT count(*) FROM d"
        )

    def _update_sql(self, columns: frozenset[str]) -> str:
        """Lock the live session row, change the entry, slide the expiry.

        ``s`` takes the row lock before ``e`` touches the entry (one lock order
        with every other write); ``t`` slides the expiry only when the entry
        was found. An ``UPDATE`` cannot insert, so an entry or session deleted
        meanwhile stays deleted. Returns how many entries were found (0 or 1).
        """
        t = self.tables
        if columns:
            assignments = ", ".join(f"{c} = :{c}" for c in sorted(columns))
            change = f"UPDATE {t.entries} SET {assignments} WHERE {OWN_KEY} AND entry_id = :id"
        else:
            change = f"SELECT 1 FROM {t.entries} WHERE {OWN_KEY} AND entry_id = :id"
        return (
            f"WITH s AS (SELECT 1 FROM {t.sessions} s WHERE {KEY} AND {LIVE} FOR UPDATE), "
            f"e AS ({change} AND EXISTS (SELECT 1 FROM s){' RETURNING 1' * bool(columns)}), "
            f"t AS (UPDATE {t.sessions} SET updated_at = :now, expires_at = :exp "
            f"WHERE {OWN_KEY} AND EXISTS (SELECT 1 FROM e)) "
            "SELECT count(*) FROM e"
        )

    def _prepared(self, statement: TextClause) -> Positional:
        prepared = self._positional.get(statement)
        if prepared is None:
            prepared = self._positional[statement] = Positional(statement.text)
        return prepared

    # -- engine, locks -------------------------------------------------------

    def engine_arguments(self, options: EngineOptions) -> dict[str, Any]:
        """Return asyncpg's connect timeout, name and driver options, and a rollback on return.

        The session's ``application_name`` is ``sessionstore`` unless the
        options name another. asyncpg's rollback is free outside a
        transaction: it sends nothing.

        Raises:
            InvalidParameterError: a certificate or key file cannot be read.

        """
        driver = options.driver
        settings = {
            "application_name": driver.get("application_name", "sessionstore"),
            **driver.get("server_settings", {}),
        }
        return {
            "connect_args": {
                "timeout": options.connect_timeout,
                "server_settings": settings,
                **asyncpg_arguments(driver),
            },
            "pool_reset_on_return": "rollback",
        }

    def watch(self, engine: AsyncEngine) -> None:
        """Add nothing: the listeners every engine has suffice."""

    async def field_limit(self, engine: AsyncEngine) -> None:
        """Return ``None``: a ``text`` value and a message may reach 1 GB."""

    @asynccontextmanager
    async def migration_lock(
        self, engine: AsyncEngine, lock_timeout: float, where: str
    ) -> AsyncIterator[AsyncConnection]:
        """Hold ``pg_advisory_xact_lock`` in the transaction the steps run in.

        DDL is transactional on PostgreSQL: the steps land together or not at all.
        """
        transactional = engine.execution_options(isolation_level="READ COMMITTED")
        async with transactional.begin() as conn:
            # 0 would mean "no limit" to PostgreSQL: lock_timeout=0 is "do not wait".
            wait = max(1, int(lock_timeout * 1000))
            await conn.execute(text(f"SET LOCAL lock_timeout = {wait}"))
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(:id)"), {"id": self._migration_lock_id}
            )
            yield conn

    def improve_lock_key(self, digest: bytes) -> int:
        """Return the advisory lock's bigint."""
        return int.from_bytes(digest[:8], "big", signed=True)

    # -- steps ---------------------------------------------------------------

    async def rows(
        self, engine: AsyncEngine, statement: TextClause, params: Mapping[str, Any]
    ) -> list[Row]:
        """Fetch the rows of one read (asyncpg records, read by column name)."""
        rows: list[Row] = await _send(engine, self._prepared(statement), params, "rows")
        return rows

    async def rowcount(
        self, engine: AsyncEngine, statement: TextClause, params: Mapping[str, Any]
    ) -> int:
        """Run one write (autocommit); return the rows it changed."""
        count: int = await _send(engine, self._prepared(statement), params, "count")
        return count

    async def write(self, engine: AsyncEngine, kind: WriteKind, params: Mapping[str, Any]) -> bool:
        """Upsert the session row and add the child in one statement.

        Nothing is written when the session had expired: it is deleted then.

        Raises:
            TraceIdTakenError: the trace step's id is in the session already.

        """
        try:
            written = await _send(engine, self._appends[kind], params, "value")
        except sa_exc.DBAPIError as exc:
            orig = exc.orig
            if (
                getattr(orig, "sqlstate", None) == _UNIQUE_VIOLATION
                and getattr(orig, "constraint_name", None) == self._trace_id_index
            ):
                raise TraceIdTakenError("the session already holds this trace id") from exc
            raise
        if written is not None:
            return True
        await self.rowcount(engine, self.sql.delete_expired, params)
        return False

    async def update(
        self, engine: AsyncEngine, columns: Iterable[str], params: Mapping[str, Any]
    ) -> bool:
        """Lock the session, change the entry and slide the expiry in one statement."""
        wanted = frozenset(columns)
        statement = self._updates.get(wanted)
        if statement is None:
            statement = self._updates[wanted] = Positional(self._update_sql(wanted))
        return bool(await _send(engine, statement, params, "value"))

    async def delete_entry(self, engine: AsyncEngine, params: Mapping[str, Any]) -> bool:
        """Lock the session, delete the entry and count it off in one statement."""
        return bool(await _send(engine, self._delete_entry, params, "value"))


DIALECT: Final = PostgreSQL
"""The dialect this module holds (see :func:`~sessionstore.backends.sql.dialect.load_dialect`)."""
