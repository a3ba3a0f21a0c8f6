"""Sessions as a whole: graph context, traces, delete, prune, list_sessions."""

from __future__ import annotations

from typing import Any

import pytest

from sessionstore import SessionStore, SessionTraceStep

U = "u"


async def test_graph_context_is_a_value_and_overwrites(store: SessionStore) -> None:
    assert await store.get_graph_context("s", U) is None
    await store.set_graph_context("s", U, "")
    assert await store.get_graph_context("s", U) == ""
    await store.set_graph_context("s", U, "nodes: A -> B")
    await store.set_graph_context("s", U, "nodes: C")
    assert await store.get_graph_context("s", U) == "nodes: C"


async def test_trace_steps_append_and_keep_json(store: SessionStore) -> None:
    steps = [
        SessionTraceStep(
            origin_function=f"tool_{i}",
            status="success",
            memory_query="q",
            memory_context="c",
            method_params={"i": i, "nested": {"list": [1, 2]}},
            method_return_value=[i, {"ok": True}, None, 1.25],
            error_message="",
            session_feedback=f"tool_{i} succeeded.",
        )
        for i in range(5)
    ]
    returned = [await store.save_trace_step("s", U, step) for step in steps]
    assert returned == [step.trace_id for step in steps]
    read = await store.read_trace_steps("s", U)
    assert [s.trace_id for s in read] == returned
    assert read[0].method_return_value == [0, {"ok": True}, None, 1.25]
    assert isinstance(read[0].method_return_value, list)
    assert read[0].method_params == {"i": 0, "nested": {"list": [1, 2]}}
    assert all(s.created_at is not None and s.created_at.utcoffset() is not None for s in read)
    assert [s.model_dump(exclude={"created_at"}) for s in read] == [
        s.model_dump(exclude={"created_at"}) for s in steps
    ]
    assert [s.trace_id for s in await store.read_trace_steps("s", U, 2)] == returned[-2:]
    assert await store.read_trace_steps("s", U, 0) == []
    assert len(await store.read_trace_steps("s", U, 50)) == 5


async def test_scalar_return_values_round_trip(store: SessionStore) -> None:
    values: list[Any] = ["text", 3, 2.5, True, None, {"a": 1}, []]
    for value in values:
        await store.save_trace_step(
            "s", U, SessionTraceStep(origin_function="f", status="ok", method_return_value=value)
        )
    read = await store.read_trace_steps("s", U)
    assert [s.method_return_value for s in read] == values
    assert isinstance(read[3].method_return_value, bool)


async def test_delete_session_removes_everything(store: SessionStore) -> None:
    await store.create_qa_entry("s", U, "q", "a")
    await store.set_graph_context("s", U, "g")
    await store.save_trace_step("s", U, SessionTraceStep(origin_function="f", status="ok"))
    await store.create_qa_entry("other", U, "q", "a")
    assert await store.delete_session("s", U) is True
    assert await store.get_all_qa_entries("s", U) == []
    assert await store.get_graph_context("s", U) is None
    assert await store.read_trace_steps("s", U) == []
    assert await store.delete_session("s", U) is False
    assert [i.session_id for i in (await store.list_sessions(U)).items] == ["other"]
    assert await store.count_qa_entries("other", U) == 1


@pytest.mark.parametrize("only", ["graph", "trace", "entry"])
async def test_a_session_exists_while_it_holds_anything(store: SessionStore, only: str) -> None:
    if only == "graph":
        await store.set_graph_context("s", U, "")
    elif only == "trace":
        await store.save_trace_step("s", U, SessionTraceStep(origin_function="f", status="ok"))
    else:
        await store.create_qa_entry("s", U, "q", "a")
    items = (await store.list_sessions(U)).items
    assert [(i.session_id, i.qa_count) for i in items] == [("s", 1 if only == "entry" else 0)]
    assert await store.delete_session("s", U) is True
    assert (await store.list_sessions(U)).items == []


async def test_deleting_the_last_entry_ends_the_session(store: SessionStore) -> None:
    qa_id = await store.create_qa_entry("s", U, "q", "a")
    assert await store.delete_qa_entry("s", U, qa_id)
    assert (await store.list_sessions(U)).items == []
    assert await store.delete_session("s", U) is False


async def test_prune_removes_every_user(store: SessionStore) -> None:
    for user in (None, "a", "b"):
        await store.create_qa_entry("s", user, "q", "a")
        await store.set_graph_context("g", user, "x")
    await store.prune()
    for user in (None, "a", "b"):
        assert (await store.list_sessions(user)).items == []
        assert await store.count_qa_entries("s", user) == 0
        assert await store.get_graph_context("g", user) is None
    await store.create_qa_entry("s", "a", "after", "prune")
    assert await store.count_qa_entries("s", "a") == 1


async def test_prune_removes_many_sessions_and_states(store: SessionStore) -> None:
    # Enough that a backend deleting in pages (Redis' SCAN, batches) needs several.
    users = ("a", None, "b")
    for n in range(1_100):
        await store.create_qa_entry(f"s{n:04d}", users[n % 3], "q", "a")
    for n in range(520):
        await store.update_user_state(f"user{n:03d}", {"k": n})
    await store.prune()
    for user in users:
        assert (await store.list_sessions(user)).items == []
    for n in (0, 499, 500, 519):
        assert (await store.get_user_state(f"user{n:03d}")).revision == 0
    assert await store.count_qa_entries("s1098", "a") == 0


async def test_list_sessions_newest_write_first_with_counts(store: SessionStore) -> None:
    for sid in ("one", "two", "three"):
        await store.create_qa_entry(sid, U, "q", "a")
    await store.create_qa_entry("one", U, "q", "a")
    page = await store.list_sessions(U)
    assert [i.session_id for i in page.items] == ["one", "three", "two"]
    assert [i.qa_count for i in page.items] == [2, 1, 1]
    assert page.next_cursor is None
    one = page.items[0]
    assert one.user_id == U
    assert one.created_at <= one.updated_at
    assert page.items[1].updated_at <= one.updated_at


async def test_list_sessions_pages_visit_each_session_once(store: SessionStore) -> None:
    names = [f"s{i:02d}" for i in range(23)]
    for sid in names:
        await store.create_qa_entry(sid, U, "q", "a")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await store.list_sessions(U, limit=5, cursor=cursor)
        pages += 1
        assert len(page.items) <= 5
        seen.extend(i.session_id for i in page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
        if pages == 2:
            # Writes to sessions already listed or not yet listed during paging.
            await store.create_qa_entry("s00", U, "q", "a")
            await store.create_qa_entry("late", U, "q", "a")
    assert pages == 5
    assert sorted(seen) == sorted(set(seen))
    assert set(names) - {"s00"} <= set(seen)
    assert list(reversed(seen[:10])) == [f"s{i:02d}" for i in range(13, 23)]


async def test_list_sessions_exact_multiple_of_limit(store: SessionStore) -> None:
    for sid in ("a", "b", "c", "d"):
        await store.create_qa_entry(sid, U, "q", "a")
    first = await store.list_sessions(U, limit=2)
    assert first.next_cursor is not None
    second = await store.list_sessions(U, limit=2, cursor=first.next_cursor)
    assert [i.session_id for i in first.items + second.items] == ["d", "c", "b", "a"]
    assert second.next_cursor is None
