"""What only the Redis backend has for the item log and states: keys, expiry, sizes, prune."""

from __future__ import annotations

import fnmatch
import uuid
from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessionstore import ConflictError, InvalidParameterError
from sessionstore.backends.redis import RedisStore
from sessionstore.backends.redis.layout import (
    is_own_key,
    parse_session_key,
    prune_patterns,
    scope_keys,
    session_keys,
    session_meta_pattern,
    user_index_key,
)
from sessionstore.backends.redis.lock import KEY_PREFIX
from sessionstore.clock import to_micros
from sessionstore.items import StateScope, state_size
from sessionstore.store import SessionKey
from tests.contract.test_keys import TRICKY_IDS

redis_asyncio = pytest.importorskip("redis.asyncio")
from redis.crc import key_slot  # noqa: E402


@pytest.fixture
def prefix() -> str:
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture
async def raw(redis_server_url: str) -> AsyncIterator[redis_asyncio.Redis]:
    client = redis_asyncio.Redis.from_url(redis_server_url)
    yield client
    await client.aclose()


@pytest.fixture
async def store(redis_server_url: str, prefix: str) -> AsyncIterator[RedisStore]:
    opened = RedisStore(redis_server_url, prefix=prefix)
    async with opened:
        yield opened
        await opened.prune()


async def _keys(raw: redis_asyncio.Redis, pattern: str) -> list[str]:
    return sorted([k.decode() async for k in raw.scan_iter(match=pattern)])


# -- layout ----------------------------------------------------------------------


async def test_items_are_an_ordered_set_and_a_hash_of_exact_json_text(
    store: RedisStore, raw: redis_asyncio.Redis, prefix: str
) -> None:
    sid = "a:b {c}*😀"
    ids = await store.append_items(sid, None, [{"b": 1, "a": -0.0}, [2**64 + 1], "é\x00"])
    await store.append_items(sid, None, [None])
    keys = session_keys(prefix, SessionKey(sid, None))
    assert (await raw.type(keys.item_order), await raw.type(keys.items)) == (b"zset", b"hash")
    ordered = await raw.zrange(keys.item_order, 0, -1, withscores=True)
    assert [(m.decode(), s) for m, s in ordered[:3]] == list(zip(ids, [1.0, 2.0, 3.0], strict=True))
    assert ordered[3][1] == 4.0
    created = to_micros((await store.get_items(sid, None))[0].created_at)
    stored = await raw.hmget(keys.items, ids)
    assert [s.decode() for s in stored] == [
        f'{created}|{{"b":1,"a":-0.0}}',
        f"{created}|[18446744073709551617]",
        f'{created}|"é\\u0000"',
    ]
    assert await raw.hget(keys.meta, "iseq") == b"4"
    assert not await raw.exists(keys.state)  # no state written


async def test_state_is_a_hash_of_json_text_with_revision_and_size_in_meta(
    store: RedisStore, raw: redis_asyncio.Redis, prefix: str
) -> None:
    await store.update_state("s", "u", {"k": {"z": 1.0, "a": [2**70]}, "": "é", "gone": 1})
    await store.update_state("s", "u", {"gone": None})
    keys = session_keys(prefix, SessionKey("s", "u"))
    values = {k.decode(): v.decode() for k, v in (await raw.hgetall(keys.state)).items()}
    assert values == {"k": '{"z":1.0,"a":[1180591620717411303424]}', "": '"é"'}
    meta = await raw.hmget(keys.meta, ["rev", "ssize"])
    assert meta == [b"2", str(state_size(values)).encode()]
    assert (await store.list_sessions("u")).items[0].item_count == 0


async def test_the_running_size_follows_every_change(
    redis_server_url: str, raw: redis_asyncio.Redis, prefix: str
) -> None:
    # Lua counts bytes; the limit must hold for multi-byte keys and values.
    async with RedisStore(redis_server_url, prefix=prefix, max_field_bytes=60) as store:
        keys = session_keys(prefix, SessionKey("s", None))
        await store.update_state("s", None, {"ключ": "😀" * 5, "b": 1})
        await store.update_state("s", None, {"ключ": "x", "c": [1, 2]})
        await store.update_state("s", None, {"b": None, "nope": None})
        values = {k.decode(): v.decode() for k, v in (await raw.hgetall(keys.state)).items()}
        assert int(await raw.hget(keys.meta, "ssize")) == state_size(values) == 17
        with pytest.raises(InvalidParameterError, match="61 bytes"):
            await store.update_state("s", None, {"d": "y" * 41})
        await store.update_state("s", None, {"d": "y" * 40})  # exactly 60 bytes
        assert int(await raw.hget(keys.meta, "ssize")) == 60
        await store.prune()


async def test_a_refused_turn_writes_no_key(
    redis_server_url: str, raw: redis_asyncio.Redis, prefix: str
) -> None:
    async with RedisStore(redis_server_url, prefix=prefix, max_field_bytes=40) as store:
        await store.append_turn("s", "u", ["first"], state={"a": "x" * 20})
        before = {name: await raw.dump(name) for name in await _keys(raw, f"{prefix}:*")}
        with pytest.raises(ConflictError) as conflict:
            await store.append_turn("s", "u", ["late"], state={"b": 1}, expected_revision=0)
        assert (conflict.value.expected, conflict.value.actual) == (0, 1)
        with pytest.raises(InvalidParameterError, match="over max_field_bytes"):
            await store.append_turn("s", "u", ["big"], state={"b": "y" * 20})
        after = {name: await raw.dump(name) for name in await _keys(raw, f"{prefix}:*")}
        assert after == before
        await store.prune()


