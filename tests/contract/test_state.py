"""Versioned state (issue #14): session, user and app state, append_turn, on every backend.

A state is a dict of JSON values merged shallowly (``None`` removes a key)
with a revision that counts its updates; a stale ``expected_revision`` raises
``ConflictError`` and writes nothing; items and a state delta are one atomic
write.
"""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from typing import Any

import pytest

from sessionstore import (
    ConflictError,
    InvalidParameterError,
    SessionError,
    SessionState,
    SessionStore,
    TurnResult,
)
from sessionstore.validation import MAX_JSON_DEPTH
from tests.contract import test_expiry
from tests.contract.cases import MakeStore, pure_logic
from tests.contract.test_expiry import MOST, Clock
from tests.contract.test_hostile_input import nested
from tests.contract.test_keys import TRICKY_IDS

S, U = "s", "u"
clock = test_expiry.clock  # the fixture: time moved by set_clock, or waited for


def exact(value: Any) -> str:
    """A spelling that tells 1 from 1.0 and True, -0.0 from 0.0, and keeps key order."""
    return json.dumps(value)


async def _session_ids(store: SessionStore, user: str | None = U) -> list[str]:
    return [i.session_id for i in (await store.list_sessions(user, limit=1000)).items]


# -- session state --------------------------------------------------------------------


async def test_a_fresh_state_is_empty_at_revision_0(store: SessionStore) -> None:
    state = await store.get_state(S, U)
    assert isinstance(state, SessionState)
    assert (state.data, state.revision) == ({}, 0)
    assert await _session_ids(store) == []  # reading created nothing


async def test_updates_merge_shallowly_and_count_revisions(store: SessionStore) -> None:
    first = await store.update_state(S, U, {"b": {"x": 1, "y": 2}, "a": 1, "gone": "soon"})
    assert (first.data, first.revision) == ({"a": 1, "b": {"x": 1, "y": 2}, "gone": "soon"}, 1)
    second = await store.update_state(S, U, {"b": {"z": 3}, "gone": None, "missing": None})
    assert (second.data, second.revision) == ({"a": 1, "b": {"z": 3}}, 2)
    assert await store.get_state(S, U) == second
    third = await store.update_state(S, U, {})  # an empty update is an update
    assert (third.data, third.revision) == (second.data, 3)


async def test_state_keys_come_back_sorted_and_values_exact(store: SessionStore) -> None:
    values: dict[str, Any] = {
        "zeta": 1.0,
        "neg": -0.0,
        "big": 2**64 + 1,
        "nested": {"b": [{"y": 1, "x": 2}], "a": None},
        "text": "NUL \x00 emoji 😀",
        "": "the empty key",
        "list": [1, "2", None],
        "flag": False,
    }
    written = await store.update_state(S, U, values)
    for state in (written, await store.get_state(S, U)):
        assert list(state.data) == sorted(values)
        assert {k: exact(v) for k, v in state.data.items()} == {
            k: exact(v) for k, v in values.items()
        }
        assert math.copysign(1.0, state.data["neg"]) == -1.0
        assert list(state.data["nested"]) == ["b", "a"]


async def test_expected_revision_guards_every_write(store: SessionStore) -> None:
    assert (await store.update_state(S, U, {"a": 1}, expected_revision=0)).revision == 1
    with pytest.raises(ConflictError) as raised:
        await store.update_state(S, U, {"a": 2}, expected_revision=0)
    assert (raised.value.expected, raised.value.actual) == (0, 1)
    assert isinstance(raised.value, SessionError)
    with pytest.raises(ConflictError):
        await store.update_state(S, U, {"a": 2}, expected_revision=2)
    assert await store.get_state(S, U) == SessionState(data={"a": 1}, revision=1)
    assert (await store.update_state(S, U, {"a": 2}, expected_revision=1)).revision == 2


