"""What is stored of an entry and of a trace step, declared once.

:data:`ENTRY_FIELDS` and :data:`TRACE_FIELDS` name every stored field with its
kind. A backend never lists fields itself: it picks a :class:`Form` (how its
storage holds each kind: :data:`RECORD` for JSON documents, :data:`COLUMNS`
for SQL columns, or one derived from them with :meth:`Form.but`) and derives
its columns, placeholders, rows and records from the declaration, always by
name.

Adding a field to entries means: the model in ``models.py``, one line here,
one migration per SQL dialect (the column), and tests. ``tests/test_stored.py``
fails while the declaration and the models disagree.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sessionstore.clock import from_micros, to_micros
from sessionstore.models import SessionQAEntry, SessionTraceStep, UsedGraphElementIds

__all__ = [
    "COLUMNS",
    "ENTRY_FIELDS",
    "ENTRY_KEY_FIELDS",
    "RECORD",
    "TRACE_FIELDS",
    "Form",
    "Kind",
    "Plan",
    "StoredField",
    "apply_plan",
    "compact_json",
    "entry_document_plan",
    "entry_from_record",
    "entry_from_values",
    "entry_to_record",
    "graph_ids_to_plain",
    "trace_from_json",
    "trace_from_record",
    "trace_to_json",
    "trace_to_record",
]


class Kind(enum.Enum):
    """What a stored field holds, which decides how each storage keeps it."""

    ID = "id"
    """A str id (a UUID for entries); kept as it is everywhere."""
    TEXT = "text"
    """A str of any content (PostgreSQL escapes NUL in it)."""
    INT = "int"
    """A small int."""
    TIME = "time"
    """An aware UTC datetime: ISO 8601 in documents, microseconds in columns."""
    JSON = "json"
    """Any JSON value: itself in documents, compact JSON text in columns."""
    GRAPH = "graph"
    """:class:`UsedGraphElementIds`: a ``{node_ids, edge_ids}`` object."""


@dataclass(frozen=True, slots=True)
class StoredField:
    """One stored field: the model attribute's name, its kind, whether it may be ``None``."""

    name: str
    kind: Kind
    nullable: bool = True


ENTRY_KEY_FIELDS: Final = ("session_id", "user_id")
"""Entry fields that come from the session's key, stored once per session in tables."""

ENTRY_FIELDS: Final = (
    StoredField("id", Kind.ID, nullable=False),
    StoredField("created_at", Kind.TIME, nullable=False),
    StoredField("question", Kind.TEXT, nullable=False),
    StoredField("answer", Kind.TEXT, nullable=False),
    StoredField("context", Kind.TEXT),
    StoredField("feedback_text", Kind.TEXT),
    StoredField("feedback_score", Kind.INT),
    StoredField("used_graph_element_ids", Kind.GRAPH),
    StoredField("memify_metadata", Kind.JSON),
    StoredField("metadata", Kind.JSON),
)
"""Every field of :class:`SessionQAEntry` but its key, in column order."""

TRACE_FIELDS: Final = (
    StoredField("trace_id", Kind.ID, nullable=False),
    StoredField("origin_function", Kind.TEXT, nullable=False),
    StoredField("status", Kind.TEXT, nullable=False),
    StoredField("memory_query", Kind.TEXT, nullable=False),
    StoredField("memory_context", Kind.TEXT, nullable=False),
    StoredField("method_params", Kind.JSON, nullable=False),
    StoredField("method_return_value", Kind.JSON),
    StoredField("error_message", Kind.TEXT, nullable=False),
    StoredField("session_feedback", Kind.TEXT, nullable=False),
    StoredField("created_at", Kind.TIME),
)
"""Every field of :class:`SessionTraceStep`."""


_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
# One encoder for every call: json.dumps with options builds a new one each time.


def compact_json(value: Any) -> str:
    """Return ``value`` as JSON text without spaces, non-ASCII kept as it is."""
    return _COMPACT.encode(value)


def graph_ids_to_plain(graph: UsedGraphElementIds) -> dict[str, list[str]]:
    """Return graph element ids as the plain ``{node_ids, edge_ids}`` object."""
    return {"node_ids": list(graph.node_ids), "edge_ids": list(graph.edge_ids)}


def _graph_from_plain(plain: Mapping[str, Any]) -> UsedGraphElementIds:
    return UsedGraphElementIds.model_construct(**plain)


Convert = Callable[[Any], Any]
Plan = tuple[tuple[str, Convert | None], ...]


