"""MySQL and MariaDB's item log and state: their migration step and their writes.

An append without a state change is one batch, one round trip, like an
entry's create (items too large together for one packet take one more insert
per packet, in the same transaction): delete the session if expired, upsert its row with
``LAST_INSERT_ID(item_seq)`` (the sequence number after which this call's
items go, while ``item_seq`` moves on by their number), one multi-row
``INSERT`` of the items, and read the state's revision, in one ``READ
COMMITTED`` transaction. Pops and deletes are one batch each that locks the
session row first; a pop reads the newest item and deletes it under that
lock, so two pops never return one item.

A state write is one transaction of two batches on one connection: lock
(or create) the row and read the state, then write what the store's plan
decided and commit (see ``item_statements.py``); anything raised in between
rolls it back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from sessionstore.backends.sql.engine import bare
from sessionstore.backends.sql.item_statements import (
    ITEM_COLUMNS,
    NOTHING_LEFT,
    SCOPE_KEY,
    ItemWrites,
    Plan,
    StateTarget,
)
from sessionstore.backends.sql.mysql_wire import BEGIN, Batch, rollback, run, send
from sessionstore.backends.sql.packet import largest_field
from sessionstore.backends.sql.statements import KEY, LIVE, OWN_KEY, SESSION_COLUMNS
from sessionstore.errors import SessionError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from sessionstore.backends.sql.codec import Row
    from sessionstore.backends.sql.schema import TableNames

__all__ = ["ITEMS_STEP", "MySQLItems"]

# As in mysql.py: binary keys, and every text in utf8mb4 compared byte by byte.
_KEY = "VARBINARY(1024) NOT NULL"
_TABLE = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin ROW_FORMAT=DYNAMIC"
ITEMS_STEP: Final = """
CREATE TABLE IF NOT EXISTS {t.items} (
    user_key    {key},
    session_key {key},
    seq         BIGINT   NOT NULL,
    item_id     CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    created_at  BIGINT   NOT NULL,
    data        LONGTEXT NOT NULL,
    PRIMARY KEY (user_key, session_key, seq),
    UNIQUE KEY {t.prefix}items_id (user_key, session_key, item_id),
    CONSTRAINT {t.prefix}items_session FOREIGN KEY (user_key, session_key)
        REFERENCES {t.sessions} (user_key, session_key) ON DELETE CASCADE
) {table};
CREATE TABLE IF NOT EXISTS {t.scoped} (
    kind     VARCHAR(8) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    name     {key},
    state    LONGTEXT,
    revision BIGINT NOT NULL,
    PRIMARY KEY (kind, name)
) {table};
ALTER TABLE {t.sessions} ADD COLUMN item_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE {t.sessions} ADD COLUMN item_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE {t.sessions} ADD COLUMN state LONGTEXT;
ALTER TABLE {t.sessions} ADD COLUMN state_rev BIGINT NOT NULL DEFAULT 0
""".replace("{key}", _KEY).replace("{table}", _TABLE)
"""Schema version 3: the items and scoped states tables, the session row's item and state columns.

