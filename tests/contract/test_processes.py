"""Several processes share one store; a writer killed mid-write loses nothing acknowledged.

Runs on every backend whose ``BackendCase.multi_process`` is true, through the
public API only; the children are ``tests/writer_process.py``.
"""

from __future__ import annotations

import pytest

from tests.contract.cases import MakeStore
from tests.writer_process import USER, Writer

pytestmark = pytest.mark.multi_process

S = "shared"
PROCESSES, EACH = 4, 40
ROUNDS, WRITERS = 2, 2  # rounds of writers killed mid-write
BIG = 256 * 1024  # large entries make it likely that a kill lands inside a write


async def test_processes_appending_at_once_lose_nothing(
    store_url: str, make_store: MakeStore
) -> None:
    # Every child opens the empty store at the same moment, then appends.
    writers = [
        await Writer.start(store_url, S, f"p{n}", EACH, barrier=True) for n in range(PROCESSES)
    ]
    for writer in writers:
        assert await writer.line() == "ready"
    for writer in writers:
        await writer.go()
    acknowledged = {qa_id for writer in writers for qa_id in await writer.finish()}

    store = await make_store()
    entries = await store.get_all_qa_entries(S, USER)
    assert len(entries) == PROCESSES * EACH
    assert await store.count_qa_entries(S, USER) == PROCESSES * EACH
    assert [i.qa_count for i in (await store.list_sessions(USER)).items] == [PROCESSES * EACH]
    assert {e.id for e in entries} == acknowledged
    for n in range(PROCESSES):  # each process's entries in its own order
        mine = [e.question for e in entries if e.question.startswith(f"p{n}:")]
        assert mine == [f"p{n}:{i}" for i in range(EACH)]


async def test_processes_appending_item_groups_keep_each_group_whole(
    store_url: str, make_store: MakeStore
) -> None:
    writers = [
        await Writer.start(store_url, S, f"p{n}", EACH // 2, barrier=True, items=True)
        for n in range(PROCESSES)
    ]
    for writer in writers:
        assert await writer.line() == "ready"
    for writer in writers:
        await writer.go()
    groups = {w.tag: [line.split(",") for line in await w.finish()] for w in writers}

    store = await make_store()
    items = await store.get_items(S, USER)
    assert len(items) == PROCESSES * EACH // 2 * 3
    assert await store.count_items(S, USER) == len(items)
    assert [i.item_count for i in (await store.list_sessions(USER)).items] == [len(items)]
    position = {item.id: n for n, item in enumerate(items)}
    assert len(position) == len(items)
    for tag, acknowledged in groups.items():
        assert len(acknowledged) == EACH // 2
        for i, ids in enumerate(acknowledged):  # each group contiguous, complete, in order
            start = position[ids[0]]
            assert [position[item_id] for item_id in ids] == [start, start + 1, start + 2]
            assert [items[start + k].data for k in range(3)] == [
                {"tag": tag, "i": i, "k": k} for k in range(3)
            ]
        starts = [position[ids[0]] for ids in acknowledged]
        assert starts == sorted(starts)
    # Every reader agrees on the one order.
    assert [i.id for i in await store.get_items(S, USER, 9)] == [i.id for i in items[-9:]]


async def test_sigkill_during_writes_loses_no_acknowledged_entry(
    make_store: MakeStore, store_url: str
) -> None:
    written = 0  # entries in the session so far
    for round_ in range(ROUNDS):
        writers = [
            await Writer.start(store_url, S, f"r{round_}w{n}", 0, size=BIG, barrier=True)
            for n in range(WRITERS)
        ]
        for writer in writers:
            assert await writer.line() == "ready"
        for writer in writers:
            await writer.go()
        # Kill one after another while the others keep writing, each after a
        # different number of acknowledgements, so the kills land anywhere.
        acknowledged = {}
        for n, writer in enumerate(writers):
            mine = [await writer.line() for _ in range(1 + 2 * n + round_)]
            acknowledged[writer.tag] = mine + await writer.kill()  # + printed before the kill

        store = await make_store()  # a fresh store, as the next process would open
        entries = await store.get_all_qa_entries(S, USER)
        for tag, mine in acknowledged.items():
            # Nothing lost, nothing out of order: each writer's entries are 0, 1,
            # 2, ... in the order acknowledged, plus at most the one write in
            # flight when the kill landed.
            its = [e for e in entries if e.question.startswith(f"{tag}:")]
            assert [e.question for e in its] == [f"{tag}:{i}" for i in range(len(its))]
            assert [e.id for e in its[: len(mine)]] == mine
            assert len(its) <= len(mine) + 1
            written += len(its)
        assert len(entries) == written
        assert await store.count_qa_entries(S, USER) == written
        latest = await store.get_latest_qa_entries(S, USER, 3)
        assert [e.id for e in latest] == [e.id for e in entries[-3:]]
        # The store is still writable after the crashes.
        after = await store.create_qa_entry(S, USER, "after the kills", "a")
        written += 1
        assert await store.latest_qa_id(S, USER) == after
        assert await store.count_qa_entries(S, USER) == written
        await store.close()
