"""Entries: create, read, update and delete (SPEC §2.2, §2.3)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from sessionstore import SessionQAEntry, SessionQAUpdate, SessionStore, UsedGraphElementIds

S, U = "chat", "alice"


async def test_create_returns_lowercase_uuid4_and_stores_every_field(store: SessionStore) -> None:
    before = datetime.now(UTC)
    qa_id = await store.create_qa_entry(
        S,
        U,
        "What is RAG?",
        "Retrieval-augmented generation.",
        "doc 1",
        feedback_text="good",
        feedback_score=4,
        used_graph_element_ids=UsedGraphElementIds(node_ids=["n1", "n2"], edge_ids=["e1"]),
        memify_metadata={"feedback_weights_applied": False},
        metadata={"model": "m-1", "usage": {"tokens": 12, "ratio": 0.5}, "tags": ["a", None]},
    )
    parsed = uuid.UUID(qa_id)
    assert parsed.version == 4
    assert qa_id == str(parsed)
    entry = await store.get_qa_entry(S, U, qa_id)
    assert entry == SessionQAEntry(
        id=qa_id,
        session_id=S,
        user_id=U,
        question="What is RAG?",
        answer="Retrieval-augmented generation.",
        context="doc 1",
        created_at=entry.created_at if entry else before,
        feedback_text="good",
        feedback_score=4,
        used_graph_element_ids=UsedGraphElementIds(node_ids=["n1", "n2"], edge_ids=["e1"]),
        memify_metadata={"feedback_weights_applied": False},
        metadata={"model": "m-1", "usage": {"tokens": 12, "ratio": 0.5}, "tags": ["a", None]},
    )
    assert entry is not None
    assert entry.created_at.tzinfo is not None
    assert entry.created_at.utcoffset() == timedelta(0)
    assert (
        before - timedelta(seconds=5)
        <= entry.created_at
        <= datetime.now(UTC) + timedelta(seconds=5)
    )


async def test_optional_fields_default_to_none_and_empty_texts_are_kept(
    store: SessionStore,
) -> None:
    qa_id = await store.create_qa_entry(S, None, "", "")
    entry = await store.get_qa_entry(S, None, qa_id)
    assert entry is not None
    assert (entry.question, entry.answer) == ("", "")
    assert entry.user_id is None
    assert entry.context is None
    assert entry.feedback_score is None
    assert entry.used_graph_element_ids is None
    assert entry.metadata is None
    assert entry.memify_metadata is None


async def test_entries_keep_creation_order(store: SessionStore) -> None:
    ids = [await store.create_qa_entry(S, U, f"q{i}", f"a{i}") for i in range(25)]
    assert [e.id for e in await store.get_all_qa_entries(S, U)] == ids
    assert [e.id for e in await store.get_latest_qa_entries(S, U, 10)] == ids[-10:]
    assert [e.id for e in await store.get_latest_qa_entries(S, U, 100)] == ids
    assert [e.id for e in await store.get_latest_qa_entries(S, U, 1)] == ids[-1:]
    assert await store.get_latest_qa_entries(S, U, 0) == []
    assert await store.count_qa_entries(S, U) == 25
    assert await store.latest_qa_id(S, U) == ids[-1]


async def test_empty_session_reads(store: SessionStore) -> None:
    assert await store.get_all_qa_entries(S, U) == []
    assert await store.get_latest_qa_entries(S, U, 5) == []
    assert await store.count_qa_entries(S, U) == 0
    assert await store.latest_qa_id(S, U) is None
    assert await store.get_qa_entry(S, U, str(uuid.uuid4())) is None


async def test_qa_id_accepts_any_uuid_spelling(store: SessionStore) -> None:
    qa_id = await store.create_qa_entry(S, U, "q", "a")
    for spelling in (qa_id.upper(), qa_id.replace("-", ""), "{" + qa_id + "}"):
        entry = await store.get_qa_entry(S, U, spelling)
        assert entry is not None
        assert entry.id == qa_id
    assert await store.update_qa_entry(S, U, qa_id.upper(), SessionQAUpdate(feedback_score=2))
    assert await store.delete_qa_entry(S, U, qa_id.replace("-", "").upper())
    assert await store.count_qa_entries(S, U) == 0


async def test_non_uuid_qa_id_is_simply_not_found(store: SessionStore) -> None:
    await store.create_qa_entry(S, U, "q", "a")
    assert await store.get_qa_entry(S, U, "not-a-uuid") is None
    assert await store.update_qa_entry(S, U, "nope", SessionQAUpdate(answer="x")) is False
    assert await store.delete_qa_entry(S, U, "") is False
    assert await store.count_qa_entries(S, U) == 1


async def test_update_is_tri_state(store: SessionStore) -> None:
    qa_id = await store.create_qa_entry(
        S,
        U,
        "q",
        "a",
        "ctx",
        feedback_text="meh",
        feedback_score=2,
        used_graph_element_ids=UsedGraphElementIds(node_ids=["n1"]),
        memify_metadata={"x": True},
        metadata={"keep": 1, "drop": 2},
    )
    assert await store.update_qa_entry(S, U, qa_id, SessionQAUpdate(feedback_score=5))
    entry = await store.get_qa_entry(S, U, qa_id)
    assert entry is not None
    assert entry.feedback_score == 5
    assert entry.feedback_text == "meh"
    assert entry.context == "ctx"

    assert await store.update_qa_entry(
        S, U, qa_id, SessionQAUpdate(feedback_text=None, context=None, metadata={"new": [1]})
    )
    entry = await store.get_qa_entry(S, U, qa_id)
    assert entry is not None
    assert entry.feedback_text is None
    assert entry.context is None
    assert entry.feedback_score == 5
    assert entry.metadata == {"new": [1]}
    assert entry.used_graph_element_ids == UsedGraphElementIds(node_ids=["n1"])

    assert await store.update_qa_entry(
        S,
        U,
        qa_id,
        SessionQAUpdate(
            question="q2",
            answer="a2",
            used_graph_element_ids=UsedGraphElementIds(edge_ids=["e9"]),
            memify_metadata=None,
        ),
    )
    entry = await store.get_qa_entry(S, U, qa_id)
    assert entry is not None
    assert (entry.question, entry.answer) == ("q2", "a2")
    assert entry.used_graph_element_ids == UsedGraphElementIds(edge_ids=["e9"])
    assert entry.memify_metadata is None
    assert entry.id == qa_id


async def test_empty_update_of_existing_entry_is_true(store: SessionStore) -> None:
    qa_id = await store.create_qa_entry(S, U, "q", "a")
    before = await store.get_qa_entry(S, U, qa_id)
    assert await store.update_qa_entry(S, U, qa_id, SessionQAUpdate()) is True
    assert await store.get_qa_entry(S, U, qa_id) == before
    assert await store.update_qa_entry(S, U, str(uuid.uuid4()), SessionQAUpdate()) is False


async def test_update_keeps_order_and_creation_time(store: SessionStore) -> None:
    ids = [await store.create_qa_entry(S, U, f"q{i}", "a") for i in range(3)]
    first = await store.get_qa_entry(S, U, ids[0])
    assert await store.update_qa_entry(S, U, ids[0], SessionQAUpdate(answer="changed"))
    entries = await store.get_all_qa_entries(S, U)
    assert [e.id for e in entries] == ids
    assert first is not None
    assert entries[0].created_at == first.created_at
    assert entries[0].answer == "changed"


async def test_delete_entry(store: SessionStore) -> None:
    ids = [await store.create_qa_entry(S, U, f"q{i}", "a") for i in range(3)]
    assert await store.delete_qa_entry(S, U, ids[2]) is True
    assert await store.delete_qa_entry(S, U, ids[2]) is False
    assert await store.latest_qa_id(S, U) == ids[1]
    assert [e.id for e in await store.get_latest_qa_entries(S, U, 5)] == ids[:2]
    assert await store.count_qa_entries(S, U) == 2
    new = await store.create_qa_entry(S, U, "q3", "a")
    assert [e.id for e in await store.get_all_qa_entries(S, U)] == [*ids[:2], new]


async def test_deleted_entry_cannot_be_updated(store: SessionStore) -> None:
    qa_id = await store.create_qa_entry(S, U, "q", "a")
    keep = await store.create_qa_entry(S, U, "q", "a")
    assert await store.delete_qa_entry(S, U, qa_id)
    assert await store.update_qa_entry(S, U, qa_id, SessionQAUpdate(answer="x")) is False
    assert [e.id for e in await store.get_all_qa_entries(S, U)] == [keep]


@pytest.mark.parametrize(
    "text",
    [
        "nul \x00 inside",
        "\x00",
        "emoji 😀👩‍👩‍👧 and CJK 会话",
        "crlf\r\nline\rcr\nlf",
        "tabs\tand\x01control\x1f\x7f",
        "  leading and trailing spaces  ",
        '{"json": "lookalike"}',
        "quotes ' \" ` and backslash \\",
        "\u2028\u2029 separators",
    ],
)
async def test_text_round_trips_exactly(store: SessionStore, text: str) -> None:
    qa_id = await store.create_qa_entry(
        S, U, text, text, text, feedback_text=text, metadata={text: text}
    )
    await store.update_qa_entry(S, U, qa_id, SessionQAUpdate(feedback_text=text))
    for entry in (
        await store.get_qa_entry(S, U, qa_id),
        (await store.get_latest_qa_entries(S, U, 1))[0],
        (await store.get_all_qa_entries(S, U))[0],
    ):
        assert entry is not None
        assert entry.question == text
        assert entry.answer == text
        assert entry.context == text
        assert entry.feedback_text == text
        assert entry.metadata == {text: text}
    await store.set_graph_context(S, U, text)
    assert await store.get_graph_context(S, U) == text


async def test_one_mebibyte_texts_round_trip(store: SessionStore) -> None:
    big = ("0123456789abcdef😀" * 70_000)[: 1024 * 1024]
    qa_id = await store.create_qa_entry(S, U, big, big[::-1], big)
    entry = await store.get_qa_entry(S, U, qa_id)
    assert entry is not None
    assert entry.question == big
    assert entry.answer == big[::-1]
    assert entry.context == big


async def test_json_metadata_keeps_types(store: SessionStore) -> None:
    metadata = {
        "int": 7,
        "float": 1.5,
        "neg": -3,
        "big": 2**53,
        "bool": True,
        "none": None,
        "list": [1, "two", [3], {"four": 4}],
        "nested": {"a": {"b": []}},
    }
    qa_id = await store.create_qa_entry(S, U, "q", "a", metadata=metadata)
    entry = await store.get_qa_entry(S, U, qa_id)
    assert entry is not None
    assert entry.metadata == metadata
    assert isinstance(entry.metadata["bool"], bool)
    assert isinstance(entry.metadata["float"], float)
