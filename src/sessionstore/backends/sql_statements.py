"""The SQL the SQL backend sends, built once per store from its table names.

Every read joins the session row and filters its ``expires_at``, so expired
data is invisible at once. Every write locks the session row first (by
upserting or ``SELECT ... FOR UPDATE``), then its children: one lock order,
so concurrent writers of a session queue instead of deadlocking.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import TextClause, text

from sessionstore.backends.sql_codec import ENTRY_COLUMNS
from sessionstore.backends.sql_schema import TableNames

__all__ = ["Batch", "Positional", "Statements"]

_LIVE = "(s.expires_at IS NULL OR s.expires_at > :now)"
_KEY = "s.user_key = :u AND s.session_key = :s"
_SESSION_COLUMNS = (
    "user_key, session_key, created_at, updated_at, expires_at, "
    "next_seq, qa_count, trace_seq, trace_count, has_graph"
)
# What a write of each kind sets on a new session row, and changes on an old one.
_NEW_ROW = {"entry": "1, 1, 0, 0, FALSE", "trace": "0, 0, 1, 1, FALSE", "graph": "0, 0, 0, 0, TRUE"}
_MY_NEW_ROW = {
    "entry": "LAST_INSERT_ID(1), 1, 0, 0, FALSE",
    "trace": "0, 0, LAST_INSERT_ID(1), 1, FALSE",
    "graph": "0, 0, 0, 0, TRUE",
}
_BUMP = {
    "entry": ("next_seq", "qa_count"),
    "trace": ("trace_seq", "trace_count"),
}
_BIND = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")
_MY_BEGIN = ("SET TRANSACTION ISOLATION LEVEL READ COMMITTED", "START TRANSACTION")
_PG_CASTS = {
    "entry_id": "varchar",
    "created_at": "bigint",
    "feedback_score": "smallint",
}


class Statements:
    """The statements of one namespace on one database (``postgresql``/``mysql``)."""

    def __init__(self, tables: TableNames, dialect: str) -> None:
        t = self.tables = tables
        self.dialect = dialect
        pg = dialect == "postgresql"
        cols = ", ".join(f"e.{c}" for c in ENTRY_COLUMNS)
        entries_of = (
            f"FROM {t.sessions} s JOIN {t.entries} e "
            f"ON e.user_key = s.user_key AND e.session_key = s.session_key WHERE {_KEY} AND {_LIVE}"
        )
        traces_of = (
            f"FROM {t.sessions} s JOIN {t.traces} e "
            f"ON e.user_key = s.user_key AND e.session_key = s.session_key WHERE {_KEY} AND {_LIVE}"
        )
        self.latest = text(f"SELECT {cols} {entries_of} ORDER BY e.seq DESC LIMIT :n")
        self.all = text(f"SELECT {cols} {entries_of} ORDER BY e.seq")
        self.get = text(f"SELECT {cols} {entries_of} AND e.entry_id = :id")
        self.latest_id = text(f"SELECT e.entry_id {entries_of} ORDER BY e.seq DESC LIMIT 1")
        self.count = text(f"SELECT s.qa_count FROM {t.sessions} s WHERE {_KEY} AND {_LIVE}")
        self.session_row = text(
            f"SELECT s.created_at, s.updated_at FROM {t.sessions} s WHERE {_KEY} AND {_LIVE}"
        )
        self.graph = text(
            f"SELECT g.context FROM {t.sessions} s JOIN {t.graph} g "
            f"ON g.user_key = s.user_key AND g.session_key = s.session_key "
            f"WHERE {_KEY} AND {_LIVE}"
        )
        self.traces_latest = text(f"SELECT e.step {traces_of} ORDER BY e.seq DESC LIMIT :n")
        self.traces_all = text(f"SELECT e.step {traces_of} ORDER BY e.seq")
        listing = (
            f"SELECT s.session_key, s.created_at, s.updated_at, s.qa_count FROM {t.sessions} s "
            f"WHERE s.user_key = :u AND {_LIVE}"
        )
        order = "ORDER BY s.updated_at DESC, s.session_key LIMIT :n"
        self.list_first = text(f"{listing} {order}")
        self.list_after = text(
            f"{listing} AND (s.updated_at < :cu OR (s.updated_at = :cu AND s.session_key > :cs)) "
            f"{order}"
        )
        keys = (
            f"SELECT s.user_key, s.session_key FROM {t.sessions} s WHERE {_LIVE} "
            "AND (s.user_key > :au OR (s.user_key = :au AND s.session_key > :as_)) "
        )
        page = "ORDER BY s.user_key, s.session_key LIMIT :n"
        self.keys_all = text(f"{keys}{page}")
        self.keys_of_user = text(f"{keys}AND s.user_key = :u {page}")

        # -- writes --------------------------------------------------------
        self.lock_live = text(
            f"SELECT s.qa_count FROM {t.sessions} s WHERE {_KEY} AND {_LIVE} FOR UPDATE"
        )
        where_key = "WHERE user_key = :u AND session_key = :s"
        self.end_if_empty = text(
            f"DELETE FROM {t.sessions} {where_key} "
            "AND qa_count = 0 AND trace_count = 0 AND has_graph = FALSE"
        )
        self.delete_live = text(
            f"DELETE FROM {t.sessions} {where_key} AND (expires_at IS NULL OR expires_at > :now)"
        )
        self.delete_expired = text(f"DELETE FROM {t.sessions} {where_key} AND expires_at <= :now")
        self.delete_any = text(f"DELETE FROM {t.sessions} {where_key}")
        self.prune = [text(f"DELETE FROM {name}") for name in (*t.children, t.sessions)]
        if pg:
            # ctid = ANY(ARRAY(...)): a TID scan of exactly the locked batch.
            self.sweep = text(
                f"DELETE FROM {t.sessions} WHERE ctid = ANY(ARRAY("
                f"SELECT ctid FROM {t.sessions} WHERE expires_at <= :now "
                "ORDER BY expires_at LIMIT :n FOR UPDATE SKIP LOCKED))"
            )
        else:
            self.sweep = text(
                f"DELETE FROM {t.sessions} WHERE expires_at <= :now ORDER BY expires_at LIMIT :n"
            )
        self.insert_session = text(
            f"INSERT INTO {t.sessions} ({_SESSION_COLUMNS}) VALUES "
            "(:u, :s, :created, :updated, :exp, :next_seq, :qa_count, :trace_seq, :trace_count, "
            ":has_graph)"
        )
        names = ", ".join(ENTRY_COLUMNS)
        values = ", ".join(f":{c}" for c in ENTRY_COLUMNS)
        self.insert_entry = text(
            f"INSERT INTO {t.entries} (user_key, session_key, seq, {names}) "
            f"VALUES (:u, :s, :seq, {values})"
        )
        self.insert_trace = text(
            f"INSERT INTO {t.traces} (user_key, session_key, seq, step) "
            "VALUES (:u, :s, :seq, :step)"
        )
        self.insert_graph = text(
            f"INSERT INTO {t.graph} (user_key, session_key, context) VALUES (:u, :s, :context)"
        )
        # Built on first use, then reused: SQLAlchemy caches a statement's
        # compiled form per object, so the same object must come back each time.
        self._built: dict[tuple[object, ...], TextClause | Batch | Positional] = {}
        if pg:
            self._pg_appends(t)
        else:
            self._mysql_upserts(t)

    def _pg_appends(self, t: TableNames) -> None:
        """One statement per write: upsert the session row, then insert the child.

        The upsert takes the session row's lock and its next sequence number;
        it updates nothing when the session has expired, and then neither
        does the child insert (the caller deletes the expired session and
        tries again).
        """

        def upsert(kind: str) -> str:
            bump = _BUMP.get(kind)
            changes = (
                f"{bump[0]} = x.{bump[0]} + 1, {bump[1]} = x.{bump[1]} + 1"
                if bump
                else "has_graph = TRUE"
            )
            seq = f"x.{bump[0]}" if bump else "0"
            return (
                f"WITH s AS (INSERT INTO {t.sessions} AS x ({_SESSION_COLUMNS}) "
                f"VALUES (:u, :s, :now, :now, :exp, {_NEW_ROW[kind]}) "
                f"ON CONFLICT (user_key, session_key) DO UPDATE SET {changes}, "
                "updated_at = EXCLUDED.updated_at, expires_at = EXCLUDED.expires_at "
                "WHERE x.expires_at IS NULL OR x.expires_at > EXCLUDED.updated_at "
                f"RETURNING {seq} AS seq) "
            )

        def cast(name: str) -> str:
            return f"CAST(:{name} AS {_PG_CASTS.get(name, 'text')})"

        keys = "CAST(:u AS varchar), CAST(:s AS varchar)"
        names = ", ".join(ENTRY_COLUMNS)
        self.pg_append_entry = text(
            upsert("entry")
            + f"INSERT INTO {t.entries} (user_key, session_key, seq, {names}) "
            + f"SELECT {keys}, s.seq, {', '.join(cast(c) for c in ENTRY_COLUMNS)} FROM s "
            + "RETURNING 1"
        )
        self.pg_append_trace = text(
            upsert("trace")
            + f"INSERT INTO {t.traces} (user_key, session_key, seq, step) "
            + f"SELECT {keys}, s.seq, CAST(:step AS text) FROM s RETURNING 1"
        )
        where = "user_key = :u AND session_key = :s"
        last = "EXISTS (SELECT 1 FROM s WHERE qa_count = 1 AND trace_count = 0 AND NOT has_graph)"
        # One statement: lock, delete the entry, then count it off the session
        # row, or delete the row when that was all it held.
        self.pg_delete_entry = text(
            f"WITH s AS (SELECT s.qa_count, s.trace_count, s.has_graph FROM {t.sessions} s "
            f"WHERE {_KEY} AND {_LIVE} FOR UPDATE), "
            f"d AS (DELETE FROM {t.entries} WHERE {where} AND entry_id = :id "
            "AND EXISTS (SELECT 1 FROM s) RETURNING 1), "
            f"c AS (UPDATE {t.sessions} SET qa_count = qa_count - 1, updated_at = :now, "
            f"expires_at = :exp WHERE {where} AND EXISTS (SELECT 1 FROM d) AND NOT {last}), "
            f"x AS (DELETE FROM {t.sessions} WHERE {where} "
            f"AND EXISTS (SELECT 1 FROM d) AND {last}) "
            "SELECT count(*) FROM d"
        )
        self.pg_set_graph = text(
            upsert("graph")
            + f"INSERT INTO {t.graph} (user_key, session_key, context) "
            + f"SELECT {keys}, CAST(:context AS text) FROM s "
            + "ON CONFLICT (user_key, session_key) DO UPDATE SET context = EXCLUDED.context "
            + "RETURNING 1"
        )

    def _pg_update(self, t: TableNames, columns: frozenset[str]) -> TextClause:
        """One statement: lock the live session row, change the entry, slide the expiry.

        ``s`` takes the row lock before ``e`` touches the entry (one lock order
        with every other write); ``t`` slides the expiry only when the entry
        was found. An ``UPDATE`` cannot insert, so an entry or session deleted
        meanwhile stays deleted. Returns how many entries were found (0 or 1).
        """
        where = "user_key = :u AND session_key = :s"
        if columns:
            assignments = ", ".join(f"{c} = :{c}" for c in sorted(columns))
            change = f"UPDATE {t.entries} SET {assignments} WHERE {where} AND entry_id = :id"
        else:
            change = f"SELECT 1 FROM {t.entries} WHERE {where} AND entry_id = :id"
        return text(
            f"WITH s AS (SELECT 1 FROM {t.sessions} s WHERE {_KEY} AND {_LIVE} FOR UPDATE), "
            f"e AS ({change} AND EXISTS (SELECT 1 FROM s){' RETURNING 1' * bool(columns)}), "
            f"t AS (UPDATE {t.sessions} SET updated_at = :now, expires_at = :exp "
            f"WHERE {where} AND EXISTS (SELECT 1 FROM e)) "
            "SELECT count(*) FROM e"
        )

    def _my_update(self, t: TableNames, columns: frozenset[str]) -> Batch:
        """One batch: lock the live session row, change the entry, slide the expiry."""
        where = "user_key = :u AND session_key = :s"
        live = f"EXISTS (SELECT 1 FROM {t.sessions} s WHERE {_KEY} AND {_LIVE})"
        entry = f"{where} AND entry_id = :id"
        steps = [
            *_MY_BEGIN,
            self.lock_live.text,
            f"SELECT COUNT(*) FROM {t.entries} WHERE {entry} AND {live}",
            f"UPDATE {t.sessions} SET updated_at = :now, expires_at = :exp WHERE {where} "
            "AND (expires_at IS NULL OR expires_at > :now) "
            f"AND EXISTS (SELECT 1 FROM {t.entries} WHERE {entry})",
            "COMMIT",
        ]
        if columns:
            assignments = ", ".join(f"{c} = :{c}" for c in sorted(columns))
            steps.insert(3, f"UPDATE {t.entries} SET {assignments} WHERE {entry} AND {live}")
        return Batch(steps, result=3 + bool(columns))

    def _mysql_upserts(self, t: TableNames) -> None:
        """Session-row upserts that hand back the new sequence as ``LAST_INSERT_ID``."""

        def upsert(kind: str) -> TextClause:
            bump = _BUMP.get(kind)
            new_row = _MY_NEW_ROW[kind]
            if bump:
                changes = f"{bump[0]} = LAST_INSERT_ID({bump[0]} + 1), {bump[1]} = {bump[1]} + 1"
            else:
                changes = "has_graph = TRUE"
            return text(
                f"INSERT INTO {t.sessions} ({_SESSION_COLUMNS}) "
                f"VALUES (:u, :s, :now, :now, :exp, {new_row}) "
                f"ON DUPLICATE KEY UPDATE {changes}, updated_at = :now, expires_at = :exp"
            )

        self.my_upsert = {kind: upsert(kind) for kind in _NEW_ROW}
        self.my_set_graph = text(
            f"INSERT INTO {t.graph} (user_key, session_key, context) VALUES (:u, :s, :context) "
            "ON DUPLICATE KEY UPDATE context = :context"
        )
        # One round trip per write: the whole transaction as one multi-statement batch.
        names = ", ".join(ENTRY_COLUMNS)
        values = ", ".join(f":{c}" for c in ENTRY_COLUMNS)
        child = {
            "entry": f"INSERT INTO {t.entries} (user_key, session_key, seq, {names}) "
            f"VALUES (:u, :s, LAST_INSERT_ID(), {values})",
            "trace": f"INSERT INTO {t.traces} (user_key, session_key, seq, step) "
            "VALUES (:u, :s, LAST_INSERT_ID(), :step)",
            "graph": self.my_set_graph.text,
        }
        self.my_write = {
            kind: Batch(
                [
                    *_MY_BEGIN,
                    self.delete_expired.text,
                    self.my_upsert[kind].text,
                    child[kind],
                    "COMMIT",
                ]
            )
            for kind in _NEW_ROW
        }
        live = f"EXISTS (SELECT 1 FROM {t.sessions} s WHERE {_KEY} AND {_LIVE})"
        where = "user_key = :u AND session_key = :s"
        self.my_delete_entry = Batch(
            [
                *_MY_BEGIN,
                self.lock_live.text,
                f"DELETE FROM {t.entries} WHERE {where} AND entry_id = :id AND {live}",
                "SET @sessionstore_deleted = ROW_COUNT()",
                f"UPDATE {t.sessions} SET qa_count = qa_count - 1, updated_at = :now, "
                f"expires_at = :exp WHERE {where} AND @sessionstore_deleted > 0",
                f"{self.end_if_empty.text} AND @sessionstore_deleted > 0",
                "COMMIT",
            ],
            result=3,
        )

    def pg_update(self, columns: Iterable[str]) -> TextClause:
        """Return the one-statement update of exactly ``columns`` (built once per set)."""
        wanted = frozenset(columns)
        statement = self._built.get(("pg_update", wanted))
        if not isinstance(statement, TextClause):
            statement = self._built["pg_update", wanted] = self._pg_update(self.tables, wanted)
        return statement

    def my_update(self, columns: Iterable[str]) -> Batch:
        """Return the one-batch update of exactly ``columns`` (built once per set)."""
        wanted = frozenset(columns)
        batch = self._built.get(("my_update", wanted))
        if not isinstance(batch, Batch):
            batch = self._built["my_update", wanted] = self._my_update(self.tables, wanted)
        return batch

    def pg(self, statement: TextClause) -> Positional:
        """Return a statement in asyncpg's ``$n`` form (built once per statement)."""
        built = self._built.get((statement,))
        if not isinstance(built, Positional):
            built = self._built[statement,] = Positional(statement.text)
        return built

    def my_batch(self, statement: TextClause, *, write: bool) -> Batch:
        """Return one statement as a batch: a read alone, a write in its own transaction."""
        batch = self._built.get((statement, write))
        if not isinstance(batch, Batch):
            steps = [*_MY_BEGIN, statement.text, "COMMIT"] if write else [statement.text]
            batch = Batch(steps, result=len(_MY_BEGIN) if write else 0)
            self._built[statement, write] = batch
        return batch


class Batch:
    """Statements sent to MySQL/MariaDB as one multi-statement query (one round trip).

    ``sql`` uses the driver's ``%(name)s`` parameters; ``result`` is the index
    of the statement whose outcome the caller reads (its rows, or its row
    count when it returns none).
    """

    def __init__(self, statements: list[str], result: int = -1) -> None:
        joined = ";\n".join(statements)
        self.sql = _BIND.sub(r"%(\1)s", joined.replace("%", "%%"))
        self.result = result if result >= 0 else len(statements) + result


class Positional:
    """A statement with asyncpg's ``$n`` parameters, and the names they stand for."""

    def __init__(self, sql: str) -> None:
        self.names: list[str] = []

        def number(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self.names:
                self.names.append(name)
            return f"${self.names.index(name) + 1}"

        self.sql = _BIND.sub(number, sql)
