"""The item log and states in SQL: the tables' use both databases share, and the writes' contract.

A session's items are rows of ``<prefix>items`` keyed by ``(user_key,
session_key, seq)``, each holding its id, its time and its value as the exact
JSON text the store made (``data``; never a JSON column, which would reorder
keys or lose ``-0.0``). The session row counts them (``item_count``) and
hands out their sequence numbers (``item_seq``), as it does for entries.

A session's state is a document on its session row (``state``, ``NULL`` for
none) with its revision (``state_rev``); a user's or an app's state is a row
of ``<prefix>scoped_states`` keyed by ``(kind, name)``. A document is a JSON
object whose values are the stored JSON texts as they are
(:func:`~sessionstore.backends.sql.codec.state_to_doc`), so an update is one
read and one write of the row it locks: the merge, the revision check and the
size check happen in Python in between, inside one short transaction.

:class:`ItemWrites` is what each database implements (``postgres_items.py``,
``mysql_items.py``); reads are plain statements of :class:`ItemStatements`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, Literal

from sqlalchemy import text

from sessionstore.backends.sql.item_steps import STATES_AT_ONCE
from sessionstore.backends.sql.statements import KEY, LIVE

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from sessionstore.backends.sql.codec import Row
    from sessionstore.backends.sql.schema import TableNames

__all__ = [
    "ITEM_COLUMNS",
    "NOTHING_BUT_ENTRIES",
    "NOTHING_BUT_ITEMS",
    "NOTHING_LEFT",
    "SCOPE_KEY",
    "ItemStatements",
    "ItemWrites",
    "Plan",
    "StateTarget",
]

ITEM_COLUMNS: Final = "item_id, created_at, data"
"""What a read returns of an item."""
NOTHING_BUT_ITEMS: Final = (
    "qa_count = 0 AND trace_count = 0 AND has_graph = FALSE AND state_rev = 0"
)
"""A session row that holds nothing but items (if any)."""
NOTHING_LEFT: Final = f"{NOTHING_BUT_ITEMS} AND item_count = 0"
"""A session row that holds nothing: the write that made it so deletes it."""
NOTHING_BUT_ENTRIES: Final = (
    "trace_count = 0 AND has_graph = FALSE AND item_count = 0 AND state_rev = 0"
)
"""A session row that holds nothing but entries (if any)."""
SCOPE_KEY: Final = "kind = :kind AND name = :name"
"""A ``scoped_states`` row is the one of ``:kind`` and ``:name``."""

StateTarget = Literal["session", "scoped"]
"""Whose state a write changes: the session's (``:u``, ``:s``) or a scope's (``:kind``, ``:name``).
"""

Plan = Callable[["Row"], dict[str, Any]]
"""Decides a state write from the locked row (``state``, ``revision``, ``item_seq``).

It returns the write's ``doc`` (the new document), ``rev`` (the new
revision) and ``base`` (the sequence number after which the items go), or
raises (ConflictError, InvalidParameterError) to write nothing.
"""


class ItemStatements:
    """The item and state reads of one namespace, the same on every database.

    Args:
        tables: the namespace's table names.

    """

    def __init__(self, tables: TableNames) -> None:
        t = tables
        items_of = (
            f"FROM {t.sessions} s JOIN {t.items} i "
            f"ON i.user_key = s.user_key AND i.session_key = s.session_key WHERE {KEY} AND {LIVE}"
        )
        cols = "i.item_id, i.created_at, i.data"
        # Backward on the primary key, limit n: the cost does not grow with the session.
        self.latest = text(f"SELECT {cols} {items_of} ORDER BY i.seq DESC LIMIT :n")
        self.all = text(f"SELECT {cols} {items_of} ORDER BY i.seq")
        self.count = text(f"SELECT s.item_count FROM {t.sessions} s WHERE {KEY} AND {LIVE}")
        self.state = text(
            f"SELECT s.state, s.state_rev AS revision FROM {t.sessions} s WHERE {KEY} AND {LIVE}"
        )
        some = ", ".join(f":s{i}" for i in range(STATES_AT_ONCE))
        # One statement for every batch (the last padded with repeats), so it is prepared once.
        self.states = text(
            f"SELECT s.session_key, s.state, s.state_rev AS revision FROM {t.sessions} s "
            f"WHERE s.user_key = :u AND s.session_key IN ({some}) AND {LIVE}"
        )
        self.scoped = text(f"SELECT state, revision FROM {t.scoped} WHERE {SCOPE_KEY}")
        self.insert = text(
            f"INSERT INTO {t.items} (user_key, session_key, seq, {ITEM_COLUMNS}) "
            "VALUES (:u, :s, :seq, :item_id, :created_at, :data)"
        )


class ItemWrites(abc.ABC):
    """One database's writes of items and states, each atomic.

    Every step runs on a connection of ``engine`` and lets driver errors
    through (the store's connection retries and translates them), as the
    dialect's steps do. ``params`` holds the session's ``u``, ``s``, ``now``
    and ``exp`` (or a scope's ``kind`` and ``name``) and, for appends, the
    items as ``n``, ``ids``, ``times`` and ``datas`` (lists in order).
    Every write takes the session row's lock first, as every other write
    does; one that removes a session's last item and leaves it holding
    nothing (:data:`NOTHING_LEFT`) deletes the session row.
    """

    @abc.abstractmethod
    async def append(self, engine: AsyncEngine, params: Mapping[str, Any]) -> int | None:
        """Append items after every existing one (creating the session), in one round trip.

        Returns:
            The state's revision, or ``None`` when the session had expired and
            nothing was written (it is deleted then; the caller tries again).

        """

    @abc.abstractmethod
    async def write_state(
        self, engine: AsyncEngine, target: StateTarget, params: Mapping[str, Any], plan: Plan
    ) -> None:
        """Lock (creating if needed) the session or scope row, run ``plan``, write what it says.

        One transaction: an expired session is replaced by a new one first;
        a session's write also appends the items in ``params`` and slides its
        expiry. Whatever ``plan`` raises is raised after rolling back.
        """

    @abc.abstractmethod
    async def pop(self, engine: AsyncEngine, params: Mapping[str, Any]) -> Row | None:
        """Delete and return the newest item of a live session (its ``ITEM_COLUMNS``).

        Two concurrent pops never return the same item.
        """

    @abc.abstractmethod
    async def delete(self, engine: AsyncEngine, params: Mapping[str, Any]) -> bool:
        """Delete item ``:id`` of a live session; ``True`` if it existed."""

    @abc.abstractmethod
    async def clear(self, engine: AsyncEngine, params: Mapping[str, Any]) -> bool:
        """Delete every item of a live session; ``True`` if there were any."""
