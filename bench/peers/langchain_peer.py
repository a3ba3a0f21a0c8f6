"""LangChain's chat message histories (``langchain-community``) as a benchmark peer.

Runs in ``bench/.venvs/langchain`` (langchain-community, SQLAlchemy, redis,
aiosqlite, asyncpg, asyncmy). A turn is a ``HumanMessage`` and an
``AIMessage`` added with one ``aadd_messages`` call.
``SQLChatMessageHistory`` (async engine) serves SQLite, PostgreSQL and
MariaDB, ``RedisChatMessageHistory`` Redis. Neither can read only the newest
messages: "latest-N" reads the whole history and keeps the tail, as a user
of these classes must. Neither can change or delete one message, so
``update`` is n/a and ``concurrent`` only appends.

Filling big sessions for ``latest`` writes the classes' own row / list
format in bulk (one ``INSERT`` of many rows, or pipelined ``LPUSH``), since
their add path takes minutes for 100,000 messages; the reads measured are
the classes' own.
"""

from __future__ import annotations

import importlib.metadata
import json
from typing import Any

from langchain_community.chat_message_histories import (
    RedisChatMessageHistory,
    SQLChatMessageHistory,
)
from langchain_community.chat_message_histories.sql import DefaultMessageConverter
from langchain_core.messages import AIMessage, HumanMessage, message_to_dict
from sqlalchemy.ext.asyncio import create_async_engine

from bench.peers.common import Place, run, sqlalchemy_url
from bench.workloads import ANSWER, question


def turn(i: int) -> list[Any]:
    return [HumanMessage(content=question(i)), AIMessage(content=ANSWER)]


class HistoryAdapter:
    supports = frozenset({"fill"})

    def __init__(self, name: str, make: Any, multi_process: bool = False) -> None:
        self.name = name
        self.multi_process = multi_process
        self._make = make
        self._histories: dict[str, Any] = {}
        self.engine: Any = None
        self.table = ""
        self.redis_url = ""
        self.prefix = ""

    def history(self, session_id: str) -> Any:
        found = self._histories.get(session_id)
        if found is None:
            found = self._histories[session_id] = self._make(session_id)
        return found

    async def append(self, session: str, i: int) -> str | None:
        await self.history(session).aadd_messages(turn(i))
        return None

    async def latest(self, session: str, n: int) -> int:
        messages = await self.history(session).aget_messages()
        return len(messages[-2 * n :]) // 2

    async def count(self, session: str) -> int:
        return len(await self.history(session).aget_messages()) // 2

    async def fill(self, session: str, n: int) -> list[str]:
        records = [json.dumps(message_to_dict(m)) for i in range(n) for m in turn(i)]
        if self.engine is not None:
            table = self.history(session).sql_model_class.__table__
            await self.history(session)._acreate_table_if_not_exists()
            async with self.engine.begin() as conn:
                for start in range(0, len(records), 5000):
                    rows = [
                        {"session_id": session, "message": r} for r in records[start : start + 5000]
                    ]
                    await conn.execute(table.insert(), rows)
        else:
            client = self.history(session).redis_client
            key = self.history(session).key
            pipe = client.pipeline(transaction=False)
            for start in range(0, len(records), 5000):
                pipe.lpush(key, *records[start : start + 5000])
            pipe.execute()
        return []

    async def update(self, session: str, turn_id: str, score: int) -> bool:
        raise NotImplementedError

    async def delete(self, session: str, turn_id: str) -> bool:
        raise NotImplementedError

    async def close(self, remove: bool = True) -> None:
        if self.engine is not None:
            if remove:
                async with self.engine.begin() as conn:
                    await conn.exec_driver_sql(f"DROP TABLE IF EXISTS {self.table}")
            await self.engine.dispose()
        if self.redis_url:
            import redis  # noqa: PLC0415 (the sync client LangChain uses)

            client = redis.Redis.from_url(self.redis_url)
            if remove:
                for key in client.scan_iter(match=f"{self.prefix}*", count=1000):
                    client.unlink(key)
            client.close()
            for history in self._histories.values():
                history.redis_client.close()


async def sql(place: Place) -> HistoryAdapter:
    engine = create_async_engine(sqlalchemy_url(place.storage, place.location))
    table = f"{place.prefix}message_store"
    converter = DefaultMessageConverter(table)  # one model class for every session
    adapter = HistoryAdapter(
        f"SQLChatMessageHistory ({place.storage})",
        lambda sid: SQLChatMessageHistory(
            sid, connection=engine, custom_message_converter=converter, table_name=table
        ),
        multi_process=place.storage == "sqlite",
    )
    adapter.engine, adapter.table = engine, table
    try:
        await adapter.history("probe").aget_messages()  # creates the table, or fails here
    except Exception:
        await adapter.close()
        raise
    return adapter


async def redis(place: Place) -> HistoryAdapter:
    adapter = HistoryAdapter(
        "RedisChatMessageHistory",
        lambda sid: RedisChatMessageHistory(sid, url=place.location, key_prefix=place.prefix),
    )
    adapter.redis_url, adapter.prefix = place.location, place.prefix
    await adapter.history("probe").aget_messages()
    return adapter


if __name__ == "__main__":
    run(
        "langchain-community",
        importlib.metadata.version("langchain-community"),
        {"sqlite": sql, "redis": redis, "postgresql": sql, "mariadb": sql},
        "bench.peers.langchain_peer",
    )
