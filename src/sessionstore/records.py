"""Whole sessions: the unit of export, import and copy, and its dump format.

Entries and trace steps become JSON records through ``sessionstore.stored``;
this module adds the session around them and validates dumps on import.

Format ``sessionstore.session/2`` adds the item log (``"items"``: a list of
``{"id", "data", "created_at"}`` with ``data`` the JSON value itself) and the
session state (``"state"``: ``{"data": {...}, "revision": n}``). Dumps of
format ``/1`` still import, as sessions without items and with no state.
"""

from __future__ import annotations

import json
import reprlib
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from sessionstore.clock import from_micros
from sessionstore.errors import InvalidParameterError
from sessionstore.items import (
    MAX_REVISION,
    ItemRecord,
    StateRecord,
    encode_changes,
    encode_value,
)
from sessionstore.models import SessionQAEntry, SessionTraceStep, UsedGraphElementIds
from sessionstore.stored import (
    entry_to_record,
    trace_to_record,
)
from sessionstore.validation import check_json, check_session_id, check_user_id, normalize_qa_id

__all__ = [
    "EARLIEST_TIME",
    "EXPORT_FORMAT",
    "IMPORT_FORMATS",
    "LATEST_TIME",
    "SessionData",
    "SessionRows",
    "shown_id",
]

EXPORT_FORMAT = "sessionstore.session/2"
"""The format ``export_sessions`` writes."""
IMPORT_FORMATS: Final = ("sessionstore.session/1", EXPORT_FORMAT)
"""The formats ``import_sessions`` reads: ``/1`` has no items and no state."""

EARLIEST_TIME: Final = from_micros(0)
"""The earliest time a dump may hold: the Unix epoch (Redis has no score for earlier)."""
LATEST_TIME: Final = from_micros(2**53)
"""The latest time a dump may hold, 2255-06-05T23:47:34.740992Z.

Redis orders a user's sessions by a float score in microseconds, exact up to
2**53; every other backend keeps any time in this range exactly too.
"""


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
    items: list[ItemRecord] = field(default_factory=list)
    state: StateRecord = field(default_factory=StateRecord)

    def holds_nothing(self) -> bool:
        """Whether the session is empty: importing it ends the stored one."""
        return self.graph_context is None and not (
            self.entries or self.traces or self.items or self.state.values or self.state.revision
        )

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
            "items": [_item_to_dump(item) for item in self.items],
            "state": {
                "data": {k: json.loads(self.state.values[k]) for k in sorted(self.state.values)},
                "revision": self.state.revision,
            },
        }

    @classmethod
    def from_dump(cls, dump: object) -> SessionData:
        """Validate and rebuild a session from an exported dict.

        Raises:
            InvalidParameterError: unknown format or any invalid field.

        """
        if not isinstance(dump, Mapping):
            raise InvalidParameterError(f"a session dump must be a dict, got {type(dump)}")
        if dump.get("format") not in IMPORT_FORMATS:
            raise InvalidParameterError(
                f"unknown session dump format {reprlib.repr(dump.get('format'))}; "
                f"this version reads {' and '.join(map(repr, IMPORT_FORMATS))}"
            )
        try:
            session_id = check_session_id(dump["session_id"])
            user_id = check_user_id(dump["user_id"])
            graph_context = dump.get("graph_context")
            if graph_context is not None and not isinstance(graph_context, str):
                raise InvalidParameterError("graph_context must be a str or None")
            entries = [_entry_from_dump(r, session_id, user_id) for r in _records(dump, "entries")]
            _check_unique((e.id for e in entries), "entry id")
            traces = [_trace_from_dump(r) for r in _records(dump, "trace_steps")]
            _check_unique((t.trace_id for t in traces), "trace id")
            items: list[ItemRecord] = []
            state = StateRecord()
            if dump["format"] != IMPORT_FORMATS[0]:
                items = [_item_from_dump(r) for r in _records(dump, "items")]
                _check_unique((i.id for i in items), "item id")
                state = _state_from_dump(dump["state"])
            return cls(
                session_id=session_id,
                user_id=user_id,
                created_at=_parse_time(dump["created_at"]),
                updated_at=_parse_time(dump["updated_at"]),
                graph_context=graph_context,
                entries=entries,
                traces=traces,
                items=items,
                state=state,
            )
        except (KeyError, TypeError) as exc:
            raise InvalidParameterError(f"malformed session dump: {exc!r}") from exc


