"""LlamaIndex: its SQL and Redis chat stores against ours.

SQL (SQLite, PostgreSQL): ``SQLAlchemyChatStore`` of ``llama-index-core``,
the ``AsyncDBChatStore`` that ``Memory`` uses by default, against our
``SessionstoreMemoryStore``. A turn is one ``add_messages`` of 4 messages
(as ``Memory.aput_messages`` writes them); the last 20 are read with
``count_messages`` then ``get_messages(offset=count - 20, limit=20)``; the
listing is ``get_keys()``.

Redis: ``RedisChatStore`` (``llama-index-storage-chat-store-redis``, in the
peer virtualenv ``bench/.venvs/llama-index``), a ``BaseChatStore`` as
``ChatMemoryBuffer`` uses it, against our ``SessionstoreChatStore``. A turn
is 4 ``async_add_message`` calls (``ChatMemoryBuffer.aput`` adds one message
at a time, so turns of concurrent tasks may interleave with either store);
the interface reads a key only whole, so the last 20 are
``aget_messages(key)[-20:]``; the listing is ``aget_keys()``.
``RedisChatStore.get_keys`` runs ``KEYS *`` on its database, so the native
side uses a Redis database of its own (``NATIVE_REDIS_DB``) and its keys
carry the run's prefix.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from bench.peers.frameworks_common import (
    PARTS,
    Place,
    child_main,
    question,
    reply,
    tool_arguments,
    tool_output,
)

NATIVE_REDIS_DB = 14


def messages(i: int) -> list[Any]:
    """Turn ``i`` as chat messages: question, tool call, tool result, reply."""
    from llama_index.core.llms import ChatMessage, MessageRole  # noqa: PLC0415

    call = {
        "id": f"call_{i}",
        "type": "function",
        "function": {"name": "search_reports", "arguments": json.dumps(tool_arguments(i))},
    }
    return [
        ChatMessage(role=MessageRole.USER, content=question(i)),
        ChatMessage(
            role=MessageRole.ASSISTANT, content="", additional_kwargs={"tool_calls": [call]}
        ),
        ChatMessage(
            role=MessageRole.TOOL,
            content=tool_output(i),
            additional_kwargs={"tool_call_id": f"call_{i}", "name": "search_reports"},
        ),
        ChatMessage(role=MessageRole.ASSISTANT, content=reply(i)),
    ]


def log_of(n: int) -> list[Any]:
    return [message for i in range(n // PARTS + 1) for message in messages(i)][:n]


class DbSystem:
    """An ``AsyncDBChatStore`` (what ``Memory`` uses)."""

    listing = "get_keys"

    def __init__(self, name: str, store: Any, closing: Any) -> None:
        self.name = name
        self.store = store
        self._closing = closing

    async def turn(self, session: str, i: int, worker: int = 0) -> None:
        await self.store.add_messages(session, messages(i))

    async def fill(self, session: str, n: int) -> None:
        log = log_of(n)
        for start in range(0, n, 1000):
            await self.store.add_messages(session, log[start : start + 1000])

    async def last20(self, session: str) -> int:
        count = await self.store.count_messages(session)
        found = await self.store.get_messages(session, offset=max(0, count - 20), limit=20)
        return len(found)

    async def stored(self, session: str) -> list[Any]:
        return [m.model_dump(mode="json") for m in await self.store.get_messages(session)]

    async def make_sessions(self, n: int) -> None:
        message = messages(0)[0]
        # One call alone first: SQLAlchemyChatStore creates its table on first use, and
        # 16 first calls at once race it ("no such table") when this workload runs alone.
        await self.store.add_message("key-0", message)
        for start in range(1, n, 16):
            await asyncio.gather(
                *(
                    self.store.add_message(f"key-{k}", message)
                    for k in range(start, min(n, start + 16))
                )
            )

    async def list_sessions(self) -> int:
        return len(await self.store.get_keys())

    async def close(self) -> None:
        await self._closing()


class BaseSystem:
    """A ``BaseChatStore`` (what ``ChatMemoryBuffer`` uses), through its async methods."""

    listing = "aget_keys"

    def __init__(self, name: str, store: Any, prefix: str, closing: Any) -> None:
        self.name = name
        self.store = store
        self.prefix = prefix
        self._closing = closing

    async def turn(self, session: str, i: int, worker: int = 0) -> None:
        for message in messages(i):
            await self.store.async_add_message(self.prefix + session, message)

    async def fill(self, session: str, n: int) -> None:
        await self.store.aset_messages(self.prefix + session, log_of(n))

    async def last20(self, session: str) -> int:
        return len((await self.store.aget_messages(self.prefix + session))[-20:])

    async def stored(self, session: str) -> list[Any]:
        found = await self.store.aget_messages(self.prefix + session)
        return [m.model_dump(mode="json") for m in found]

    async def make_sessions(self, n: int) -> None:
        message = messages(0)[0]
        for start in range(0, n, 16):
            await asyncio.gather(
                *(
                    self.store.async_add_message(f"{self.prefix}key-{k}", message)
                    for k in range(start, min(n, start + 16))
                )
            )

    async def list_sessions(self) -> int:
        return len(await self.store.aget_keys())

    async def close(self) -> None:
        await self._closing()


async def native(place: Place) -> DbSystem | BaseSystem:
    if place.storage == "redis":
        from llama_index.storage.chat_store.redis import RedisChatStore  # noqa: PLC0415

        url = place.native_url.rsplit("/", 1)[0] + f"/{NATIVE_REDIS_DB}"
        redis_store = RedisChatStore(redis_url=url)

        async def close_redis() -> None:
            await redis_store._aredis_client.aclose()
            redis_store._redis_client.close()

        return BaseSystem("RedisChatStore", redis_store, f"{place.prefix}/", close_redis)
    from llama_index.core.storage.chat_store.sql import SQLAlchemyChatStore  # noqa: PLC0415

    store = SQLAlchemyChatStore(table_name="chat", async_database_uri=place.native_url)

    async def close_sql() -> None:
        engine = store._async_engine
        if engine is not None:
            await engine.dispose()

    return DbSystem("SQLAlchemyChatStore", store, close_sql)


async def ours(place: Place) -> DbSystem | BaseSystem:
    from sessionstore import open_store  # noqa: PLC0415
    from sessionstore.integrations.llama_index import (  # noqa: PLC0415
        SessionstoreChatStore,
        SessionstoreMemoryStore,
    )

    store = open_store(place.url)
    await store.open()
    if place.storage == "redis":
        return BaseSystem("SessionstoreChatStore", SessionstoreChatStore(store), "", store.close)
    return DbSystem("SessionstoreMemoryStore", SessionstoreMemoryStore(store), store.close)


if __name__ == "__main__":
    child_main({"ours": ours, "native": native})
