"""The SQL store's item log and state steps (``backend_steps.py``, issue #14).

:class:`SQLItemSteps` is part of :class:`~sessionstore.backends.sql.SQLStore`:
reads are one statement of :class:`~.item_statements.ItemStatements`, writes
one step of the dialect's :class:`~.item_statements.ItemWrites`. What a state
write does with the state it locked (the revision check, the merge, the size
check) is decided here, once for both databases, by :class:`StatePlan`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from sessionstore.backends.sql.codec import (
    item_params,
    item_record,
    state_from_doc,
    state_record,
    state_to_doc,
)
from sessionstore.errors import StoreError
from sessionstore.items import StateRecord, apply_changes, check_revision

if TYPE_CHECKING:
    from sessionstore.backends.sql.codec import Codec, Row
    from sessionstore.backends.sql.connection import SQLConnection
    from sessionstore.backends.sql.dialect import Dialect
    from sessionstore.backends.sql.item_statements import StateTarget
    from sessionstore.backends.sql.sweep import Sweeper
    from sessionstore.items import ItemRecord, StateScope
    from sessionstore.keys import SessionKey

__all__ = ["STATES_AT_ONCE", "SQLItemSteps", "StatePlan"]

STATES_AT_ONCE: Final = 100
"""How many sessions' states one statement of ``get_states`` reads."""


class StatePlan:
    """Decides a state write from the row it locked; keeps the state it made.

    Args:
        changes: key -> new JSON text (``None`` removes); ``None``: the
            state is left as it is (an append that only checks the revision).
        expected: the revision the caller expects, or ``None``.
        max_bytes: the largest state allowed (``max_field_bytes``).

    """

    def __init__(
        self, changes: Mapping[str, str | None] | None, expected: int | None, max_bytes: int
    ) -> None:
        self._changes = changes
        self._expected = expected
        self._max_bytes = max_bytes
        self.made = StateRecord()
        """The state the write made (set by each call: a retried write decides again)."""

    def __call__(self, row: Row) -> dict[str, Any]:
        """Return the write's ``doc``, ``rev`` and ``base`` for the locked ``row``.

        Raises:
            ConflictError: the state is not at the expected revision.
            InvalidParameterError: the merged state is over ``max_bytes``.

        """
        doc, revision = row["state"], int(row["revision"])
        current = state_from_doc(doc)
        check_revision(revision, self._expected)  # before the size check, as the contract says
        if self._changes is not None:
            current = apply_changes(current, self._changes, self._max_bytes)
            doc, revision = state_to_doc(current), revision + 1
        self.made = StateRecord(current, revision)
        return {"doc": doc, "rev": revision, "base": int(row["item_seq"])}


class SQLItemSteps:
    """The item and state steps of the SQL store (mixed into ``SQLStore``)."""

    if TYPE_CHECKING:  # provided by SQLStore
        max_field_bytes: int
        _db: SQLConnection
        _dialect: Dialect
        _codec: Codec
        _sweeping: Sweeper

        def _params(self, key: SessionKey) -> dict[str, Any]: ...

        def describe(self) -> str:
            """Return the store as errors show it."""
            ...

    def _scope(self, scope: StateScope) -> dict[str, Any]:
        return {"kind": scope.kind, "name": self._codec.key(scope.name)}

    async def _item_write(self, op: Callable[[], Awaitable[Any]]) -> Any:
        """Run a write of items or state (retried on deadlocks only), then maybe sweep."""
        done = await self._db.run(op)
        self._sweeping.wrote()
        return done

    async def _write_state(
        self, target: StateTarget, params: dict[str, Any], plan: StatePlan
    ) -> StateRecord:
        writes = self._dialect.items
        await self._item_write(lambda: writes.write_state(self._db.engine, target, params, plan))
        return plan.made

    async def _append_items(
        self,
        key: SessionKey,
        items: list[ItemRecord],
        changes: dict[str, str | None] | None,
        expected_revision: int | None,
    ) -> int:
        params = {**self._params(key), **item_params(items)}
        if changes is not None or expected_revision is not None:
            plan = StatePlan(changes, expected_revision, self.max_field_bytes)
            return (await self._write_state("session", params, plan)).revision
        writes = self._dialect.items

        async def op() -> int:
            for _ in range(3):
                revision = await writes.append(self._db.engine, params)
                if revision is not None:
                    return revision
            raise StoreError(f"{self.describe()}: the session kept expiring during a write")

        revision: int = await self._item_write(op)
        return revision

    async def _items(self, key: SessionKey, last_n: int | None) -> list[ItemRecord]:
        sql = self._dialect.item_sql
        if last_n is None:
            rows = await self._db.rows(sql.all, self._params(key))
        else:
            newest = await self._db.rows(sql.latest, {**self._params(key), "n": last_n})
            rows = newest[::-1]
        return [item_record(row) for row in rows]

    async def _pop_item(self, key: SessionKey) -> ItemRecord | None:
        writes, params = self._dialect.items, self._params(key)
        row = await self._item_write(lambda: writes.pop(self._db.engine, params))
        return None if row is None else item_record(row)

    async def _delete_item(self, key: SessionKey, item_id: str) -> bool:
        writes, params = self._dialect.items, {**self._params(key), "id": item_id}
        found: bool = await self._item_write(lambda: writes.delete(self._db.engine, params))
        return found

    async def _count_items(self, key: SessionKey) -> int:
        rows = await self._db.rows(self._dialect.item_sql.count, self._params(key))
        return int(rows[0]["item_count"]) if rows else 0

    async def _clear_items(self, key: SessionKey) -> bool:
        writes, params = self._dialect.items, self._params(key)
        found: bool = await self._item_write(lambda: writes.clear(self._db.engine, params))
        return found

    async def _update_state(
        self, key: SessionKey, changes: dict[str, str | None], expected_revision: int | None
    ) -> StateRecord:
        params = {**self._params(key), **item_params([])}
        plan = StatePlan(changes, expected_revision, self.max_field_bytes)
        return await self._write_state("session", params, plan)

    async def _get_state(self, key: SessionKey) -> StateRecord:
        rows = await self._db.rows(self._dialect.item_sql.state, self._params(key))
        return state_record(rows[0]["state"], rows[0]["revision"]) if rows else StateRecord()

    async def _get_states(self, keys: list[SessionKey]) -> list[StateRecord]:
        base = self._params(keys[0])  # every key has the same user
        found: dict[str, StateRecord] = {}
        for start in range(0, len(keys), STATES_AT_ONCE):
            chunk = keys[start : start + STATES_AT_ONCE]
            batch = [self._codec.key(key.session_id) for key in chunk]
            batch += batch[:1] * (STATES_AT_ONCE - len(batch))
            params = {**base, **{f"s{i}": value for i, value in enumerate(batch)}}
            for row in await self._db.rows(self._dialect.item_sql.states, params):
                found[self._codec.unkey(row["session_key"])] = state_record(
                    row["state"], row["revision"]
                )
        return [found.get(key.session_id, StateRecord()) for key in keys]

    async def _scoped_state(self, scope: StateScope) -> StateRecord:
        rows = await self._db.rows(self._dialect.item_sql.scoped, self._scope(scope))
        return state_record(rows[0]["state"], rows[0]["revision"]) if rows else StateRecord()

    async def _update_scoped_state(
        self, scope: StateScope, changes: dict[str, str | None], expected_revision: int | None
    ) -> StateRecord:
        plan = StatePlan(changes, expected_revision, self.max_field_bytes)
        return await self._write_state("scoped", self._scope(scope), plan)
