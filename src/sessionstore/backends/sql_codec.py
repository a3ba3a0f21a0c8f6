r"""How values go into SQL columns and come back, per database.

PostgreSQL ``text`` cannot hold NUL, so on PostgreSQL a string holding NUL
(or starting with the marker ``\x01``) is stored as the marker followed by
its JSON form, and decoded back on read; every other string is stored as it
is. MySQL/MariaDB ``LONGTEXT`` holds any string, and key columns there are
``VARBINARY`` holding UTF-8.
"""

from __future__ import annotations

import json
from typing import Any

from sessionstore.models import SessionQAEntry, SessionTraceStep, UsedGraphElementIds
from sessionstore.records import from_micros, to_micros, trace_from_record, trace_to_record

__all__ = ["ENTRY_COLUMNS", "Codec"]

ENTRY_COLUMNS = (
    "entry_id",
    "created_at",
    "question",
    "answer",
    "context",
    "feedback_text",
    "feedback_score",
    "used_graph_element_ids",
    "memify_metadata",
    "metadata",
)
_TEXT_FIELDS = frozenset({"question", "answer", "context", "feedback_text"})
_JSON_FIELDS = frozenset({"memify_metadata", "metadata"})
_MARK = "\x01"


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class Codec:
    """Encodes keys and texts for one database and decodes rows back."""

    def __init__(self, dialect: str) -> None:
        self.binary_keys = dialect == "mysql"
        self.escape_nul = dialect == "postgresql"

    def key(self, value: str | None) -> str | bytes:
        """Return a key column value; the anonymous user is ``''``."""
        raw = "" if value is None else value
        return raw.encode() if self.binary_keys else raw

    def unkey(self, raw: str | bytes) -> str:
        """Return the id a key column value stands for."""
        return raw.decode() if isinstance(raw, bytes) else raw

    def user(self, raw: str | bytes) -> str | None:
        """Return the user id a ``user_key`` column value stands for."""
        return self.unkey(raw) or None

    def text_in(self, value: str) -> str:
        """Return ``value`` as stored in a text column."""
        if self.escape_nul and ("\x00" in value or value.startswith(_MARK)):
            return _MARK + _dumps(value)
        return value

    def text_out(self, value: str) -> str:
        """Return the string a text column value stands for."""
        if self.escape_nul and value.startswith(_MARK):
            decoded: str = json.loads(value[1:])
            return decoded
        return value

    def field(self, name: str, value: Any) -> Any:
        """Return an entry field's value as stored in its column."""
        if value is None:
            return None
        if name in _TEXT_FIELDS:
            return self.text_in(value)
        if name in _JSON_FIELDS:
            return _dumps(value)
        if name == "used_graph_element_ids":
            graph: UsedGraphElementIds = value
            return _dumps({"node_ids": list(graph.node_ids), "edge_ids": list(graph.edge_ids)})
        if name == "created_at":
            return to_micros(value)
        return value

    def entry_row(self, entry: SessionQAEntry) -> dict[str, Any]:
        """Return the column values of a new entry."""
        values = {name: self.field(name, getattr(entry, name)) for name in ENTRY_COLUMNS[1:]}
        values["entry_id"] = entry.id
        return values

    def entry(self, row: Any, session_id: str, user_id: str | None) -> SessionQAEntry:
        """Rebuild an entry from a row selected as :data:`ENTRY_COLUMNS`."""
        (entry_id, created, question, answer, context, feedback, score, graph, memify, meta) = row
        return SessionQAEntry.model_construct(
            id=entry_id,
            session_id=session_id,
            user_id=user_id,
            question=self.text_out(question),
            answer=self.text_out(answer),
            context=None if context is None else self.text_out(context),
            created_at=from_micros(created),
            feedback_text=None if feedback is None else self.text_out(feedback),
            feedback_score=score,
            used_graph_element_ids=None
            if graph is None
            else UsedGraphElementIds.model_construct(**json.loads(graph)),
            memify_metadata=None if memify is None else json.loads(memify),
            metadata=None if meta is None else json.loads(meta),
        )

    @staticmethod
    def step_in(step: SessionTraceStep) -> str:
        """Return a trace step as its JSON document (NUL is escaped by JSON)."""
        return _dumps(trace_to_record(step))

    @staticmethod
    def step_out(document: str) -> SessionTraceStep:
        """Rebuild a trace step from its JSON document."""
        return trace_from_record(json.loads(document))
