"""History as messages and prompt text, build_context, defaults (SPEC §6)."""

from __future__ import annotations

import pytest

from sessionstore import InvalidParameterError, SessionContext, SessionManager, SessionStore
from tests.contract.cases import pure_logic
from tests.manager.fakes import StoreSpy


async def _fill(manager: SessionManager, n: int, **ids: str | None) -> list[str]:
    return [
        await manager.save_qa(f"q{i}", f"a{i}", context=f"c{i}" if i % 2 else None, **ids)
        for i in range(n)
    ]


async def test_messages_are_the_last_turns_oldest_first(store: SessionStore) -> None:
    manager = SessionManager(store, history_limit=3)
    await _fill(manager, 5, session_id="s", user_id="u")
    messages = await manager.load_history_messages("s", "u")
    assert messages == [
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "a2"},
        {"role": "user", "content": "q3"},
        {"role": "assistant", "content": "a3"},
        {"role": "user", "content": "q4"},
        {"role": "assistant", "content": "a4"},
    ]


async def test_empty_session_gives_no_messages_and_no_text(manager: SessionManager) -> None:
    assert await manager.load_history_messages("nothing-here") == []
    assert await manager.load_history_both("nothing-here") == ([], "")
    assert manager.format_entries([]) == ""


async def test_format_entries_exact_text(manager: SessionManager, store: SessionStore) -> None:
    await _fill(manager, 2, session_id="s")
    entries = await store.get_all_qa_entries("s", None)
    first, second = (e.created_at.isoformat() for e in entries)
    assert manager.format_entries(entries) == (
        "Previous conversation:\n\n"
        f"[{first}]\nQUESTION: q0\nANSWER: a0\n\n"
        f"[{second}]\nQUESTION: q1\nANSWER: a1\n\n"
    )
    # Context only when asked for, and only where the entry has one.
    assert manager.format_entries(entries, include_context=True) == (
        "Previous conversation:\n\n"
        f"[{first}]\nQUESTION: q0\nANSWER: a0\n\n"
        f"[{second}]\nQUESTION: q1\nCONTEXT: c1\nANSWER: a1\n\n"
    )
    assert "+00:00" in first  # aware UTC timestamps


async def test_format_keeps_empty_context_and_odd_text(
    manager: SessionManager, store: SessionStore
) -> None:
    await manager.save_qa("", "multi\nline 😀", context="", session_id="s")
    [entry] = await store.get_all_qa_entries("s", None)
    assert manager.format_entries([entry], include_context=True) == (
        f"Previous conversation:\n\n[{entry.created_at.isoformat()}]\n"
        "QUESTION: \nCONTEXT: \nANSWER: multi\nline 😀\n\n"
    )


async def test_history_both_comes_from_one_store_read(
    manager: SessionManager, store: SessionStore
) -> None:
    await _fill(manager, 3, session_id="s", user_id="u")
    spy = StoreSpy(store)
    spy.watch("get_latest_qa_entries", "get_all_qa_entries", "get_qa_entry")
    messages, text = await manager.load_history_both("s", "u")
    assert spy.calls == ["get_latest_qa_entries"]
    entries = await store.get_all_qa_entries("s", "u")
    assert messages == await manager.load_history_messages("s", "u")
    assert text == manager.format_entries(entries)
    assert "CONTEXT" not in text


async def test_build_context_without_graph(manager: SessionManager) -> None:
    await _fill(manager, 2, user_id="u")
    ctx = await manager.build_context(user_id="u")
    assert isinstance(ctx, SessionContext)
    assert ctx.session_id == "default_session"
    assert ctx.graph_context is None
    messages, text = await manager.load_history_both(user_id="u")
    assert ctx.history == messages
    assert ctx.formatted_history == text


@pytest.mark.parametrize("graph", ["", "Paris -[capital_of]-> France"])
async def test_build_context_with_graph(manager: SessionManager, graph: str) -> None:
    await _fill(manager, 1, session_id="g")
    await manager.set_graph_context(graph, session_id="g")
    ctx = await manager.build_context("g")
    _, text = await manager.load_history_both("g")
    assert ctx.graph_context == graph
    if graph:
        expected = f"Background knowledge from the knowledge graph:\n{graph}\n\n{text}"
    else:
        expected = text  # an empty graph context adds no prefix
    assert ctx.formatted_history == expected


async def test_build_context_graph_only(manager: SessionManager) -> None:
    await manager.set_graph_context("gc", session_id="only-graph", user_id="u")
    ctx = await manager.build_context("only-graph", "u")
    assert ctx.history == []
    assert ctx.formatted_history == "Background knowledge from the knowledge graph:\ngc\n\n"


async def test_defaults(store: SessionStore) -> None:
    manager = SessionManager(store)
    assert manager.default_session_id == "default_session"
    assert manager.history_limit == 10
    assert manager.llm is None
    await _fill(manager, 12)
    assert await store.count_qa_entries("default_session", None) == 12
    messages = await manager.load_history_messages()
    assert len(messages) == 20
    assert messages[0] == {"role": "user", "content": "q2"}


async def test_configured_defaults(store: SessionStore) -> None:
    manager = SessionManager(store, default_session_id="chat/1 😀", history_limit=1)
    await _fill(manager, 2, user_id="u")
    assert await store.count_qa_entries("chat/1 😀", "u") == 2
    assert await manager.load_history_messages(user_id="u") == [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
    ]
    zero = SessionManager(store, default_session_id="chat/1 😀", history_limit=0)
    assert await zero.load_history_both(user_id="u") == ([], "")


async def test_users_do_not_see_each_other(manager: SessionManager) -> None:
    await manager.save_qa("alice asks", "a", user_id="alice")
    await manager.save_qa("anon asks", "a")
    assert [m["content"] for m in await manager.load_history_messages(user_id="alice")] == [
        "alice asks",
        "a",
    ]
    assert [m["content"] for m in await manager.load_history_messages()] == ["anon asks", "a"]


BAD_CONFIGURATIONS: list[dict[str, object]] = [
    {"history_limit": -1},
    {"history_limit": True},
    {"history_limit": 2.0},
    {"default_session_id": ""},
    {"default_session_id": "x\x00"},
    {"default_session_id": None},
    {"lock_lease": 0},
    {"llm": object()},
]


@pure_logic
async def test_bad_configuration(store: SessionStore) -> None:
    for kwargs in BAD_CONFIGURATIONS:
        with pytest.raises(InvalidParameterError):
            SessionManager(store, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError):
        SessionManager(object())  # type: ignore[arg-type]


@pure_logic
async def test_bad_ids_are_rejected(manager: SessionManager) -> None:
    with pytest.raises(InvalidParameterError):
        await manager.load_history_messages("")
    with pytest.raises(InvalidParameterError):
        await manager.build_context(user_id="")
