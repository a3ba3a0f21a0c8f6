"""What the Redis backend's values hold: entries, their changes, trace steps, sessions.

An entry is its JSON record (:data:`ENTRY_FORM`, derived from
:data:`sessionstore.stored.RECORD`), except that the free-form JSON fields and
the graph ids hold a JSON *text*. The update script merges records with Redis'
bundled cjson, which would round floats and big ints if it decoded those
values; as strings they pass through it exactly. Every other field is a
string, null or a small int, which cjson keeps as they are. A trace step is
its plain JSON record (:func:`sessionstore.stored.trace_to_json`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from sessionstore.clock import from_micros
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
    "decode_session",
    "decode_trace",
    "encode_changes",
    "encode_entry",
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


def decode_session(key: SessionKey, found: list[Any]) -> SessionData:
    """Rebuild a session from the ``read_session`` script's reply.

    Args:
        key: the session read.
        found: the meta hash as flat field/value pairs, the stored entries
            oldest first (``None`` where one is missing), the stored trace
            steps.

    """
    flat, entries, traces = found
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
    )
