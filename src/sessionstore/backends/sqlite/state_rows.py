"""States in SQLite rows: a session's, and a user's or an app's (scoped).

A state is one row per key (``state_values`` for a session, ``scoped_values``
for a scope). Its revision and its size (:func:`sessionstore.items.state_size`)
are kept beside it, in the session's row or in ``scoped_states``, so a delta
reads and writes only the keys it names, and appending a turn with a state
delta never reads the whole state. Every function runs in the worker thread;
the writing ones inside a ``BEGIN IMMEDIATE`` transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from sessionstore.backends.sqlite import statements as sql
from sessionstore.backends.sqlite.codec import state_from_rows, user_key_of
from sessionstore.backends.sqlite.transactions import Transactions
from sessionstore.errors import InvalidParameterError
from sessionstore.items import StateRecord, StateScope, check_revision, state_size

__all__ = ["merge", "read_scoped", "scope_params", "update_scoped"]


def scope_params(scope: StateScope) -> dict[str, Any]:
    """Return the ``:kind`` and ``:name`` parameters of a scoped state.

    The anonymous user's name is ``''``, as in ``user_key``; an app name is
    never empty.
    """
    return {"kind": scope.kind, "name": user_key_of(scope.name)}


def merge(
    conn: sqlite3.Connection,
    statements: sql.StateStatements,
    owner: Mapping[str, Any],
    changes: Mapping[str, str | None],
    *,
    size: int,
    max_bytes: int,
) -> int:
    """Apply ``changes`` to the state ``owner`` names, now ``size`` bytes; return its new size.

    Raises:
        InvalidParameterError: the merged state would be over ``max_bytes``;
            nothing is changed.

    """
    for key, value in changes.items():
        old = conn.execute(statements.value, {**owner, "key": key}).fetchone()
        if old is not None:
            size -= state_size({key: old["value"]})
        if value is not None:
            size += state_size({key: value})
    if size > max_bytes:
        raise InvalidParameterError(
            f"the state would hold {size} bytes, over max_field_bytes={max_bytes}"
        )
    conn.executemany(
        statements.delete_value,
        [{**owner, "key": key} for key, value in changes.items() if value is None],
    )
    conn.executemany(
        statements.set_value,
        [{**owner, "key": k, "value": v} for k, v in changes.items() if v is not None],
    )
    return size


def read_scoped(conn: sqlite3.Connection, scope: StateScope) -> StateRecord:
    """Return a user's or an app's state (empty, revision 0, if it was never written)."""
    rows = conn.execute(sql.SCOPED_STATE, scope_params(scope)).fetchall()
    return state_from_rows(rows, rows[0]["revision"]) if rows else StateRecord()


def update_scoped(
    conn: sqlite3.Connection,
    tx: Transactions,
    scope: StateScope,
    changes: Mapping[str, str | None],
    *,
    expected: int | None,
    max_bytes: int,
) -> StateRecord:
    """Apply ``changes`` to a user's or an app's state; return the state after it.

    Raises:
        ConflictError: ``expected`` (a revision) is set and stale.
        InvalidParameterError: the state would be over ``max_bytes``.

    """
    params = scope_params(scope)
    with tx.begin(conn):
        row = conn.execute(sql.SCOPED_FOR_WRITE, params).fetchone()
        revision, size = (0, 0) if row is None else (row["revision"], row["bytes"])
        check_revision(revision, expected)
        size = merge(conn, sql.SCOPED_STATE_VALUES, params, changes, size=size, max_bytes=max_bytes)
        revision += 1
        conn.execute(sql.STORE_SCOPED, {**params, "revision": revision, "bytes": size})
        values = conn.execute(sql.SCOPED_STATE_VALUES.all_values, params).fetchall()
    return state_from_rows(values, revision)
