"""ADK's own agent loop on our session service, offline, on every backend; then our CLI reads it.

ADK's ``MockModel`` (its test runner's scripted model) plays the model: for
each question a call of the ``get_weather`` tool, then a reply. ADK's
``Runner`` drives three turns (two with ``run_async``, one with the blocking
``run``, which runs the agent on a loop of its own in another thread), so every
turn is a user message, a function call, a function response and a reply, and
each turn's model request carries the history read back from the store.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from typing import Any

from google.adk.agents import LlmAgent
from google.adk.cli.agent_test_runner import MockModel
from google.adk.runners import Runner
from google.adk.tools.tool_context import ToolContext  # noqa: TC002 (ADK reads the annotation)
from google.genai import types

from sessionstore.integrations.adk import SessionstoreSessionService
from tests.contract.cases import BackendCase

APP = "weather/app"  # a "/" in the app name: stored escaped, as weather%2Fapp
USER = "alice"
STORE_USER = "weather%2Fapp/alice"
CITIES = ["Paris", "Rome", "Oslo"]


def _script() -> MockModel:
    """ADK's scripted model: for each city, a call of ``get_weather``, then a reply."""
    replies = []
    for city in CITIES:
        call = types.FunctionCall(name="get_weather", args={"city": city})
        replies.append(types.Content(role="model", parts=[types.Part(function_call=call)]))
        text = f"{city}: {len(city) + 10}C and sunny"
        replies.append(types.Content(role="model", parts=[types.Part(text=text)]))
    return MockModel.create(replies)


def get_weather(city: str, tool_context: ToolContext) -> dict[str, str]:
    """Return the weather report for a city."""
    tool_context.state["last_city"] = city
    tool_context.state["user:lookups"] = tool_context.state.get("user:lookups", 0) + 1
    tool_context.state["temp:scratch"] = city.lower()
    return {"city": city, "report": f"{len(city) + 10}C"}


def _question(city: str) -> types.Content:
    return types.Content(role="user", parts=[types.Part(text=f"Weather in {city}?")])


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sessionstore.cli", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env={**os.environ, "PYTHONIOENCODING": "utf-8", "COLUMNS": "1000"},
        timeout=120,
        check=False,
    )


async def test_runner_turns_with_a_tool_are_stored_and_the_cli_shows_them(
    store_url: str, case: BackendCase
) -> None:
    async with SessionstoreSessionService(store_url) as service:
        model = _script()
        agent = LlmAgent(
            name="weather_agent",
            model=model,
            instruction="Answer weather questions with the get_weather tool.",
            tools=[get_weather],
            output_key="last_answer",
        )
        runner = Runner(app_name=APP, agent=agent, session_service=service)
        session = await service.create_session(app_name=APP, user_id=USER, state={"units": "C"})
        replies = []
        for city in CITIES[:2]:
            async for event in runner.run_async(
                user_id=USER, session_id=session.id, new_message=_question(city)
            ):
                replies.append(event)

        def blocking_turn() -> list[Any]:
            return list(
                runner.run(user_id=USER, session_id=session.id, new_message=_question("Oslo"))
            )

        replies.extend(await asyncio.to_thread(blocking_turn))
        finals = [e.content.parts[0].text for e in replies if e.is_final_response() and e.content]
        assert finals == ["Paris: 15C and sunny", "Rome: 14C and sunny", "Oslo: 14C and sunny"]
        # The model saw the history read back from the store: the last request
        # holds the two earlier turns, the question and the tool's result.
        last_request = [c.parts[0] for c in model.requests[-1].contents if c.parts]
        assert len(last_request) == 4 + 4 + 3
        assert (last_request[2].function_response.response or {}) == {
            "city": "Paris",
            "report": "15C",
        }

        stored = await service.get_session(app_name=APP, user_id=USER, session_id=session.id)
        assert stored is not None
        kinds = []
        for event in stored.events:
            part = (event.content.parts or [types.Part()])[0] if event.content else types.Part()
            kinds.append(
                "call"
                if part.function_call
                else "result"
                if part.function_response
                else event.author
            )
        assert kinds == ["user", "call", "result", "weather_agent"] * 3
        assert stored.state == {
            "units": "C",
            "last_city": "Oslo",
            "last_answer": "Oslo: 14C and sunny",
            "user:lookups": 3,
        }
        assert await service.get_user_state(app_name=APP, user_id=USER) == {"lookups": 3}
        listed = await service.list_sessions(app_name=APP)
        assert [(s.user_id, s.id) for s in listed.sessions] == [(USER, session.id)]

        # What the sessionstore API sees: one item per event, the ADK state wrapped.
        items = await service.store.get_items(session.id, STORE_USER)
        assert [i.data["id"] for i in items] == [e.id for e in stored.events]
        state = await service.store.get_state(session.id, STORE_USER)
        assert state.data["s:last_city"] == ["Oslo"]

    if not case.shared:  # a memory:// store lives in this process only
        return
    shown = _cli("--store", store_url, "show", session.id, "-u", STORE_USER, "--items", "--json")
    assert shown.returncode == 0, shown.stderr
    printed = json.loads(shown.stdout)
    assert (printed["user_id"], printed["item_count"]) == (STORE_USER, 12)
    parts = [
        part
        for item in printed["items"]
        for part in item["data"].get("content", {}).get("parts", [])
    ]
    assert [p["function_call"]["args"]["city"] for p in parts if "function_call" in p] == CITIES
    assert [p["text"] for p in parts if "text" in p][-1] == "Oslo: 14C and sunny"
    assert printed["state"]["data"]["s:last_city"] == ["Oslo"]
