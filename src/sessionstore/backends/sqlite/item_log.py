"""The SQLite store's item log and session state writes, each one transaction.

Items are rows of ``items`` keyed by the session's sequence (``next_seq``,
shared with entries and trace steps), so one turn's items are one
``executemany`` in one ``BEGIN IMMEDIATE`` transaction and come back in the
order their writes committed. The session's row counts them and holds the
state's revision; ``state_rows.merge`` applies a state delta in the same
transaction. Every function runs in the worker thread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence

from sessionstore.backends.sqlite import statements as sql
from sessionstore.backends.sqlite.codec import (
    item_from_row,
    item_to_params,
    key_params,
    state_from_rows,
)
from sessionstore.backends.sqlite.state_rows import merge
from sessionstore.backends.sqlite.transactions import Transactions
from sessionstore.items import ItemRecord, StateRecord, check_revision
from sessionstore.keys import SessionKey

__all__ = ["append", "clear", "delete", "pop", "update_state"]


def append(
    conn: sqlite3.Connection,
    tx: Transactions,
    key: SessionKey,
    items: Sequence[ItemRecord],
    changes: Mapping[str, str | None] | None,
    *,
    expected: int | None,
    max_bytes: int,
) -> int:
    """Append ``items`` and apply ``changes`` (``None``: none) in one transaction.

    Returns:
        The state's revision after the write.

    Raises:
        ConflictError: ``expected`` (a revision) is set and stale; nothing is written.
        InvalidParameterError: the state would be over ``max_bytes``; nothing is written.

    """
    with tx.write(conn, key) as row:
        return _write(conn, tx, (key, row), items, changes, expected=expected, max_bytes=max_bytes)


def update_state(
    conn: sqlite3.Connection,
    tx: Transactions,
    key: SessionKey,
    changes: Mapping[str, str | None],
    *,
    expected: int | None,
    max_bytes: int,
) -> StateRecord:
    """Apply ``changes`` to the session's state; return the state this write made.

    Raises:
        ConflictError: as :func:`append`.
        InvalidParameterError: as :func:`append`.

    """
    with tx.write(conn, key) as row:
        revision = _write(conn, tx, (key, row), (), changes, expected=expected, max_bytes=max_bytes)
        values = conn.execute(sql.SESSION_STATE_VALUES.all_values, key_params(key)).fetchall()
    return state_from_rows(values, revision)


def _write(
    conn: sqlite3.Connection,
    tx: Transactions,
    session: tuple[SessionKey, sqlite3.Row | None],
    items: Sequence[ItemRecord],
    changes: Mapping[str, str | None] | None,
    *,
    expected: int | None,
    max_bytes: int,
) -> int:
    """Write a turn inside :meth:`Transactions.write`; ``session``: the key and its row."""
    key, row = session
    revision = 0 if row is None else int(row["state_revision"])
    check_revision(revision, expected)
    if not items and changes is None:
        return revision  # only a check: nothing to write
    names = key_params(key)
    state = None
    if changes is not None:
        size = 0 if row is None else int(row["state_bytes"])
        size = merge(conn, sql.SESSION_STATE_VALUES, names, changes, size=size, max_bytes=max_bytes)
        revision += 1
        state = (revision, size)
    first = 1 if row is None else int(row["next_seq"])
    tx.touch(conn, key, row, items=len(items), seqs=len(items), state=state)
    conn.executemany(
        sql.INSERT_ITEM,
        [
            {**names, **item_to_params(item), "seq": seq}
            for seq, item in enumerate(items, start=first)
        ],
    )
    return revision


def pop(conn: sqlite3.Connection, tx: Transactions, key: SessionKey) -> ItemRecord | None:
    """Remove and return the newest item, or ``None`` when the session has none."""
    names = key_params(key)
    with tx.write(conn, key) as row:
        newest = None
        if row is not None and row["item_count"]:
            newest = conn.execute(sql.NEWEST_ITEM, names).fetchone()
        if newest is None:
            conn.execute("ROLLBACK")
            return None
        conn.execute(sql.DELETE_ITEM_AT, {**names, "seq": newest["seq"]})
        tx.touch(conn, key, row, items=-1)
        return item_from_row(newest)


def delete(conn: sqlite3.Connection, tx: Transactions, key: SessionKey, item_id: str) -> bool:
    """Delete the item ``item_id``; return whether it existed."""
    params = {**key_params(key), "item_id": item_id}
    with tx.write(conn, key) as row:
        if row is None or not conn.execute(sql.DELETE_ITEM, params).rowcount:
            conn.execute("ROLLBACK")
            return False
        tx.touch(conn, key, row, items=-1)
        return True


def clear(conn: sqlite3.Connection, tx: Transactions, key: SessionKey) -> bool:
    """Delete every item of the session; return whether there was any."""
    with tx.write(conn, key) as row:
        if row is None or not row["item_count"]:
            conn.execute("ROLLBACK")
            return False
        conn.execute(sql.CLEAR_ITEMS, key_params(key))
        tx.touch(conn, key, row, items=-int(row["item_count"]))
        return True
