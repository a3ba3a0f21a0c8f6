"""How entries, texts and session keys go into SQL columns and come back.

An entry's columns are derived from :data:`sessionstore.stored.ENTRY_FIELDS`
in a :class:`~sessionstore.stored.Form` its dialect chooses (PostgreSQL's
escapes NUL in texts; MySQL's is :data:`~sessionstore.stored.COLUMNS` as it
is). One column kept the name it had before the declaration existed
(:data:`LEGACY_COLUMNS`); every other column is named after its field, so a
field added later needs only its migrations. Rows are read by column name,
never by position.

Key columns hold the ids: ``str`` on PostgreSQL, UTF-8 ``bytes`` on MySQL and
MariaDB (``VARBINARY``). The anonymous user is ``''``, which no real user id
can be. A trace step is one JSON document in ``trace_steps.step``, and the
SHA-256 digest of its id in ``trace_steps.trace_digest``, which a UNIQUE
index keeps unique per session: a trace id may be as long as any text, too
long for an index on either database, while a digest is 32 bytes, and two
ids share a digest only if they are the same id (no two strings with one
SHA-256 digest are known). What is digested is the dialect's choice
(``trace_digest``): whatever its schema migration can also compute from the
steps stored before.

Items are rows of JSON text as the store made it; a state is one document
of those texts (:func:`state_to_doc`), see ``item_statements.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, Protocol

from sessionstore.clock import from_micros, to_micros
from sessionstore.items import ItemRecord, StateRecord
from sessionstore.keys import SessionKey
from sessionstore.models import SessionInfo, SessionQAEntry, SessionTraceStep
from sessionstore.records import SessionData, SessionRows
from sessionstore.stored import (
    ENTRY_FIELDS,
    Form,
    Kind,
    compact_json,
    entry_from_values,
    trace_from_json,
    trace_to_json,
)

__all__ = [
    "ENTRY_COLUMNS",
    "LEGACY_COLUMNS",
    "Codec",
    "Row",
    "column_of",
    "item_params",
    "item_record",
    "state_from_doc",
    "state_record",
    "state_to_doc",
]

LEGACY_COLUMNS: Final = {"id": "entry_id"}
"""Entry fields whose column is not named after the field: field name -> column name."""


def column_of(field: str) -> str:
    """Return the ``entries`` column that holds the entry field ``field``."""
    return LEGACY_COLUMNS.get(field, field)


ENTRY_COLUMNS: Final = tuple(column_of(f.name) for f in ENTRY_FIELDS)
"""The ``entries`` columns of every stored field, in declaration order."""

_Convert = Callable[[Any], Any]
_DECODER: Final = json.JSONDecoder()


class Row(Protocol):
    """A row read by column name (an asyncpg record, an asyncmy dict, a SQLAlchemy mapping)."""

    def __getitem__(self, column: str, /) -> Any: ...


def _as_is(value: str) -> str:
    return value


class Codec:
    """Encodes keys, texts and entries for one dialect's columns and decodes its rows.

    Args:
        form: how the dialect's columns hold each kind of field.
        binary_keys: key columns hold UTF-8 bytes rather than text.
        trace_digest: the ``trace_digest`` column's value for a trace id.

    """

    def __init__(
        self, form: Form, *, binary_keys: bool, trace_digest: Callable[[str], bytes]
    ) -> None:
        self.form = form
        self.binary_keys = binary_keys
        self._trace_digest = trace_digest
        self._text_in: _Convert = form.encode.get(Kind.TEXT, _as_is)
        self._text_out: _Convert = form.decode.get(Kind.TEXT, _as_is)
        self._encoders = dict(form.plan(ENTRY_FIELDS))
        self._decoders = tuple(
            (name, column_of(name), convert)
            for name, convert in form.plan(ENTRY_FIELDS, decode=True)
        )

    def key(self, value: str | None) -> str | bytes:
        """Return a key column's value for an id; ``None`` (the anonymous user) is ``''``."""
        raw = "" if value is None else value
        return raw.encode() if self.binary_keys else raw

    @staticmethod
    def unkey(raw: str | bytes) -> str:
        """Return the id a key column's value stands for."""
        return raw.decode() if isinstance(raw, bytes) else raw

    def user(self, raw: str | bytes) -> str | None:
        """Return the user id a ``user_key`` value stands for (``''``: anonymous)."""
        return self.unkey(raw) or None

    def text_in(self, value: str) -> str:
        """Return a string as a text column holds it."""
        stored: str = self._text_in(value)
        return stored

    def text_out(self, stored: str) -> str:
        """Return the string a text column's value stands for."""
        value: str = self._text_out(stored)
        return value

    def _encode(self, values: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
        params = {}
        for name in names:
            value = values[name]
            convert = self._encoders[name]
            params[column_of(name)] = value if value is None or convert is None else convert(value)
        return params

    def entry_row(self, entry: SessionQAEntry) -> dict[str, Any]:
        """Return the column values of ``entry``'s stored fields, by column name."""
        return self._encode(entry.__dict__, self._encoders)

    def changes(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Return the column values of an update's changed fields, by column name."""
        return self._encode(changes, changes)

    def trace_row(self, step: SessionTraceStep) -> dict[str, Any]:
        """Return the ``step`` and ``trace_digest`` column values of a trace step."""
        return {"step": trace_to_json(step), "trace_digest": self._trace_digest(step.trace_id)}

    def entry(self, row: Row, session_id: str, user_id: str | None) -> SessionQAEntry:
        """Rebuild an entry of the session from a row holding every :data:`ENTRY_COLUMNS`."""
        values = {}
        for name, column, convert in self._decoders:
            value = row[column]
            values[name] = value if value is None or convert is None else convert(value)
        return entry_from_values(values, session_id, user_id)

    def session_info(self, row: Row, user_id: str | None) -> SessionInfo:
        """Build a page item from a ``sessions`` row of ``user_id``."""
        return SessionInfo.model_construct(
            session_id=self.unkey(row["session_key"]),
            user_id=user_id,
            created_at=from_micros(row["created_at"]),
            updated_at=from_micros(row["updated_at"]),
            qa_count=int(row["qa_count"]),
            item_count=int(row["item_count"]),
        )

    def session_rows(self, data: SessionData, params: Mapping[str, Any]) -> SessionRows:
        """Return the rows of ``data``; ``params`` names its session (key, now, expiry)."""
        session = {
            **params,
            "created": to_micros(data.created_at),
            "updated": to_micros(data.updated_at),
            "next_seq": len(data.entries),
            "qa_count": len(data.entries),
            "trace_seq": len(data.traces),
            "trace_count": len(data.traces),
            "has_graph": data.graph_context is not None,
            "item_seq": len(data.items),
            "item_count": len(data.items),
            "state": state_to_doc(data.state.values),
            "state_rev": data.state.revision,
        }
        entries = [
            {**params, **self.entry_row(entry), "seq": seq}
            for seq, entry in enumerate(data.entries, 1)
        ]
        traces = [
            {**params, "seq": seq, **self.trace_row(step)}
            for seq, step in enumerate(data.traces, 1)
        ]
        context = data.graph_context
        graph = None if context is None else {**params, "context": self.text_in(context)}
        return SessionRows(session, entries, traces, graph)

    def session(
        self,
        key: SessionKey,
        session: Row,
        entries: Sequence[Row],
        graph: Row | None,
        traces: Sequence[Row],
        *,
        items: Sequence[Row] = (),
    ) -> SessionData:
        """Rebuild the session ``key`` from its rows, each list in ``seq`` order.

        ``session`` holds the session row's times and its state (``state``, ``state_rev``).
        """
        return SessionData(
            session_id=key.session_id,
            user_id=key.user_id,
            created_at=from_micros(session["created_at"]),
            updated_at=from_micros(session["updated_at"]),
            graph_context=None if graph is None else self.text_out(graph["context"]),
            entries=[self.entry(row, key.session_id, key.user_id) for row in entries],
            traces=[trace_from_json(row["step"]) for row in traces],
            items=[item_record(row) for row in items],
            state=state_record(session["state"], session["state_rev"]),
        )

    @staticmethod
    def item_rows(data: SessionData, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Return the ``items`` rows of ``data``; ``params`` names its session."""
        return [
            {
                **params,
                "seq": seq,
                "item_id": item.id,
                "created_at": to_micros(item.created_at),
                "data": item.data,
            }
            for seq, item in enumerate(data.items, 1)
        ]


# -- the item log and states -------------------------------------------------------------


def item_record(row: Row) -> ItemRecord:
    """Return the item a row of ``item_id``, ``created_at`` and ``data`` holds."""
    return ItemRecord(str(row["item_id"]), str(row["data"]), from_micros(int(row["created_at"])))


def item_params(items: Sequence[ItemRecord]) -> dict[str, Any]:
    """Return the parameters of an append: ``n`` items as lists ``ids``, ``times``, ``datas``."""
    return {
        "n": len(items),
        "ids": [item.id for item in items],
        "times": [to_micros(item.created_at) for item in items],
        "datas": [item.data for item in items],
    }


def state_to_doc(values: Mapping[str, str]) -> str | None:
    """Return a state as the document a ``state`` column holds (``None`` for no keys).

    A JSON object whose values are the stored JSON texts themselves, so the
    document reads as the state it is (and ``state::json`` works on
    PostgreSQL). It never holds a raw NUL: JSON escapes it.
    """
    if not values:
        return None
    return "{" + ",".join(f"{compact_json(key)}:{value}" for key, value in values.items()) + "}"


def state_from_doc(doc: str | None) -> dict[str, str]:
    """Return the key -> JSON text mapping a ``state`` document holds.

    Each value's text is cut from the document exactly where the JSON
    decoder found it, never decoded and encoded again.
    """
    values: dict[str, str] = {}
    if doc is None:
        return values
    at = 1  # after "{"
    while doc[at] != "}":
        key, colon = _DECODER.raw_decode(doc, at)
        _, end = _DECODER.raw_decode(doc, colon + 1)
        values[key] = doc[colon + 1 : end]
        at = end + 1 if doc[end] == "," else end
    return values


def state_record(doc: str | None, revision: int | None) -> StateRecord:
    """Return the state a ``state`` document and its revision hold."""
    return StateRecord(state_from_doc(doc), int(revision or 0))
