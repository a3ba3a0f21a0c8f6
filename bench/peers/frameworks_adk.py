"""Google ADK: ``DatabaseSessionService`` against ``SessionstoreSessionService``.

Native: ``DatabaseSessionService`` on SQLite (aiosqlite) and PostgreSQL
(asyncpg); ADK has no Redis service of its own, so Redis is ours only. A
turn is 4 ``append_event`` calls, as the runner makes them: the user's
message, the model's function call, the function's response, and the
model's reply (with a one-key state delta). The read is ``get_session``
with ``GetSessionConfig(num_recent_events=20)``; the listing is
``list_sessions(app_name=..., user_id=...)``.

In the concurrent workload every task loads its own copy of the session
(``get_session``, newest event only) before each turn and appends through
it; a copy another task has written past is refused with
``StaleSessionError``, and the task reloads it and appends that event again
(``stale_retries`` counts those). ADK writes a turn as 4 separate events, so
turns of different tasks may interleave ("split") with either service.
"""

from __future__ import annotations

import asyncio
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

APP, USER = "bench", "user"
LIST_APP = "bench-list"


def events(i: int) -> list[Any]:
    """Turn ``i`` as the runner's 4 events."""
    from google.adk.events.event import Event  # noqa: PLC0415
    from google.adk.events.event_actions import EventActions  # noqa: PLC0415
    from google.genai import types  # noqa: PLC0415

    invocation = f"inv-{i}"
    call = types.FunctionCall(id=f"call_{i}", name="search_reports", args=tool_arguments(i))
    response = types.FunctionResponse(
        id=f"call_{i}", name="search_reports", response={"result": tool_output(i)}
    )
    return [
        Event(
            invocation_id=invocation,
            author="user",
            content=types.Content(role="user", parts=[types.Part(text=question(i))]),
        ),
        Event(
            invocation_id=invocation,
            author="analyst",
            content=types.Content(role="model", parts=[types.Part(function_call=call)]),
        ),
        Event(
            invocation_id=invocation,
            author="analyst",
            content=types.Content(role="user", parts=[types.Part(function_response=response)]),
        ),
        Event(
            invocation_id=invocation,
            author="analyst",
            content=types.Content(role="model", parts=[types.Part(text=reply(i))]),
            actions=EventActions(state_delta={"last_turn": i}),
        ),
    ]


class AdkSystem:
    """Any ADK ``BaseSessionService``."""

    listing = "list_sessions"

    def __init__(self, name: str, service: Any, closing: Any) -> None:
        self.name = name
        self.service = service
        self._closing = closing
        self._copies: dict[tuple[str, int], Any] = {}
        self._creating: dict[str, asyncio.Task[Any]] = {}
        self.retries = 0

    async def _created(self, session: str) -> None:
        if session not in self._creating:
            self._creating[session] = asyncio.ensure_future(
                self.service.create_session(app_name=APP, user_id=USER, session_id=session)
            )
        await self._creating[session]

    async def _load(self, session: str) -> Any:
        from google.adk.sessions.base_session_service import GetSessionConfig  # noqa: PLC0415

        return await self.service.get_session(
            app_name=APP,
            user_id=USER,
            session_id=session,
            config=GetSessionConfig(num_recent_events=1),
        )

    async def turn(self, session: str, i: int, worker: int = 0) -> None:
        from google.adk.errors import StaleSessionError  # noqa: PLC0415

        await self._created(session)
        key = (session, worker)
        if worker or key not in self._copies:  # a task loads the session before each turn
            self._copies[key] = await self._load(session)
        for event in events(i):
            for _ in range(100):
                try:
                    await self.service.append_event(self._copies[key], event)
                    break
                except StaleSessionError:
                    self.retries += 1
                    self._copies[key] = await self._load(session)
            else:
                raise RuntimeError("still stale after 100 reloads")

    async def fill(self, session: str, n: int) -> None:
        await self._created(session)
        copy = await self._load(session)
        for i in range(n // PARTS + 1):
            for event in events(i)[: n - i * PARTS]:
                await self.service.append_event(copy, event)

    async def last20(self, session: str) -> int:
        from google.adk.sessions.base_session_service import GetSessionConfig  # noqa: PLC0415

        found = await self.service.get_session(
            app_name=APP,
            user_id=USER,
            session_id=session,
            config=GetSessionConfig(num_recent_events=20),
        )
        return len(found.events)

    async def stored(self, session: str) -> list[Any]:
        found = await self.service.get_session(app_name=APP, user_id=USER, session_id=session)
        return [event.model_dump(mode="json", exclude_none=True) for event in found.events]

    async def make_sessions(self, n: int) -> None:
        for start in range(0, n, 16):
            await asyncio.gather(
                *(
                    self.service.create_session(
                        app_name=LIST_APP, user_id=USER, session_id=f"s{k}", state={"k": k}
                    )
                    for k in range(start, min(n, start + 16))
                )
            )

    async def list_sessions(self) -> int:
        found = await self.service.list_sessions(app_name=LIST_APP, user_id=USER)
        return len(found.sessions)

    async def close(self) -> None:
        await self._closing()


async def native(place: Place) -> AdkSystem:
    if place.storage == "redis":
        raise NotImplementedError("ADK has no Redis session service")
    from google.adk.sessions import DatabaseSessionService  # noqa: PLC0415

    service = DatabaseSessionService(place.native_url)
    return AdkSystem("DatabaseSessionService", service, service.close)


async def ours(place: Place) -> AdkSystem:
    from sessionstore import open_store  # noqa: PLC0415
    from sessionstore.integrations.adk import SessionstoreSessionService  # noqa: PLC0415

    store = open_store(place.url)
    await store.open()
    return AdkSystem("SessionstoreSessionService", SessionstoreSessionService(store), store.close)


if __name__ == "__main__":
    child_main({"ours": ours, "native": native})
