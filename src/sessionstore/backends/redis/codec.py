"""What the Redis backend's values hold: entries, their changes, traces, items, states.

An entry is its JSON record (:data:`ENTRY_FORM`, derived from
:data:`sessionstore.stored.RECORD`), except that the free-form JSON fields and
the graph ids hold a JSON *text*. The update script merges records with Redis'
bundled cjson, which would round floats and big ints if it decoded those
values; as strings they pass through it exactly. Every other field is a
string, null or a small int, which cjson keeps as they are. A trace step is
its plain JSON record (:func:`sessionstore.stored.trace_to_json`).

An item is ``<created_at in µs>|<its JSON text>``, and a state value its JSON
text: the text the store made (:mod:`sessionstore.items`), kept as it is.
Scripts never parse either.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from sessionstore.clock import from_micros, to_micros
from sessionstore.items import ItemRecord, StateRecord
from sessionstore.keys import SessionKey
from sessionstore.models import SessionQAEntry
from sessionstore.records import SessionData
from sessionstore.stored import (
    COLUMNS,
    ENTRY_FIELDS,
    Kind,
    apply_plan,
    compact_json,
    entry_document_plan,
    entry_from_values,
)
from sessionstore.stored import trace_from_json as decode_trace
from sessionstore.stored import trace_to_json as encode_trace

__all__ = [
    "ENTRY_FORM",
    "as_text",
    "decode_entry",
    "decode_item",
    "decode_items",
    "decode_listed_items",
    "decode_session",
    "decode_state",
    "decode_trace",
    "encode_changes",
    "encode_entry",
    "encode_item",
    "encode_state_changes",
    "encode_trace",
]


ENTRY_FORM: Final = COLUMNS.but(Kind.TIME, datetime.isoformat, datetime.fromisoformat)
"""An entry's fields in Redis: a JSON record whose JSON and graph fields are JSON texts."""

_ENTRY_DOCUMENT: Final = entry_document_plan(ENTRY_FORM)


def as_text(value: bytes | str) -> str:
    """Return a reply's bytes as text (a client with ``decode_responses`` gives text)."""
    return value.decode() if isinstance(value, bytes) else value


def encode_entry(entry: SessionQAEntry) -> str:
    """Return the stored form of ``entry``, its key included."""
    return compact_json(apply_plan(_ENTRY_DOCUMENT, entry.__dict__))


def encode_changes(changes: Mapping[str, Any]) -> str:
    """Return the stored form of an update's changed fields, to merge into an entry."""
    return compact_json(ENTRY_FORM.dump(ENTRY_FIELDS, changes))


def decode_entry(stored: bytes | str) -> SessionQAEntry:
    """Rebuild an entry from :func:`encode_entry`'s form, merged with changes or not."""
    record = json.loads(stored)
    values = ENTRY_FORM.load(ENTRY_FIELDS, record)
    return entry_from_values(values, record["session_id"], record["user_id"])


def encode_item(item: ItemRecord) -> str:
    """Return the stored form of an item (its id is the key it is stored under)."""
    return f"{to_micros(item.created_at)}|{item.data}"


def decode_item(item_id: bytes | str, stored: bytes | str) -> ItemRecord:
    """Rebuild an item from its id and :func:`encode_item`'s form."""
    micros, _, data = as_text(stored).partition("|")
    return ItemRecord(id=as_text(item_id), data=data, created_at=from_micros(int(micros)))


def decode_listed_items(listed: list[bytes | str | None]) -> list[ItemRecord]:
    """Rebuild items from ``<id>|`` followed by :func:`encode_item`'s form; skip ``None``.

    The items of one append share their time, so a run of them decodes it once.
    """
    items: list[ItemRecord] = []
    last_micros, when = "", None
    for value in listed:
        if value is None:
            continue
        item_id, _, stored = as_text(value).partition("|")
        micros, _, data = stored.partition("|")
        if micros != last_micros or when is None:
            last_micros, when = micros, from_micros(int(micros))
        items.append(ItemRecord(id=item_id, data=data, created_at=when))
    return items


def decode_items(ids: list[Any], stored: list[Any]) -> list[ItemRecord]:
    """Rebuild items from a script's ids and stored values (``None`` where one is missing)."""
    return [decode_item(i, s) for i, s in zip(ids, stored, strict=True) if s is not None]


def encode_state_changes(changes: Mapping[str, str | None]) -> list[str]:
    """Return a state change as the scripts take it: key, JSON text or ``""`` (removes)."""
    flat: list[str] = []
    for key, value in changes.items():
        flat += [key, "" if value is None else value]
    return flat


def decode_state(revision: bytes | str | int, flat: list[Any]) -> StateRecord:
    """Rebuild a state from its revision and its hash as flat key/value pairs."""
    values = {as_text(flat[i]): as_text(flat[i + 1]) for i in range(0, len(flat), 2)}
    return StateRecord(values=values, revision=int(revision))


def decode_session(key: SessionKey, found: list[Any]) -> SessionData:
    """Rebuild a session from the ``read_session`` script's reply.

    Args:
        key: the session read.
        found: the meta hash as flat field/value pairs, the stored entries
            oldest first (``None`` where one is missing), the stored trace
            steps, the item ids oldest first, their stored items, the state
            as flat key/value pairs.

    """
    flat, entries, traces, item_ids, items, state = found
    meta = {as_text(flat[i]): flat[i + 1] for i in range(0, len(flat), 2)}
    graph = meta.get("gc")
    return SessionData(
        session_id=key.session_id,
        user_id=key.user_id,
        created_at=from_micros(int(meta["created"])),
        updated_at=from_micros(int(meta["updated"])),
        graph_context=None if graph is None else as_text(graph),
        entries=[decode_entry(item) for item in entries if item is not None],
        traces=[decode_trace(item) for item in traces],
        items=decode_items(item_ids, items),
        state=decode_state(meta.get("rev", 0), state),
    )
