"""The item log (issue #14): append_items, get_items, pop/delete/clear/count, on every backend.

Items are any JSON values and come back exactly; a call's items are one
atomic write that concurrent writers never split; removing the last thing a
session holds ends it; writes slide expiry.
"""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from datetime import UTC
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionstore import (
    InvalidParameterError,
    SessionItem,
    SessionQAUpdate,
    SessionStore,
    SessionTraceStep,
)
from sessionstore.items import MAX_ITEMS_PER_CALL
from sessionstore.validation import MAX_JSON_DEPTH
from tests.contract import test_expiry
from tests.contract.cases import MakeStore, pure_logic
from tests.contract.test_expiry import MOST, Clock
from tests.contract.test_hostile_input import nested
from tests.contract.test_keys import TRICKY_IDS

S, U = "s", "u"
clock = test_expiry.clock  # the fixture: time moved by set_clock, or waited for

# Values whose exact type, sign, size and key order a careless store would lose.
EXACT_VALUES: list[Any] = [
    {"role": "user", "content": [{"type": "input_text", "text": "hi"}]},
    1.0,
    -0.0,
    0.1,
    2**64 + 1,
    -(2**70),
    {"b": {"z": 1, "a": [{"y": 2, "x": 1}]}, "a": 0},
    'NUL \x00 and emoji 😀, quote " and backslash \\ and \u2028',
    [1, "two", None, [], {}],
    None,
    True,
    False,
    "",
    {},
    [],
    1e300,
    5e-324,
]


def exact(value: Any) -> str:
    """A spelling that tells 1 from 1.0 and True, -0.0 from 0.0, and keeps key order."""
    return json.dumps(value)


async def _session_ids(store: SessionStore, user: str | None = U) -> list[str]:
    return [i.session_id for i in (await store.list_sessions(user, limit=1000)).items]


# -- round trips ------------------------------------------------------------------


async def test_items_come_back_exactly_in_order(store: SessionStore) -> None:
    ids = await store.append_items(S, U, EXACT_VALUES)
    items = await store.get_items(S, U)
    assert [i.id for i in items] == ids
    assert [exact(i.data) for i in items] == [exact(v) for v in EXACT_VALUES]
    assert math.copysign(1.0, items[2].data) == -1.0
    assert isinstance(items[1].data, float)
    assert isinstance(items[4].data, int)
    assert items[4].data == 2**64 + 1
    assert list(items[6].data) == ["b", "a"]
    assert list(items[6].data["b"]) == ["z", "a"]
    assert list(items[6].data["b"]["a"][0]) == ["y", "x"]
    assert all(isinstance(i, SessionItem) for i in items)


async def test_ids_are_new_lowercase_uuid4_and_times_are_utc(store: SessionStore) -> None:
    first = await store.append_items(S, U, [{"n": 1}, {"n": 2}])
    second = await store.append_items(S, U, ({"n": 3},))  # a tuple is a sequence too
    ids = first + second
    assert len(set(ids)) == 3
    for item_id in ids:
        parsed = uuid.UUID(item_id)
        assert parsed.version == 4
        assert str(parsed) == item_id
    items = await store.get_items(S, U)
    assert [i.data["n"] for i in items] == [1, 2, 3]
    assert all(i.created_at.tzinfo is not None for i in items)
    assert all(i.created_at.utcoffset() == UTC.utcoffset(None) for i in items)
    assert items[0].created_at <= items[2].created_at


async def test_an_empty_append_writes_nothing(store: SessionStore) -> None:
    assert await store.append_items(S, U, []) == []
    assert await store.append_items(S, U, ()) == []
    assert await store.count_items(S, U) == 0
    assert await _session_ids(store) == []
    assert await store.delete_session(S, U) is False


async def test_ten_thousand_items_in_one_call(store: SessionStore) -> None:
    values = [{"i": i} for i in range(MAX_ITEMS_PER_CALL)]
    ids = await store.append_items(S, U, values)
    assert len(ids) == MAX_ITEMS_PER_CALL
    assert await store.count_items(S, U) == MAX_ITEMS_PER_CALL
    assert [i.data for i in await store.get_items(S, U, 3)] == values[-3:]
    everything = await store.get_items(S, U)
    assert [i.id for i in everything] == ids
    assert [i.data["i"] for i in everything] == list(range(MAX_ITEMS_PER_CALL))


