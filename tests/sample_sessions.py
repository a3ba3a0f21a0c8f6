"""Sample sessions that use every field, shared by the transfer and CLI tests."""

from __future__ import annotations

from typing import Any

from sessionstore import SessionQAUpdate, SessionStore, SessionTraceStep, UsedGraphElementIds


async def fill(store: SessionStore) -> None:
    """Write sessions that use every field, for three users and odd ids."""
    for user in (None, "alice", "bob"):
        for sid in ("s1", "s/2 😀"):
            first = await store.create_qa_entry(
                sid,
                user,
                "q\x00 1 [bold]",
                "a\r\n1",
                "ctx",
                used_graph_element_ids=UsedGraphElementIds(node_ids=["n"], edge_ids=["e"]),
                metadata={"model": "m", "n": [1, 2.5, None]},
            )
            await store.create_qa_entry(sid, user, "q2", "a2")
            await store.update_qa_entry(
                sid, user, first, SessionQAUpdate(feedback_score=5, feedback_text="great")
            )
            await store.save_trace_step(
                sid,
                user,
                SessionTraceStep(origin_function="search", status="ok", method_return_value=[1]),
            )
    await store.set_graph_context("graph-only", "alice", "")


async def snapshot(store: SessionStore) -> dict[tuple[str, str | None], dict[str, Any]]:
    """Every session of every user, keyed by (session id, user id)."""
    return {(d["session_id"], d["user_id"]): d async for d in store.export_sessions()}


async def fill_items(store: SessionStore) -> None:
    """Write item logs and session states (values a careless copy would change) for three users.

    Also a user state and an app state, which no export carries.
    """
    values: list[Any] = [
        {"role": "user", "content": [{"type": "input_text", "text": "hi \x00 😀"}]},
        {"type": "function_call", "arguments": '{"q": 1}', "b": 1, "a": 2},
        1.0,
        -0.0,
        2**64 + 1,
        ["list", None],
        "text",
        None,
    ]
    for user in (None, "alice", "bob"):
        await store.append_turn("items", user, values, state={"z": 1.0, "a": {"y": 1, "x": -0.0}})
        await store.update_state("items", user, {"revision": 2})
        await store.create_qa_entry("items", user, "q", "a")
        await store.append_items("items only", user, [{"n": n} for n in range(3)])
        await store.update_state("state only", user, {"k": [1, 2.5]})
    await store.update_user_state("alice", {"theme": "dark"})
    await store.update_app_state("app", {"version": 3})
