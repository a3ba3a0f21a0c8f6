"""How SQLite rows hold entries and session keys.

An entry's columns are derived from :data:`sessionstore.stored.ENTRY_FIELDS`
in the :data:`~sessionstore.stored.COLUMNS` form (times in microseconds, JSON
values as compact JSON text). Three columns kept the names they had before the
declaration existed; :data:`LEGACY_COLUMNS` maps those fields to them, and
every other column is named after its field, so a field added later needs
only its migration here. Rows are read by column name, never by position.

A trace step is one JSON document in ``trace_steps.body``
(:func:`sessionstore.stored.trace_to_json`), its id also in
``trace_steps.trace_id``, which a UNIQUE index keeps unique per session. A
whole session (export and import) is its ``sessions`` row plus the rows of the
other tables.

An item is one ``items`` row holding its JSON text as the store made it
(:mod:`sessionstore.items`); a state is one ``state_values`` row per key,
its revision and size in the ``sessions`` row.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from sessionstore.clock import from_micros, to_micros
from sessionstore.items import ItemRecord, StateRecord, state_size
from sessionstore.keys import SessionKey
from sessionstore.models import SessionInfo, SessionQAEntry, SessionTraceStep
from sessionstore.records import SessionData, SessionRows
from sessionstore.stored import (
    COLUMNS,
    ENTRY_FIELDS,
    entry_from_values,
    trace_from_json,
    trace_to_json,
)

__all__ = [
    "ENTRY_COLUMNS",
    "LEGACY_COLUMNS",
    "changes_to_params",
    "column_of",
    "entry_from_row",
    "entry_to_params",
    "item_and_state_rows",
    "item_from_row",
    "item_to_params",
    "key_params",
    "session_from_rows",
    "session_info_from_row",
    "session_to_rows",
    "state_from_rows",
    "trace_id_of_body",
    "trace_to_params",
    "user_id_of",
    "user_key_of",
]

LEGACY_COLUMNS: Final = {
    "created_at": "created_us",
    "used_graph_element_ids": "graph_ids",
    "memify_metadata": "memify",
}
"""Entry fields whose column is not named after the field: field name -> column name."""


def column_of(field: str) -> str:
    """Return the ``entries`` column that holds the entry field ``field``."""
    return LEGACY_COLUMNS.get(field, field)


ENTRY_COLUMNS: Final = tuple(column_of(f.name) for f in ENTRY_FIELDS)
"""The ``entries`` columns of every stored field, in declaration order."""

_ENCODE: Final = dict(COLUMNS.plan(ENTRY_FIELDS))
_DECODE: Final = tuple(
    (name, column_of(name), convert) for name, convert in COLUMNS.plan(ENTRY_FIELDS, decode=True)
)


def user_key_of(user_id: str | None) -> str:
    """Return the ``user_key`` column value: ``''`` for the anonymous user."""
    return "" if user_id is None else user_id


def user_id_of(user_key: str) -> str | None:
    """Invert :func:`user_key_of`."""
    return None if user_key == "" else user_key


def key_params(key: SessionKey) -> dict[str, Any]:
    """Return the ``:user_key`` and ``:session_id`` parameters naming ``key``'s session."""
    return {"user_key": user_key_of(key.user_id), "session_id": key.session_id}


