"""The blocking manager on every backend: history, feedback, traces, the improve lock."""

from __future__ import annotations

import threading
import uuid

import pytest

from sessionstore import InvalidParameterError, SessionQAUpdate, open_store, sync
from tests.contract.cases import pure_logic
from tests.manager.fakes import ScriptedLLM
from tests.sync.threads import run_threads


@pytest.fixture
def llm() -> ScriptedLLM:
    return ScriptedLLM(default="The search found two documents.")


@pytest.fixture
def manager(sync_store: sync.SessionStore, llm: ScriptedLLM) -> sync.SessionManager:
    return sync.SessionManager(sync_store, llm=llm, history_limit=3)


def test_history(manager: sync.SessionManager) -> None:
    for n in range(4):
        manager.save_qa(f"q{n}", f"a{n}", session_id="s", user_id="u", context=f"c{n}")
    messages = manager.load_history_messages("s", "u")
    assert messages == [
        message
        for n in (1, 2, 3)
        for message in (
            {"role": "user", "content": f"q{n}"},
            {"role": "assistant", "content": f"a{n}"},
        )
    ]
    both, text = manager.load_history_both("s", "u")
    assert both == messages
    assert text.startswith("Previous conversation:\n\n")
    assert "QUESTION: q3\nANSWER: a3\n\n" in text
    manager.set_graph_context("A -> B", session_id="s", user_id="u")
    context = manager.build_context("s", "u")
    assert context.history == messages
    assert context.graph_context == "A -> B"
    assert context.formatted_history.startswith(
        "Background knowledge from the knowledge graph:\nA -> B\n\n"
    )
    entries = manager.get_session("s", "u")
    assert [e.question for e in entries] == ["q0", "q1", "q2", "q3"]
    assert "CONTEXT: c0" in manager.format_entries(entries, include_context=True)
    assert [e.question for e in manager.get_session("s", "u", last_n=1)] == ["q3"]
    assert manager.load_history_messages("other", "u") == []


def test_feedback_and_updates(manager: sync.SessionManager) -> None:
    qa_id = manager.save_qa("q", "a")
    assert manager.latest_qa_id() == qa_id
    assert manager.add_feedback(qa_id, text="good", score=5)
    [entry] = manager.get_session()
    assert (entry.feedback_text, entry.feedback_score) == ("good", 5)
    assert entry.memify_metadata == {"feedback_weights_applied": False}
    with pytest.raises(InvalidParameterError, match="feedback_score"):
        manager.add_feedback(qa_id, score=9)
    assert manager.delete_feedback(qa_id)
    assert manager.update_qa(qa_id, SessionQAUpdate(answer="better"))
    [entry] = manager.get_session()
    assert (entry.feedback_text, entry.feedback_score, entry.answer) == (None, None, "better")
    assert manager.add_feedback(str(uuid.uuid4()), score=1) is False
    assert manager.delete_session() is True
    assert manager.get_session() == []


def test_agent_traces_with_the_llm_in_the_stores_loop(
    manager: sync.SessionManager, llm: ScriptedLLM
) -> None:
    first = manager.add_agent_trace_step(
        origin_function="search", status="success", session_id="s", method_return_value=["d1"]
    )
    manager.add_agent_trace_step(
        origin_function="search", status="error", session_id="s", error_message="timeout"
    )
    assert manager.get_agent_trace_count("s") == 2
    assert manager.get_agent_trace_feedback("s") == [
        "The search found two documents.",
        "search failed. Reason: timeout.",
    ]
    steps = manager.get_agent_trace_session("s", last_n=2)
    assert steps[0].trace_id == first
    assert len(llm.calls) == 1


def test_improve_lock_is_exclusive_across_threads(manager: sync.SessionManager) -> None:
    holding = threading.Event()
    tried = threading.Event()
    outcomes: dict[str, list[bool]] = {"holder": [], "other": []}

    def holder() -> None:
        with manager.improve_lock("s", "u") as held:
            outcomes["holder"].append(held)
            holding.set()
            assert tried.wait(30)

    def other() -> None:
        assert holding.wait(30)
        with manager.improve_lock("s", "u") as held:
            outcomes["other"].append(held)
        with manager.improve_lock("s2", "u") as held:
            outcomes["other"].append(held)
        tried.set()

    run_threads(2, lambda i: (holder, other)[i]())
    assert outcomes == {"holder": [True], "other": [False, True]}
    with manager.improve_lock("s", "u") as held:
        assert held is True


def test_improve_lock_is_released_on_error(manager: sync.SessionManager) -> None:
    seen: list[bool] = []

    def fail_while_holding() -> None:
        with manager.improve_lock("s") as held:
            seen.append(held)
            with manager.improve_lock("s") as again:
                seen.append(again)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_while_holding()
    assert seen == [True, False]
    with manager.improve_lock("s") as held:
        assert held is True


@pure_logic
def test_the_manager_takes_a_blocking_store(sync_store: sync.SessionStore) -> None:
    with pytest.raises(InvalidParameterError, match="blocking"):
        sync.SessionManager(open_store("memory://"))  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="history_limit"):
        sync.SessionManager(sync_store, history_limit=-1)
    manager = sync.SessionManager(sync_store, default_session_id="chat")
    assert (manager.default_session_id, manager.history_limit, manager.llm) == ("chat", 10, None)
    assert manager.store is sync_store
    assert "chat" in repr(manager)
