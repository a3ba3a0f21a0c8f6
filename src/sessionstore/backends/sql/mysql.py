"""MySQL and MariaDB through asyncmy: their statements, DDL, locks and codec.

Every hot call is one round trip: a read is one statement, and a write is
one short ``READ COMMITTED`` transaction sent as one multi-statement batch
(asyncmy always enables multi-statements). ``READ COMMITTED`` takes no gap
locks, so concurrent first writes of a session do not deadlock. A write
upserts the session row with ``LAST_INSERT_ID(next_seq + 1)``, which hands
the new sequence number to the child insert in the same batch.

Key columns are ``VARBINARY`` holding UTF-8; ``LONGTEXT`` holds any string,
NUL included, so texts are stored as they are.

A statement travels as one packet, which the server refuses (and answers by
dropping the connection) past its ``max_allowed_packet``. The store reads
that limit when it opens: an unset ``max_field_bytes`` becomes the largest
field that always fits (:meth:`MySQL.field_limit`), and a write whose
statement would not fit is :class:`~sessionstore.errors.InvalidParameterError`
before it is sent (``packet.py``).

asyncmy bounds only the TCP connect with its ``connect_timeout``, not the
handshake and login after it: :func:`_connect` bounds it all.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any, Final

import asyncmy
from sqlalchemy import TextClause, event, text
from sqlalchemy import exc as sa_exc

from sessionstore.backends.sql.codec import Codec, Row
from sessionstore.backends.sql.dialect import Dialect, TraceIdTakenError, WriteKind
from sessionstore.backends.sql.item_statements import NOTHING_LEFT, ItemStatements
from sessionstore.backends.sql.mysql_items import ITEMS_STEP, MySQLItems
from sessionstore.backends.sql.mysql_wire import BEGIN as _BEGIN
from sessionstore.backends.sql.mysql_wire import Batch
from sessionstore.backends.sql.mysql_wire import send as _send
from sessionstore.backends.sql.options import EngineOptions
from sessionstore.backends.sql.packet import check_packet, largest_field, most_bytes
from sessionstore.backends.sql.schema import TableNames
from sessionstore.backends.sql.statements import (
    BUMP,
    ENTRY_NAMES,
    ENTRY_VALUES,
    KEY,
    LIVE,
    OWN_KEY,
    SESSION_COLUMNS,
    Statements,
)
from sessionstore.backends.sql.tls import asyncmy_arguments
from sessionstore.errors import StoreError
from sessionstore.stored import COLUMNS

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = ["DIALECT", "Batch", "MySQL"]

_KEY = "VARBINARY(1024) NOT NULL"
_TABLE = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin ROW_FORMAT=DYNAMIC"
_V1 = """
CREATE TABLE IF NOT EXISTS {t.sessions} (
    user_key    {key},
    session_key {key},
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    expires_at  BIGINT,
    next_seq    BIGINT  NOT NULL,
    qa_count    BIGINT  NOT NULL,
    trace_seq   BIGINT  NOT NULL,
    trace_count BIGINT  NOT NULL,
    has_graph   BOOLEAN NOT NULL,
    PRIMARY KEY (user_key, session_key),
    KEY {t.prefix}sessions_recent (user_key, updated_at DESC, session_key),
    KEY {t.prefix}sessions_expiry (expires_at)
) {table};
CREATE TABLE IF NOT EXISTS {t.entries} (
    user_key       {key},
    session_key    {key},
    seq            BIGINT   NOT NULL,
    entry_id       CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    created_at     BIGINT   NOT NULL,
    question       LONGTEXT NOT NULL,
    answer         LONGTEXT NOT NULL,
    context        LONGTEXT,
    feedback_text  LONGTEXT,
    feedback_score SMALLINT,
    used_graph_element_ids LONGTEXT,
    memify_metadata LONGTEXT,
    metadata       LONGTEXT,
    PRIMARY KEY (user_key, session_key, seq),
    UNIQUE KEY {t.prefix}entries_id (user_key, session_key, entry_id),
    CONSTRAINT {t.prefix}entries_session FOREIGN KEY (user_key, session_key)
        REFERENCES {t.sessions} (user_key, session_key) ON DELETE CASCADE
) {table};
CREATE TABLE IF NOT EXISTS {t.graph} (
    user_key    {key},
    session_key {key},
    context     LONGTEXT NOT NULL,
    PRIMARY KEY (user_key, session_key),
    CONSTRAINT {t.prefix}graph_session FOREIGN KEY (user_key, session_key)
        REFERENCES {t.sessions} (user_key, session_key) ON DELETE CASCADE
) {table};
CREATE TABLE IF NOT EXISTS {t.traces} (
    user_key    {key},
    session_key {key},
    seq         BIGINT   NOT NULL,
    step        LONGTEXT NOT NULL,
    PRIMARY KEY (user_key, session_key, seq),
    CONSTRAINT {t.prefix}traces_session FOREIGN KEY (user_key, session_key)
        REFERENCES {t.sessions} (user_key, session_key) ON DELETE CASCADE
) {table}
""".replace("{key}", _KEY).replace("{table}", _TABLE)

# A trace id is unique within its session (issue #12): its SHA-256 (of its
# UTF-8) gets a column and a UNIQUE index. MySQL's DDL is not transactional,
# so the step can run again after it stopped halfway: the column and the index
# come in one ALTER, which the schema skips once the column exists, and the
# fill sets the same values however often it runs. It reads each id from the
# start of its step document: a document always starts with its id, and a
# string in JSON never holds '","' (its quotes are escaped), so the first
# '","origin_function":' ends the id; the rest of the document is never
# parsed (MariaDB's JSON functions stop at 32 levels of nesting, MySQL's fail
# past 100). A namespace written before may hold a session with one id twice:
# every step stays as it is, but only the earliest gets the digest; the later
# ones keep NULL, which the index lets repeat.
_TRACE_DIGEST = (
    """UNHEX(SHA2(JSON_UNQUOTE(CASE WHEN LEFT({step}, 13) = '{{"trace_id":"' """
    """AND LOCATE('","origin_function":', {step}) > 13 """
    """THEN SUBSTRING({step}, 13, LOCATE('","origin_function":', {step}) - 12) END), 256))"""
)
_V2 = f"""
ALTER TABLE {{t.traces}} ADD COLUMN trace_digest BINARY(32) NULL,
    ADD UNIQUE KEY {{t.prefix}}traces_id (user_key, session_key, trace_digest);