json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=20)
)
json_values = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=6),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=st.lists(json_values, min_size=1, max_size=5))
async def test_any_json_items_round_trip(store: SessionStore, values: list[Any]) -> None:
    ids = await store.append_items("prop", U, values)
    items = await store.get_items("prop", U, len(values))
    assert [i.id for i in items] == ids
    assert [exact(i.data) for i in items] == [exact(v) for v in values]
    assert await store.clear_items("prop", U) is True


# -- bad input ------------------------------------------------------------------------


@pure_logic  # checked before any backend step
@pytest.mark.parametrize(
    "items",
    ["abc", b"abc", bytearray(b"ab"), {"role": "user"}, 5, 1.5, None, True, {1, 2}, iter([1])],
    ids=repr,
)
async def test_items_must_be_a_sequence(store: SessionStore, items: Any) -> None:
    with pytest.raises(InvalidParameterError, match="items must be a list or tuple"):
        await store.append_items(S, U, items)
    with pytest.raises(InvalidParameterError, match="items must be a list or tuple"):
        await store.append_turn(S, U, items)
    assert await _session_ids(store) == []


@pure_logic
@pytest.mark.parametrize(
    "bad",
    [
        float("nan"),
        float("inf"),
        {1: "int key"},
        "\ud800 lone surrogate",
        {"k": object()},
        b"bytes",
        nested(MAX_JSON_DEPTH + 1),
        {"big": 10**4001},
    ],
    ids=["nan", "inf", "int-key", "surrogate", "object", "bytes", "too-deep", "huge-int"],
)
async def test_a_bad_item_writes_none_of_the_call(store: SessionStore, bad: Any) -> None:
    await store.append_items(S, U, ["before"])
    with pytest.raises(InvalidParameterError):
        await store.append_items(S, U, ["good", bad, "good"])
    assert [i.data for i in await store.get_items(S, U)] == ["before"]


@pure_logic
async def test_more_than_ten_thousand_items_is_refused(store: SessionStore) -> None:
    with pytest.raises(InvalidParameterError, match="10000"):
        await store.append_items(S, U, [0] * (MAX_ITEMS_PER_CALL + 1))
    assert await store.count_items(S, U) == 0


async def test_depth_limit_applies_to_items(store: SessionStore) -> None:
    deepest = nested(MAX_JSON_DEPTH)
    await store.append_items(S, U, [deepest])
    assert exact((await store.get_items(S, U))[0].data) == exact(deepest)
    with pytest.raises(InvalidParameterError, match="nests"):
        await store.append_items(S, U, [nested(MAX_JSON_DEPTH + 1)])
    assert await store.count_items(S, U) == 1


async def test_max_field_bytes_applies_to_each_item(make_store: MakeStore) -> None:
    store = await make_store(max_field_bytes=1000)
    at_limit = "x" * 998  # '"' + 998 + '"' = 1000 bytes of JSON
    ids = await store.append_items(S, U, [at_limit, {"k": "é" * 100}])
    with pytest.raises(InvalidParameterError, match="max_field_bytes"):
        await store.append_items(S, U, ["small", at_limit + "x"])
    with pytest.raises(InvalidParameterError, match="max_field_bytes"):
        await store.append_items(S, U, [["y" * 600, "z" * 600]])  # no str over, the item is
    assert [i.id for i in await store.get_items(S, U)] == ids


@pure_logic
@pytest.mark.parametrize("last_n", [-1, True, "2", 1.5, [1]], ids=repr)
async def test_bad_last_n_is_refused(store: SessionStore, last_n: Any) -> None:
    with pytest.raises(InvalidParameterError, match="last_n"):
        await store.get_items(S, U, last_n)


# -- reading, removing -----------------------------------------------------------------


async def test_last_n_follows_the_rules_of_entries(store: SessionStore) -> None:
    ids = await store.append_items(S, U, list(range(5)))
    assert [i.id for i in await store.get_items(S, U)] == ids
    assert [i.id for i in await store.get_items(S, U, None)] == ids
    assert await store.get_items(S, U, 0) == []
    assert [i.id for i in await store.get_items(S, U, 2)] == ids[-2:]
    assert [i.id for i in await store.get_items(S, U, 5)] == ids
    assert [i.id for i in await store.get_items(S, U, 6)] == ids
    assert [i.id for i in await store.get_items(S, U, 2**63)] == ids
    assert await store.get_items("other", U, 3) == []


