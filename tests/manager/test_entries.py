"""save_qa, feedback and the pass-through calls (SPEC §6)."""

from __future__ import annotations

import uuid

import pytest

from sessionstore import (
    InvalidParameterError,
    SessionManager,
    SessionQAUpdate,
    SessionStore,
    UsedGraphElementIds,
)
from tests.contract.cases import pure_logic
from tests.manager.fakes import PUBLIC_CALLS, StoreSpy


async def test_save_qa_is_one_write_with_everything(
    manager: SessionManager, store: SessionStore
) -> None:
    spy = StoreSpy(store)
    spy.watch(*PUBLIC_CALLS)
    graph = UsedGraphElementIds(node_ids=["n1", "n2"], edge_ids=["e1"])
    qa_id = await manager.save_qa(
        "Q?", "A!", session_id="s", user_id="u", context="ctx", used_graph_element_ids=graph
    )
    assert spy.calls == ["create_qa_entry"]
    assert uuid.UUID(qa_id).version == 4
    entry = await store.get_qa_entry("s", "u", qa_id)
    assert entry is not None
    assert (entry.question, entry.answer, entry.context) == ("Q?", "A!", "ctx")
    assert entry.used_graph_element_ids == graph
    assert entry.feedback_score is None
    assert entry.memify_metadata is None


async def test_save_qa_defaults_and_mapping_graph_ids(
    manager: SessionManager, store: SessionStore
) -> None:
    qa_id = await manager.save_qa("q", "a", used_graph_element_ids={"node_ids": ["n"]})
    entry = await store.get_qa_entry("default_session", None, qa_id)
    assert entry is not None
    assert entry.context is None
    assert entry.used_graph_element_ids == UsedGraphElementIds(node_ids=["n"], edge_ids=[])


async def test_add_feedback_sets_both_fields_and_memify(
    manager: SessionManager, store: SessionStore
) -> None:
    qa_id = await manager.save_qa("q", "a", user_id="u")
    assert await manager.add_feedback(qa_id, user_id="u", text="great", score=5) is True
    entry = await store.get_qa_entry("default_session", "u", qa_id)
    assert entry is not None
    assert (entry.feedback_text, entry.feedback_score) == ("great", 5)
    assert entry.memify_metadata == {"feedback_weights_applied": False}
    # None clears each field; the other fields of the entry stay.
    assert await manager.add_feedback(qa_id, user_id="u", score=2) is True
    entry = await store.get_qa_entry("default_session", "u", qa_id)
    assert entry is not None
    assert (entry.feedback_text, entry.feedback_score) == (None, 2)
    assert (entry.question, entry.answer) == ("q", "a")


async def test_add_feedback_resets_applied_weights(
    manager: SessionManager, store: SessionStore
) -> None:
    qa_id = await manager.save_qa("q", "a", session_id="s")
    await manager.update_qa(
        qa_id,
        SessionQAUpdate(memify_metadata={"feedback_weights_applied": True, "other": True}),
        session_id="s",
    )
    await manager.add_feedback(qa_id, session_id="s", score=1)
    entry = await store.get_qa_entry("s", None, qa_id)
    assert entry is not None
    assert entry.memify_metadata == {"feedback_weights_applied": False}


@pure_logic
async def test_bad_score_fails_before_the_store(
    manager: SessionManager, store: SessionStore
) -> None:
    qa_id = await manager.save_qa("q", "a")
    spy = StoreSpy(store)
    spy.watch(*PUBLIC_CALLS, fail=True)
    for score in [0, 6, -1, 100]:
        with pytest.raises(InvalidParameterError) as caught:
            await manager.add_feedback(qa_id, text="x", score=score)
        assert str(caught.value) == f"feedback_score must be between 1 and 5, got {score}"
    for wrong in [True, 2.0, "5"]:
        with pytest.raises(InvalidParameterError, match="feedback_score"):
            await manager.add_feedback(qa_id, score=wrong)  # type: ignore[arg-type]
    assert spy.calls == []


