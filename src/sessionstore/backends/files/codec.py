"""What the lines and files of a ``file://`` session hold.

- ``entries.jsonl``: ``{"n", "op": "add"|"update", "entry"}`` or
  ``{"n", "op": "delete", "id"}``; ``entry`` is the entry's JSON record
  (:func:`sessionstore.stored.entry_to_record`, the form ``export_sessions``
  writes), its keys in the model's field order as they have always been
  written, and ``n`` increases through the file.
- ``traces.jsonl``: one trace step's record per line
  (:func:`sessionstore.stored.trace_to_record`).
- ``graph.json``: ``{"graph_context": "..."}``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sessionstore.backends.files.log import dump_line
from sessionstore.errors import StoreError
from sessionstore.stored import entry_from_record as decode_entry
from sessionstore.stored import entry_to_record as encode_entry
from sessionstore.stored import trace_from_record as decode_trace
from sessionstore.stored import trace_to_record as encode_trace

__all__ = [
    "ADD",
    "DELETE",
    "UPDATE",
    "decode_entry",
    "decode_graph",
    "decode_trace",
    "delete_line",
    "encode_entry",
    "encode_graph",
    "encode_trace",
    "entry_line",
]

ADD, UPDATE, DELETE = "add", "update", "delete"


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
