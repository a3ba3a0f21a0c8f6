"""Plain-JSON forms of entries, trace steps and whole sessions.

Backends that store documents (files, Redis) and ``export_sessions`` use these
so that the conversion lives in one place. Reading back uses
``model_construct``: the data was validated when it was written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sessionstore.errors import InvalidParameterError
from sessionstore.models import SessionQAEntry, SessionTraceStep, UsedGraphElementIds
from sessionstore.validation import check_session_id, check_user_id, normalize_qa_id

__all__ = [
    "EXPORT_FORMAT",
    "SessionData",
    "entry_from_record",
    "entry_to_record",
    "from_micros",
    "now_utc",
    "to_micros",
    "trace_from_record",
    "trace_to_record",
]

EXPORT_FORMAT = "sessionstore.session/1"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def now_utc() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


def to_micros(value: datetime) -> int:
    """Return ``value`` as whole microseconds since the Unix epoch."""
    return (value - _EPOCH) // timedelta(microseconds=1)


def from_micros(value: int) -> datetime:
    """Return the aware UTC datetime ``value`` microseconds after the epoch."""
    return _EPOCH + timedelta(microseconds=value)


def entry_to_record(entry: SessionQAEntry) -> dict[str, Any]:
    """Return ``entry`` as a JSON-compatible dict (times in ISO 8601)."""
    graph = entry.used_graph_element_ids
    return {
        "id": entry.id,
        "session_id": entry.session_id,
        "user_id": entry.user_id,
        "question": entry.question,
        "answer": entry.answer,
        "context": entry.context,
        "created_at": entry.created_at.isoformat(),
        "feedback_text": entry.feedback_text,
        "feedback_score": entry.feedback_score,
        "used_graph_element_ids": None
        if graph is None
        else {"node_ids": list(graph.node_ids), "edge_ids": list(graph.edge_ids)},
        "memify_metadata": entry.memify_metadata,
        "metadata": entry.metadata,
    }


def entry_from_record(record: Mapping[str, Any]) -> SessionQAEntry:
    """Rebuild an entry stored by :func:`entry_to_record` (trusted data)."""
    fields = dict(record)
    fields["created_at"] = datetime.fromisoformat(fields["created_at"])
    graph = fields.get("used_graph_element_ids")
    if graph is not None:
        fields["used_graph_element_ids"] = UsedGraphElementIds.model_construct(**graph)
    return SessionQAEntry.model_construct(**fields)


def trace_to_record(step: SessionTraceStep) -> dict[str, Any]:
    """Return ``step`` as a JSON-compatible dict (times in ISO 8601)."""
    record = step.model_dump(mode="python")
    record["created_at"] = None if step.created_at is None else step.created_at.isoformat()
    return record


def trace_from_record(record: Mapping[str, Any]) -> SessionTraceStep:
    """Rebuild a trace step stored by :func:`trace_to_record` (trusted data)."""
    fields = dict(record)
    if fields.get("created_at") is not None:
        fields["created_at"] = datetime.fromisoformat(fields["created_at"])
    return SessionTraceStep.model_construct(**fields)


@dataclass(slots=True)
class SessionData:
    """Everything one session holds: the unit of export, import and copy."""

    session_id: str
    user_id: str | None
    created_at: datetime
    updated_at: datetime
    graph_context: str | None = None
    entries: list[SessionQAEntry] = field(default_factory=list)
    traces: list[SessionTraceStep] = field(default_factory=list)

    def to_dump(self) -> dict[str, Any]:
        """Return the session as the plain dict ``export_sessions`` yields."""
        return {
            "format": EXPORT_FORMAT,
            "session_id": self.session_id,
            "user_id": self.user_id,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "graph_context": self.graph_context,
            "entries": [entry_to_record(e) for e in self.entries],
            "trace_steps": [trace_to_record(t) for t in self.traces],
        }

    @classmethod
    def from_dump(cls, dump: object) -> SessionData:
        """Validate and rebuild a session from an exported dict.

        Raises:
            InvalidParameterError: unknown format or any invalid field.

        """
        if not isinstance(dump, Mapping):
            raise InvalidParameterError(f"a session dump must be a dict, got {type(dump)}")
        if dump.get("format") != EXPORT_FORMAT:
            raise InvalidParameterError(
                f"unknown session dump format {dump.get('format')!r}; "
                f"this version reads {EXPORT_FORMAT!r}"
            )
        try:
            session_id = check_session_id(dump["session_id"])
            user_id = check_user_id(dump["user_id"])
            graph_context = dump.get("graph_context")
            if graph_context is not None and not isinstance(graph_context, str):
                raise InvalidParameterError("graph_context must be a str or None")
            entries = [_entry_from_dump(r, session_id, user_id) for r in _records(dump, "entries")]
            traces = [_trace_from_dump(r) for r in _records(dump, "trace_steps")]
            return cls(
                session_id=session_id,
                user_id=user_id,
                created_at=_parse_time(dump["created_at"]),
                updated_at=_parse_time(dump["updated_at"]),
                graph_context=graph_context,
                entries=entries,
                traces=traces,
            )
        except (KeyError, TypeError) as exc:
            raise InvalidParameterError(f"malformed session dump: {exc!r}") from exc


def _records(dump: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    records = dump[name]
    if not isinstance(records, list) or not all(isinstance(r, Mapping) for r in records):
        raise InvalidParameterError(f"{name} must be a list of dicts")
    return records


def _parse_time(value: object) -> datetime:
    if not isinstance(value, str):
        raise InvalidParameterError(f"a time must be an ISO 8601 str, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidParameterError(f"bad ISO 8601 time {value!r}") from exc
    if parsed.tzinfo is None:
        raise InvalidParameterError(f"time {value!r} has no time zone")
    return parsed.astimezone(UTC)


def _entry_from_dump(
    record: Mapping[str, Any], session_id: str, user_id: str | None
) -> SessionQAEntry:
    fields = dict(record)
    qa_id = normalize_qa_id(fields.get("id", ""))
    if qa_id is None:
        raise InvalidParameterError(f"entry id {fields.get('id')!r} is not a UUID")
    fields["id"] = qa_id
    fields["created_at"] = _parse_time(fields.get("created_at"))
    graph = fields.get("used_graph_element_ids")
    if isinstance(graph, Mapping):
        fields["used_graph_element_ids"] = UsedGraphElementIds(**graph)
    fields["session_id"] = session_id
    fields["user_id"] = user_id
    return SessionQAEntry(**fields)


def _trace_from_dump(record: Mapping[str, Any]) -> SessionTraceStep:
    fields = dict(record)
    if fields.get("created_at") is not None:
        fields["created_at"] = _parse_time(fields["created_at"])
    return SessionTraceStep(**fields)