async def test_pop_returns_the_newest_item(store: SessionStore) -> None:
    assert await store.pop_item(S, U) is None
    ids = await store.append_items(S, U, ["a", {"b": 1.0}, "c"])
    popped = await store.pop_item(S, U)
    assert popped is not None
    assert (popped.id, popped.data) == (ids[2], "c")
    second = await store.pop_item(S, U)
    assert second is not None
    assert (second.id, exact(second.data)) == (ids[1], exact({"b": 1.0}))
    assert await store.count_items(S, U) == 1
    new = await store.append_items(S, U, ["d"])
    assert [i.id for i in await store.get_items(S, U)] == [ids[0], *new]


async def test_delete_item_takes_any_uuid_spelling(store: SessionStore) -> None:
    ids = await store.append_items(S, U, ["a", "b", "c", "d"])
    assert await store.delete_item(S, U, ids[1]) is True
    assert await store.delete_item(S, U, ids[1]) is False
    assert await store.delete_item(S, U, ids[2].upper()) is True
    assert await store.delete_item(S, U, ids[3].replace("-", "")) is True
    assert await store.delete_item(S, U, "not-a-uuid") is False
    assert await store.delete_item(S, U, "") is False
    assert await store.delete_item(S, U, str(uuid.uuid4())) is False
    assert await store.delete_item("other", U, ids[0]) is False
    assert await store.delete_item(S, "other", ids[0]) is False
    assert [i.id for i in await store.get_items(S, U)] == [ids[0]]


@pure_logic
@pytest.mark.parametrize("bad", [None, 5, b"id", uuid.uuid4()], ids=repr)
async def test_item_id_must_be_a_str(store: SessionStore, bad: Any) -> None:
    await store.append_items(S, U, ["a"])
    with pytest.raises(InvalidParameterError, match="item_id"):
        await store.delete_item(S, U, bad)
    assert await store.count_items(S, U) == 1


async def test_clear_and_count_touch_only_items(store: SessionStore) -> None:
    assert await store.clear_items(S, U) is False
    await store.create_qa_entry(S, U, "q", "a")
    await store.append_items(S, U, [1, 2, 3])
    assert await store.count_items(S, U) == 3
    assert await store.count_qa_entries(S, U) == 1
    assert await store.clear_items(S, U) is True
    assert await store.clear_items(S, U) is False
    assert await store.count_items(S, U) == 0
    assert await store.get_items(S, U) == []
    assert await store.count_qa_entries(S, U) == 1
    assert await _session_ids(store) == [S]


@pytest.mark.parametrize("how", ["pop", "delete", "clear"])
async def test_removing_the_last_item_ends_a_session_of_items(
    store: SessionStore, how: str
) -> None:
    (item_id,) = await store.append_items(S, U, ["only"])
    await store.append_items("kept", U, ["x"])
    assert await _session_ids(store) == ["kept", S]
    if how == "pop":
        assert await store.pop_item(S, U) is not None
    elif how == "delete":
        assert await store.delete_item(S, U, item_id) is True
    else:
        assert await store.clear_items(S, U) is True
    assert await _session_ids(store) == ["kept"]
    assert await store.delete_session(S, U) is False
    assert [d["session_id"] async for d in store.export_sessions()] == ["kept"]


@pytest.mark.parametrize("other", ["entry", "graph", "trace", "state"])
async def test_removing_the_last_item_keeps_a_session_holding_more(
    store: SessionStore, other: str
) -> None:
    await store.append_items(S, U, ["only"])
    if other == "entry":
        await store.create_qa_entry(S, U, "q", "a")
    elif other == "graph":
        await store.set_graph_context(S, U, "")
    elif other == "trace":
        await store.save_trace_step(S, U, SessionTraceStep(origin_function="f", status="ok"))
    else:
        await store.update_state(S, U, {})
    assert await store.pop_item(S, U) is not None
    assert await _session_ids(store) == [S]
    assert await store.delete_session(S, U) is True