UPDATE {{t.traces}} d JOIN (
    SELECT user_key, session_key, MIN(seq) AS first_seq FROM {{t.traces}}
    GROUP BY user_key, session_key, {_TRACE_DIGEST.replace("{step}", "step")}
) f ON d.user_key = f.user_key AND d.session_key = f.session_key AND d.seq = f.first_seq
SET d.trace_digest = {_TRACE_DIGEST.replace("{step}", "d.step")}
"""
_DUPLICATE_KEY: Final = 1062  # MySQL's error number


def _trace_digest(trace_id: str) -> bytes:
    """Return the SHA-256 of ``trace_id`` in UTF-8."""
    return hashlib.sha256(trace_id.encode()).digest()


# What a write of each kind sets on a new session row; LAST_INSERT_ID(1) hands seq 1 on.
_NEW_ROW: Final[dict[WriteKind, str]] = {
    "entry": "LAST_INSERT_ID(1), 1, 0, 0, FALSE",
    "trace": "0, 0, LAST_INSERT_ID(1), 1, FALSE",
    "graph": "0, 0, 0, 0, TRUE",
}
_MAX_PACKET: Final = Batch(["SELECT @@max_allowed_packet AS packet"], result=0)


async def _connect(seconds: float, **arguments: Any) -> Any:
    """Open an asyncmy connection within ``seconds``, handshake and login included."""
    async with asyncio.timeout(seconds):
        return await asyncmy.connect(**arguments)


def _reset(dbapi_connection: Any, record: Any, state: Any) -> None:
    """Roll back a connection on its way back only if it is inside a transaction."""
    if state.terminate_only or not state.asyncio_safe:
        return
    if dbapi_connection.driver_connection.get_transaction_status():
        dbapi_connection.rollback()


class MySQL(Dialect):
    """MySQL and MariaDB: one batch per call, ``GET_LOCK`` locks, binary keys."""

    name = "mysql"
    codec = Codec(COLUMNS, binary_keys=True, trace_digest=_trace_digest)
    migrations = (_V1, _V2, ITEMS_STEP)
    clears_by_pairs = True  # the driver sends an executemany of DELETE one by one
    table_columns = (
        "SELECT table_name AS table_name, column_name AS column_name "
        "FROM information_schema.columns "
        "WHERE table_schema = DATABASE() AND table_name IN ({names})"
    )
    current_database = "SELECT DATABASE()"
    improve_lock = "SELECT GET_LOCK(:key, 0)"
    improve_unlock = "SELECT RELEASE_LOCK(:key)"
    items: MySQLItems

    def __init__(self, table_prefix: str) -> None:
        t = self.tables = TableNames(table_prefix)
        self.sql = Statements(
            t,
            on_conflict="ON DUPLICATE KEY UPDATE",
            inserted=lambda column: f"VALUES({column})",
            sweep=f"DELETE FROM {t.sessions} WHERE expires_at <= :now ORDER BY expires_at LIMIT :n",
        )
        self.item_sql = ItemStatements(t)
        self.items = MySQLItems(t, self.sql.delete_expired.text)
        # The end of a duplicate key error's message, on MySQL and MariaDB alike.
        self._trace_id_key = f"{t.prefix}traces_id'"
        digest = hashlib.sha256(t.prefix.encode()).hexdigest()
        self._migration_lock_name = f"sessionstore:{digest[:40]}"
        self._lock_live = f"SELECT s.qa_count FROM {t.sessions} s WHERE {KEY} AND {LIVE} FOR UPDATE"
        self._live = f"EXISTS (SELECT 1 FROM {t.sessions} s WHERE {KEY} AND {LIVE})"
        self._packet: int | None = None  # the server's max_allowed_packet, read on open
        self._writes = {kind: self._write_batch(kind) for kind in _NEW_ROW}
        self._delete_entry = self._delete_entry_batch()
        # Built on first use, then reused.
        self._batches: dict[tuple[TextClause, bool], Batch] = {}
        self._updates: dict[frozenset[str], Batch] = {}

    # -- statements ----------------------------------------------------------

    def _write_batch(self, kind: WriteKind) -> Batch:
        """Delete the session if expired, upsert its row, add the child: one transaction."""
        t = self.tables
        bump = BUMP.get(kind)
        if bump:
            changes = f"{bump[0]} = LAST_INSERT_ID({bump[0]} + 1), {bump[1]} = {bump[1]} + 1"
        else:
            changes = "has_graph = TRUE"
        upsert = (
            f"INSERT INTO {t.sessions} ({SESSION_COLUMNS}) "
            f"VALUES (:u, :s, :now, :now, :exp, {_NEW_ROW[kind]}) "
            f"ON DUPLICATE KEY UPDATE {changes}, updated_at = :now, expires_at = :exp"
        )
        child = {
            "entry": f"INSERT INTO {t.entries} (user_key, session_key, seq, {ENTRY_NAMES}) "
            f"VALUES (:u, :s, LAST_INSERT_ID(), {ENTRY_VALUES})",
            "trace": f"INSERT INTO {t.traces} (user_key, session_key, seq, step, trace_digest) "
            "VALUES (:u, :s, LAST_INSERT_ID(), :step, :trace_digest)",
            "graph": f"INSERT INTO {t.graph} (user_key, session_key, context) "
            "VALUES (:u, :s, :context) ON DUPLICATE KEY UPDATE context = :context",
        }[kind]
        return Batch([*_BEGIN, self.sql.delete_expired.text, upsert, child, "COMMIT"])

    def _delete_entry_batch(self) -> Batch:
        """Lock, delete the entry, count it off or delete the emptied session row.

        ``ROW_COUNT()`` of the entry delete, kept in a session variable,
        guards both.
        """
        t = self.tables
        return Batch(
            [
                *_BEGIN,
                self._lock_live,
                f"DELETE FROM {t.entries} WHERE {OWN_KEY} AND entry_id = :id AND {self._live}",
                "SET @sessionstore_deleted = ROW_COUNT()",
                f"UPDATE {t.sessions} SET qa_count = qa_count - 1, updated_at = :now, "
                f"expires_at = :exp WHERE {OWN_KEY} AND @sessionstore_deleted > 0",
                f"DELETE FROM {t.sessions} WHERE {OWN_KEY} AND {NOTHING_LEFT} "
                "AND @sessionstore_deleted > 0",
                "COMMIT",
            ],
            result=3,
        )

    def _update_batch(self, columns: frozenset[str]) -> Batch:
        """Lock the live session row, change the entry, slide the expiry; count the entry."""
        t = self.tables
        entry = f"{OWN_KEY} AND entry_id = :id"
        steps = [
            *_BEGIN,
            self._lock_live,
            f"SELECT COUNT(*) AS found FROM {t.entries} WHERE {entry} AND {self._live}",
            f"UPDATE {t.sessions} SET updated_at = :now, expires_at = :exp WHERE {OWN_KEY} "
            "AND (expires_at IS NULL OR expires_at > :now) "
            f"AND EXISTS (SELECT 1 FROM {t.entries} WHERE {entry})",
            "COMMIT",
        ]
        if columns:
            assignments = ", ".join(f"{c} = :{c}" for c in sorted(columns))
            steps.insert(3, f"UPDATE {t.entries} SET {assignments} WHERE {entry} AND {self._live}")
        return Batch(steps, result=3 + bool(columns))

    def _batch(self, statement: TextClause, *, write: bool) -> Batch:
        """Return one statement as a batch: a read alone, a write in its own transaction."""
        batch = self._batches.get((statement, write))
        if batch is None:
            steps = [*_BEGIN, statement.text, "COMMIT"] if write else [statement.text]
            batch = Batch(steps, result=len(_BEGIN) if write else 0)
            self._batches[statement, write] = batch
        return batch

    # -- engine, locks -------------------------------------------------------

    def engine_arguments(self, options: EngineOptions) -> dict[str, Any]:
        """Return asyncmy's connect (bounded as a whole), charset and driver options.

        TLS options become one SSLContext (``tls.py``). No blanket rollback.

        Raises:
            InvalidParameterError: a certificate or key file cannot be read or used.

        """
        return {
            "connect_args": {
                "connect_timeout": options.connect_timeout,
                "charset": "utf8mb4",
                # SQLAlchemy's asyncmy dialect connects with this instead of asyncmy.connect.
                "async_creator_fn": partial(_connect, options.connect_timeout),
                **asyncmy_arguments(options.driver),
            },
            # asyncmy's rollback costs a round trip: _reset sends it only when needed.
            "pool_reset_on_return": None,
        }

    def watch(self, engine: AsyncEngine) -> None:
        """Roll back a returned connection only inside a transaction; check packet sizes.

        A store builds an engine per event loop: each one checks its
        statements against the limit read once, at open (:meth:`field_limit`).
        """
        event.listen(engine.sync_engine.pool, "reset", _reset)
        event.listen(engine.sync_engine, "before_cursor_execute", self._check_statement, named=True)

    def unwatch(self, engine: AsyncEngine) -> None:
        """Stop checking the packet size of ``engine``'s statements (a borrowed engine)."""
        target = engine.sync_engine
        if event.contains(target, "before_cursor_execute", self._check_statement):
            event.remove(target, "before_cursor_execute", self._check_statement)

    def _check_statement(self, **event: Any) -> None:
        """Refuse, before it is sent, a statement of SQLAlchemy's over the packet limit.

        An ``executemany`` insert sends its rows in statements of one row or
        of rows that fit in far less than a packet together: each row alone
        must fit.
        """
        parameters, packet = event["parameters"], self._packet
        if packet is None or not parameters:
            return
        statement: str = event["statement"]
        rows: Sequence[Any] = parameters if event["executemany"] else [parameters]
        cursor = None
        for row in rows:
            if most_bytes(statement, row) < packet:
                continue  # most rows need no closer look
            if cursor is None:
                cursor = event["conn"].connection.driver_connection.cursor()
            check_packet(cursor.mogrify(statement, row), packet)

    async def field_limit(self, engine: AsyncEngine) -> int:
        """Read ``max_allowed_packet``; return the largest field a write always carries.

        A value may double when it is escaped into the statement (each quote,
        backslash, NUL, ...), and :data:`~.packet.STATEMENT_ROOM` is kept for the rest.
        From now on ``engine``'s own statements (an import's, a migration's)
        are checked against it before they are sent, whether the store built
        the engine or borrowed it (:meth:`unwatch` stops that when it closes).
        """
        rows = await _send(engine, _MAX_PACKET, {})
        self._packet = self.items.packet = int(rows[0]["packet"])
        target = engine.sync_engine
        if not event.contains(target, "before_cursor_execute", self._check_statement):
            event.listen(target, "before_cursor_execute", self._check_statement, named=True)
        return largest_field(self._packet)

    @asynccontextmanager
    async def migration_lock(
        self, engine: AsyncEngine, lock_timeout: float, where: str
    ) -> AsyncIterator[AsyncConnection]:
        """Hold ``GET_LOCK`` around the steps (each one ``CREATE TABLE IF NOT EXISTS``).

        Raises:
            StoreError: another process held the lock for ``lock_timeout`` seconds.

        """
        name = self._migration_lock_name
        async with engine.connect() as conn:
            got = await conn.scalar(
                text("SELECT GET_LOCK(:name, :wait)"), {"name": name, "wait": lock_timeout}
            )
            if got != 1:
                raise StoreError(f"{where}: another process holds the migration lock; try again")
            try:
                yield conn
                await conn.commit()
            finally:
                # An invalidated connection (a cancelled statement) took the lock with it.
                if not conn.invalidated:
                    await conn.scalar(text("SELECT RELEASE_LOCK(:name)"), {"name": name})

    def improve_lock_key(self, digest: bytes) -> str:
        """Return the ``GET_LOCK`` name (at most 64 characters)."""
        return "sessionstore:" + digest[:24].hex()

    # -- steps ---------------------------------------------------------------

    async def rows(
        self, engine: AsyncEngine, statement: TextClause, params: Mapping[str, Any]
    ) -> list[Row]:
        """Fetch the rows of one read, as dicts."""
        rows: list[Row] = await _send(engine, self._batch(statement, write=False), params)
        return rows

    async def rowcount(
        self, engine: AsyncEngine, statement: TextClause, params: Mapping[str, Any]
    ) -> int:
        """Run one write in its own transaction; return the rows it changed."""
        batch = self._batch(statement, write=True)
        count: int = await _send(engine, batch, params, self._packet)
        return count

    async def write(self, engine: AsyncEngine, kind: WriteKind, params: Mapping[str, Any]) -> bool:
        """Delete the session if expired, then upsert it and add the child: one batch.

        Raises:
            TraceIdTakenError: the trace step's id is in the session already (the
                batch was rolled back).

        """
        try:
            await _send(engine, self._writes[kind], params, self._packet)
        except sa_exc.DBAPIError as exc:
            said: tuple[object, ...] = getattr(exc.orig, "args", ())
            if said[:1] == (_DUPLICATE_KEY,) and str(said[-1]).endswith(self._trace_id_key):
                raise TraceIdTakenError("the session already holds this trace id") from exc
            raise
        return True

    async def update(
        self, engine: AsyncEngine, columns: Iterable[str], params: Mapping[str, Any]
    ) -> bool:
        """Lock the session, change the entry and slide the expiry: one batch."""
        wanted = frozenset(columns)
        batch = self._updates.get(wanted)
        if batch is None:
            batch = self._updates[wanted] = self._update_batch(wanted)
        rows = await _send(engine, batch, params, self._packet)
        return bool(rows[0]["found"])

    async def delete_entry(self, engine: AsyncEngine, params: Mapping[str, Any]) -> bool:
        """Lock the session, delete the entry and count it off: one batch."""
        return bool(await _send(engine, self._delete_entry, params, self._packet))


DIALECT: Final = MySQL
"""The dialect this module holds (see :func:`~sessionstore.backends.sql.dialect.load_dialect`)."""