async def test_a_conflict_on_a_fresh_session_creates_nothing(store: SessionStore) -> None:
    with pytest.raises(ConflictError):
        await store.update_state(S, U, {"a": 1}, expected_revision=3)
    with pytest.raises(ConflictError):
        await store.append_items(S, U, ["x"], state={"a": 1}, expected_revision=1)
    with pytest.raises(ConflictError):
        await store.append_items(S, U, ["x"], expected_revision=1)
    assert await _session_ids(store) == []
    assert await store.count_items(S, U) == 0
    assert (await store.get_state(S, U)).revision == 0


@pure_logic  # checked before any backend step
@pytest.mark.parametrize("bad", [True, False, "1", 1.0, -1, 2**63, [0]], ids=repr)
async def test_expected_revision_must_be_an_int(store: SessionStore, bad: Any) -> None:
    calls = [
        store.update_state(S, U, {"a": 1}, expected_revision=bad),
        store.append_items(S, U, ["x"], expected_revision=bad),
        store.append_turn(S, U, ["x"], state={}, expected_revision=bad),
        store.update_user_state(U, {"a": 1}, expected_revision=bad),
        store.update_app_state("app", {"a": 1}, expected_revision=bad),
    ]
    for call in calls:
        with pytest.raises(InvalidParameterError, match="expected_revision"):
            await call
    assert await _session_ids(store) == []
    assert (await store.get_user_state(U)).revision == 0
    assert (await store.get_app_state("app")).revision == 0


@pure_logic
@pytest.mark.parametrize(
    "changes",
    [
        ["a", 1],
        "a=1",
        None,
        {1: "int key"},
        {"\ud800": 1},
        {"k": float("nan")},
        {"k": object()},
        {"k": {2: "int key inside"}},
        {"k": nested(MAX_JSON_DEPTH + 1)},
    ],
    ids=repr,
)
async def test_bad_changes_write_nothing(store: SessionStore, changes: Any) -> None:
    calls = [
        store.update_state(S, U, changes),
        store.update_user_state(U, changes),
        store.update_app_state("app", changes),
    ]
    if changes is not None:  # no state delta is not a bad one
        calls.append(store.append_items(S, U, ["x"], state=changes))
    for call in calls:
        with pytest.raises(InvalidParameterError):
            await call
    assert await _session_ids(store) == []
    assert (await store.get_user_state(U)).revision == 0
    assert (await store.get_app_state("app")).revision == 0


async def test_depth_limit_applies_to_state_values(store: SessionStore) -> None:
    deepest = nested(MAX_JSON_DEPTH)  # each value is held to the limit, like an item
    await store.update_state(S, U, {"deep": deepest})
    with pytest.raises(InvalidParameterError, match="nests"):
        await store.update_state(S, U, {"deep": nested(MAX_JSON_DEPTH + 1)})
    state = await store.get_state(S, U)
    assert (exact(state.data["deep"]), state.revision) == (exact(deepest), 1)


async def test_max_field_bytes_applies_to_the_merged_state(make_store: MakeStore) -> None:
    store = await make_store(max_field_bytes=100)
    # Size: UTF-8 bytes of every key and of its value's JSON text.
    assert (await store.update_state(S, U, {"a": "x" * 40})).revision == 1  # 1 + 42
    with pytest.raises(InvalidParameterError, match="max_field_bytes"):
        await store.update_state(S, U, {"b": "y" * 60})  # 43 + 63 > 100
    with pytest.raises(InvalidParameterError, match="max_field_bytes"):
        await store.update_state(S, U, {"c": "z" * 200})  # over alone
    assert (await store.update_state(S, U, {"b": "y" * 53})).revision == 2  # 43 + 56 = 99
    assert (await store.update_state(S, U, {"a": None, "b": "é" * 47})).revision == 3
    assert set((await store.get_state(S, U)).data) == {"b"}
    assert (await store.update_user_state(U, {"k": "v" * 97})).revision == 1  # 1 + 99
    with pytest.raises(InvalidParameterError, match="max_field_bytes"):
        await store.update_user_state(U, {"k": "v" * 98})
    assert (await store.get_user_state(U)).data == {"k": "v" * 97}
    await store.update_app_state("app", {"k": "v" * 97})
    with pytest.raises(InvalidParameterError, match="max_field_bytes"):
        await store.update_app_state("app", {"j": 1})
    assert (await store.get_app_state("app")).revision == 1


