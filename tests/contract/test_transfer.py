"""export_sessions / import_sessions round trip (SPEC §2.2)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from sessionstore import (
    InvalidParameterError,
    SessionStore,
    SessionTraceStep,
    open_store,
)
from sessionstore.backend_steps import SESSIONS_AT_ONCE
from sessionstore.items import MAX_REVISION
from sessionstore.validation import MAX_JSON_DEPTH
from tests.contract.cases import MakeStore, pure_logic
from tests.contract.test_hostile_input import nested
from tests.sample_sessions import fill, fill_items, snapshot


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


# -- items and state (format sessionstore.session/2) --------------------------------------


async def _items_and_states(store: SessionStore, keys: list[tuple[str, str | None]]) -> str:
    """What the item and state reads return for ``keys``, spelled exactly (types, key order)."""
    read = []
    for session_id, user_id in keys:
        items = await store.get_items(session_id, user_id)
        state = await store.get_state(session_id, user_id)
        read.append(
            [
                [[i.id, i.data, i.created_at.isoformat()] for i in items],
                [list(state.data.items()), state.revision],
            ]
        )
    return json.dumps(read)


async def test_round_trip_carries_items_and_state_exactly(store: SessionStore) -> None:
    await fill_items(store)
    before = await snapshot(store)
    keys = sorted(before, key=repr)
    reads = await _items_and_states(store, keys)
    dumps = json.loads(json.dumps(list(before.values())))  # through JSON text, like the CLI
    assert {d["format"] for d in dumps} == {"sessionstore.session/2"}
    assert before["items", "alice"]["state"] == {
        "data": {"a": {"y": 1, "x": -0.0}, "revision": 2, "z": 1.0},
        "revision": 2,
    }
    target = open_store("memory://")
    async with target:
        assert await target.import_sessions(dumps) == 9
        assert await _items_and_states(target, keys) == reads
        middle = await snapshot(target)
    await store.prune()
    assert await store.import_sessions(list(middle.values())) == 9
    assert await _items_and_states(store, keys) == reads
    after = await snapshot(store)
    assert json.dumps([after[key] for key in keys]) == json.dumps([before[key] for key in keys])
    infos = {i.session_id: i for i in (await store.list_sessions("bob")).items}
    assert (infos["items"].qa_count, infos["items"].item_count) == (1, 8)
    assert (infos["state only"].item_count, infos["items only"].item_count) == (0, 3)
    # The revision goes on from the imported one.
    assert (await store.update_state("items", "bob", {}, expected_revision=2)).revision == 3
    # User and app state belong to no session: no dump carries them.
    assert (await store.get_user_state("alice")).revision == 0
    assert (await store.get_app_state("app")).revision == 0


async def test_import_replaces_items_and_state(store: SessionStore) -> None:
    old = await store.append_turn("s", "u", ["a", "b"], state={"k": 1})
    await store.update_state("s", "u", {"k": 2})
    dump = await _only_dump(store)
    await store.append_items("s", "u", ["added later"])
    await store.update_state("s", "u", {"later": True})
    assert await store.import_sessions([dump]) == 1
    assert [i.id for i in await store.get_items("s", "u")] == old.item_ids
    state = await store.get_state("s", "u")
    assert (state.data, state.revision) == ({"k": 2}, 2)
    dump["state"]["revision"] = 41
    assert await store.import_sessions([dump]) == 1
    assert (await store.update_state("s", "u", {}, expected_revision=41)).revision == 42
    new = await store.append_items("s", "u", ["after import"])
    assert [i.id for i in await store.get_items("s", "u")] == [*old.item_ids, *new]


async def test_a_version_1_dump_still_imports_and_clears_items_and_state(
    store: SessionStore,
) -> None:
    await store.create_qa_entry("s", "u", "q", "a")
    dump = await _only_dump(store)
    old = {key: value for key, value in dump.items() if key not in ("items", "state")}
    old["format"] = "sessionstore.session/1"
    await store.append_items("s", "u", ["x"])
    await store.update_state("s", "u", {"k": 1})
    assert await store.import_sessions([old]) == 1
    assert await store.get_items("s", "u") == []
    assert (await store.get_state("s", "u")).revision == 0
    assert [e.question for e in await store.get_all_qa_entries("s", "u")] == ["q"]
    assert (await _only_dump(store))["format"] == "sessionstore.session/2"


def _item_breakages() -> dict[str, Any]:
    def twice(spell: Any) -> Any:
        def breakage(d: dict[str, Any]) -> None:
            d["items"][1]["id"] = spell(d["items"][0]["id"])

        return breakage

    def state(**change: Any) -> Any:
        return lambda d: d["state"].update(change)

    return {
        "item id twice": twice(lambda i: i),
        "item id twice, spelled otherwise": twice(str.upper),
        "item id no UUID": lambda d: d["items"][0].update(id="item-1"),
        "item id an int": lambda d: d["items"][0].update(id=7),
        "item without data": lambda d: d["items"][0].pop("data"),
        "item data too deep": lambda d: d["items"][0].update(data=nested(MAX_JSON_DEPTH + 1)),
        "item data not JSON": lambda d: d["items"][0].update(data=float("nan")),
        "item time before 1970": lambda d: d["items"][0].update(created_at="1969-01-01T00:00:00Z"),
        "items not a list": lambda d: d.update(items={"a": 1}),
        "no items": lambda d: d.pop("items"),
        "no state": lambda d: d.pop("state"),
        "state not a dict": lambda d: d.update(state=[1]),
        "state data not a dict": state(data=[1]),
        "state value None": state(data={"k": None}),
        "state revision a bool": state(revision=True),
        "state revision a str": state(revision="2"),
        "state revision negative": state(revision=-1),
        "state revision too big": state(revision=2**63),
        "state revision past 2**53": state(revision=2**53 + 1),
        "state revision of 4,400 digits": state(revision=10**4400),
        "state data at revision 0": state(revision=0),
    }


ITEM_BREAKAGES = _item_breakages()


async def test_the_largest_revision_imports_and_counts_on_exactly(store: SessionStore) -> None:
    await store.update_state("s", "u", {"k": 1})
    dump = await _only_dump(store)
    dump["state"]["revision"] = MAX_REVISION
    assert await store.import_sessions([dump]) == 1
    assert (await store.get_state("s", "u")).revision == MAX_REVISION
    after = await store.update_state("s", "u", {"k": 2}, expected_revision=MAX_REVISION)
    assert after.revision == MAX_REVISION + 1
    assert await store.get_state("s", "u") == after


@pure_logic
@pytest.mark.parametrize("breakage", list(ITEM_BREAKAGES), ids=list(ITEM_BREAKAGES))
async def test_bad_items_or_state_in_a_dump_import_nothing(
    store: SessionStore, breakage: str
) -> None:
    source = open_store("memory://")
    async with source:
        await source.append_items("s", "u", ["a", "b"], state={"k": 1})
        dump = await _only_dump(source)
    ITEM_BREAKAGES[breakage](dump)
    await store.append_items("s", "u", ["mine"])
    with pytest.raises(InvalidParameterError):
        await store.import_sessions([dump])
    assert [i.data for i in await store.get_items("s", "u")] == ["mine"]
    assert (await store.get_state("s", "u")).revision == 0


@pure_logic
@pytest.mark.parametrize("part", ["item", "state"])
async def test_a_dump_over_max_field_bytes_imports_nothing(
    make_store: MakeStore, part: str
) -> None:
    source = open_store("memory://")
    async with source:
        if part == "item":
            await source.append_items("s", "u", ["x" * 99])  # 101 bytes of JSON
        else:
            await source.update_state("s", "u", {"k": "x" * 98})  # 1 + 100 bytes
        dump = await _only_dump(source)
    store = await make_store(max_field_bytes=100)
    with pytest.raises(InvalidParameterError, match="max_field_bytes"):
        await store.import_sessions([dump])
    assert (await store.list_sessions("u")).items == []
    if part == "state":
        assert await store.import_sessions(
            [{**dump, "state": {"data": {"k": "x" * 97}, "revision": 1}}]
        )


# -- more sessions than one batch (export and import work SESSIONS_AT_ONCE at a time) ----

MANY = 2 * SESSIONS_AT_ONCE + 37


async def _many_sessions(store: SessionStore) -> None:
    """MANY sessions over three users, each with its own mix of what a session holds."""
    users = (None, "alice", "bob")
    for n in range(MANY):
        sid, user = f"m{n:03d}/😀", users[n % 3]
        if n % 5 or not (n % 4 == 0 or n % 3 == 0 or n % 7 == 0):  # never an empty session
            await store.create_qa_entry(sid, user, f"q{n}", f"a{n}", metadata={"n": n})
        if n % 4 == 0:
            await store.save_trace_step(
                sid, user, SessionTraceStep(origin_function=f"f{n}", status="ok")
            )
        if n % 3 == 0:
            await store.append_items(sid, user, [{"n": n}, float(n)], state={"n": n})
        if n % 7 == 0:
            await store.set_graph_context(sid, user, f"graph {n}")


async def test_more_sessions_than_a_batch_round_trip_exactly(store: SessionStore) -> None:
    await _many_sessions(store)
    before = await snapshot(store)
    assert len(before) == MANY
    reads = {
        key: (
            await store.get_all_qa_entries(*key),
            await store.read_trace_steps(*key),
            await store.get_items(*key),
            await store.get_state(*key),
            await store.get_graph_context(*key),
        )
        for key in before
    }
    assert sorted(before) == sorted(reads)  # each session exported once
    for (sid, user), dump in before.items():
        entries, traces, items, state, graph = reads[sid, user]
        assert [e["id"] for e in dump["entries"]] == [e.id for e in entries]
        assert [t["trace_id"] for t in dump["trace_steps"]] == [t.trace_id for t in traces]
        assert [i["id"] for i in dump.get("items", [])] == [i.id for i in items]
        assert dump["graph_context"] == graph
        assert (dump.get("state") or {}).get("revision", 0) == state.revision
    await store.prune()
    assert await store.import_sessions(before[key] for key in sorted(before, key=repr)) == MANY
    assert await snapshot(store) == before


async def test_a_session_given_twice_in_one_batch_ends_as_the_later_dump(
    store: SessionStore,
) -> None:
    await store.create_qa_entry("twice", "u", "old", "a")
    (old,) = [d async for d in store.export_sessions()]
    await store.create_qa_entry("twice", "u", "new", "a")
    (new,) = [d async for d in store.export_sessions()]
    await store.prune()
    others = [{**old, "session_id": f"other{n}"} for n in range(5)]
    assert await store.import_sessions([new, *others, old]) == 7
    assert [e.question for e in await store.get_all_qa_entries("twice", "u")] == ["old"]
    assert await store.import_sessions([old, *others, new]) == 7
    assert [e.question for e in await store.get_all_qa_entries("twice", "u")] == ["old", "new"]


async def _seed_dump(store: SessionStore) -> dict[str, Any]:
    """The dump of a one-entry session of user "u", the store left empty."""
    await store.create_qa_entry("seed", "u", "q", "a")
    (seed,) = [d async for d in store.export_sessions()]
    await store.prune()
    return seed


async def test_a_bad_dump_after_a_full_batch_keeps_every_session_before_it(
    store: SessionStore,
) -> None:
    seed = await _seed_dump(store)
    good = [{**seed, "session_id": f"good{n:03d}"} for n in range(SESSIONS_AT_ONCE + 10)]
    bad = {**seed, "session_id": "bad", "created_at": "not a time"}
    after = {**seed, "session_id": "after"}
    with pytest.raises(InvalidParameterError):
        await store.import_sessions([*good, bad, after])
    listed = await store.list_sessions("u", limit=1000)
    assert sorted(info.session_id for info in listed.items) == [d["session_id"] for d in good]


async def test_dumps_that_fail_midway_leave_every_session_before_imported(
    store: SessionStore,
) -> None:
    seed = await _seed_dump(store)

    def dumps() -> Iterator[dict[str, Any]]:
        for n in range(SESSIONS_AT_ONCE + 5):
            yield {**seed, "session_id": f"before{n:03d}"}
        raise OSError("the file went away")

    with pytest.raises(OSError, match="went away"):
        await store.import_sessions(dumps())
    listed = await store.list_sessions("u", limit=1000)
    assert len(listed.items) == SESSIONS_AT_ONCE + 5
