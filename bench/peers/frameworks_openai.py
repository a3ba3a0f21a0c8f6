"""The OpenAI Agents SDK: its own sessions against ``SessionstoreSession``.

Native: ``SQLiteSession`` (SQLite), ``RedisSession`` (Redis),
``SQLAlchemySession`` (PostgreSQL, asyncpg). Ours: ``SessionstoreSession``
on a store of the same storage. A turn is one ``add_items`` of 4 Responses
items (the user's message, a function call, its output, the reply), as the
runner saves a turn; the read is ``get_items(limit=20)``. The SDK has no
listing of sessions. In the concurrent workload each task has its own
session object for the shared session id, as concurrent requests would.
"""

from __future__ import annotations

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


def items(i: int) -> list[dict[str, Any]]:
    """Turn ``i`` as the runner stores it: message, function call, its output, reply."""
    call_id = f"call_{i}"
    return [
        {"role": "user", "content": question(i)},
        {
            "type": "function_call",
            "call_id": call_id,
            "name": "search_reports",
            "arguments": json.dumps(tool_arguments(i)),
        },
        {"type": "function_call_output", "call_id": call_id, "output": tool_output(i)},
        {
            "id": f"msg_{i}",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": reply(i), "annotations": []}],
        },
    ]


class AgentsSystem:
    """Any ``Session`` of the SDK, made per (session id, task) by ``make``."""

    listing = None

    def __init__(self, name: str, make: Any, closing: Any = None) -> None:
        self.name = name
        self._make = make
        self._closing = closing
        self._sessions: dict[tuple[str, int], Any] = {}

    def session(self, session_id: str, worker: int = 0) -> Any:
        key = (session_id, worker)
        if key not in self._sessions:
            self._sessions[key] = self._make(session_id)
        return self._sessions[key]

    async def turn(self, session: str, i: int, worker: int = 0) -> None:
        await self.session(session, worker).add_items(items(i))

    async def fill(self, session: str, n: int) -> None:
        log = [item for i in range(n // PARTS + 1) for item in items(i)][:n]
        for start in range(0, n, 1000):
            await self.session(session).add_items(log[start : start + 1000])

    async def last20(self, session: str) -> int:
        return len(await self.session(session).get_items(limit=20))

    async def stored(self, session: str) -> list[Any]:
        return list(await self.session(session).get_items())

    async def make_sessions(self, n: int) -> None:
        raise NotImplementedError

    async def list_sessions(self) -> int:
        raise NotImplementedError

    async def close(self) -> None:
        for session in self._sessions.values():
            closing = getattr(session, "close", None)
            if closing is not None:
                result = closing()
                if hasattr(result, "__await__"):
                    await result
        if self._closing is not None:
            await self._closing()


async def native(place: Place) -> AgentsSystem:
    if place.storage == "sqlite":
        from agents import SQLiteSession  # noqa: PLC0415 (the child imports one side only)

        return AgentsSystem("SQLiteSession", lambda sid: SQLiteSession(sid, place.native_url))
    if place.storage == "redis":
        from agents.extensions.memory import RedisSession  # noqa: PLC0415
        from redis.asyncio import Redis  # noqa: PLC0415

        client = Redis.from_url(place.native_url)
        return AgentsSystem(
            "RedisSession",
            lambda sid: RedisSession(sid, redis_client=client, key_prefix=place.prefix),
            client.aclose,
        )
    from agents.extensions.memory import SQLAlchemySession  # noqa: PLC0415
    from sqlalchemy.ext.asyncio import create_async_engine  # noqa: PLC0415

    engine = create_async_engine(place.native_url)
    return AgentsSystem(
        "SQLAlchemySession",
        lambda sid: SQLAlchemySession(sid, engine=engine, create_tables=True),
        engine.dispose,
    )


async def ours(place: Place) -> AgentsSystem:
    from sessionstore import open_store  # noqa: PLC0415
    from sessionstore.integrations.openai_agents import SessionstoreSession  # noqa: PLC0415

    store = open_store(place.url)
    await store.open()
    return AgentsSystem(
        "SessionstoreSession", lambda sid: SessionstoreSession(sid, store), store.close
    )


if __name__ == "__main__":
    child_main({"ours": ours, "native": native})
