"""Bad input raises InvalidParameterError before any I/O; nothing is written.

The checks live in the base class and run before any backend step, so these
tests run once, on the reference backend.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from sessionstore import (
    InvalidParameterError,
    SessionQAUpdate,
    SessionStore,
    SessionTraceStep,
)
from tests.contract.cases import MakeStore, pure_logic

S, U = "s", "u"

BAD_CREATE_FIELDS: list[dict[str, Any]] = [
    {"question": None},
    {"answer": None},
    {"question": 5},
    {"answer": b"bytes"},
    {"question": "lone \ud800 surrogate"},
    {"context": 1.5},
    {"feedback_score": 0},
    {"feedback_score": 6},
    {"feedback_score": True},
    {"feedback_score": 3.0},
    {"feedback_score": "5"},
    {"feedback_text": 7},
    {"metadata": "not a dict"},
    {"metadata": {"k": float("nan")}},
    {"metadata": {"k": object()}},
    {"metadata": {1: "int key"}},
    {"metadata": {"k": "\udc00"}},
    {"memify_metadata": {"k": 1}},
    {"used_graph_element_ids": {"node_ids": "n1"}},
    {"used_graph_element_ids": {"node_ids": [1]}},
]


@pure_logic
@pytest.mark.parametrize("fields", BAD_CREATE_FIELDS, ids=repr)
async def test_bad_create_writes_nothing(store: SessionStore, fields: dict[str, Any]) -> None:
    args: dict[str, Any] = {"question": "q", "answer": "a", **fields}
    with pytest.raises(InvalidParameterError):
        await store.create_qa_entry(S, U, **args)
    assert await store.count_qa_entries(S, U) == 0
    assert (await store.list_sessions(U)).items == []


@pytest.mark.parametrize(
    "fields",
    [
        {"question": None},
        {"answer": None},
        {"feedback_score": 9},
        {"feedback_score": False},
        {"feedback_text": 3},
        {"metadata": ["list"]},
        {"context": "\ud800"},
        {"unknown_field": 1},
    ],
    ids=repr,
)
async def test_bad_update_is_rejected_when_built(fields: dict[str, Any]) -> None:
    with pytest.raises(InvalidParameterError):
        SessionQAUpdate(**fields)


@pure_logic
async def test_update_must_be_an_update_model(store: SessionStore) -> None:
    qa_id = await store.create_qa_entry(S, U, "q", "a")
    with pytest.raises(InvalidParameterError, match="SessionQAUpdate"):
        await store.update_qa_entry(S, U, qa_id, {"answer": "x"})  # type: ignore[arg-type]
    entry = await store.get_qa_entry(S, U, qa_id)
    assert entry is not None
    assert entry.answer == "a"


@pure_logic
async def test_max_field_bytes_applies_to_create_update_and_graph(make_store: MakeStore) -> None:
    store = await make_store(max_field_bytes=10)
    assert store.max_field_bytes == 10
    qa_id = await store.create_qa_entry(S, U, "0123456789", "ok")
    with pytest.raises(InvalidParameterError, match="max_field_bytes"):
        await store.create_qa_entry(S, U, "q", "01234567890")
    with pytest.raises(InvalidParameterError, match="max_field_bytes"):
        await store.create_qa_entry(S, U, "q", "😀😀😀")  # 12 bytes, 3 characters
    with pytest.raises(InvalidParameterError, match="max_field_bytes"):
        await store.update_qa_entry(S, U, qa_id, SessionQAUpdate(feedback_text="x" * 11))
    with pytest.raises(InvalidParameterError, match="max_field_bytes"):
        await store.create_qa_entry(S, U, "q", "a", metadata={"k": "x" * 11})
    with pytest.raises(InvalidParameterError, match="max_field_bytes"):
        await store.set_graph_context(S, U, "x" * 11)
    with pytest.raises(InvalidParameterError, match="max_field_bytes"):
        await store.save_trace_step(
            S, U, SessionTraceStep(origin_function="f", status="ok", memory_query="x" * 11)
        )
    entries = await store.get_all_qa_entries(S, U)
    assert [(e.question, e.feedback_text) for e in entries] == [("0123456789", None)]
    assert await store.get_graph_context(S, U) is None
    assert await store.read_trace_steps(S, U) == []


@pure_logic
@pytest.mark.parametrize("bad", [-1, True, 1.0, "3", None])
async def test_bad_last_n(store: SessionStore, bad: object) -> None:
    with pytest.raises(InvalidParameterError, match="last_n"):
        await store.get_latest_qa_entries(S, U, bad)  # type: ignore[arg-type]
    if bad is not None:
        with pytest.raises(InvalidParameterError, match="last_n"):
            await store.read_trace_steps(S, U, bad)  # type: ignore[arg-type]


@pure_logic
@pytest.mark.parametrize("bad", [0, 1001, -5, True, "10", 2.5])
async def test_bad_limit(store: SessionStore, bad: object) -> None:
    with pytest.raises(InvalidParameterError, match="limit"):
        await store.list_sessions(U, limit=bad)  # type: ignore[arg-type]


@pure_logic
@pytest.mark.parametrize("bad", ["", "garbage", "e30", "W10", "bm90IGpzb24", 17])
async def test_bad_cursor(store: SessionStore, bad: object) -> None:
    with pytest.raises(InvalidParameterError, match="cursor"):
        await store.list_sessions(U, cursor=bad)  # type: ignore[arg-type]


@pure_logic
async def test_bad_qa_id_type(store: SessionStore) -> None:
    with pytest.raises(InvalidParameterError, match="qa_id"):
        await store.get_qa_entry(S, U, uuid.uuid4())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "fields",
    [
        {"origin_function": "", "status": "ok"},
        {"origin_function": "f", "status": "   "},
        {"origin_function": "f", "status": "ok", "trace_id": " "},
        {"origin_function": "f", "status": "ok", "method_params": {"x": {1, 2}}},
        {"origin_function": "f", "status": "ok", "method_return_value": float("inf")},
        {"origin_function": "f", "status": "ok", "error_message": None},
        {"origin_function": 3, "status": "ok"},
    ],
    ids=repr,
)
def test_bad_trace_step(fields: dict[str, Any]) -> None:
    with pytest.raises(InvalidParameterError):
        SessionTraceStep(**fields)


@pure_logic
async def test_bad_graph_context(store: SessionStore) -> None:
    with pytest.raises(InvalidParameterError):
        await store.set_graph_context(S, U, None)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError):
        await store.set_graph_context(S, U, "\ud800")
    assert await store.get_graph_context(S, U) is None


@pure_logic
async def test_save_trace_step_needs_a_step(store: SessionStore) -> None:
    with pytest.raises(InvalidParameterError, match="SessionTraceStep"):
        await store.save_trace_step(S, U, {"origin_function": "f"})  # type: ignore[arg-type]
    assert await store.read_trace_steps(S, U) == []


def test_invalid_parameter_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="feedback_score"):
        SessionQAUpdate(feedback_score=7)