async def test_a_conflict_is_reported_before_the_size(make_store: MakeStore) -> None:
    store = await make_store(max_field_bytes=100)
    await store.update_state(S, U, {"a": "x" * 90})
    with pytest.raises(ConflictError):
        await store.update_state(S, U, {"b": "y" * 20}, expected_revision=0)
    with pytest.raises(InvalidParameterError):
        await store.update_state(S, U, {"b": "y" * 20}, expected_revision=1)
    assert (await store.get_state(S, U)).revision == 1


async def test_delete_session_restarts_the_revision_at_0(store: SessionStore) -> None:
    await store.update_state(S, U, {"a": 1})
    await store.update_state(S, U, {"b": 2})
    assert await store.delete_session(S, U) is True
    assert await store.get_state(S, U) == SessionState(data={}, revision=0)
    assert await store.delete_session(S, U) is False
    assert (await store.update_state(S, U, {"c": 3}, expected_revision=0)).revision == 1
    assert (await store.get_state(S, U)).data == {"c": 3}


async def test_a_session_of_state_only_exists_while_its_revision_does(
    store: SessionStore,
) -> None:
    await store.update_state(S, U, {"a": 1})
    await store.update_state(S, U, {"a": None})  # no keys left: still revision 2
    (info,) = (await store.list_sessions(U)).items
    assert (info.session_id, info.qa_count, info.item_count) == (S, 0, 0)
    assert [d["session_id"] async for d in store.export_sessions()] == [S]
    await store.prune()
    assert await store.get_state(S, U) == SessionState(data={}, revision=0)
    assert await _session_ids(store) == []


async def test_tricky_session_and_user_ids_keep_their_own_state(store: SessionStore) -> None:
    for tricky in TRICKY_IDS:
        await store.update_state(tricky, U, {"session": tricky})
        await store.update_state(S, tricky, {"user": tricky})
    for tricky in TRICKY_IDS:
        assert await store.get_state(tricky, U) == SessionState(
            data={"session": tricky}, revision=1
        )
        assert await store.get_state(S, tricky) == SessionState(data={"user": tricky}, revision=1)
        assert (await store.get_user_state(tricky)).revision == 0
    assert (await store.get_state(S, None)).revision == 0
    assert sorted(await _session_ids(store)) == sorted(TRICKY_IDS)


async def test_concurrent_updates_of_different_keys_all_land(store: SessionStore) -> None:
    await asyncio.gather(*(store.update_state(S, U, {f"k{n}": n}) for n in range(20)))
    state = await store.get_state(S, U)
    assert state.data == {f"k{n}": n for n in range(20)}
    assert state.revision == 20


async def test_concurrent_writers_from_one_revision_only_one_wins(store: SessionStore) -> None:
    await store.update_state(S, U, {"base": 0})
    results = await asyncio.gather(
        *(store.update_state(S, U, {"winner": n}, expected_revision=1) for n in range(10)),
        return_exceptions=True,
    )
    won = [r for r in results if isinstance(r, SessionState)]
    assert len(won) == 1
    assert all(isinstance(r, ConflictError) for r in results if r not in won)
    state = await store.get_state(S, U)
    assert state == won[0]
    assert state.revision == 2


# -- append_turn: items and state in one write -----------------------------------------


async def test_append_turn_writes_items_and_state_together(store: SessionStore) -> None:
    turn = await store.append_turn(S, U, [{"role": "user"}, {"role": "assistant"}], state={"n": 1})
    assert isinstance(turn, TurnResult)
    assert turn.revision == 1
    assert [i.id for i in await store.get_items(S, U)] == turn.item_ids
    again = await store.append_turn(S, U, [{"role": "user"}], state={"n": 2}, expected_revision=1)
    assert again.revision == 2
    with pytest.raises(ConflictError):
        await store.append_turn(S, U, [{"stale": True}], state={"n": 9}, expected_revision=1)
    assert await store.count_items(S, U) == 3
    assert await store.get_state(S, U) == SessionState(data={"n": 2}, revision=2)


