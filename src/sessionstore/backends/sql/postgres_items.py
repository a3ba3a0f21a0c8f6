"""PostgreSQL's item log and state: its migration step and its writes.

An append without a state change is one statement in autocommit, like an
entry's create: it upserts the session row (taking its lock and ``n``
sequence numbers at once) and inserts every item from arrays
(``unnest ... WITH ORDINALITY``), a fixed statement prepared once per
connection whatever the number of items. Pops and deletes are one statement
each: the session row's lock first (``FOR UPDATE``), then the item. A pop
locks the newest item ``FOR UPDATE`` too: an item another pop deleted while
this one waited is skipped for the next newest, so two pops never return one
item.

A state write is one ``READ COMMITTED`` transaction of two statements: lock
(or create) the row and read the state, then write what the store's plan
decided (see ``item_statements.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from sessionstore.backends.sql.engine import bare
from sessionstore.backends.sql.item_statements import (
    ITEM_COLUMNS,
    NOTHING_BUT_ITEMS,
    SCOPE_KEY,
    ItemWrites,
    Plan,
    StateTarget,
)
from sessionstore.backends.sql.postgres_wire import Positional, send
from sessionstore.backends.sql.statements import KEY, LIVE, OWN_KEY, SESSION_COLUMNS

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from sessionstore.backends.sql.codec import Row
    from sessionstore.backends.sql.schema import TableNames

__all__ = ["ITEMS_STEP", "PostgresItems"]

_KEY = 'varchar(256) COLLATE "C" NOT NULL'
ITEMS_STEP: Final = """
CREATE TABLE {t.items} (
    user_key    {key},
    session_key {key},
    seq         bigint      NOT NULL,
    item_id     varchar(36) NOT NULL,
    created_at  bigint      NOT NULL,
    data        text        NOT NULL,
    CONSTRAINT {t.prefix}items_pk PRIMARY KEY (user_key, session_key, seq),
    CONSTRAINT {t.prefix}items_id UNIQUE (user_key, session_key, item_id),
    CONSTRAINT {t.prefix}items_session FOREIGN KEY (user_key, session_key)
        REFERENCES {t.sessions} (user_key, session_key) ON DELETE CASCADE
);
CREATE TABLE {t.scoped} (
    kind     varchar(8) COLLATE "C" NOT NULL,
    name     {key},
    state    text,
    revision bigint NOT NULL,
    CONSTRAINT {t.prefix}scoped_states_pk PRIMARY KEY (kind, name)
);
ALTER TABLE {t.sessions} ADD COLUMN item_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE {t.sessions} ADD COLUMN item_count bigint NOT NULL DEFAULT 0;
ALTER TABLE {t.sessions} ADD COLUMN state text;
ALTER TABLE {t.sessions} ADD COLUMN state_rev bigint NOT NULL DEFAULT 0
""".replace("{key}", _KEY)
"""Schema version 3: the items and scoped states tables, the session row's item and state columns.