async def test_a_session_of_items_is_listed_counted_and_deleted(store: SessionStore) -> None:
    await store.append_items(S, U, [1, 2])
    await store.create_qa_entry("mixed", U, "q", "a")
    await store.append_items("mixed", U, [3])
    infos = {i.session_id: i for i in (await store.list_sessions(U)).items}
    assert (infos[S].qa_count, infos[S].item_count) == (0, 2)
    assert (infos["mixed"].qa_count, infos["mixed"].item_count) == (1, 1)
    assert await store.delete_session(S, U) is True
    assert await store.get_items(S, U) == []
    assert await store.count_items(S, U) == 0
    assert await store.delete_session(S, U) is False
    await store.prune()
    assert await store.get_items("mixed", U) == []
    assert await _session_ids(store) == []


# -- isolation ------------------------------------------------------------------------------


async def test_tricky_session_and_user_ids_keep_their_own_items(store: SessionStore) -> None:
    for tricky in TRICKY_IDS:
        await store.append_items(tricky, U, [{"session": tricky}])
        await store.append_items(S, tricky, [{"user": tricky}])
    for tricky in TRICKY_IDS:
        assert [i.data for i in await store.get_items(tricky, U)] == [{"session": tricky}]
        assert [i.data for i in await store.get_items(S, tricky)] == [{"user": tricky}]
        assert await store.count_items(tricky, U) == 1
    assert await store.get_items(S, None) == []
    infos = (await store.list_sessions(U, limit=1000)).items
    assert sorted(i.session_id for i in infos) == sorted(TRICKY_IDS)
    assert {i.item_count for i in infos} == {1}


async def test_no_item_call_crosses_users(store: SessionStore) -> None:
    (mine,) = await store.append_items(S, "alice", ["alice's"])
    assert await store.get_items(S, "bob") == []
    assert await store.get_items(S, None) == []
    assert await store.pop_item(S, "bob") is None
    assert await store.delete_item(S, "bob", mine) is False
    assert await store.clear_items(S, "bob") is False
    assert await store.count_items(S, "bob") == 0
    await store.append_items(S, "bob", ["bob's"])
    assert [i.id for i in await store.get_items(S, "alice")] == [mine]


# -- concurrency ---------------------------------------------------------------------------


def _groups_are_contiguous(items: list[SessionItem], groups: list[list[str]]) -> None:
    position = {item.id: n for n, item in enumerate(items)}
    assert len(position) == len(items)
    for ids in groups:
        where = [position[i] for i in ids]
        assert where == list(range(where[0], where[0] + len(ids))), ids


async def test_concurrent_groups_stay_contiguous_and_complete(store: SessionStore) -> None:
    async def writer(w: int) -> list[list[str]]:
        return [
            await store.append_items(S, U, [{"w": w, "g": g, "k": k} for k in range(3)])
            for g in range(5)
        ]

    results = await asyncio.gather(*(writer(w) for w in range(16)))
    groups = [ids for result in results for ids in result]
    items = await store.get_items(S, U)
    assert len(items) == 16 * 5 * 3
    assert await store.count_items(S, U) == len(items)
    _groups_are_contiguous(items, groups)
    for w in range(16):  # each writer's groups in the order it wrote them
        assert [i.data["g"] for i in items if i.data["w"] == w] == [
            g for g in range(5) for _ in "abc"
        ]
    # Every reader agrees on the one order.
    assert [i.id for i in await store.get_items(S, U, len(items))] == [i.id for i in items]
    assert [i.id for i in await store.get_items(S, U, 30)] == [i.id for i in items[-30:]]


@pytest.mark.shared
async def test_two_store_objects_append_groups_at_once(make_store: MakeStore) -> None:
    first, second = await make_store(), await make_store()
    results = await asyncio.gather(
        *(first.append_items(S, U, [f"a{n}", f"a{n}", f"a{n}"]) for n in range(20)),
        *(second.append_items(S, U, [f"b{n}", f"b{n}", f"b{n}"]) for n in range(20)),
    )
    items = await second.get_items(S, U)
    assert len(items) == 120
    _groups_are_contiguous(items, list(results))
    assert [i.id for i in await first.get_items(S, U)] == [i.id for i in items]


async def test_concurrent_pops_never_return_one_item_twice(store: SessionStore) -> None:
    ids = await store.append_items(S, U, list(range(20)))
    popped = await asyncio.gather(*(store.pop_item(S, U) for _ in range(30)))
    got = [p.id for p in popped if p is not None]
    assert sorted(got) == sorted(ids)
    assert popped.count(None) == 10
    assert await store.count_items(S, U) == 0


