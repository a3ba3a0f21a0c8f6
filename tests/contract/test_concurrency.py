"""Concurrent writers lose nothing (SPEC §3)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from sessionstore import SessionQAUpdate, SessionStore

S, U = "busy", "u"


async def test_concurrent_creates_all_land_in_order(store: SessionStore) -> None:
    async def writer(w: int) -> list[str]:
        return [await store.create_qa_entry(S, U, f"{w}:{i}", "a") for i in range(10)]

    results = await asyncio.gather(*(writer(w) for w in range(16)))
    entries = await store.get_all_qa_entries(S, U)
    assert len(entries) == 160
    assert await store.count_qa_entries(S, U) == 160
    assert {e.id for e in entries} == {qa_id for ids in results for qa_id in ids}
    position = {e.id: i for i, e in enumerate(entries)}
    for ids in results:
        assert [position[qa_id] for qa_id in ids] == sorted(position[qa_id] for qa_id in ids)


@pytest.mark.shared
async def test_concurrent_creates_from_two_store_objects(make_store: Any) -> None:
    first, second = await make_store(), await make_store()
    await asyncio.gather(
        *(first.create_qa_entry(S, U, f"a{i}", "x") for i in range(40)),
        *(second.create_qa_entry(S, U, f"b{i}", "x") for i in range(40)),
    )
    assert await first.count_qa_entries(S, U) == 80
    assert len(await second.get_all_qa_entries(S, U)) == 80


async def test_updates_of_different_fields_both_land(store: SessionStore) -> None:
    ids = [await store.create_qa_entry(S, U, "q", "a") for _ in range(20)]
    await asyncio.gather(
        *(store.update_qa_entry(S, U, i, SessionQAUpdate(feedback_score=3)) for i in ids),
        *(store.update_qa_entry(S, U, i, SessionQAUpdate(feedback_text="t")) for i in ids),
        *(store.update_qa_entry(S, U, i, SessionQAUpdate(metadata={"m": 1})) for i in ids),
    )
    for entry in await store.get_all_qa_entries(S, U):
        assert (entry.feedback_score, entry.feedback_text, entry.metadata) == (3, "t", {"m": 1})


async def test_update_racing_delete_never_resurrects(store: SessionStore) -> None:
    ids = [await store.create_qa_entry(S, U, "q", "a") for _ in range(30)]
    keep = await store.create_qa_entry(S, U, "keep", "a")
    results = await asyncio.gather(
        *(store.update_qa_entry(S, U, i, SessionQAUpdate(answer="upd")) for i in ids),
        *(store.delete_qa_entry(S, U, i) for i in ids),
    )
    assert all(results[len(ids) :])  # every delete found its entry
    assert [e.id for e in await store.get_all_qa_entries(S, U)] == [keep]
    for qa_id in ids:
        assert await store.get_qa_entry(S, U, qa_id) is None
    assert await store.count_qa_entries(S, U) == 1


async def test_mixed_load_keeps_count_consistent(store: SessionStore) -> None:
    seed = [await store.create_qa_entry(S, U, "seed", "a") for _ in range(10)]

    async def appender() -> int:
        for i in range(15):
            await store.create_qa_entry(S, U, f"n{i}", "a")
        return 15

    async def updater() -> None:
        for qa_id in seed:
            await store.update_qa_entry(S, U, qa_id, SessionQAUpdate(feedback_score=1))

    async def deleter() -> None:
        for qa_id in seed[:5]:
            await store.delete_qa_entry(S, U, qa_id)

    await asyncio.gather(*(appender() for _ in range(6)), updater(), deleter(), updater())
    entries = await store.get_all_qa_entries(S, U)
    assert len(entries) == 10 - 5 + 6 * 15
    assert await store.count_qa_entries(S, U) == len(entries)
    assert (await store.list_sessions(U)).items[0].qa_count == len(entries)
