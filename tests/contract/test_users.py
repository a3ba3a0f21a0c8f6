"""``list_users``: every user with a live session, and how many sessions each has."""

from __future__ import annotations

from sessionstore import SessionStore, SessionTraceStep, UserInfo, sync
from tests.sample_sessions import fill, fill_items


def _counts(users: list[UserInfo]) -> list[tuple[str | None, int]]:
    return [(user.user_id, user.session_count) for user in users]


async def test_an_empty_store_has_no_users(store: SessionStore) -> None:
    assert await store.list_users() == []


async def test_users_are_counted_anonymous_first_then_by_id(store: SessionStore) -> None:
    await fill(store)
    await store.create_qa_entry("s", "Zed", "q", "a")
    assert _counts(await store.list_users()) == [(None, 2), ("Zed", 1), ("alice", 3), ("bob", 2)]


async def test_every_kind_of_session_counts_and_user_state_does_not(store: SessionStore) -> None:
    await fill_items(store)  # per user: entries and items, items only, state only
    await store.update_user_state("carol", {"only": "a user state"})
    await store.save_trace_step(
        "traces only", "dave", SessionTraceStep(origin_function="f", status="ok")
    )
    await store.set_graph_context("graph only", "erin", "")
    assert _counts(await store.list_users()) == [
        (None, 3),
        ("alice", 3),
        ("bob", 3),
        ("dave", 1),
        ("erin", 1),
    ]


async def test_a_user_without_sessions_disappears(store: SessionStore) -> None:
    await store.create_qa_entry("s1", "alice", "q", "a")
    await store.create_qa_entry("s2", "alice", "q", "a")
    await store.create_qa_entry("s1", None, "q", "a")
    assert await store.delete_session("s1", "alice")
    assert _counts(await store.list_users()) == [(None, 1), ("alice", 1)]
    assert await store.delete_session("s2", "alice")
    assert _counts(await store.list_users()) == [(None, 1)]
    await store.prune()
    assert await store.list_users() == []


def test_the_blocking_store_lists_users_too(store_url: str) -> None:
    with sync.open_store(store_url) as blocking:
        try:
            blocking.create_qa_entry("s", "alice", "q", "a")
            blocking.create_qa_entry("s", None, "q", "a")
            assert blocking.list_users() == [
                UserInfo(user_id=None, session_count=1),
                UserInfo(user_id="alice", session_count=1),
            ]
        finally:
            blocking.prune()
