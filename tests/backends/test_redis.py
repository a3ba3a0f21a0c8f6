"""What only the Redis backend has: its key layout, scripts, options and pool."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessionstore import (
    InvalidParameterError,
    SessionQAUpdate,
    SessionTraceStep,
    StoreError,
    open_store,
)
from sessionstore.backends.redis import RedisStore
from sessionstore.backends.redis.layout import (
    decode_id,
    encode_id,
    is_own_key,
    parse_session_key,
    session_keys,
)
from sessionstore.store import SessionKey
from tests.contract.test_keys import TRICKY_IDS
from tests.servers import throwaway_redis

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


SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-%")
ids = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), min_size=1)


@given(value=ids)
def test_id_encoding_is_reversible_and_key_safe(value: str) -> None:
    encoded = encode_id(value)
    assert set(encoded) <= SAFE
    assert decode_id(encoded) == value


@given(first=ids, second=ids)
def test_distinct_ids_never_share_a_key(first: str, second: str) -> None:
    if first != second:
        assert encode_id(first) != encode_id(second)
    assert encode_id(first) != encode_id(None)


@pytest.mark.parametrize("sid", TRICKY_IDS)
def test_all_keys_of_a_session_share_one_slot(sid: str) -> None:
    for user in (None, "u", sid):
        keys = session_keys("app", SessionKey(sid, user))
        assert len({key_slot(k.encode()) for k in keys.session}) == 1
        for name in keys.session:
            assert name.startswith("app:s:{")
            assert name.count("{") == 1
            assert name.count("}") == 1
            assert is_own_key("app", name)
            assert not is_own_key("app2", name)
        assert parse_session_key("app", keys.meta) == SessionKey(sid, user)
        assert is_own_key("app", keys.index)


async def test_layout_uses_a_sorted_order_and_one_hash_of_entries(
    store: RedisStore, raw: redis_asyncio.Redis, prefix: str
) -> None:
    for i in range(3):
        await store.create_qa_entry("a:b {c}*😀", None, f"q{i}", "a")
    await store.set_graph_context("a:b {c}*😀", None, "g")
    await store.save_trace_step(
        "a:b {c}*😀", None, SessionTraceStep(origin_function="f", status="ok")
    )
    keys = session_keys(prefix, SessionKey("a:b {c}*😀", None))
    types = {name: (await raw.type(name)).decode() for name in [*keys.session, keys.index]}
    written = {name: kind for name, kind in types.items() if kind != "none"}
    assert written == {
        keys.meta: "hash",
        keys.order: "zset",
        keys.entries: "hash",
        keys.traces: "list",
        keys.trace_ids: "set",
        keys.index: "zset",
    }
    assert await raw.hlen(keys.entries) == 3
    assert [s for _, s in await raw.zrange(keys.order, 0, -1, withscores=True)] == [1, 2, 3]
    assert await _keys(raw, f"{prefix}:*") == sorted(written)


async def test_trace_ids_of_a_session_written_before_they_were_kept_are_found(
    store: RedisStore, raw: redis_asyncio.Redis, prefix: str
) -> None:
    # Sessions written by a version without the trace_ids set hold steps but no
    # set: the first save makes it from the steps, reading each id exactly.
    ids = ["t1", 'x","origin_function":"y', "a\x00b", "\\", "\u00e9\U0001f600"]
    for trace_id in ids:
        await store.save_trace_step(
            "s", "u", SessionTraceStep(trace_id=trace_id, origin_function="f", status="ok")
        )
    keys = session_keys(prefix, SessionKey("s", "u"))
    assert await raw.delete(keys.trace_ids) == 1
    for trace_id in ids:
        with pytest.raises(InvalidParameterError):
            await store.save_trace_step(
                "s", "u", SessionTraceStep(trace_id=trace_id, origin_function="g", status="ok")
            )
    assert await raw.smembers(keys.trace_ids) == {t.encode() for t in ids}
    await store.save_trace_step(
        "s", "u", SessionTraceStep(trace_id="new", origin_function="f", status="ok")
    )
    assert [s.trace_id for s in await store.read_trace_steps("s", "u")] == [*ids, "new"]


async def test_update_merges_one_entry_exactly(store: RedisStore) -> None:
    metadata = {"f": 0.1 + 0.2, "big": 2**62 + 1, "tiny": 5e-324, "s": 'a/b\\c"\x00😀', "e": []}
    qa_id = await store.create_qa_entry("s", "u", "q", "a", metadata=metadata)
    other = await store.create_qa_entry("s", "u", "q2", "a2")
    assert await store.update_qa_entry("s", "u", qa_id, SessionQAUpdate(feedback_score=4))
    assert await store.update_qa_entry("s", "u", qa_id, SessionQAUpdate())
    entry = await store.get_qa_entry("s", "u", qa_id)
    assert entry is not None
    assert entry.metadata == metadata
    assert (entry.feedback_score, entry.question, entry.context) == (4, "q", None)
    assert (await store.get_qa_entry("s", "u", other)) is not None
    assert await store.update_qa_entry("s", "u", str(uuid.uuid4()), SessionQAUpdate()) is False


# -- expiry ----------------------------------------------------------------------


async def test_every_write_sets_pexpire_on_every_key_and_reads_do_not(
    redis_server_url: str, raw: redis_asyncio.Redis, prefix: str
) -> None:
    async with RedisStore(redis_server_url, prefix=prefix, ttl=100) as store:
        await store.create_qa_entry("s", "u", "q", "a")
        await store.save_trace_step("s", "u", SessionTraceStep(origin_function="f", status="ok"))
        keys = session_keys(prefix, SessionKey("s", "u"))
        names = [*keys.session, keys.index]
        ttls = {name: await raw.pttl(name) for name in names}
        existing = {name: ttl for name, ttl in ttls.items() if ttl != -2}  # -2: no such key
        assert keys.trace_ids in existing
        assert all(95_000 < t <= 100_000 for t in existing.values()), ttls
        await raw.pexpire(keys.meta, 50_000)
        await store.get_all_qa_entries("s", "u")
        await store.list_sessions("u")
        await store.read_trace_steps("s", "u")
        assert await raw.pttl(keys.meta) <= 50_000  # reads leave it alone
        await store.set_graph_context("s", "u", "g")
        assert await raw.pttl(keys.meta) > 95_000  # a write slides it
        await store.prune()


async def test_list_sessions_drops_expired_members_from_the_index(
    redis_server_url: str, raw: redis_asyncio.Redis, prefix: str
) -> None:
    index = session_keys(prefix, SessionKey("x", "u")).index
    short = RedisStore(redis_server_url, prefix=prefix, ttl=0.3)
    forever = RedisStore(redis_server_url, prefix=prefix)
    async with short, forever:
        await short.create_qa_entry("old", "u", "q", "a")
        await forever.create_qa_entry("new", "u", "q", "a")  # the index now outlives "old"
        await asyncio.sleep(0.4)
        assert await raw.zcard(index) == 2
        assert await raw.pttl(index) == -1
        assert [i.session_id for i in (await forever.list_sessions("u")).items] == ["new"]
        assert await raw.zcard(index) == 1
        await forever.prune()


async def test_index_expiry_is_only_extended(
    redis_server_url: str, raw: redis_asyncio.Redis, prefix: str
) -> None:
    index = session_keys(prefix, SessionKey("x", "u")).index
    async with (
        RedisStore(redis_server_url, prefix=prefix, ttl=100) as long,
        RedisStore(redis_server_url, prefix=prefix, ttl=10) as brief,
    ):
        await long.create_qa_entry("a", "u", "q", "a")
        await brief.create_qa_entry("b", "u", "q", "a")
        assert await raw.pttl(index) > 95_000
        await brief.prune()


# -- prune -------------------------------------------------------------------------


async def test_prune_leaves_other_prefixes_and_applications_alone(
    redis_server_url: str, raw: redis_asyncio.Redis, prefix: str
) -> None:
    foreign = {
        f"{prefix}:config": "another app's key under the same first word",
        f"{prefix}:s:plain": "no hash tag: not ours",
        f"{prefix}:s:{{~.s}}:note": "matches the SCAN pattern, not our key shape",
        f"{prefix}x:config": "a prefix that extends ours",
        f"other-{prefix}": "unrelated",
    }
    await raw.mset(foreign)
    mine = RedisStore(redis_server_url, prefix=prefix)
    neighbour = RedisStore(redis_server_url, prefix=prefix + "x")
    async with mine, neighbour:
        for store in (mine, neighbour):
            for user in (None, "u"):
                await store.create_qa_entry("s", user, "q", "a")
                await store.set_graph_context("g", user, "g")
        await mine.prune()
        assert (await mine.list_sessions("u")).items == []
        assert await _keys(raw, f"{prefix}:*") == sorted(
            k for k in foreign if k[len(prefix)] == ":"
        )
        assert await neighbour.count_qa_entries("s", None) == 1
        assert len((await neighbour.list_sessions("u")).items) == 2
        await neighbour.prune()
    for name, value in foreign.items():
        assert (await raw.get(name)) == value.encode()
    await raw.delete(*foreign)


async def test_prune_works_in_batches(
    store: RedisStore, raw: redis_asyncio.Redis, prefix: str
) -> None:
    for i in range(300):
        await store.set_graph_context(f"s{i}", "u", "g")
    await store.prune()
    assert await _keys(raw, f"{prefix}:*") == []


# -- scripts and errors -----------------------------------------------------------------


async def test_scripts_are_reloaded_after_noscript(
    store: RedisStore, redis_server_url: str
) -> None:
    await store.create_qa_entry("s", "u", "q", "a")
    flusher = redis_asyncio.Redis.from_url(redis_server_url)
    await flusher.script_flush()
    await flusher.aclose()
    await store.create_qa_entry("s", "u", "q", "a")
    assert await store.count_qa_entries("s", "u") == 2


async def test_a_pipeline_of_reads_reloads_a_flushed_script(
    store: RedisStore, raw: redis_asyncio.Redis
) -> None:
    await store.update_state("a", "u", {"n": 1})
    await store.update_state("b", "u", {"n": 2})
    await raw.script_flush()
    assert [s.data for s in await store.get_states(["a", "missing", "b"], "u")] == [
        {"n": 1},
        {},
        {"n": 2},
    ]


async def test_a_failing_read_in_a_pipeline_is_a_store_error(
    store: RedisStore, raw: redis_asyncio.Redis, prefix: str
) -> None:
    await store.update_state("a", "u", {"n": 1})
    keys = session_keys(prefix, SessionKey("b", "u"))
    await raw.set(keys.state, "not a hash")
    with pytest.raises(StoreError, match="failed"):
        await store.get_states(["a", "b"], "u")
    await raw.delete(keys.state)


async def test_driver_errors_become_store_errors(
    store: RedisStore, raw: redis_asyncio.Redis, prefix: str
) -> None:
    keys = session_keys(prefix, SessionKey("s", "u"))
    await raw.set(keys.order, "not a sorted set")
    with pytest.raises(StoreError, match="failed") as caught:
        await store.create_qa_entry("s", "u", "q", "a")
    assert type(caught.value) is StoreError
    with pytest.raises(StoreError):
        await store.count_qa_entries("s", "u")
    await raw.delete(keys.order)


# -- options and connections ------------------------------------------------------------


def test_url_options_and_schemes(redis_server_url: str) -> None:
    host = redis_server_url.split("://", 1)[1]
    store = open_store(f"valkey://user:hunter2@{host}?prefix=a.b/c&socket_timeout=0.5&ttl=3")
    assert isinstance(store, RedisStore)
    assert store.ttl == 3.0
    assert "hunter2" not in repr(store)
    assert "prefix=a.b/c" in store.describe()
    for bad in ("prefix=a:b", "prefix=", "prefix=%7Bx%7D", "socket_timeout=-1", "nope=1"):
        with pytest.raises(InvalidParameterError):
            open_store(f"redis://{host}?{bad}")
    with pytest.raises(InvalidParameterError, match="port"):
        open_store("redis://127.0.0.1:notaport/0")
    with pytest.raises(InvalidParameterError):
        RedisStore()


async def test_injected_client_is_used_and_not_closed(
    raw: redis_asyncio.Redis, prefix: str
) -> None:
    async with RedisStore(client=raw, prefix=prefix) as store:
        await store.create_qa_entry("s", "u", "q", "a")
        assert "Redis (given)" in store.describe()
        await store.prune()
    assert await raw.ping() is True


async def test_owned_pool_is_closed_by_close() -> None:
    with throwaway_redis() as (port, _):
        watcher = redis_asyncio.Redis(port=port)
        base = len(await watcher.client_list())
        store = open_store(f"redis://127.0.0.1:{port}/0")
        await asyncio.gather(*(store.create_qa_entry("s", "u", "q", "a") for _ in range(5)))
        assert len(await watcher.client_list()) > base
        await store.close()
        assert len(await watcher.client_list()) == base
        await watcher.aclose()


def test_import_sessionstore_does_not_import_redis() -> None:
    code = "import sys, sessionstore; sessionstore.open_store; assert 'redis' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