@dataclass(frozen=True)
class Form:
    """How one kind of storage holds each :class:`Kind`; ``None`` is always kept as ``None``.

    A kind missing from ``encode``/``decode`` is stored as the value itself.
    """

    encode: Mapping[Kind, Convert]
    decode: Mapping[Kind, Convert]

    def but(self, kind: Kind, encode: Convert | None, decode: Convert | None) -> Form:
        """Return this form with ``kind`` stored another way (``None``: as it is)."""
        encoders, decoders = dict(self.encode), dict(self.decode)
        for table, convert in ((encoders, encode), (decoders, decode)):
            if convert is None:
                table.pop(kind, None)
            else:
                table[kind] = convert
        return Form(encoders, decoders)

    def plan(self, fields: tuple[StoredField, ...], *, decode: bool = False) -> Plan:
        """Return ``(name, convert)`` per field, ``convert`` ``None`` where nothing changes."""
        table = self.decode if decode else self.encode
        return tuple((f.name, table.get(f.kind)) for f in fields)

    def dump(self, fields: tuple[StoredField, ...], values: Mapping[str, Any]) -> dict[str, Any]:
        """Return the stored form of the ``fields`` present in ``values``, by name."""
        kinds = {f.name: f.kind for f in fields}
        stored = {}
        for name, value in values.items():
            convert = self.encode.get(kinds[name])
            stored[name] = value if value is None or convert is None else convert(value)
        return stored

    def dump_model(self, fields: tuple[StoredField, ...], model: Any) -> dict[str, Any]:
        """Return the stored form of every field of ``model``, by name."""
        return _apply(self.plan(fields), model.__dict__)

    def load(self, fields: tuple[StoredField, ...], stored: Mapping[str, Any]) -> dict[str, Any]:
        """Return the model values of every field, read by name from ``stored``."""
        return _apply(self.plan(fields, decode=True), stored)


def _apply(plan: Plan, values: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for name, convert in plan:
        value = values.get(name)  # a field added later is None in older documents
        out[name] = value if value is None or convert is None else convert(value)
    return out


def _graph_to_json(graph: UsedGraphElementIds) -> str:
    return compact_json(graph_ids_to_plain(graph))


def _graph_from_json(text: str | bytes) -> UsedGraphElementIds:
    return _graph_from_plain(json.loads(text))


RECORD: Final = Form(
    encode={Kind.TIME: datetime.isoformat, Kind.GRAPH: graph_ids_to_plain},
    decode={Kind.TIME: datetime.fromisoformat, Kind.GRAPH: _graph_from_plain},
)
"""JSON documents (files, Redis, export): times in ISO 8601, JSON values as they are."""

COLUMNS: Final = Form(
    encode={Kind.TIME: to_micros, Kind.GRAPH: _graph_to_json, Kind.JSON: compact_json},
    decode={Kind.TIME: from_micros, Kind.GRAPH: _graph_from_json, Kind.JSON: json.loads},
)
"""SQL columns: times in microseconds since the epoch, JSON values as JSON text."""


def entry_document_plan(form: Form) -> Plan:
    """Return the plan that writes a whole entry, key included, as a document in ``form``.

    Documents (files, Redis, export dumps) have always listed an entry's keys in
    the model's order, the key fields among them; keeping it keeps their bytes.
    """
    steps = (*form.plan(ENTRY_FIELDS), *((name, None) for name in ENTRY_KEY_FIELDS))
    order = list(SessionQAEntry.model_fields)
    return tuple(sorted(steps, key=lambda step: order.index(step[0])))


def apply_plan(plan: Plan, values: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``values`` converted by ``plan``, by name (see :meth:`Form.plan`)."""
    return _apply(plan, values)


_RECORD_ENTRY_IN = RECORD.plan(ENTRY_FIELDS, decode=True)
_RECORD_ENTRY_DOCUMENT = entry_document_plan(RECORD)
_RECORD_TRACE_OUT = RECORD.plan(TRACE_FIELDS)
_RECORD_TRACE_IN = RECORD.plan(TRACE_FIELDS, decode=True)


def entry_from_values(
    values: dict[str, Any], session_id: str, user_id: str | None
) -> SessionQAEntry:
    """Build an entry from decoded field values (trusted data: not validated again)."""
    values["session_id"] = session_id
    values["user_id"] = user_id
    return SessionQAEntry.model_construct(**values)


def entry_to_record(entry: SessionQAEntry) -> dict[str, Any]:
    """Return ``entry``, key included, as a JSON-compatible dict in the model's field order."""
    return _apply(_RECORD_ENTRY_DOCUMENT, entry.__dict__)


def entry_from_record(record: Mapping[str, Any]) -> SessionQAEntry:
    """Rebuild an entry stored by :func:`entry_to_record` (trusted data)."""
    return entry_from_values(
        _apply(_RECORD_ENTRY_IN, record), record["session_id"], record["user_id"]
    )


def trace_to_record(step: SessionTraceStep) -> dict[str, Any]:
    """Return ``step`` as a JSON-compatible dict."""
    return _apply(_RECORD_TRACE_OUT, step.__dict__)


def trace_from_record(record: Mapping[str, Any]) -> SessionTraceStep:
    """Rebuild a trace step stored by :func:`trace_to_record` (trusted data)."""
    return SessionTraceStep.model_construct(**_apply(_RECORD_TRACE_IN, record))


def trace_to_json(step: SessionTraceStep) -> str:
    """Return ``step`` as one compact JSON document."""
    return compact_json(trace_to_record(step))


def trace_from_json(document: str | bytes) -> SessionTraceStep:
    """Rebuild a trace step from :func:`trace_to_json`'s document."""
    return trace_from_record(json.loads(document))
