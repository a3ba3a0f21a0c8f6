"""Models: strict validation, and the fast rebuild of stored data."""

from __future__ import annotations

from datetime import UTC, datetime

import pydantic
import pytest

from sessionstore import InvalidParameterError, SessionQAEntry, SessionTraceStep
from sessionstore.models import UsedGraphElementIds

FIELDS = {
    "id": "0b8e4f5c-1d5a-4a3b-9d3e-2f1c0a9b8c7d",
    "session_id": "s",
    "user_id": None,
    "question": "q",
    "answer": "a",
    "context": None,
    "created_at": datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
    "feedback_text": "t",
    "feedback_score": 4,
    "used_graph_element_ids": UsedGraphElementIds(node_ids=["n"]),
    "memify_metadata": {"x": True},
    "metadata": {"k": [1, 2.5]},
}


def test_rebuilt_entry_equals_a_validated_one() -> None:
    validated = SessionQAEntry(**FIELDS)
    rebuilt = SessionQAEntry.model_construct(**dict(FIELDS))
    assert rebuilt == validated
    assert rebuilt.model_fields_set == validated.model_fields_set
    assert rebuilt.model_dump() == validated.model_dump()
    assert rebuilt.model_copy(update={"answer": "b"}).answer == "b"
    with pytest.raises(pydantic.ValidationError):
        rebuilt.answer = "changed"  # type: ignore[misc]


def test_partial_rebuild_fills_defaults() -> None:
    step = SessionTraceStep.model_construct(trace_id="t", origin_function="f", status="ok")
    assert step.method_params == {}
    assert step.error_message == ""
    assert step.created_at is None


def test_models_do_not_coerce() -> None:
    with pytest.raises(InvalidParameterError, match="feedback_score"):
        SessionQAEntry(**{**FIELDS, "feedback_score": "4"})
    with pytest.raises(InvalidParameterError, match="created_at"):
        SessionQAEntry(**{**FIELDS, "created_at": datetime(2026, 1, 1)})
    with pytest.raises(InvalidParameterError):
        SessionQAEntry.model_validate([("id", "x")])