async def test_expected_revision_alone_checks_without_bumping(store: SessionStore) -> None:
    await store.update_state(S, U, {"a": 1})
    ids = await store.append_items(S, U, ["x"], expected_revision=1)
    turn = await store.append_turn(S, U, ["y"], expected_revision=1)
    assert turn.revision == 1
    assert [i.id for i in await store.get_items(S, U)] == [*ids, *turn.item_ids]
    with pytest.raises(ConflictError):
        await store.append_items(S, U, ["z"], expected_revision=0)
    assert await store.count_items(S, U) == 2
    assert (await store.get_state(S, U)).revision == 1


async def test_a_turn_without_items_or_state_writes_nothing(store: SessionStore) -> None:
    assert await store.append_turn(S, U) == TurnResult(item_ids=[], revision=0)
    assert await store.append_turn(S, U, [], expected_revision=0) == TurnResult(
        item_ids=[], revision=0
    )
    with pytest.raises(ConflictError):
        await store.append_turn(S, U, expected_revision=4)
    with pytest.raises(ConflictError):
        await store.append_items(S, U, [], expected_revision=4)
    assert await _session_ids(store) == []
    await store.update_state(S, U, {"a": 1})
    assert await store.append_turn(S, U, expected_revision=1) == TurnResult(item_ids=[], revision=1)


async def test_a_state_only_turn_bumps_the_revision(store: SessionStore) -> None:
    assert await store.append_turn(S, U, state={}) == TurnResult(item_ids=[], revision=1)
    assert await store.append_items(S, U, [], state={"a": 1}) == []
    assert await store.get_state(S, U) == SessionState(data={"a": 1}, revision=2)
    assert await store.count_items(S, U) == 0
    assert await _session_ids(store) == [S]


async def test_an_oversized_state_writes_neither_items_nor_state(make_store: MakeStore) -> None:
    store = await make_store(max_field_bytes=100)
    await store.append_turn(S, U, ["first"], state={"a": "x" * 60})
    with pytest.raises(InvalidParameterError, match="max_field_bytes"):
        await store.append_turn(S, U, ["second", "third"], state={"b": "y" * 60})
    with pytest.raises(InvalidParameterError, match="max_field_bytes"):
        await store.append_items(S, U, ["fine", "z" * 200], state={"c": 1})
    assert [i.data for i in await store.get_items(S, U)] == ["first"]
    assert await store.get_state(S, U) == SessionState(data={"a": "x" * 60}, revision=1)


# -- user and app state ------------------------------------------------------------------


async def test_user_and_app_state_merge_and_guard_like_session_state(store: SessionStore) -> None:
    for get, update in (
        (lambda: store.get_user_state(U), lambda c, **kw: store.update_user_state(U, c, **kw)),
        (
            lambda: store.get_app_state("app"),
            lambda c, **kw: store.update_app_state("app", c, **kw),
        ),
    ):
        assert await get() == SessionState(data={}, revision=0)
        assert await update({"b": 1, "a": [1.0]}, expected_revision=0) == SessionState(
            data={"a": [1.0], "b": 1}, revision=1
        )
        with pytest.raises(ConflictError):
            await update({"b": 2}, expected_revision=0)
        state = await update({"b": None, "c": -0.0})
        assert (state.data, state.revision) == ({"a": [1.0], "c": -0.0}, 2)
        assert await get() == state


