"""export_sessions / import_sessions round trip (SPEC §2.2)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from sessionstore import (
    InvalidParameterError,
    SessionStore,
    open_store,
)
from tests.contract.cases import pure_logic
from tests.sample_sessions import fill, snapshot


async def _only_dump(store: SessionStore) -> dict[str, Any]:
    dumps = [d async for d in store.export_sessions()]
    assert len(dumps) == 1
    return dumps[0]


async def test_export_is_plain_json_with_a_format(store: SessionStore) -> None:
    await fill(store)
    dumps = [d async for d in store.export_sessions()]
    assert len(dumps) == 7
    for dump in dumps:
        assert json.loads(json.dumps(dump)) == dump
        assert isinstance(dump["format"], str)


async def test_export_filters_by_user(store: SessionStore) -> None:
    await fill(store)
    alice = [d async for d in store.export_sessions(user_id="alice")]
    assert sorted(d["session_id"] for d in alice) == ["graph-only", "s/2 😀", "s1"]
    anonymous = [d async for d in store.export_sessions(user_id=None)]
    assert {d["user_id"] for d in anonymous} == {None}
    assert len(anonymous) == 2
    with pytest.raises(InvalidParameterError):
        store.export_sessions(user_id="")


async def test_round_trip_reproduces_sessions_exactly(store: SessionStore) -> None:
    await fill(store)
    before = await snapshot(store)
    target = open_store("memory://")
    async with target:
        assert await target.import_sessions(store.export_sessions()) == 7
        middle = await snapshot(target)
        await store.prune()
        assert await store.import_sessions(list(middle.values())) == 7
    assert await snapshot(store) == before
    entries = await store.get_all_qa_entries("s1", "alice")
    assert [e.question for e in entries] == ["q\x00 1 [bold]", "q2"]
    assert entries[0].feedback_score == 5
    assert await store.get_graph_context("graph-only", "alice") == ""
    assert (await store.read_trace_steps("s1", None))[0].method_return_value == [1]


async def test_import_replaces_existing_session(store: SessionStore) -> None:
    await store.create_qa_entry("s", "u", "original", "a")
    dump = await _only_dump(store)
    await store.create_qa_entry("s", "u", "added later", "a")
    await store.set_graph_context("s", "u", "later")
    assert await store.import_sessions([dump]) == 1
    assert [e.question for e in await store.get_all_qa_entries("s", "u")] == ["original"]
    assert await store.get_graph_context("s", "u") is None
    assert await store.count_qa_entries("s", "u") == 1
    new = await store.create_qa_entry("s", "u", "after import", "a")
    assert await store.latest_qa_id("s", "u") == new


async def test_import_accepts_async_iterables(store: SessionStore) -> None:
    source = open_store("memory://")
    async with source:
        await fill(source)
        dumps = [d async for d in source.export_sessions()]

    async def stream() -> AsyncIterator[dict[str, Any]]:
        for dump in dumps:
            yield dump

    assert await store.import_sessions(stream()) == len(dumps)
    assert await store.count_qa_entries("s1", "bob") == 2


@pure_logic  # a dump is checked whole before any backend step
@pytest.mark.parametrize(
    "change",
    [
        {"format": "other/9"},
        {"format": None},
        {"session_id": ""},
        {"user_id": 3},
        {"entries": [{"id": "not-a-uuid"}]},
        {"created_at": "yesterday"},
        {"entries": "nope"},
    ],
    ids=repr,
)
async def test_import_refuses_bad_dumps_and_writes_nothing(
    store: SessionStore, change: dict[str, Any]
) -> None:
    source = open_store("memory://")
    async with source:
        await source.create_qa_entry("s", "u", "q", "a")
        dump = await _only_dump(source)
    with pytest.raises(InvalidParameterError):
        await store.import_sessions([{**dump, **change}])
    assert (await store.list_sessions("u")).items == []


@pure_logic
async def test_import_of_bad_entry_field_writes_nothing(store: SessionStore) -> None:
    source = open_store("memory://")
    async with source:
        await source.create_qa_entry("s", "u", "q", "a")
        await source.create_qa_entry("s", "u", "q", "a")
        dump = await _only_dump(source)
    dump["entries"][1]["feedback_score"] = 42
    with pytest.raises(InvalidParameterError):
        await store.import_sessions([dump])
    assert await store.count_qa_entries("s", "u") == 0
