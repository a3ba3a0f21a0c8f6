"""Pydantic AI message histories: each check runs on a reference history and on ours.

The reference keeps the list in memory as ``ModelMessagesTypeAdapter``'s
JSON, the way Pydantic AI's docs store a history: a check the reference
fails is a wrong check. Ours run on every backend. Then Pydantic AI's agent
loop, offline (``FunctionModel``, then ``TestModel``), over several turns
with a tool call, and the CLI's view of what it stored.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic_ai import Agent
from pydantic_ai.messages import (
    BinaryContent,
    ModelMessage,
    ModelMessagesTypeAdapter,
    ModelRequest,
    ModelResponse,
    RetryFeedbackPart,
    RetryInfo,
    SystemPromptPart,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel

from sessionstore import SessionStore, StoreError
from sessionstore.integrations.pydantic_ai import SessionstoreMessageHistory
from tests.contract.cases import BackendCase, pure_logic
from tests.integrations.cli_show import shown_items
from tests.integrations.doc_examples import run_examples


class History(Protocol):
    async def load(self, limit: int | None = None) -> list[ModelMessage]: ...
    async def append(self, messages: Sequence[ModelMessage]) -> None: ...
    async def save(self, messages: Sequence[ModelMessage]) -> None: ...
    async def clear(self) -> None: ...


class InMemoryHistory:
    """The reference: the history kept as the type adapter's JSON, in memory."""

    def __init__(self) -> None:
        self.dumped = b"[]"

    async def load(self, limit: int | None = None) -> list[ModelMessage]:
        messages = ModelMessagesTypeAdapter.validate_json(self.dumped)
        return messages if limit is None else messages[len(messages) - limit :]

    async def append(self, messages: Sequence[ModelMessage]) -> None:
        await self.save([*await self.load(), *messages])

    async def save(self, messages: Sequence[ModelMessage]) -> None:
        self.dumped = ModelMessagesTypeAdapter.dump_json(list(messages))

    async def clear(self) -> None:
        self.dumped = b"[]"


def exact(messages: Sequence[ModelMessage]) -> bytes:
    return ModelMessagesTypeAdapter.dump_json(list(messages))


def ask(text: str) -> ModelRequest:
    return ModelRequest(parts=[UserPromptPart(text)])


def say(text: str) -> ModelResponse:
    return ModelResponse(parts=[TextPart(text)])


# Every kind of part a stored message must give back unchanged.
TRICKY: list[ModelMessage] = [
    ModelRequest(
        parts=[
            SystemPromptPart("emoji 🤖, NUL \x00, CRLF \r\n, <b>&amp;"),
            UserPromptPart(
                [
                    "what is this?",
                    BinaryContent(data=b"\x89PNG\r\n\x00\xff", media_type="image/png"),
                ]
            ),
        ]
    ),
    ModelResponse(
        parts=[
            ThinkingPart("let me look", signature="sig"),
            ToolCallPart("look", {"zoom": 2.0, "negative_zero": -0.0, "big": 2**64 + 1}, "c1"),
            ToolCallPart("raw", '{"args": "as text"}', "c2"),
        ]
    ),
    ModelRequest(
        parts=[
            ToolReturnPart("look", {"found": ["a", None, 1.5]}, "c1"),
            ToolReturnPart("raw", "bad arguments", "c2", outcome="retried"),
            RetryFeedbackPart("answer in JSON", retry=RetryInfo("model_retry", attempt=1)),
        ]
    ),
    say(""),
]

Check = Callable[[History], Awaitable[None]]
CHECKS: list[Check] = []


def check(function: Check) -> Check:
    CHECKS.append(function)
    return function


@check
async def appended_turns_load_in_order_and_by_limit(history: History) -> None:
    assert await history.load() == []
    await history.append([ask("hi"), say("hello")])
    await history.append([ask("and?"), say("then")])
    loaded = await history.load()
    assert [m.parts[0].content for m in loaded] == ["hi", "hello", "and?", "then"]  # type: ignore[union-attr]
    assert exact(await history.load(limit=1)) == exact(loaded[-1:])
    assert exact(await history.load(limit=3)) == exact(loaded[1:])
    assert await history.load(limit=0) == []
    await history.clear()
    assert await history.load() == []


@check
async def save_extends_or_replaces_the_history(history: History) -> None:
    first = [ask("one"), say("1")]
    await history.save(first)
    longer = [*first, ask("two"), say("2")]
    await history.save(longer)
    assert exact(await history.load()) == exact(longer)
    rewritten = [ask("summary of one and two"), say("ok")]
    await history.save(rewritten)
    assert exact(await history.load()) == exact(rewritten)
    await history.save([])
    assert await history.load() == []


@check
async def every_kind_of_part_round_trips(history: History) -> None:
    await history.append(TRICKY[:2])
    await history.append(TRICKY[2:])
    assert exact(await history.load()) == exact(TRICKY)
    await history.save(TRICKY)
    loaded = await history.load()
    assert exact(loaded) == exact(TRICKY)
    assert loaded == ModelMessagesTypeAdapter.validate_json(exact(TRICKY))


def _name(function: Callable[..., Any]) -> str:
    return function.__name__


@pytest.mark.parametrize("check", CHECKS, ids=_name)
async def test_reference_history_passes(check: Check) -> None:
    await check(InMemoryHistory())


@pytest.mark.parametrize("check", CHECKS, ids=_name)
async def test_message_history_passes(check: Check, store: SessionStore) -> None:
    await check(SessionstoreMessageHistory("chat", store, user_id="alice"))