async def test_scoped_states_never_meet_session_state(store: SessionStore) -> None:
    # Names chosen to collide: a session named like the user, the app or the scope.
    await store.update_user_state("alice", {"scope": "user alice"})
    await store.update_app_state("alice", {"scope": "app alice"})
    for session_id in ("alice", "user", "app", "user:alice", "app:alice", "u-alice", "state"):
        for user_id in ("alice", None, "user", "app"):
            await store.update_state(session_id, user_id, {"scope": f"{session_id}/{user_id}"})
    assert (await store.get_user_state("alice")).data == {"scope": "user alice"}
    assert (await store.get_app_state("alice")).data == {"scope": "app alice"}
    assert (await store.get_user_state("user")).revision == 0
    assert (await store.get_app_state("user")).revision == 0
    assert (await store.get_user_state(None)).revision == 0
    assert (await store.get_state("alice", "alice")).data == {"scope": "alice/alice"}
    # Scoped states are in no session: not listed, not exported, not deleted with one.
    assert len([d async for d in store.export_sessions()]) == 7 * 4
    assert len(await _session_ids(store, "alice")) == 7
    assert await store.delete_session("alice", "alice") is True
    assert (await store.get_user_state("alice")).revision == 1
    assert (await store.get_app_state("alice")).revision == 1


async def test_user_state_is_per_user_and_none_is_its_own(store: SessionStore) -> None:
    await store.update_user_state(None, {"who": "anonymous"})
    for other in ("None", "null", "default", " "):
        assert (await store.get_user_state(other)).revision == 0
    for user_id in TRICKY_IDS:
        await store.update_user_state(user_id, {"who": user_id})
        await store.update_app_state(user_id, {"app": user_id})
    for user_id in TRICKY_IDS:
        assert await store.get_user_state(user_id) == SessionState(
            data={"who": user_id}, revision=1
        )
        assert await store.get_app_state(user_id) == SessionState(data={"app": user_id}, revision=1)
    assert (await store.get_user_state(None)).data == {"who": "anonymous"}
    assert await _session_ids(store) == []
    assert [d async for d in store.export_sessions()] == []


@pure_logic
@pytest.mark.parametrize("bad", ["", "x" * 257, "a\x00b", "\udfff", None, 5], ids=repr)
async def test_bad_app_names_are_refused(store: SessionStore, bad: Any) -> None:
    with pytest.raises(InvalidParameterError, match="app"):
        await store.get_app_state(bad)
    with pytest.raises(InvalidParameterError, match="app"):
        await store.update_app_state(bad, {"a": 1})


@pure_logic
@pytest.mark.parametrize("bad", ["", "a\x00b", 5], ids=repr)
async def test_bad_user_ids_are_refused_for_user_state(store: SessionStore, bad: Any) -> None:
    with pytest.raises(InvalidParameterError, match="user_id"):
        await store.get_user_state(bad)
    with pytest.raises(InvalidParameterError, match="user_id"):
        await store.update_user_state(bad, {"a": 1})


async def test_prune_removes_user_and_app_state(store: SessionStore) -> None:
    await store.update_user_state(U, {"a": 1})
    await store.update_app_state("app", {"a": 1})
    await store.update_state(S, U, {"a": 1})
    await store.prune()
    assert (await store.get_user_state(U)).revision == 0
    assert (await store.get_app_state("app")).revision == 0
    assert (await store.get_state(S, U)).revision == 0


async def test_concurrent_scoped_updates_all_land(store: SessionStore) -> None:
    await asyncio.gather(
        *(store.update_user_state(U, {f"k{n}": n}) for n in range(10)),
        *(store.update_app_state("app", {f"k{n}": n}) for n in range(10)),
    )
    assert (await store.get_user_state(U)).revision == 10
    assert (await store.get_app_state("app")).data == {f"k{n}": n for n in range(10)}


@pytest.mark.shared
async def test_state_is_shared_by_two_store_objects(make_store: MakeStore) -> None:
    first, second = await make_store(), await make_store()
    await first.update_state(S, U, {"a": 1})
    await first.update_user_state(U, {"a": 1})
    await first.update_app_state("app", {"a": 1})
    assert (await second.update_state(S, U, {"b": 2}, expected_revision=1)).revision == 2
    assert (await second.get_user_state(U)).data == {"a": 1}
    assert (await second.get_app_state("app")).revision == 1
    with pytest.raises(ConflictError):
        await first.update_user_state(U, {"c": 3}, expected_revision=0)


