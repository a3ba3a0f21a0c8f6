"""Keys: tricky ids, isolation of users and sessions (SPEC §2.1)."""

from __future__ import annotations

import pytest

from sessionstore import SessionStore, SessionTraceStep
from tests.contract.cases import pure_logic

TRICKY_IDS = [
    "plain",
    "a/b",
    "../../etc/passwd",
    "..",
    ".",
    "a:b",
    "{tag}",
    "}{",
    "*",
    "%2F",
    "%",
    "with space",
    " ",
    "-leading-dash",
    "CON",
    "con",
    "x.traces",
    "x.entries",
    "emoji 😀",
    "A",
    "a",
    "é",
    "e\u0301",
    "x ",
    "back\\slash",
    "new\nline",
    "s" * 256,
    "😀" * 256,
]


async def test_tricky_session_ids_are_isolated(store: SessionStore) -> None:
    for sid in TRICKY_IDS:
        await store.create_qa_entry(sid, "u", sid, "answer")
        await store.set_graph_context(sid, "u", "g:" + sid)
    for sid in TRICKY_IDS:
        entries = await store.get_all_qa_entries(sid, "u")
        assert [e.question for e in entries] == [sid], sid
        assert entries[0].session_id == sid
        assert await store.get_graph_context(sid, "u") == "g:" + sid
    page = await store.list_sessions("u", limit=1000)
    assert sorted(info.session_id for info in page.items) == sorted(TRICKY_IDS)


async def test_tricky_user_ids_are_isolated(store: SessionStore) -> None:
    for uid in TRICKY_IDS:
        await store.create_qa_entry("s", uid, uid, "answer")
    for uid in TRICKY_IDS:
        entries = await store.get_all_qa_entries("s", uid)
        assert [e.question for e in entries] == [uid], uid
        assert entries[0].user_id == uid
        page = await store.list_sessions(uid)
        assert [(i.session_id, i.user_id) for i in page.items] == [("s", uid)]


async def test_none_user_is_its_own_namespace(store: SessionStore) -> None:
    await store.create_qa_entry("s", None, "anonymous", "a")
    for other in ("default", "None", "null", " ", "anonymous"):
        assert await store.get_all_qa_entries("s", other) == []
        assert (await store.list_sessions(other)).items == []
    await store.create_qa_entry("s", "default", "named", "a")
    assert [e.question for e in await store.get_all_qa_entries("s", None)] == ["anonymous"]
    assert [i.user_id for i in (await store.list_sessions(None)).items] == [None]


async def test_no_call_crosses_users(store: SessionStore) -> None:
    mine = await store.create_qa_entry("s", "alice", "q", "a")
    await store.set_graph_context("s", "alice", "alice's")
    await store.save_trace_step("s", "alice", SessionTraceStep(origin_function="f", status="ok"))

    assert await store.get_qa_entry("s", "bob", mine) is None
    assert await store.delete_qa_entry("s", "bob", mine) is False
    assert await store.delete_session("s", "bob") is False
    assert await store.get_graph_context("s", "bob") is None
    assert await store.read_trace_steps("s", "bob") == []
    assert await store.latest_qa_id("s", "bob") is None
    assert await store.count_qa_entries("s", "bob") == 0
    await store.set_graph_context("s", "bob", "bob's")

    assert await store.get_graph_context("s", "alice") == "alice's"
    assert await store.count_qa_entries("s", "alice") == 1
    assert len(await store.read_trace_steps("s", "alice")) == 1


@pure_logic  # ids are checked before any backend step
@pytest.mark.parametrize(
    "bad",
    ["", "x" * 257, "nul\x00inside", "\ud800 lone surrogate", 5, b"bytes", None],
)
async def test_bad_session_ids_are_rejected(store: SessionStore, bad: object) -> None:
    with pytest.raises(ValueError, match="session_id"):
        await store.create_qa_entry(bad, "u", "q", "a")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="session_id"):
        await store.get_all_qa_entries(bad, "u")  # type: ignore[arg-type]
    assert (await store.list_sessions("u")).items == []


@pure_logic
@pytest.mark.parametrize("bad", ["", "x" * 257, "a\x00b", "\udfff", 0, ["u"]])
async def test_bad_user_ids_are_rejected(store: SessionStore, bad: object) -> None:
    with pytest.raises(ValueError, match="user_id"):
        await store.create_qa_entry("s", bad, "q", "a")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="user_id"):
        await store.list_sessions(bad)  # type: ignore[arg-type]
    assert await store.count_qa_entries("s", None) == 0