async def test_save_appends_only_what_the_store_lacks(store: SessionStore) -> None:
    history = SessionstoreMessageHistory("chat", store)
    first = [ask("one"), say("1")]
    await history.save(first)
    before = [item.id for item in await store.get_items("chat", None)]
    await history.save([*first, ask("two")])
    after = [item.id for item in await store.get_items("chat", None)]
    assert after[:2] == before
    assert len(after) == 3


texts = st.text(max_size=30)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
binaries = st.builds(
    BinaryContent,
    data=st.binary(max_size=40),
    media_type=st.sampled_from(["image/png", "application/pdf", "audio/wav", "text/plain"]),
)
request_parts = st.one_of(
    st.builds(UserPromptPart, content=texts | st.lists(texts | binaries, max_size=3)),
    st.builds(SystemPromptPart, content=texts),
    st.builds(ToolReturnPart, tool_name=texts, content=json_values, tool_call_id=texts),
    st.builds(
        RetryFeedbackPart,
        content=texts,
        retry=st.builds(RetryInfo, cause=st.sampled_from(["model_retry", "no_output"])),
    ),
)
response_parts = st.one_of(
    st.builds(TextPart, content=texts),
    st.builds(ThinkingPart, content=texts),
    st.builds(
        ToolCallPart,
        tool_name=texts,
        args=texts | st.dictionaries(texts, json_values, max_size=3),
        tool_call_id=texts,
    ),
)
messages = st.lists(
    st.builds(ModelRequest, parts=st.lists(request_parts, min_size=1, max_size=3))
    | st.builds(ModelResponse, parts=st.lists(response_parts, max_size=3)),
    max_size=4,
)


@pure_logic
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(conversation=messages)
async def test_any_messages_round_trip_exactly(
    store: SessionStore, conversation: list[ModelMessage]
) -> None:
    history = SessionstoreMessageHistory("any", store)
    await history.save(conversation)
    assert exact(await history.load()) == exact(conversation)
    await history.clear()


async def test_a_url_store_is_opened_and_closed_by_the_history(
    store: SessionStore, store_url: str
) -> None:
    async with SessionstoreMessageHistory("chat", store_url, user_id="bob") as history:
        await history.append([ask("hi")])
        assert len(await history.load()) == 1
    with pytest.raises(StoreError):
        await history.load()
    async with SessionstoreMessageHistory("chat", store) as given:
        pass
    assert await given.load() == []  # the caller's store stays open


def test_the_missing_framework_is_named_with_its_extra() -> None:
    code = (
        "import sys\n"
        "sys.modules['pydantic_ai'] = None\n"
        "from sessionstore import MissingDependencyError\n"
        "try:\n"
        "    import sessionstore.integrations.pydantic_ai\n"
        "except MissingDependencyError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "pip install 'sessionstore[pydantic-ai]'" in done.stdout


def test_the_docs_example_runs(tmp_path: Path) -> None:
    (printed,) = run_examples("integrations/pydantic-ai.md", tmp_path)
    assert printed.splitlines() == ["6 ['tool-call']", "18C and sunny in a"]


# -- end to end: Pydantic AI's agent loop, offline -------------------------------------------


def scripted_model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """Call the weather tool when asked about the weather; otherwise answer in text."""
    part = messages[-1].parts[-1]
    if isinstance(part, ToolReturnPart):
        return say(f"Forecast: {part.content}")
    if isinstance(part, UserPromptPart) and "weather" in str(part.content):
        return ModelResponse(
            parts=[ToolCallPart("weather", {"city": "Paris"}, f"c{len(messages)}")]
        )
    return say(f"You said: {part.content}")


def weather_agent() -> Agent[None, str]:
    agent = Agent(FunctionModel(scripted_model))

    @agent.tool_plain
    def weather(city: str) -> str:
        """Return the weather in a city."""
        return f"18C and sunny in {city}"

    return agent


PROMPTS = ["hello", "what is the weather in Paris?", "thanks"]


async def run_turns(history: History) -> list[str]:
    agent = weather_agent()
    outputs = []
    for prompt in PROMPTS:
        result = await agent.run(prompt, message_history=await history.load())
        await history.append(result.new_messages())
        outputs.append(result.output)
    # The same conversation goes on with another model, and is saved whole.
    result = await agent.run("once more", message_history=await history.load(), model=TestModel())
    await history.save(result.all_messages())
    return [*outputs, result.output]


async def test_agent_runs_turns_with_its_history_in_the_store(
    store: SessionStore, store_url: str, case: BackendCase
) -> None:
    expected = await run_turns(InMemoryHistory())
    history = SessionstoreMessageHistory("trip", store, user_id="alice")
    assert await run_turns(history) == expected
    assert expected[1] == "Forecast: 18C and sunny in Paris"

    stored = await SessionstoreMessageHistory("trip", store, user_id="alice").load()
    kinds = [[part.part_kind for part in message.parts] for message in stored]
    assert kinds == [
        ["user-prompt"], ["text"],
        ["user-prompt"], ["tool-call"], ["tool-return"], ["text"],
        ["user-prompt"], ["text"],
        ["user-prompt"], ["text"],  # TestModel's turn
    ]  # fmt: skip
    assert stored[-1].model_name == "test"  # type: ignore[union-attr]
    if case.shared:  # each memory:// store is private to its process
        shown = await shown_items(store_url, "trip", "alice")
        assert shown == json.loads(exact(stored))