# -- scoped states -------------------------------------------------------------------


ids = st.one_of(
    st.sampled_from(TRICKY_IDS),
    st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), min_size=1),
)


@given(first=ids, second=ids)
def test_no_scoped_state_key_is_any_other_key(first: str, second: str) -> None:
    prefix = "app"
    scoped = [
        *scope_keys(prefix, StateScope("user", first)).all,
        *scope_keys(prefix, StateScope("app", first)).all,
        *scope_keys(prefix, StateScope("user", None)).all,
    ]
    others = [
        *session_keys(prefix, SessionKey(first, second)).session,
        *session_keys(prefix, SessionKey(second, first)).session,
        *session_keys(prefix, SessionKey(first, None)).session,
        user_index_key(prefix, first),
        user_index_key(prefix, None),
        *scope_keys(prefix, StateScope("user", second)).all,
        *scope_keys(prefix, StateScope("app", second)).all,
    ]
    assert len(set(scoped)) == len(scoped)
    every_session = session_meta_pattern(prefix, None, every_user=True)
    for name in scoped:
        assert is_own_key(prefix, name)
        assert not name.startswith(KEY_PREFIX)
        assert parse_session_key(prefix, name) is None
        assert not fnmatch.fnmatchcase(name, every_session)
        assert sum(fnmatch.fnmatchcase(name, p) for p in prune_patterns(prefix)) == 1
        if first != second:
            assert name not in others
    for scope in (StateScope("user", first), StateScope("app", first)):
        assert len({key_slot(k.encode()) for k in scope_keys(prefix, scope).all}) == 1


async def test_scoped_states_never_expire_and_prune_removes_them(
    redis_server_url: str, raw: redis_asyncio.Redis, prefix: str
) -> None:
    foreign = {
        f"{prefix}:st:plain": "no hash tag",
        f"{prefix}:st:{{x.u}}:meta": "a kind that is neither u nor a",
        f"{prefix}:st:{{u.u}}:note": "not a key name of ours",
    }
    await raw.mset(foreign)
    async with RedisStore(redis_server_url, prefix=prefix, ttl=100) as store:
        assert (await store.update_user_state("u", {"a": 1})).revision == 1
        assert (await store.update_app_state("u", {"a": 2})).revision == 1
        await store.update_user_state(None, {"a": 3})
        written = [
            *scope_keys(prefix, StateScope("user", "u")).all,
            *scope_keys(prefix, StateScope("app", "u")).all,
            *scope_keys(prefix, StateScope("user", None)).all,
        ]
        assert [await raw.pttl(name) for name in written] == [-1] * 6
        assert (await store.list_sessions("u")).items == []
        assert [d async for d in store.export_sessions()] == []
        await store.prune()
        assert await _keys(raw, f"{prefix}:*") == sorted(foreign)
        assert (await store.get_user_state("u")).revision == 0
    await raw.delete(*foreign)


# -- expiry ------------------------------------------------------------------------


async def test_item_and_state_writes_set_pexpire_on_every_key_and_reads_do_not(
    redis_server_url: str, raw: redis_asyncio.Redis, prefix: str
) -> None:
    async with RedisStore(redis_server_url, prefix=prefix, ttl=100) as store:
        await store.append_turn("s", "u", [1, 2], state={"k": 1})
        keys = session_keys(prefix, SessionKey("s", "u"))
        for name in (keys.meta, keys.item_order, keys.items, keys.state, keys.index):
            assert 95_000 < await raw.pttl(name) <= 100_000, name
        for name in (keys.meta, keys.item_order, keys.items, keys.state):
            await raw.pexpire(name, 50_000)
        await store.get_items("s", "u", last_n=1)
        await store.get_state("s", "u")
        await store.count_items("s", "u")
        await store.list_sessions("u")
        assert await raw.pttl(keys.items) <= 50_000  # reads leave it alone
        for write in (
            store.pop_item("s", "u"),
            store.update_state("s", "u", {"j": 2}),
            store.append_items("s", "u", [3]),
        ):
            await write
            for name in (keys.meta, keys.item_order, keys.items, keys.state):
                assert await raw.pttl(name) > 95_000, name
                await raw.pexpire(name, 50_000)
        await store.prune()


async def test_a_state_emptied_of_keys_keeps_its_session_and_revision(
    store: RedisStore, raw: redis_asyncio.Redis, prefix: str
) -> None:
    await store.update_state("s", "u", {"k": 1})
    await store.update_state("s", "u", {"k": None})
    keys = session_keys(prefix, SessionKey("s", "u"))
    assert not await raw.exists(keys.state)
    assert (await store.get_state("s", "u")).revision == 2
    assert [i.session_id for i in (await store.list_sessions("u")).items] == ["s"]
    assert await store.delete_session("s", "u")
    assert await _keys(raw, f"{prefix}:*") == []
