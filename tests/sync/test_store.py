"""The contract, through the blocking facade, on every backend.

A broad sample of tests/contract/ written with blocking calls: what the
async store guarantees must hold when every call crosses into the facade's
own event loop and back.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from sessionstore import (
    InvalidParameterError,
    SessionQAEntry,
    SessionQAUpdate,
    SessionTraceStep,
    StoreError,
    UsedGraphElementIds,
    sync,
)
from tests.contract.test_keys import TRICKY_IDS
from tests.contract.test_validation import BAD_CREATE_FIELDS
from tests.sync.conftest import OpenSync

S, U = "chat", "alice"

TRICKY_TEXTS = [
    "nul \x00 inside",
    "emoji 😀👩‍👩‍👧 and CJK 会话",
    "crlf\r\nline\rcr\nlf",
    "tabs\tand\x01control\x1f\x7f",
    "  leading and trailing spaces  ",
    '{"json": "lookalike"}',
    "quotes ' \" ` and backslash \\",
    "\u2028\u2029 separators",
    "",
]


def test_entry_round_trips_every_field(sync_store: sync.SessionStore) -> None:
    graph = UsedGraphElementIds(node_ids=["n1", "n2"], edge_ids=["e1"])
    metadata = {"model": "m-1", "usage": {"tokens": 12, "ratio": 0.5}, "tags": ["a", None]}
    qa_id = sync_store.create_qa_entry(
        S,
        U,
        "What is RAG?",
        "Retrieval-augmented generation.",
        "doc 1",
        feedback_text="good",
        feedback_score=4,
        used_graph_element_ids=graph,
        memify_metadata={"feedback_weights_applied": False},
        metadata=metadata,
    )
    assert uuid.UUID(qa_id).version == 4
    entry = sync_store.get_qa_entry(S, U, qa_id)
    assert entry is not None
    assert entry == SessionQAEntry(
        id=qa_id,
        session_id=S,
        user_id=U,
        question="What is RAG?",
        answer="Retrieval-augmented generation.",
        context="doc 1",
        created_at=entry.created_at,
        feedback_text="good",
        feedback_score=4,
        used_graph_element_ids=graph,
        memify_metadata={"feedback_weights_applied": False},
        metadata=metadata,
    )
    assert entry.created_at.utcoffset() is not None
    anonymous = sync_store.create_qa_entry(S, None, "q", "a", used_graph_element_ids={})
    stored = sync_store.get_qa_entry(S, None, anonymous)
    assert stored is not None
    assert stored.user_id is None
    assert stored.used_graph_element_ids == UsedGraphElementIds()


def test_texts_round_trip_exactly(sync_store: sync.SessionStore) -> None:
    ids = [
        sync_store.create_qa_entry(S, U, text, text, text, metadata={text: text})
        for text in TRICKY_TEXTS
    ]
    entries = sync_store.get_all_qa_entries(S, U)
    assert [e.id for e in entries] == ids
    for text, entry in zip(TRICKY_TEXTS, entries, strict=True):
        assert (entry.question, entry.answer, entry.context) == (text, text, text)
        assert entry.metadata == {text: text}
    for text in TRICKY_TEXTS:
        sync_store.set_graph_context(S, U, text)
        assert sync_store.get_graph_context(S, U) == text


def test_tricky_ids_are_isolated(sync_store: sync.SessionStore) -> None:
    for tricky in TRICKY_IDS:
        sync_store.create_qa_entry(tricky, "u", "as session", "a")
        sync_store.create_qa_entry("s", tricky, "as user", "a")
    for tricky in TRICKY_IDS:
        [entry] = sync_store.get_all_qa_entries(tricky, "u")
        assert (entry.session_id, entry.question) == (tricky, "as session")
        [entry] = sync_store.get_all_qa_entries("s", tricky)
        assert (entry.user_id, entry.question) == (tricky, "as user")
    page = sync_store.list_sessions("u", limit=1000)
    assert sorted(i.session_id for i in page.items) == sorted(TRICKY_IDS)


def test_update_is_tri_state(sync_store: sync.SessionStore) -> None:
    qa_id = sync_store.create_qa_entry(
        S, U, "q", "a", "ctx", feedback_text="meh", feedback_score=2, metadata={"keep": 1}
    )
    assert sync_store.update_qa_entry(S, U, qa_id, SessionQAUpdate(feedback_score=5))
    entry = sync_store.get_qa_entry(S, U, qa_id)
    assert entry is not None
    assert (entry.feedback_score, entry.feedback_text, entry.context) == (5, "meh", "ctx")
    update = SessionQAUpdate(feedback_text=None, context=None, metadata={"new": [1]})
    assert sync_store.update_qa_entry(S, U, qa_id.upper(), update)
    entry = sync_store.get_qa_entry(S, U, qa_id)
    assert entry is not None
    assert (entry.feedback_score, entry.feedback_text, entry.context) == (5, None, None)
    assert entry.metadata == {"new": [1]}
    assert sync_store.update_qa_entry(S, U, qa_id, SessionQAUpdate()) is True
    assert sync_store.update_qa_entry(S, U, str(uuid.uuid4()), SessionQAUpdate()) is False
    assert sync_store.update_qa_entry(S, U, "not-a-uuid", SessionQAUpdate(answer="x")) is False


def test_counts_latest_and_delete(sync_store: sync.SessionStore) -> None:
    assert sync_store.get_latest_qa_entries(S, U, 5) == []
    assert sync_store.latest_qa_id(S, U) is None
    ids = [sync_store.create_qa_entry(S, U, f"q{i}", "a") for i in range(12)]
    assert sync_store.count_qa_entries(S, U) == 12
    assert [e.id for e in sync_store.get_latest_qa_entries(S, U, 5)] == ids[-5:]
    assert [e.id for e in sync_store.get_latest_qa_entries(S, U, 100)] == ids
    assert sync_store.get_latest_qa_entries(S, U, 0) == []
    assert sync_store.latest_qa_id(S, U) == ids[-1]
    assert sync_store.delete_qa_entry(S, U, ids[-1]) is True
    assert sync_store.delete_qa_entry(S, U, ids[-1]) is False
    assert sync_store.latest_qa_id(S, U) == ids[-2]
    assert sync_store.count_qa_entries(S, U) == 11
    assert sync_store.get_qa_entry(S, U, ids[-1]) is None
    sync_store.set_graph_context(S, U, "g")
    assert sync_store.delete_session(S, U) is True
    assert sync_store.delete_session(S, U) is False
    assert sync_store.count_qa_entries(S, U) == 0
    assert sync_store.get_graph_context(S, U) is None


def test_list_sessions_pages_visit_each_session_once(sync_store: sync.SessionStore) -> None:
    names = [f"s{i:02d}" for i in range(13)]
    for sid in names:
        sync_store.create_qa_entry(sid, U, "q", "a")
    sync_store.create_qa_entry("s00", U, "q", "a")
    seen: list[str] = []
    cursor = None
    while True:
        page = sync_store.list_sessions(U, limit=4, cursor=cursor)
        seen.extend(i.session_id for i in page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == ["s00", *reversed(names[1:])]
    assert page.items[-1].qa_count == 1
    assert sync_store.list_sessions("nobody").items == []


def test_graph_context_and_traces(sync_store: sync.SessionStore) -> None:
    assert sync_store.get_graph_context(S, U) is None
    sync_store.set_graph_context(S, U, "")
    assert sync_store.get_graph_context(S, U) == ""
    steps = [
        SessionTraceStep(
            origin_function=f"tool_{i}",
            status="success",
            method_params={"i": i},
            method_return_value=[i, {"ok": True}, None],
        )
        for i in range(4)
    ]
    assert [sync_store.save_trace_step(S, U, step) for step in steps] == [
        step.trace_id for step in steps
    ]
    read = sync_store.read_trace_steps(S, U)
    assert [s.trace_id for s in read] == [s.trace_id for s in steps]
    assert read[0].method_return_value == [0, {"ok": True}, None]
    assert all(s.created_at is not None for s in read)
    assert [s.trace_id for s in sync_store.read_trace_steps(S, U, 2)] == [
        s.trace_id for s in steps[-2:]
    ]
    assert sync_store.read_trace_steps(S, U, 0) == []


def _fill(store: sync.SessionStore) -> None:
    for user in (None, "alice", "bob"):
        for sid in ("s1", "s/2 😀"):
            first = store.create_qa_entry(sid, user, "q\x00 1", "a\r\n1", "ctx", metadata={"n": 1})
            store.create_qa_entry(sid, user, "q2", "a2")
            store.update_qa_entry(sid, user, first, SessionQAUpdate(feedback_score=5))
            store.save_trace_step(sid, user, SessionTraceStep(origin_function="f", status="ok"))
    store.set_graph_context("graph-only", "alice", "")


def _snapshot(store: sync.SessionStore) -> dict[tuple[str, str | None], dict[str, Any]]:
    return {(d["session_id"], d["user_id"]): d for d in store.export_sessions()}


def test_export_and_import_round_trip(sync_store: sync.SessionStore) -> None:
    _fill(sync_store)
    before = _snapshot(sync_store)
    assert len(before) == 7
    assert all(json.loads(json.dumps(d)) == d for d in before.values())
    assert {d["user_id"] for d in sync_store.export_sessions(user_id=None)} == {None}
    assert len(list(sync_store.export_sessions(user_id="alice"))) == 3
    with pytest.raises(InvalidParameterError):
        sync_store.export_sessions(user_id="")  # at the call, before any iteration
    with sync.open_store("memory://") as copy:
        assert copy.import_sessions(sync_store.export_sessions()) == 7
        middle = _snapshot(copy)
    sync_store.prune()
    assert _snapshot(sync_store) == {}
    assert sync_store.import_sessions(dump for dump in middle.values()) == 7
    assert _snapshot(sync_store) == before


def test_export_stopped_early_and_import_stopping_at_a_bad_dump(
    sync_store: sync.SessionStore,
) -> None:
    for sid in ("a", "b", "c"):
        sync_store.create_qa_entry(sid, U, "q", "a")
    # The iterator is dropped after one item, which closes the async one in the store's loop.
    first = next(sync_store.export_sessions())
    broken = {**first, "session_id": "other", "format": "unknown/9"}
    good = {**first, "session_id": "imported"}
    with pytest.raises(InvalidParameterError):
        sync_store.import_sessions([good, broken, {**first, "session_id": "never"}])
    assert sync_store.count_qa_entries("imported", U) == 1
    assert sync_store.count_qa_entries("never", U) == 0


def test_prune_removes_every_user(sync_store: sync.SessionStore) -> None:
    for user in (None, "a", "b"):
        sync_store.create_qa_entry("s", user, "q", "a")
        sync_store.set_graph_context("g", user, "x")
    sync_store.prune()
    for user in (None, "a", "b"):
        assert sync_store.list_sessions(user).items == []
        assert sync_store.get_graph_context("g", user) is None
    assert list(sync_store.export_sessions()) == []


@pytest.mark.parametrize("fields", BAD_CREATE_FIELDS, ids=repr)
def test_bad_create_raises_and_writes_nothing(
    sync_store: sync.SessionStore, fields: dict[str, Any]
) -> None:
    args: dict[str, Any] = {"question": "q", "answer": "a", **fields}
    with pytest.raises(InvalidParameterError) as raised:
        sync_store.create_qa_entry(S, U, **args)
    assert type(raised.value) is InvalidParameterError
    assert sync_store.count_qa_entries(S, U) == 0
    assert sync_store.list_sessions(U).items == []


def test_bad_arguments_raise_and_write_nothing(sync_store: sync.SessionStore) -> None:
    qa_id = sync_store.create_qa_entry(S, U, "q", "a")
    calls: list[tuple[Any, ...]] = [
        (sync_store.create_qa_entry, "", U, "q", "a"),
        (sync_store.create_qa_entry, S, 7, "q", "a"),
        (sync_store.update_qa_entry, S, U, qa_id, {"answer": "x"}),
        (sync_store.set_graph_context, S, U, "\ud800"),
        (sync_store.save_trace_step, S, U, {"origin_function": "f"}),
        (sync_store.get_latest_qa_entries, S, U, -1),
        (sync_store.read_trace_steps, S, U, True),
        (sync_store.get_qa_entry, S, U, uuid.uuid4()),
        (sync_store.list_sessions, 7),
        (sync_store.import_sessions, [{"format": "nope"}]),
    ]
    for call, *args in calls:
        with pytest.raises(InvalidParameterError):
            call(*args)
    with pytest.raises(InvalidParameterError, match="limit"):
        sync_store.list_sessions(U, limit=0)
    with pytest.raises(InvalidParameterError, match="cursor"):
        sync_store.list_sessions(U, cursor="garbage")
    [entry] = sync_store.get_all_qa_entries(S, U)
    assert entry.answer == "a"
    assert sync_store.get_graph_context(S, U) is None
    assert sync_store.read_trace_steps(S, U) == []
    assert [i.session_id for i in sync_store.list_sessions(U).items] == [S]


def test_import_of_an_async_iterable_is_refused(sync_store: sync.SessionStore) -> None:
    async def dumps() -> Any:
        yield {}

    with pytest.raises(InvalidParameterError, match="plain iterables"):
        sync_store.import_sessions(dumps())


def test_expiry_with_a_short_ttl(open_sync: OpenSync) -> None:
    ttl = 1.0
    store = open_sync(ttl=ttl)
    assert store.ttl == ttl
    qa_id = store.create_qa_entry("s", "u", "q", "a")
    store.set_graph_context("s", "u", "g")
    time.sleep(0.6 * ttl)
    store.create_qa_entry("s", "u", "q2", "a2")  # a write slides the whole session
    time.sleep(0.6 * ttl)
    assert store.count_qa_entries("s", "u") == 2
    assert store.get_graph_context("s", "u") == "g"
    assert store.get_qa_entry("s", "u", qa_id) is not None
    time.sleep(0.6 * ttl)  # reads did not slide it
    assert store.get_all_qa_entries("s", "u") == []
    assert store.get_graph_context("s", "u") is None
    assert store.list_sessions("u").items == []
    assert list(store.export_sessions()) == []


def test_a_closed_store_raises_store_error(open_sync: OpenSync) -> None:
    store = open_sync()
    store.create_qa_entry(S, U, "q", "a")
    store.close()
    store.close()
    with pytest.raises(StoreError, match="is closed"):
        store.count_qa_entries(S, U)
    with pytest.raises(StoreError, match="is closed"):
        list(store.export_sessions())
    with pytest.raises(StoreError, match="is closed"):
        store.open()