@pure_logic
async def test_bad_score_fails_even_on_a_closed_store(store: SessionStore) -> None:
    manager = SessionManager(store)
    await store.close()
    with pytest.raises(InvalidParameterError, match=r"got 9$"):
        await manager.add_feedback(str(uuid.uuid4()), score=9)


async def test_feedback_on_unknown_entry_is_false(manager: SessionManager) -> None:
    await manager.save_qa("q", "a")
    assert await manager.add_feedback(str(uuid.uuid4()), score=3) is False
    assert await manager.add_feedback("not-a-uuid", score=3) is False
    assert await manager.delete_feedback(str(uuid.uuid4())) is False
    # The entry is in another user's namespace.
    qa_id = await manager.save_qa("q", "a", user_id="alice")
    assert await manager.add_feedback(qa_id, score=3) is False
    assert await manager.add_feedback(qa_id, user_id="bob", score=3) is False


async def test_delete_feedback_clears_both(manager: SessionManager, store: SessionStore) -> None:
    qa_id = await manager.save_qa("q", "a", session_id="s")
    await manager.add_feedback(qa_id, session_id="s", text="meh", score=3)
    assert await manager.delete_feedback(qa_id.upper(), session_id="s") is True
    entry = await store.get_qa_entry("s", None, qa_id)
    assert entry is not None
    assert (entry.feedback_text, entry.feedback_score) == (None, None)


async def test_get_session_and_delete_session(manager: SessionManager) -> None:
    ids = [await manager.save_qa(f"q{i}", "a", session_id="s", user_id="u") for i in range(4)]
    assert [e.id for e in await manager.get_session("s", "u")] == ids
    assert [e.id for e in await manager.get_session("s", "u", 2)] == ids[2:]
    assert [e.id for e in await manager.get_session(session_id="s", user_id="u", last_n=0)] == []
    assert await manager.get_session("s") == []  # the anonymous user has none
    assert await manager.delete_session("s", "u") is True
    assert await manager.delete_session("s", "u") is False
    assert await manager.get_session("s", "u") == []


async def test_default_session_pass_through(manager: SessionManager) -> None:
    qa_id = await manager.save_qa("q", "a")
    assert await manager.latest_qa_id() == qa_id
    assert [e.id for e in await manager.get_session()] == [qa_id]
    assert await manager.delete_session() is True
    assert await manager.latest_qa_id() is None


async def test_update_qa_and_latest_id(manager: SessionManager, store: SessionStore) -> None:
    first = await manager.save_qa("q1", "a1", session_id="s")
    second = await manager.save_qa("q2", "a2", session_id="s")
    assert await manager.latest_qa_id("s") == second
    assert await manager.latest_qa_id(session_id="s", user_id="nobody") is None
    assert await manager.update_qa(first, SessionQAUpdate(answer="fixed"), session_id="s")
    entry = await store.get_qa_entry("s", None, first)
    assert entry is not None
    assert entry.answer == "fixed"
    assert not await manager.update_qa(str(uuid.uuid4()), SessionQAUpdate(answer="x"))


async def test_graph_context_pass_through(manager: SessionManager, store: SessionStore) -> None:
    assert await manager.get_graph_context("s", "u") is None
    await manager.set_graph_context("", session_id="s", user_id="u")
    assert await manager.get_graph_context("s", "u") == ""
    await manager.set_graph_context("facts")
    assert await store.get_graph_context("default_session", None) == "facts"
    assert await manager.get_graph_context() == "facts"
    assert await manager.get_graph_context(session_id="s", user_id="u") == ""


@pure_logic
async def test_bad_text_writes_nothing(manager: SessionManager, store: SessionStore) -> None:
    with pytest.raises(InvalidParameterError):
        await manager.save_qa("\ud800", "a", session_id="s")
    qa_id = await manager.save_qa("q", "a", session_id="s")
    with pytest.raises(InvalidParameterError):
        await manager.add_feedback(qa_id, session_id="s", text="\udfff", score=3)
    entry = await store.get_qa_entry("s", None, qa_id)
    assert entry is not None
    assert (entry.feedback_score, entry.memify_metadata) == (None, None)
    assert await store.count_qa_entries("s", None) == 1
