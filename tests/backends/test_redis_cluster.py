"""The Redis backend on a real (throwaway, three-master) Redis Cluster."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from sessionstore import SessionQAUpdate, SessionTraceStep
from sessionstore.backends.redis import RedisStore
from sessionstore.backends.redis.layout import session_keys
from sessionstore.store import SessionKey
from tests.contract.test_keys import TRICKY_IDS

redis_asyncio = pytest.importorskip("redis.asyncio")
from redis.crc import key_slot  # noqa: E402


@pytest.fixture
async def cluster(redis_cluster_url: str) -> AsyncIterator[redis_asyncio.RedisCluster]:
    client = redis_asyncio.RedisCluster.from_url(redis_cluster_url.replace("+cluster", ""))
    await client.initialize()
    yield client
    await client.aclose()


@pytest.fixture
def prefix() -> str:
    return "t" + uuid.uuid4().hex[:12]


async def _all_keys(cluster: redis_asyncio.RedisCluster, pattern: str) -> set[str]:
    return {k.decode() async for k in cluster.scan_iter(match=pattern)}


async def test_sessions_spread_over_nodes_and_every_call_works(
    redis_cluster_url: str, cluster: redis_asyncio.RedisCluster, prefix: str
) -> None:
    async with RedisStore(redis_cluster_url, prefix=prefix) as store:
        for sid in TRICKY_IDS:
            qa_id = await store.create_qa_entry(sid, sid, "q", "a")
            assert await store.update_qa_entry(sid, sid, qa_id, SessionQAUpdate(answer="b"))
            await store.set_graph_context(sid, sid, "g")
            await store.save_trace_step(
                sid, sid, SessionTraceStep(origin_function="f", status="ok")
            )
            second = await store.create_qa_entry(sid, sid, "q2", "a2")
            assert await store.delete_qa_entry(sid, sid, second)
        nodes = set()
        for sid in TRICKY_IDS:
            keys = session_keys(prefix, SessionKey(sid, sid))
            assert len({key_slot(k.encode()) for k in keys.session}) == 1
            nodes.add(cluster.get_node_from_key(keys.meta).name)
            assert [e.answer for e in await store.get_all_qa_entries(sid, sid)] == ["b"]
            page = await store.list_sessions(sid)
            assert [(i.session_id, i.qa_count) for i in page.items] == [(sid, 1)]
        assert len(nodes) == 3  # 28 sessions: every master holds some
        assert len([d async for d in store.export_sessions()]) == len(TRICKY_IDS)
        for sid in TRICKY_IDS[::2]:
            assert await store.delete_session(sid, sid)
            assert (await store.list_sessions(sid)).items == []
        await store.prune()
        assert await _all_keys(cluster, f"{prefix}:*") == set()


async def test_prune_on_every_node_leaves_foreign_keys(
    redis_cluster_url: str, cluster: redis_asyncio.RedisCluster, prefix: str
) -> None:
    foreign = [f"{prefix}:other:{i}" for i in range(20)] + [f"{prefix}2:s:{{~.a}}:meta"]
    for name in foreign:
        await cluster.set(name, "x")
    async with RedisStore(redis_cluster_url, prefix=prefix) as store:
        for i in range(60):
            await store.create_qa_entry(f"s{i}", f"user{i % 7}", "q", "a")
        assert len(await _all_keys(cluster, f"{prefix}:*")) > 60
        await store.prune()
        for user in range(7):
            assert (await store.list_sessions(f"user{user}")).items == []
    assert await _all_keys(cluster, f"{prefix}*") == set(foreign)
    for name in foreign:
        await cluster.delete(name)


async def test_injected_cluster_client_is_detected_and_kept_open(
    cluster: redis_asyncio.RedisCluster, prefix: str
) -> None:
    async with RedisStore(client=cluster, prefix=prefix) as store:
        await store.create_qa_entry("s", None, "q", "a")
        assert [i.session_id for i in (await store.list_sessions(None)).items] == ["s"]
        await store.prune()
    assert await cluster.ping()