def _encode(values: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    params = {}
    for name in names:
        value = values[name]
        convert = _ENCODE[name]
        params[name] = value if value is None or convert is None else convert(value)
    return params


def entry_to_params(entry: SessionQAEntry) -> dict[str, Any]:
    """Return the named parameters of ``entry``'s stored fields, one per field name."""
    return _encode(entry.__dict__, _ENCODE)


def changes_to_params(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Return the named parameters of an update's changed fields, one per field name."""
    return _encode(changes, changes)


def trace_to_params(step: SessionTraceStep) -> dict[str, Any]:
    """Return the ``:trace_id`` and ``:body`` parameters of a trace step's row."""
    return {"trace_id": step.trace_id, "body": trace_to_json(step)}


def trace_id_of_body(body: str) -> str | None:
    """Return the trace id a ``trace_steps.body`` holds, ``None`` if it cannot be read.

    The schema migration that added ``trace_steps.trace_id`` fills it with this.
    """
    try:
        trace_id = json.loads(body)["trace_id"]
    except (ValueError, TypeError, KeyError, RecursionError):
        return None
    return trace_id if isinstance(trace_id, str) else None


def entry_from_row(row: sqlite3.Row, key: SessionKey) -> SessionQAEntry:
    """Build the entry of ``key`` from a row holding every :data:`ENTRY_COLUMNS`."""
    values = {}
    for name, column, convert in _DECODE:
        value = row[column]
        values[name] = value if value is None or convert is None else convert(value)
    return entry_from_values(values, key.session_id, key.user_id)


def session_info_from_row(row: sqlite3.Row, user_id: str | None) -> SessionInfo:
    """Build a page item from a ``sessions`` row of ``user_id``."""
    return SessionInfo.model_construct(
        session_id=row["session_id"],
        user_id=user_id,
        created_at=from_micros(row["created_us"]),
        updated_at=from_micros(row["updated_us"]),
        qa_count=row["qa_count"],
        item_count=row["item_count"],
    )


def session_to_rows(data: SessionData, expires_us: int | None) -> SessionRows:
    """Return the rows of ``data``: entries take seq 1..n, trace steps the numbers after."""
    names = key_params(SessionKey(data.session_id, data.user_id))
    entries = [
        {**entry_to_params(entry), **names, "seq": seq}
        for seq, entry in enumerate(data.entries, start=1)
    ]
    first_trace = len(entries) + 1
    traces = [
        {**names, "seq": seq, **trace_to_params(step)}
        for seq, step in enumerate(data.traces, start=first_trace)
    ]
    session = {
        **names,
        "created_us": to_micros(data.created_at),
        "updated_us": to_micros(data.updated_at),
        "expires_us": expires_us,
        "next_seq": first_trace + len(traces) + len(data.items),
        "qa": len(entries),
        "traces": len(traces),
        "has_graph": int(data.graph_context is not None),
        "items": len(data.items),
        "state_revision": data.state.revision,
        "state_bytes": state_size(data.state.values),
    }
    graph = None if data.graph_context is None else {**names, "context": data.graph_context}
    return SessionRows(session, entries, traces, graph)


def item_and_state_rows(data: SessionData) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return the ``items`` and ``state_values`` rows of ``data``.

    The items take the sequence numbers after those :func:`session_to_rows`
    gives the entries and trace steps.
    """
    names = key_params(SessionKey(data.session_id, data.user_id))
    first_item = len(data.entries) + len(data.traces) + 1
    items = [
        {**names, **item_to_params(item), "seq": seq}
        for seq, item in enumerate(data.items, start=first_item)
    ]
    state = [{**names, "key": k, "value": v} for k, v in data.state.values.items()]
    return items, state


def item_to_params(item: ItemRecord) -> dict[str, Any]:
    """Return the ``:id``, ``:created_us`` and ``:data`` parameters of an item's row."""
    return {"id": item.id, "created_us": to_micros(item.created_at), "data": item.data}


def item_from_row(row: sqlite3.Row) -> ItemRecord:
    """Build an item from a row holding ``id``, ``created_us`` and ``data``."""
    return ItemRecord(row["id"], row["data"], from_micros(row["created_us"]))


def state_from_rows(rows: Iterable[sqlite3.Row], revision: int) -> StateRecord:
    """Build a state from its ``key``/``value`` rows (a ``NULL`` key is no value)."""
    values = {row["key"]: row["value"] for row in rows if row["key"] is not None}
    return StateRecord(values, revision)


def session_from_rows(
    key: SessionKey,
    session: sqlite3.Row,
    entries: list[sqlite3.Row],
    graph: sqlite3.Row | None,
    traces: list[sqlite3.Row],
    *,
    items: Sequence[sqlite3.Row] = (),
    state: Sequence[sqlite3.Row] = (),
) -> SessionData:
    """Rebuild the session ``key`` from its rows, each list in ``seq`` order.

    ``session`` holds ``created_us``, ``updated_us`` and ``state_revision``.
    """
    return SessionData(
        session_id=key.session_id,
        user_id=key.user_id,
        created_at=from_micros(session["created_us"]),
        updated_at=from_micros(session["updated_us"]),
        graph_context=None if graph is None else graph["context"],
        entries=[entry_from_row(row, key) for row in entries],
        traces=[trace_from_json(row["body"]) for row in traces],
        items=[item_from_row(row) for row in items],
        state=state_from_rows(state, session["state_revision"]),
    )
