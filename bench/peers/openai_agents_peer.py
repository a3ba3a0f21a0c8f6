"""The OpenAI Agents SDK's sessions as a benchmark peer.

Runs in ``bench/.venvs/openai-agents`` (``openai-agents[redis,sqlalchemy]``,
asyncpg, asyncmy). A turn is two items, the user's message and the
assistant's. ``SQLiteSession`` on SQLite, ``RedisSession`` on Redis and
``SQLAlchemySession`` on PostgreSQL and MariaDB. The SDK cannot change or
delete a stored item (only ``pop_item`` of the newest), so ``update`` is
n/a and ``concurrent`` only appends.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

from agents import SQLiteSession
from agents.extensions.memory import RedisSession, SQLAlchemySession
from sqlalchemy.ext.asyncio import create_async_engine

from bench.peers.common import Place, run, sqlalchemy_url
from bench.workloads import ANSWER, question, turn_items


def turn(i: int) -> list[Any]:
    return [
        {"role": "user", "content": question(i)},
        {"role": "assistant", "content": ANSWER},
    ]


class AgentsAdapter:
    supports = frozenset({"fill", "items"})

    def __init__(self, name: str, make: Any, multi_process: bool = False) -> None:
        self.name = name
        self.multi_process = multi_process
        self._make = make
        self._sessions: dict[str, Any] = {}
        self.engine: Any = None
        self.redis: Any = None
        self.prefix = ""

    def session(self, session_id: str) -> Any:
        found = self._sessions.get(session_id)
        if found is None:
            found = self._sessions[session_id] = self._make(session_id)
        return found

    async def append(self, session: str, i: int) -> str | None:
        await self.session(session).add_items(turn(i))
        return None

    async def latest(self, session: str, n: int) -> int:
        return len(await self.session(session).get_items(limit=2 * n)) // 2

    async def count(self, session: str) -> int:
        return len(await self.session(session).get_items()) // 2

    async def fill(self, session: str, n: int) -> list[str]:
        items = [item for i in range(n) for item in turn(i)]
        await self.session(session).add_items(items)
        return []

    async def append_items(self, session: str, i: int) -> None:
        await self.session(session).add_items(turn_items(i))

    async def get_items(self, session: str, n: int) -> int:
        return len(await self.session(session).get_items(limit=n))

    async def fill_items(self, session: str, n: int) -> None:
        log = [item for i in range(n // 4 + 1) for item in turn_items(i)][:n]
        await self.session(session).add_items(log)

    async def update(self, session: str, turn_id: str, score: int) -> bool:
        raise NotImplementedError

    async def delete(self, session: str, turn_id: str) -> bool:
        raise NotImplementedError

    async def close(self, remove: bool = True) -> None:
        for stored in self._sessions.values():
            if isinstance(stored, SQLiteSession):
                stored.close()
        if self.redis is not None:
            if remove:
                async for key in self.redis.scan_iter(match=f"{self.prefix}*", count=1000):
                    await self.redis.unlink(key)
            await self.redis.aclose()
        if self.engine is not None:
            if remove:
                async with self.engine.begin() as conn:
                    for table in ("messages", "sessions"):
                        await conn.exec_driver_sql(f"DROP TABLE IF EXISTS {self.prefix}{table}")
            await self.engine.dispose()


async def sqlite(place: Place) -> AgentsAdapter:
    return AgentsAdapter(
        "SQLiteSession",
        lambda sid: SQLiteSession(sid, place.location),
        multi_process=True,
    )


async def redis(place: Place) -> AgentsAdapter:
    from redis.asyncio import Redis  # noqa: PLC0415 (only for this storage)

    client = Redis.from_url(place.location)
    await client.ping()
    adapter = AgentsAdapter(
        "RedisSession",
        lambda sid: RedisSession(sid, redis_client=client, key_prefix=place.prefix),
    )
    adapter.redis, adapter.prefix = client, place.prefix
    return adapter


async def sqlalchemy(place: Place) -> AgentsAdapter:
    engine = create_async_engine(sqlalchemy_url(place.storage, place.location))
    adapter = AgentsAdapter(
        f"SQLAlchemySession ({place.storage})",
        lambda sid: SQLAlchemySession(
            sid,
            engine=engine,
            create_tables=True,
            sessions_table=f"{place.prefix}sessions",
            messages_table=f"{place.prefix}messages",
        ),
    )
    adapter.engine, adapter.prefix = engine, place.prefix
    try:
        await adapter.session("probe").get_items()  # creates the tables, or fails here
    except Exception:
        await adapter.close()
        raise
    return adapter


if __name__ == "__main__":
    run(
        "openai-agents",
        importlib.metadata.version("openai-agents"),
        {"sqlite": sqlite, "redis": redis, "postgresql": sqlalchemy, "mariadb": sqlalchemy},
        "bench.peers.openai_agents_peer",
    )
