"""What the lines and files of a ``file://`` session hold.

- ``entries.jsonl``: ``{"n", "op": "add"|"update", "entry"}`` or
  ``{"n", "op": "delete", "id"}``; ``entry`` is the entry's JSON record
  (:func:`sessionstore.stored.entry_to_record`, the form ``export_sessions``
  writes), its keys in the model's field order as they have always been
  written, and ``n`` increases through the file.
- ``traces.jsonl``: one trace step's record per line
  (:func:`sessionstore.stored.trace_to_record`).
- ``trace_ids.jsonl``: line for line, the trace id of each step in
  ``traces.jsonl`` as a JSON string (:func:`trace_id_line`); one trace id
  per session, checked by searching its line in the file.
- ``graph.json``: ``{"graph_context": "..."}``.
- ``items.jsonl``: ``{"n", "op": "add", "id", "created_at", "data"}``, where
  ``data`` is the item's JSON value itself (the store's JSON text, written as
  it is), ``{"n", "op": "delete", "id"}`` (``pop_item``, ``delete_item``) or
  ``{"n", "op": "clear"}``; ``n`` increases through the file.
- ``values.json``: a state's values, one JSON object of key -> JSON value.
  Read back, a value becomes its compact JSON text again, which is the text
  the store made, so it round-trips exactly (:mod:`sessionstore.items`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from sessionstore.backends.files.log import dump_line
from sessionstore.errors import StoreError
from sessionstore.items import ItemRecord
from sessionstore.stored import compact_json
from sessionstore.stored import entry_from_record as decode_entry
from sessionstore.stored import entry_to_record as encode_entry
from sessionstore.stored import trace_from_record as decode_trace
from sessionstore.stored import trace_to_record as encode_trace

__all__ = [
    "ADD",
    "CLEAR",
    "DELETE",
    "UPDATE",
    "clear_line",
    "decode_entry",
    "decode_graph",
    "decode_trace",
    "decode_values",
    "delete_line",
    "encode_entry",
    "encode_graph",
    "encode_trace",
    "encode_values",
    "entry_line",
    "item_from_record",
    "item_line",
    "trace_id_line",
]

ADD, UPDATE, DELETE, CLEAR = "add", "update", "delete", "clear"


def entry_line(n: int, op: str, record: dict[str, Any]) -> dict[str, Any]:
    """Return line ``n`` of ``entries.jsonl`` adding (``ADD``) or updating an entry."""
    return {"n": n, "op": op, "entry": record}


def delete_line(n: int, qa_id: str) -> dict[str, Any]:
    """Return line ``n`` of ``entries.jsonl`` deleting entry ``qa_id``."""
    return {"n": n, "op": DELETE, "id": qa_id}


def encode_graph(context: str) -> bytes:
    """Return the contents of ``graph.json`` holding ``context``."""
    return dump_line({"graph_context": context})


def decode_graph(path: Path, raw: bytes) -> str:
    """Return the graph context ``graph.json`` holds.

    Raises:
        StoreError: the file is not a graph context this backend wrote.

    """
    try:
        value = json.loads(raw)["graph_context"]
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"{path} is corrupt ({exc}); restore it from a backup") from exc
    if not isinstance(value, str):
        raise StoreError(f"{path} is corrupt: graph_context is not a string")
    return value


def item_line(n: int, item: ItemRecord) -> bytes:
    """Return line ``n`` of ``items.jsonl`` adding ``item``, its JSON text embedded as it is."""
    head = compact_json(
        {"n": n, "op": ADD, "id": item.id, "created_at": item.created_at.isoformat()}
    )
    return f'{head[:-1]},"data":{item.data}}}\n'.encode()


def trace_id_line(trace_id: str) -> bytes:
    """Return the line of ``trace_ids.jsonl`` for ``trace_id``: the same id, the same bytes."""
    return compact_json(trace_id).encode() + b"\n"


def clear_line(n: int) -> dict[str, Any]:
    """Return line ``n`` of ``items.jsonl`` removing every item before it."""
    return {"n": n, "op": CLEAR}


def item_from_record(record: Mapping[str, Any]) -> ItemRecord:
    """Return the item an ``add`` line of ``items.jsonl`` holds.

    Raises:
        KeyError, TypeError, ValueError: the line is not an item this backend wrote.

    """
    created_at = datetime.fromisoformat(record["created_at"])
    return ItemRecord(str(record["id"]), compact_json(record["data"]), created_at)


def encode_values(values: Mapping[str, str]) -> bytes:
    """Return the contents of ``values.json`` holding ``values`` (key -> JSON text)."""
    body = ",".join(f"{compact_json(key)}:{value}" for key, value in values.items())
    return f"{{{body}}}\n".encode()


def decode_values(path: Path, raw: bytes) -> dict[str, str]:
    """Return the values (key -> JSON text) ``values.json`` holds.

    Raises:
        StoreError: the file is not a state this backend wrote.

    """
    try:
        values = json.loads(raw)
    except ValueError as exc:
        raise StoreError(f"{path} is corrupt ({exc}); restore it from a backup") from exc
    if not isinstance(values, dict):
        raise StoreError(f"{path} is corrupt: it holds no JSON object; restore it from a backup")
    return {key: compact_json(value) for key, value in values.items()}
