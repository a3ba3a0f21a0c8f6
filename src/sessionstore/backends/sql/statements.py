"""The SQL both dialects send, built once per store from its table names.

Every read joins the session row and filters its ``expires_at``, so expired
data is invisible at once. Every write locks the session row first (by
upserting or ``SELECT ... FOR UPDATE``), then its children: one lock order,
so concurrent writers of a session queue instead of deadlocking. The writes
whose SQL differs per database are in the dialect modules, built from the
fragments here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from sqlalchemy import TextClause, text

from sessionstore.backend_steps import SESSIONS_AT_ONCE
from sessionstore.backends.sql.codec import ENTRY_COLUMNS
from sessionstore.backends.sql.schema import TableNames

__all__ = [
    "BIND",
    "BUMP",
    "ENTRY_NAMES",
    "ENTRY_VALUES",
    "ITEM_SESSION_COLUMNS",
    "KEY",
    "LIVE",
    "OWN_KEY",
    "SESSION_COLUMNS",
    "Statements",
]

LIVE: Final = "(s.expires_at IS NULL OR s.expires_at > :now)"
"""The session row ``s`` has not expired at ``:now``."""
KEY: Final = "s.user_key = :u AND s.session_key = :s"
"""The session row ``s`` is the one of ``:u`` and ``:s``."""
OWN_KEY: Final = "user_key = :u AND session_key = :s"
"""A row of one table belongs to the session of ``:u`` and ``:s``."""
SESSION_COLUMNS: Final = (
    "user_key, session_key, created_at, updated_at, expires_at, "
    "next_seq, qa_count, trace_seq, trace_count, has_graph"
)
ITEM_SESSION_COLUMNS: Final = "item_seq, item_count, state, state_rev"
"""The session row's item log and state columns (schema version 3 on): each has a default."""
BUMP: Final = {"entry": ("next_seq", "qa_count"), "trace": ("trace_seq", "trace_count")}
"""The session row's sequence and count columns a write of each kind advances."""
BIND: Final = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")
"""A named parameter ``:name`` in a statement (not ``::cast``), its name in group 1."""
ENTRY_NAMES: Final = ", ".join(ENTRY_COLUMNS)
"""Every stored column of an entry, in declaration order."""
ENTRY_VALUES: Final = ", ".join(f":{column}" for column in ENTRY_COLUMNS)
"""A named parameter per entry column, each named after its column."""