One ``ALTER`` per column, so that a step interrupted halfway runs again
without the columns it added (``Schema`` skips those); the primary key of
``scoped_states`` is at most 1,032 bytes, well within InnoDB's 3,072.
"""

_SLIDE: Final = "updated_at = :now, expires_at = :exp"
_ITEM_LISTS: Final = frozenset({"ids", "times", "datas"})
_CACHED: Final = 64
_ROW_BYTES: Final = 256
"""A bound on what an item's row adds to an insert besides its data: id, time, keys' names."""
_COMMIT: Final = Batch(["COMMIT"])


def _part(params: Mapping[str, Any], start: int, stop: int) -> dict[str, Any]:
    """Return ``params`` with only the items ``start`` to ``stop`` (for one insert)."""
    part = dict(params)
    for name in _ITEM_LISTS & part.keys():
        part[name] = part[name][start:stop]
    return part


"""Append batches are kept for up to this many items; larger ones are built per call."""


class MySQLItems(ItemWrites):
    """MySQL and MariaDB's item and state writes for one namespace.

    Args:
        tables: the namespace's table names.
        delete_expired: the dialect's delete of the session row when it has
            expired (its children go with it).

    """

    packet: int | None = None
    """The server's ``max_allowed_packet``, set by the dialect when the store opens."""

    def __init__(self, tables: TableNames, delete_expired: str) -> None:
        t = self._tables = tables
        self._delete_expired = delete_expired
        live = f"EXISTS (SELECT 1 FROM {t.sessions} s WHERE {KEY} AND {LIVE})"
        self._live = live
        self._lock_live = f"SELECT 1 FROM {t.sessions} s WHERE {KEY} AND {LIVE} FOR UPDATE"
        self._lock = {
            "session": Batch(
                [
                    *BEGIN,
                    delete_expired,
                    f"INSERT INTO {t.sessions} ({SESSION_COLUMNS}) "
                    "VALUES (:u, :s, :now, :now, :exp, 0, 0, 0, 0, FALSE) "
                    "ON DUPLICATE KEY UPDATE updated_at = updated_at",
                    f"SELECT state, state_rev AS revision, item_seq FROM {t.sessions} "
                    f"WHERE {OWN_KEY} FOR UPDATE",
                ]
            ),
            "scoped": Batch(
                [
                    *BEGIN,
                    f"INSERT INTO {t.scoped} (kind, name, state, revision) "
                    "VALUES (:kind, :name, NULL, 0) ON DUPLICATE KEY UPDATE revision = revision",
                    f"SELECT state, revision, 0 AS item_seq FROM {t.scoped} "
                    f"WHERE {SCOPE_KEY} FOR UPDATE",
                ]
            ),
        }
        self._write_scoped = Batch(
            [f"UPDATE {t.scoped} SET state = :doc, revision = :rev WHERE {SCOPE_KEY}", "COMMIT"]
        )
        newest = f"WHERE {OWN_KEY} AND {live} ORDER BY seq DESC LIMIT 1"
        self._pop = self._removal(
            f"DELETE FROM {t.items} {newest}",
            before=[f"SELECT {ITEM_COLUMNS} FROM {t.items} {newest}"],
        )
        self._delete = self._removal(
            f"DELETE FROM {t.items} WHERE {OWN_KEY} AND item_id = :id AND {live}"
        )
        self._clear = self._removal(f"DELETE FROM {t.items} WHERE {OWN_KEY} AND {live}")
        self._appends: dict[int, Batch] = {}
        self._state_writes: dict[int, Batch] = {}
        self._revision_and_commit_steps = (
            f"SELECT state_rev AS revision FROM {t.sessions} WHERE {OWN_KEY}",
            "COMMIT",
        )
        self._revision_and_commit = Batch(list(self._revision_and_commit_steps), result=0)

    # -- statements ----------------------------------------------------------------

    def _insert(self, n: int, first_seq: str) -> str:
        """Insert ``n`` items (``:id_i``, ``:t_i``, ``:d_i``) numbered ``first_seq + i``."""
        rows = ", ".join(
            f"(:u, :s, {first_seq} + {i}, :id_{i}, :t_{i}, :d_{i})" for i in range(1, n + 1)
        )
        return (
            f"INSERT INTO {self._tables.items} (user_key, session_key, seq, {ITEM_COLUMNS}) "
            f"VALUES {rows}"
        )

    def _append_batch(self, n: int, first: int | None = None) -> Batch:
        """Delete the session if expired, upsert its row taking ``n`` numbers, insert the items.

        With ``first``, only the first ``first`` items are inserted and the
        transaction is left open for the rest (see :meth:`append`).
        """
        whole = first is None
        batch = self._appends.get(n) if whole else None
        if batch is not None:
            return batch
        t = self._tables
        steps = [
            *BEGIN,
            self._delete_expired,
            f"INSERT INTO {t.sessions} ({SESSION_COLUMNS}, item_seq, item_count) "
            "VALUES (:u, :s, :now, :now, :exp, 0, 0, 0, 0, FALSE, LAST_INSERT_ID(0) + :n, :n) "
            "ON DUPLICATE KEY UPDATE item_seq = LAST_INSERT_ID(item_seq) + :n, "
            f"item_count = item_count + :n, {_SLIDE}",
            self._insert(n if first is None else first, "LAST_INSERT_ID()"),
        ]
        if first is None:
            batch = Batch([*steps, *self._revision_and_commit_steps], result=-2)
            if n <= _CACHED:
                self._appends[n] = batch
            return batch
        return Batch(steps)

    def _state_write_batch(self, n: int, first: int | None = None) -> Batch:
        """Write the session row's state and counts, insert ``n`` items after ``:base``, commit.

        With ``first`` below ``n``, only the first ``first`` items are inserted
        and the transaction is left open for the rest.
        """
        whole = first is None or first == n
        batch = self._state_writes.get(n) if whole else None
        if batch is not None:
            return batch
        t = self._tables
        steps = [
            f"UPDATE {t.sessions} SET item_seq = item_seq + :n, item_count = item_count + :n, "
            f"state = :doc, state_rev = :rev, {_SLIDE} WHERE {OWN_KEY}"
        ]
        if n:
            steps.append(self._insert(n if whole else int(first or 0), ":base"))
        if not whole:
            return Batch(steps)
        batch = Batch([*steps, "COMMIT"])
        if n <= _CACHED:
            self._state_writes[n] = batch
        return batch

    def _removal(self, delete: str, before: tuple[str, ...] | list[str] = ()) -> Batch:
        """Lock the live session, delete items, count them off or delete the emptied row.

        ``ROW_COUNT()`` of the delete, kept in a session variable, guards
        both. The outcome is the first statement after the lock: ``before``'s
        rows, or the delete's row count.
        """
        t = self._tables
        return Batch(
            [
                *BEGIN,
                self._lock_live,
                *before,
                delete,
                "SET @sessionstore_deleted = ROW_COUNT()",
                f"UPDATE {t.sessions} SET item_count = item_count - @sessionstore_deleted, "
                f"{_SLIDE} WHERE {OWN_KEY} AND @sessionstore_deleted > 0",
                f"DELETE FROM {t.sessions} WHERE {OWN_KEY} AND {NOTHING_LEFT} "
                "AND @sessionstore_deleted > 0",
                "COMMIT",
            ],
            result=len(BEGIN) + 1,
        )

    @staticmethod
    def _values(params: Mapping[str, Any], *, items: bool = True) -> dict[str, Any]:
        """Return ``params`` with the items' lists spread into ``id_i``, ``t_i``, ``d_i``.

        Only the values a batch names are worth escaping: without ``items``, none of them.
        """
        values = {k: v for k, v in params.items() if k not in _ITEM_LISTS}
        if items and "ids" in params:
            for i, (item_id, at, data) in enumerate(
                zip(params["ids"], params["times"], params["datas"], strict=True), 1
            ):
                values[f"id_{i}"], values[f"t_{i}"], values[f"d_{i}"] = item_id, at, data
        return values

    # -- steps -----------------------------------------------------------------------

    async def append(self, engine: AsyncEngine, params: Mapping[str, Any]) -> int:
        """Upsert the session row and insert the items: one batch (an expired one goes first).

        Items too large together for one packet go in several inserts, on one
        connection and in the one transaction.
        """
        n = int(params["n"])
        spans = self._spans(params)
        if len(spans) == 1:
            rows = await send(engine, self._append_batch(n), self._values(params), self.packet)
            return int(rows[0]["revision"])
        head = self._append_batch(n, first=spans[0][1])
        async with bare(engine, head.sql, recover=rollback) as conn:
            await run(conn, head, self._values(_part(params, *spans[0])), self.packet)
            await self._insert_rest(conn, params, spans, "LAST_INSERT_ID()")
            rows = await run(conn, self._revision_and_commit, self._values(params, items=False))
        return int(rows[0]["revision"])

    def _spans(self, params: Mapping[str, Any]) -> list[tuple[int, int]]:
        """Split the items into runs whose insert fits the server's packet, in order."""
        datas = params.get("datas", ())
        if self.packet is None:
            return [(0, len(datas))]
        room = largest_field(self.packet) * 2  # the packet less the statement's own room
        spans: list[tuple[int, int]] = []
        start, size = 0, 0
        for i, data in enumerate(datas):
            # Escaping at most doubles a value; UTF-8 takes at most 4 bytes a character.
            weight = 8 * len(data) + _ROW_BYTES
            if size + weight > room and i > start:
                spans.append((start, i))
                start, size = i, 0
            size += weight
        spans.append((start, len(datas)))
        return spans

    async def _insert_rest(
        self, conn: Any, params: Mapping[str, Any], spans: list[tuple[int, int]], base: str
    ) -> None:
        """Insert the items of every span after the first, numbered on from ``base``."""
        for start, stop in spans[1:]:
            insert = Batch([self._insert(stop - start, f"{base} + {start}")])
            await run(conn, insert, self._values(_part(params, start, stop)), self.packet)

    async def write_state(
        self, engine: AsyncEngine, target: StateTarget, params: Mapping[str, Any], plan: Plan
    ) -> None:
        """Lock the row, let ``plan`` decide, write and commit: two batches on one connection."""
        lock = self._lock[target]
        async with bare(engine, lock.sql, recover=rollback) as conn:
            rows = await run(conn, lock, self._values(params, items=False))
            try:
                decided = {**params, **plan(rows[0])}
                if target == "scoped":
                    await run(conn, self._write_scoped, decided, self.packet)
                else:
                    spans = self._spans(decided)
                    first = spans[0][1]
                    batch = self._state_write_batch(int(decided["n"]), first=first)
                    await run(conn, batch, self._values(_part(decided, 0, first)), self.packet)
                    if len(spans) > 1:
                        await self._insert_rest(conn, decided, spans, ":base")
                        await run(conn, _COMMIT, {})
            except SessionError:  # ours, before the write was sent: the connection is fine
                await conn.rollback()
                raise

    async def pop(self, engine: AsyncEngine, params: Mapping[str, Any]) -> Row | None:
        """Lock the session, read and delete its newest item, count it off: one batch."""
        rows: list[Row] = await send(engine, self._pop, params)
        return rows[0] if rows else None

    async def delete(self, engine: AsyncEngine, params: Mapping[str, Any]) -> bool:
        """Lock the session, delete item ``:id`` and count it off: one batch."""
        return bool(await send(engine, self._delete, params))

    async def clear(self, engine: AsyncEngine, params: Mapping[str, Any]) -> bool:
        """Lock the session, delete its items and count them off: one batch."""
        return bool(await send(engine, self._clear, params))
