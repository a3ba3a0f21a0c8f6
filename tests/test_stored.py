"""The one declaration of stored fields agrees with the models, and every form round-trips."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import TypeAdapter, ValidationError

from sessionstore import SessionQAEntry, SessionTraceStep, UsedGraphElementIds
from sessionstore.stored import (
    COLUMNS,
    ENTRY_FIELDS,
    ENTRY_KEY_FIELDS,
    RECORD,
    TRACE_FIELDS,
    Kind,
    compact_json,
    entry_from_record,
    entry_from_values,
    entry_to_record,
    trace_from_json,
    trace_to_json,
)

ENTRY = SessionQAEntry(
    id="0b4f3c4e-8d2a-4f57-9e61-2d0c1f6a9b10",
    session_id="s",
    user_id=None,
    question="q\x00é🙂",
    answer="a",
    context=None,
    created_at=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
    feedback_text="ok",
    feedback_score=4,
    used_graph_element_ids=UsedGraphElementIds(node_ids=["n1"], edge_ids=[]),
    memify_metadata={"done": True},
    metadata={"b": 1.0, "a": [1, "2", None], "nested": {"x": 2**60}},
)
STEP = SessionTraceStep(
    origin_function="search",
    status="ok",
    method_params={"q": "x", "k": 3},
    method_return_value=[1.5, "two"],
    created_at=datetime(2026, 1, 2, tzinfo=UTC),
)


def _names(fields: tuple[object, ...]) -> list[str]:
    return [field.name for field in fields]  # type: ignore[attr-defined]


def test_entry_declaration_names_every_model_field_once() -> None:
    declared = _names(ENTRY_FIELDS) + list(ENTRY_KEY_FIELDS)
    assert sorted(declared) == sorted(SessionQAEntry.model_fields)
    assert len(set(declared)) == len(declared)


def test_trace_declaration_names_every_model_field_once() -> None:
    declared = _names(TRACE_FIELDS)
    assert sorted(declared) == sorted(SessionTraceStep.model_fields)
    assert len(set(declared)) == len(declared)


@pytest.mark.parametrize("fields", [ENTRY_FIELDS, TRACE_FIELDS])
def test_nullable_matches_the_model(fields: tuple[object, ...]) -> None:
    model = SessionQAEntry if fields is ENTRY_FIELDS else SessionTraceStep
    for field in fields:
        annotation = model.model_fields[field.name].annotation  # type: ignore[attr-defined]
        try:
            TypeAdapter(annotation).validate_python(None)
        except ValidationError:
            accepts_none = False
        else:
            accepts_none = True
        assert field.nullable == accepts_none, field


def test_record_form_round_trips_an_entry() -> None:
    record = entry_to_record(ENTRY)
    assert json.loads(compact_json(record)) == record
    assert record["created_at"] == "2026-01-02T03:04:05.678901+00:00"
    assert record["used_graph_element_ids"] == {"node_ids": ["n1"], "edge_ids": []}
    assert entry_from_record(json.loads(compact_json(record))) == ENTRY


def test_column_form_round_trips_an_entry_by_name() -> None:
    columns = COLUMNS.dump_model(ENTRY_FIELDS, ENTRY)
    assert columns["created_at"] == 1767323045678901
    assert columns["metadata"] == '{"b":1.0,"a":[1,"2",null],"nested":{"x":1152921504606846976}}'
    assert columns["context"] is None
    back = entry_from_values(COLUMNS.load(ENTRY_FIELDS, columns), "s", None)
    assert back == ENTRY
    assert list(back.metadata or {}) == ["b", "a", "nested"]
    assert isinstance((back.metadata or {})["b"], float)


def test_a_derived_form_changes_only_its_kind() -> None:
    upper = COLUMNS.but(Kind.TEXT, str.upper, str.lower)
    stored = upper.dump(ENTRY_FIELDS, {"answer": "abc", "feedback_score": 3, "context": None})
    assert stored == {"answer": "ABC", "feedback_score": 3, "context": None}
    assert COLUMNS.dump(ENTRY_FIELDS, {"answer": "abc"}) == {"answer": "abc"}
    plain = upper.but(Kind.TEXT, None, None)
    assert plain.dump(ENTRY_FIELDS, {"answer": "abc"}) == {"answer": "abc"}


def test_documents_written_before_a_field_existed_read_it_as_none() -> None:
    record = entry_to_record(ENTRY)
    del record["feedback_text"]
    assert entry_from_record(record).feedback_text is None


def test_trace_json_round_trips() -> None:
    document = trace_to_json(STEP)
    assert " " not in document.replace("search", "")
    assert trace_from_json(document) == STEP
    assert RECORD.dump_model(TRACE_FIELDS, STEP)["created_at"] == "2026-01-02T00:00:00+00:00"