@dataclass(frozen=True, slots=True)
class SessionRows:
    """One whole session as the rows of a SQL store's tables, each as named parameters."""

    session: dict[str, Any]
    entries: list[dict[str, Any]]
    traces: list[dict[str, Any]]
    graph: dict[str, Any] | None


def _records(dump: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    records = dump[name]
    if not isinstance(records, list) or not all(isinstance(r, Mapping) for r in records):
        raise InvalidParameterError(f"{name} must be a list of dicts")
    return records


def _check_unique(ids: Iterable[str], what: str) -> None:
    seen: set[str] = set()
    for value in ids:
        if value in seen:
            raise InvalidParameterError(
                f"{what} {shown_id(value)} appears twice in one session; "
                f"a session holds each {what} once"
            )
        seen.add(value)


def shown_id(value: str) -> str:
    """Return an id for an error message: its ``repr``, cut after 100 characters."""
    return repr(value) if len(value) <= 100 else repr(value[:100]) + "..."


def _parse_time(value: object) -> datetime:
    if not isinstance(value, str):
        raise InvalidParameterError(f"a time must be an ISO 8601 str, got {reprlib.repr(value)}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidParameterError(f"bad ISO 8601 time {value!r}") from exc
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise InvalidParameterError(f"time {value!r} has no time zone")
    try:
        in_utc = parsed.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is in year 0 in UTC
        in_utc = None
    if in_utc is None or not EARLIEST_TIME <= in_utc <= LATEST_TIME:
        raise InvalidParameterError(
            f"time {value!r} is outside the range a store keeps, "
            f"{EARLIEST_TIME.isoformat()} to {LATEST_TIME.isoformat()}"
        )
    return in_utc


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


def _item_to_dump(item: ItemRecord) -> dict[str, Any]:
    return {"id": item.id, "data": json.loads(item.data), "created_at": item.created_at.isoformat()}


def _item_from_dump(record: Mapping[str, Any]) -> ItemRecord:
    item_id = record["id"]
    normalized = normalize_qa_id(item_id) if isinstance(item_id, str) else None
    if normalized is None:
        raise InvalidParameterError(f"item id {reprlib.repr(item_id)} is not a UUID")
    data = record["data"]
    check_json(data, "item data", sys.maxsize)
    return ItemRecord(normalized, encode_value(data), _parse_time(record["created_at"]))


def _state_from_dump(state: object) -> StateRecord:
    if not isinstance(state, Mapping):
        raise InvalidParameterError(f"state must be a dict, got {type(state).__name__}")
    data, revision = state["data"], state["revision"]
    if not isinstance(data, Mapping):
        raise InvalidParameterError(f"state data must be a dict, got {type(data).__name__}")
    if isinstance(revision, bool) or not isinstance(revision, int):
        raise InvalidParameterError(f"state revision must be an int, got {reprlib.repr(revision)}")
    if not 0 <= revision <= MAX_REVISION:
        raise InvalidParameterError(f"state revision must be from 0 to {MAX_REVISION}")
    if revision == 0 and data:
        raise InvalidParameterError("a state with data has a revision of at least 1")
    values = encode_changes(data, "state data")
    if any(v is None for v in values.values()):
        raise InvalidParameterError("state data values must not be None")
    return StateRecord({k: v for k, v in values.items() if v is not None}, revision)


def _trace_from_dump(record: Mapping[str, Any]) -> SessionTraceStep:
    fields = dict(record)
    if fields.get("created_at") is not None:
        fields["created_at"] = _parse_time(fields["created_at"])
    return SessionTraceStep(**fields)