async def test_pops_racing_appends_lose_nothing(store: SessionStore) -> None:
    seed = await store.append_items(S, U, [{"seed": n} for n in range(10)])

    async def appender(w: int) -> list[str]:
        appended: list[str] = []
        for g in range(5):
            appended += await store.append_items(S, U, [{"w": w, "g": g, "k": k} for k in range(3)])
        return appended

    async def popper() -> list[str]:
        popped = []
        for _ in range(8):
            item = await store.pop_item(S, U)
            if item is not None:
                popped.append(item.id)
        return popped

    results = await asyncio.gather(*(appender(w) for w in range(4)), *(popper() for _ in range(4)))
    appended = seed + [i for ids in results[:4] for i in ids]
    popped = [i for ids in results[4:] for i in ids]
    remaining = [i.id for i in await store.get_items(S, U)]
    assert len(popped) == len(set(popped))
    assert not set(popped) & set(remaining)
    assert sorted(popped + remaining) == sorted(appended)
    assert await store.count_items(S, U) == len(remaining)


# -- expiry ----------------------------------------------------------------------------------


@pytest.mark.parametrize("write", ["append", "pop", "delete", "clear", "state"])
async def test_item_writes_slide_expiry(make_store: MakeStore, clock: Clock, write: str) -> None:
    store = await make_store(ttl=clock.ttl)
    ids = await store.append_items(S, U, ["a", "b"])
    await store.create_qa_entry(S, U, "q", "a")  # keeps the session after a clear
    await clock.advance(MOST)
    if write == "append":
        await store.append_items(S, U, ["c"])
    elif write == "pop":
        assert await store.pop_item(S, U) is not None
    elif write == "delete":
        assert await store.delete_item(S, U, ids[0]) is True
    elif write == "clear":
        assert await store.clear_items(S, U) is True
    else:
        await store.update_state(S, U, {"k": 1})
    await clock.advance(MOST)
    assert await store.count_qa_entries(S, U) == 1
    assert await _session_ids(store) == [S]


@pytest.mark.parametrize("write", ["create", "update", "graph", "trace"])
async def test_other_writes_slide_items_and_state(
    make_store: MakeStore, clock: Clock, write: str
) -> None:
    store = await make_store(ttl=clock.ttl)
    await store.append_items(S, U, ["a", "b"])
    await store.update_state(S, U, {"k": 1})
    qa_id = await store.create_qa_entry(S, U, "q", "a")
    await clock.advance(MOST)
    if write == "create":
        await store.create_qa_entry(S, U, "q2", "a2")
    elif write == "update":
        assert await store.update_qa_entry(S, U, qa_id, SessionQAUpdate(feedback_score=2))
    elif write == "graph":
        await store.set_graph_context(S, U, "g")
    else:
        await store.save_trace_step(S, U, SessionTraceStep(origin_function="f", status="ok"))
    await clock.advance(MOST)
    assert [item.data for item in await store.get_items(S, U)] == ["a", "b"]
    assert (await store.get_state(S, U)).data == {"k": 1}
    await clock.advance(MOST)
    assert await store.get_items(S, U) == []
    assert (await store.get_state(S, U)).revision == 0


async def test_items_expire_with_their_session(make_store: MakeStore, clock: Clock) -> None:
    store = await make_store(ttl=clock.ttl)
    ids = await store.append_items(S, U, ["a", "b"])
    await store.update_state(S, U, {"k": 1})
    await clock.advance(MOST)
    # Reads, and removals that found nothing, are no writes.
    assert len(await store.get_items(S, U)) == 2
    assert await store.count_items(S, U) == 2
    assert await store.delete_item(S, U, str(uuid.uuid4())) is False
    assert await store.pop_item("other", U) is None
    await clock.advance(MOST)
    assert await store.get_items(S, U) == []
    assert await store.count_items(S, U) == 0
    assert await store.pop_item(S, U) is None
    assert await store.delete_item(S, U, ids[0]) is False
    assert await store.clear_items(S, U) is False
    assert (await store.get_state(S, U)).revision == 0
    assert await _session_ids(store) == []
    assert [d async for d in store.export_sessions()] == []
    new = await store.append_items(S, U, ["new"])
    assert [i.id for i in await store.get_items(S, U)] == new
    assert (await store.get_state(S, U)).revision == 0