Every ``ADD COLUMN`` has a constant default: instant on PostgreSQL 11 and later.
"""

_KEYS: Final = "CAST(:u AS varchar), CAST(:s AS varchar)"
_UNNEST: Final = (
    "unnest(CAST(:ids AS varchar[]), CAST(:times AS bigint[]), CAST(:datas AS text[])) "
    "WITH ORDINALITY AS v(id, t, d, o)"
)
_SLIDE: Final = "updated_at = :now, expires_at = :exp"


class PostgresItems(ItemWrites):
    """PostgreSQL's item and state writes for one namespace.

    Args:
        tables: the namespace's table names.
        delete_expired: the dialect's delete of the session row when it has
            expired (its children go with it).

    """

    def __init__(self, tables: TableNames, delete_expired: str) -> None:
        t = self._tables = tables
        self._delete_expired = Positional(delete_expired)
        self._append = Positional(
            f"WITH s AS (INSERT INTO {t.sessions} AS x ({SESSION_COLUMNS}, item_seq, item_count) "
            "VALUES (:u, :s, :now, :now, :exp, 0, 0, 0, 0, FALSE, :n, :n) "
            "ON CONFLICT (user_key, session_key) DO UPDATE SET "
            "item_seq = x.item_seq + EXCLUDED.item_seq, "
            "item_count = x.item_count + EXCLUDED.item_count, "
            "updated_at = EXCLUDED.updated_at, expires_at = EXCLUDED.expires_at "
            "WHERE x.expires_at IS NULL OR x.expires_at > EXCLUDED.updated_at "
            "RETURNING x.item_seq - CAST(:n AS bigint) AS base, x.state_rev), "
            f"i AS (INSERT INTO {t.items} (user_key, session_key, seq, {ITEM_COLUMNS}) "
            f"SELECT {_KEYS}, s.base + v.o, v.id, v.t, v.d FROM s, {_UNNEST}) "
            "SELECT s.state_rev FROM s"
        )
        # A no-op update takes the row's lock and returns it; an expired row returns nothing.
        self._lock = {
            "session": Positional(
                f"INSERT INTO {t.sessions} AS x ({SESSION_COLUMNS}) "
                "VALUES (:u, :s, :now, :now, :exp, 0, 0, 0, 0, FALSE) "
                "ON CONFLICT (user_key, session_key) DO UPDATE SET updated_at = x.updated_at "
                "WHERE x.expires_at IS NULL OR x.expires_at > :now "
                "RETURNING x.state, x.state_rev AS revision, x.item_seq"
            ),
            "scoped": Positional(
                f"INSERT INTO {t.scoped} AS x (kind, name, state, revision) "
                "VALUES (:kind, :name, NULL, 0) "
                "ON CONFLICT (kind, name) DO UPDATE SET revision = x.revision "
                "RETURNING x.state, x.revision, 0 AS item_seq"
            ),
        }
        self._write = {
            "session": Positional(
                f"WITH x AS (UPDATE {t.sessions} SET item_seq = item_seq + :n, "
                f"item_count = item_count + :n, state = :doc, state_rev = :rev, {_SLIDE} "
                f"WHERE {OWN_KEY}) "
                f"INSERT INTO {t.items} (user_key, session_key, seq, {ITEM_COLUMNS}) "
                f"SELECT {_KEYS}, CAST(:base AS bigint) + v.o, v.id, v.t, v.d FROM {_UNNEST}"
            ),
            "scoped": Positional(
                f"UPDATE {t.scoped} SET state = :doc, revision = :rev WHERE {SCOPE_KEY}"
            ),
        }
        newest = (
            f"SELECT seq FROM {t.items} WHERE {OWN_KEY} AND EXISTS (SELECT 1 FROM s) "
            "ORDER BY seq DESC LIMIT 1 FOR UPDATE"
        )
        self._pop = Positional(self._removal(f"seq = (SELECT seq FROM ({newest}) v)"))
        self._delete = Positional(self._removal("item_id = :id", returns="count(*)"))
        self._clear = Positional(self._removal("TRUE", returns="count(*)"))

    def _removal(self, which: str, returns: str = ITEM_COLUMNS) -> str:
        """Lock the live session, delete the items ``which`` names, count them off.

        The session row goes when they were all it held. ``s`` returns the
        locked row as it is now (not as the statement's snapshot saw it), so
        the counts it decides by are current.
        """
        t = self._tables
        gone = "(SELECT count(*) FROM d)"
        last = f"EXISTS (SELECT 1 FROM s WHERE item_count = {gone} AND {NOTHING_BUT_ITEMS})"
        return (
            f"WITH s AS (SELECT s.qa_count, s.trace_count, s.has_graph, s.item_count, "
            f"s.state_rev FROM {t.sessions} s WHERE {KEY} AND {LIVE} FOR UPDATE), "
            f"d AS (DELETE FROM {t.items} WHERE {OWN_KEY} AND {which} "
            f"AND EXISTS (SELECT 1 FROM s) RETURNING {ITEM_COLUMNS}), "
            f"c AS (UPDATE {t.sessions} SET item_count = item_count - {gone}, {_SLIDE} "
            f"WHERE {OWN_KEY} AND EXISTS (SELECT 1 FROM d) AND NOT {last}), "
            f"x AS (DELETE FROM {t.sessions} WHERE {OWN_KEY} AND EXISTS (SELECT 1 FROM d) "
            f"AND {last}) "
            f"SELECT {returns} FROM d"
        )

    async def append(self, engine: AsyncEngine, params: Mapping[str, Any]) -> int | None:
        """Upsert the session row and insert the items: one statement.

        Nothing is written when the session had expired: it is deleted then.
        """
        revision = await send(engine, self._append, params, "value")
        if revision is not None:
            return int(revision)
        await send(engine, self._delete_expired, params, "count")
        return None

    async def write_state(
        self, engine: AsyncEngine, target: StateTarget, params: Mapping[str, Any], plan: Plan
    ) -> None:
        """Lock the row, let ``plan`` decide, write: one transaction of two statements."""
        lock, write = self._lock[target], self._write[target]
        async with bare(engine, lock.sql) as conn, conn.transaction(isolation="read_committed"):
            row = await conn.fetchrow(lock.sql, *lock.args(params))
            if row is None:  # the session had expired: it starts again
                await conn.execute(self._delete_expired.sql, *self._delete_expired.args(params))
                row = await conn.fetchrow(lock.sql, *lock.args(params))
            decided = {**params, **plan(row)}
            await conn.execute(write.sql, *write.args(decided))

    async def pop(self, engine: AsyncEngine, params: Mapping[str, Any]) -> Row | None:
        """Lock the session, delete its newest item and count it off in one statement."""
        rows: list[Row] = await send(engine, self._pop, params, "rows")
        return rows[0] if rows else None

    async def delete(self, engine: AsyncEngine, params: Mapping[str, Any]) -> bool:
        """Lock the session, delete item ``:id`` and count it off in one statement."""
        return bool(await send(engine, self._delete, params, "value"))

    async def clear(self, engine: AsyncEngine, params: Mapping[str, Any]) -> bool:
        """Lock the session, delete its items and count them off in one statement."""
        return bool(await send(engine, self._clear, params, "value"))