class Statements:
    """The statements of one namespace that read the same on every database.

    Args:
        tables: the namespace's table names.
        on_conflict: the dialect's start of an upsert's update clause (an
            insert meeting the session row's key changes the row instead).
        inserted: the dialect's name, in that update clause, for a column's
            value in the row the insert brought.
        sweep: the dialect's bounded delete of expired sessions (``:now``, ``:n``).

    """

    def __init__(
        self,
        tables: TableNames,
        *,
        on_conflict: str,
        inserted: Callable[[str], str],
        sweep: str,
    ) -> None:
        t = self.tables = tables
        cols = ", ".join(f"e.{column}" for column in ENTRY_COLUMNS)
        entries_of = (
            f"FROM {t.sessions} s JOIN {t.entries} e "
            f"ON e.user_key = s.user_key AND e.session_key = s.session_key WHERE {KEY} AND {LIVE}"
        )
        traces_of = (
            f"FROM {t.sessions} s JOIN {t.traces} e "
            f"ON e.user_key = s.user_key AND e.session_key = s.session_key WHERE {KEY} AND {LIVE}"
        )
        self.latest = text(f"SELECT {cols} {entries_of} ORDER BY e.seq DESC LIMIT :n")
        self.all = text(f"SELECT {cols} {entries_of} ORDER BY e.seq")
        self.get = text(f"SELECT {cols} {entries_of} AND e.entry_id = :id")
        self.latest_id = text(f"SELECT e.entry_id {entries_of} ORDER BY e.seq DESC LIMIT 1")
        self.count = text(f"SELECT s.qa_count FROM {t.sessions} s WHERE {KEY} AND {LIVE}")
        self.graph = text(
            f"SELECT g.context FROM {t.sessions} s JOIN {t.graph} g "
            f"ON g.user_key = s.user_key AND g.session_key = s.session_key "
            f"WHERE {KEY} AND {LIVE}"
        )
        self.traces_latest = text(f"SELECT e.step {traces_of} ORDER BY e.seq DESC LIMIT :n")
        self.traces_all = text(f"SELECT e.step {traces_of} ORDER BY e.seq")
        listing = (
            "SELECT s.session_key, s.created_at, s.updated_at, s.qa_count, s.item_count "
            f"FROM {t.sessions} s "
            f"WHERE s.user_key = :u AND {LIVE}"
        )
        order = "ORDER BY s.updated_at DESC, s.session_key LIMIT :n"
        self.list_first = text(f"{listing} {order}")
        # Two seeks rather than one ``OR``: the rest of the cursor's time, then
        # the older times. An ``OR`` (or a row value against an index of mixed
        # directions) makes PostgreSQL read the index from its start.
        self.list_after = text(
            "SELECT p.session_key, p.created_at, p.updated_at, p.qa_count, p.item_count FROM ("
            f"({listing} AND s.updated_at = :cu AND s.session_key > :cs "
            "ORDER BY s.session_key LIMIT :n) UNION ALL "
            f"({listing} AND s.updated_at < :cu {order})"
            ") p ORDER BY p.updated_at DESC, p.session_key LIMIT :n"
        )
        keys = (
            f"SELECT s.user_key, s.session_key FROM {t.sessions} s WHERE {LIVE} "
            "AND (s.user_key > :au OR (s.user_key = :au AND s.session_key > :as_)) "
        )
        page = "ORDER BY s.user_key, s.session_key LIMIT :n"
        self.keys_all = text(f"{keys}{page}")
        self.keys_of_user = text(f"{keys}AND s.user_key = :u {page}")

        # -- a batch of whole sessions (export, import) ---------------------
        # One statement for every batch (the last padded with repeats), so it is
        # prepared once; each table is read, or cleared, by its primary key.
        pairs = ", ".join(f"(:u{i}, :s{i})" for i in range(SESSIONS_AT_ONCE))

        def batch_of(alias: str) -> str:
            named = f"{alias}." if alias else ""
            return f"({named}user_key, {named}session_key) IN ({pairs})"

        by_key = "ORDER BY e.user_key, e.session_key, e.seq"
        self.batch_sessions = text(
            "SELECT s.user_key, s.session_key, s.created_at, s.updated_at, s.state, s.state_rev "
            f"FROM {t.sessions} s WHERE {batch_of('s')} AND {LIVE}"
        )
        self.batch_entries = text(
            f"SELECT e.user_key, e.session_key, {cols} FROM {t.entries} e "
            f"WHERE {batch_of('e')} {by_key}"
        )
        self.batch_graphs = text(
            f"SELECT e.user_key, e.session_key, e.context FROM {t.graph} e WHERE {batch_of('e')}"
        )
        self.batch_traces = text(
            f"SELECT e.user_key, e.session_key, e.step FROM {t.traces} e "
            f"WHERE {batch_of('e')} {by_key}"
        )
        self.batch_items = text(
            "SELECT e.user_key, e.session_key, e.item_id, e.created_at, e.data "
            f"FROM {t.items} e WHERE {batch_of('e')} {by_key}"
        )
        self.batch_clear: tuple[TextClause, ...] = tuple(
            text(f"DELETE FROM {name} WHERE {batch_of('')}") for name in t.children
        )
        self.batch_delete = text(f"DELETE FROM {t.sessions} WHERE {batch_of('')}")

        # -- writes --------------------------------------------------------
        self.delete_live = text(
            f"DELETE FROM {t.sessions} WHERE {OWN_KEY} "
            "AND (expires_at IS NULL OR expires_at > :now)"
        )
        self.delete_expired = text(
            f"DELETE FROM {t.sessions} WHERE {OWN_KEY} AND expires_at <= :now"
        )
        self.delete_any = text(f"DELETE FROM {t.sessions} WHERE {OWN_KEY}")
        self.prune: tuple[TextClause, ...] = tuple(
            text(f"DELETE FROM {name}") for name in (*t.children, t.sessions, t.scoped)
        )
        self.sweep = text(sweep)
        # An import takes the session row (and its lock) as every write does, by
        # upserting it, so concurrent writes of the session queue behind it.
        # The update takes the inserted row's values (``inserted``), not the
        # parameters again, so one statement can carry many rows (an import's
        # batch: MySQL's driver then sends one multi-row INSERT).
        replaced = (
            *("created_at", "updated_at", "expires_at", "next_seq", "qa_count", "trace_seq"),
            *("trace_count", "has_graph", "item_seq", "item_count", "state", "state_rev"),
        )
        self.replace_session = text(
            f"INSERT INTO {t.sessions} ({SESSION_COLUMNS}, {ITEM_SESSION_COLUMNS}) VALUES "
            "(:u, :s, :created, :updated, :exp, :next_seq, :qa_count, :trace_seq, :trace_count, "
            ":has_graph, :item_seq, :item_count, :state, :state_rev) "
            f"{on_conflict} " + ", ".join(f"{column} = {inserted(column)}" for column in replaced)
        )
        self.clear_children: tuple[TextClause, ...] = tuple(
            text(f"DELETE FROM {name} WHERE {OWN_KEY}") for name in t.children
        )
        self.insert_entry = text(
            f"INSERT INTO {t.entries} (user_key, session_key, seq, {ENTRY_NAMES}) "
            f"VALUES (:u, :s, :seq, {ENTRY_VALUES})"
        )
        self.insert_trace = text(
            f"INSERT INTO {t.traces} (user_key, session_key, seq, step, trace_digest) "
            "VALUES (:u, :s, :seq, :step, :trace_digest)"
        )
        self.insert_graph = text(
            f"INSERT INTO {t.graph} (user_key, session_key, context) VALUES (:u, :s, :context)"
        )