# -- expiry -----------------------------------------------------------------------------


async def test_state_updates_slide_and_state_expires_with_the_session(
    make_store: MakeStore, clock: Clock
) -> None:
    store = await make_store(ttl=clock.ttl)
    await store.update_state(S, U, {"a": 1})
    await store.update_user_state(U, {"a": 1})
    await store.update_app_state("app", {"a": 1})
    await clock.advance(MOST)
    await store.update_state(S, U, {"b": 2})  # slides
    await clock.advance(MOST)
    assert (await store.get_state(S, U)).revision == 2  # a read: does not slide
    await clock.advance(MOST)
    assert await store.get_state(S, U) == SessionState(data={}, revision=0)
    assert await _session_ids(store) == []
    # User and app state never expire.
    assert (await store.get_user_state(U)).data == {"a": 1}
    assert (await store.get_app_state("app")).data == {"a": 1}
    # An expired session starts again at revision 0.
    assert (await store.update_state(S, U, {"c": 3}, expected_revision=0)).revision == 1


async def test_a_turn_slides_the_whole_session(make_store: MakeStore, clock: Clock) -> None:
    store = await make_store(ttl=clock.ttl)
    qa_id = await store.create_qa_entry(S, U, "q", "a")
    await store.update_state(S, U, {"a": 1})
    await clock.advance(MOST)
    await store.append_turn(S, U, [str(uuid.uuid4())])
    await clock.advance(MOST)
    assert await store.get_qa_entry(S, U, qa_id) is not None
    assert (await store.get_state(S, U)).revision == 1
    assert await store.count_items(S, U) == 1


# -- several sessions' states at once ------------------------------------------------


async def test_get_states_reads_each_session_in_the_order_asked(store: SessionStore) -> None:
    # More than one SQL batch (100), tricky ids, sessions with items only or nothing.
    ids = [f"s{n}" for n in range(230)] + list(TRICKY_IDS)
    for n, session_id in enumerate(ids):
        if n % 7 == 3:
            await store.append_items(session_id, U, [{"n": n}])  # items, no state
        elif n % 7 != 5:  # every seventh has nothing at all
            await store.update_state(session_id, U, {"n": n, "id": session_id})
    await store.update_state("s0", U, {"second": True})
    await store.update_state("s1", "other user", {"theirs": 1})
    asked = [*reversed(ids), "missing", "s0", "s0"]
    states = await store.get_states(asked, U)
    assert states == [await store.get_state(session_id, U) for session_id in asked]
    assert states[-1] == SessionState(data={"id": "s0", "n": 0, "second": True}, revision=2)
    assert states[len(ids)] == SessionState(data={}, revision=0)
    assert await store.get_states(["s1"], "other user") == [
        SessionState(data={"theirs": 1}, revision=1)
    ]
    assert await store.get_states(["s1"], None) == [SessionState(data={}, revision=0)]
    assert await store.get_states([], U) == []


async def test_get_states_leaves_out_expired_sessions(make_store: MakeStore, clock: Clock) -> None:
    store = await make_store(ttl=clock.ttl)
    await store.update_state("old", U, {"a": 1})
    await clock.advance(MOST)
    await store.update_state("new", U, {"b": 2})
    await clock.advance(MOST)
    assert await store.get_states(["old", "new"], U) == [
        SessionState(data={}, revision=0),
        SessionState(data={"b": 2}, revision=1),
    ]


@pure_logic
@pytest.mark.parametrize("bad", ["s1", b"s1", {"s1"}, 7, None, ["s1", ""], ["s1", 3]])
async def test_get_states_refuses_bad_ids(store: SessionStore, bad: Any) -> None:
    with pytest.raises(InvalidParameterError):
        await store.get_states(bad, U)


@pure_logic
async def test_get_states_reads_at_most_1000_sessions(store: SessionStore) -> None:
    assert len(await store.get_states(["s"] * 1000, U)) == 1000
    with pytest.raises(InvalidParameterError, match="at most 1000"):
        await store.get_states(["s"] * 1001, U)
