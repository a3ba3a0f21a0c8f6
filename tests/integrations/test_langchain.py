"""The LangChain chat message history: each check runs on LangChain's own and on ours.

The reference is ``InMemoryChatMessageHistory``: a check it fails is a wrong
check. Ours run on every backend. Then ``RunnableWithMessageHistory`` (sync
and async) around a fake chat model that calls a tool, over several turns,
and the CLI's view of what it stored.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from langchain_core.chat_history import BaseChatMessageHistory, InMemoryChatMessageHistory
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    message_to_dict,
)
from langchain_core.runnables import RunnableLambda
from langchain_core.runnables.history import RunnableWithMessageHistory
from langchain_core.tools import tool

from sessionstore import InvalidParameterError, SessionStore, StoreError
from sessionstore.integrations.langchain import SessionstoreChatMessageHistory
from tests.contract.cases import BackendCase
from tests.integrations.cli_show import shown_items
from tests.integrations.doc_examples import run_examples

# InMemoryChatMessageHistory and RunnableWithMessageHistory are deprecated upstream
# (LangChain points to LangGraph's persistence); the adapter exists for code still using them.
pytestmark = pytest.mark.filterwarnings(
    "ignore::langchain_core._api.deprecation.LangChainDeprecationWarning"
)


def contents(messages: list[BaseMessage]) -> list[Any]:
    return [message.content for message in messages]


def exact(messages: list[BaseMessage]) -> str:
    return json.dumps([message_to_dict(message) for message in messages])


# Every kind of message a stored one must give back unchanged.
TRICKY: list[BaseMessage] = [
    SystemMessage("emoji 🦜, NUL \x00, CRLF \r\n, <b>&amp;", id="s1"),
    HumanMessage(
        [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        ],
        name="alice",
    ),
    AIMessage(
        "",
        tool_calls=[{"name": "look", "args": {"zoom": 2.0, "negative_zero": -0.0}, "id": "c1"}],
        usage_metadata={"input_tokens": 12, "output_tokens": 3, "total_tokens": 15},
        response_metadata={"model": "fake", "big": 2**64 + 1, "nested": [None, True, []]},
    ),
    ToolMessage({"found": ["a", None, 1.5]}, tool_call_id="c1", artifact={"raw": [1, 2]}),  # type: ignore[arg-type]
    ChatMessage("a critic's note", role="critic"),
    AIMessageChunk("partial"),
]

Check = Callable[[BaseChatMessageHistory], Awaitable[None]]
CHECKS: list[Check] = []


def check(function: Check) -> Check:
    CHECKS.append(function)
    return function


@check
async def messages_are_added_read_and_cleared(history: BaseChatMessageHistory) -> None:
    assert history.messages == []
    history.add_user_message("hi")
    history.add_ai_message("hello")
    history.add_messages([HumanMessage("and?"), AIMessage("then")])
    await history.aadd_messages([HumanMessage("async"), AIMessage("too")])
    expected = ["hi", "hello", "and?", "then", "async", "too"]
    assert contents(history.messages) == contents(await history.aget_messages()) == expected
    history.clear()
    assert history.messages == []
    await history.aadd_messages([HumanMessage("again")])
    await history.aclear()
    assert await history.aget_messages() == []


@check
async def every_kind_of_message_round_trips(history: BaseChatMessageHistory) -> None:
    history.add_messages(TRICKY[:3])
    await history.aadd_messages(TRICKY[3:])
    assert exact(history.messages) == exact(TRICKY)
    assert await history.aget_messages() == TRICKY
    assert [type(m) for m in history.messages] == [type(m) for m in TRICKY]


def _name(function: Callable[..., Any]) -> str:
    return function.__name__


@pytest.mark.parametrize("check", CHECKS, ids=_name)
async def test_in_memory_history_passes(check: Check) -> None:
    await check(InMemoryChatMessageHistory())


@pytest.mark.parametrize("check", CHECKS, ids=_name)
async def test_chat_message_history_passes(check: Check, store: SessionStore) -> None:
    await check(SessionstoreChatMessageHistory("chat", store, user_id="alice"))


async def test_histories_of_users_and_sessions_never_meet(store: SessionStore) -> None:
    names = [("chat", "alice"), ("chat", "bob"), ("chat", None), ("other", "alice")]
    for session_id, user_id in names:
        history = SessionstoreChatMessageHistory(session_id, store, user_id=user_id)
        await history.aadd_messages([HumanMessage(f"{session_id}/{user_id}")])
    for session_id, user_id in names:
        history = SessionstoreChatMessageHistory(session_id, store, user_id=user_id)
        assert contents(await history.aget_messages()) == [f"{session_id}/{user_id}"]
    with pytest.raises(InvalidParameterError):
        SessionstoreChatMessageHistory("", store)


async def test_a_message_that_is_no_json_writes_nothing(store: SessionStore) -> None:
    history = SessionstoreChatMessageHistory("chat", store)
    with pytest.raises(InvalidParameterError):
        await history.aadd_messages(
            [HumanMessage("fine"), AIMessage("x", response_metadata={"t": {1}})]
        )
    assert await history.aget_messages() == []


async def test_a_url_store_is_opened_and_closed_by_the_history(
    store: SessionStore, store_url: str
) -> None:
    history = SessionstoreChatMessageHistory("chat", store_url, user_id="bob")
    await history.aadd_messages([HumanMessage("hi")])
    assert contents(history.messages) == ["hi"]  # sync and async share one store
    await history.aclose()
    with pytest.raises(StoreError):
        await history.aget_messages()
    given = SessionstoreChatMessageHistory("chat", store)
    given.close()  # the caller's store stays open
    assert given.messages == []


def test_the_missing_framework_is_named_with_its_extra() -> None:
    code = (
        "import sys\n"
        "sys.modules['langchain_core'] = None\n"
        "from sessionstore import MissingDependencyError\n"
        "try:\n"
        "    import sessionstore.integrations.langchain\n"
        "except MissingDependencyError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "pip install 'sessionstore[langchain]'" in done.stdout


def test_the_docs_example_runs(tmp_path: Path) -> None:
    (printed,) = run_examples("integrations/langchain.md", tmp_path)
    assert printed.splitlines() == [
        "RAG adds retrieved text to the prompt.",
        "A database of embeddings.",
        "['human', 'ai', 'human', 'ai']",
    ]


# -- end to end: RunnableWithMessageHistory around a fake model with a tool ---------------------


@tool
def weather(city: str) -> str:
    """Return the weather in a city."""
    return f"18C and sunny in {city}"


def weather_chain() -> RunnableLambda[list[BaseMessage], list[BaseMessage]]:
    """A model that answers, calling the weather tool on the second turn; its messages out."""
    model = GenericFakeChatModel(
        messages=iter(
            [
                AIMessage("Hello!", id="m1"),
                AIMessage("", id="m2", tool_calls=[
                    {"name": "weather", "args": {"city": "Paris"}, "id": "call-1"}
                ]),
                AIMessage("Forecast: 18C and sunny in Paris", id="m3"),
                AIMessage("You're welcome.", id="m4"),
                AIMessage("Bye!", id="m5"),
            ]
        )
    )  # fmt: skip

    def turn(messages: list[BaseMessage]) -> list[BaseMessage]:
        reply = model.invoke(messages)
        if not isinstance(reply, AIMessage) or not reply.tool_calls:
            return [reply]
        call = reply.tool_calls[0]
        result = ToolMessage(weather.invoke(call["args"]), tool_call_id=call["id"])
        return [reply, result, model.invoke([*messages, reply, result])]

    return RunnableLambda(turn)


PROMPTS = ["hi", "weather in Paris?", "thanks", "bye"]


async def run_turns(histories: Callable[[str], BaseChatMessageHistory]) -> None:
    chain = RunnableWithMessageHistory(weather_chain(), histories)  # type: ignore[arg-type]
    config: Any = {"configurable": {"session_id": "trip"}}
    chain.invoke(PROMPTS[0], config)  # the sync path...
    chain.invoke(PROMPTS[1], config)
    await chain.ainvoke(PROMPTS[2], config)  # ...and the async one, on one history
    await chain.ainvoke(PROMPTS[3], config)


async def test_runnable_with_message_history_keeps_turns_in_the_store(
    store: SessionStore, store_url: str, case: BackendCase
) -> None:
    reference = InMemoryChatMessageHistory()
    await run_turns(lambda session_id: reference)
    await run_turns(
        lambda session_id: SessionstoreChatMessageHistory(session_id, store, user_id="alice")
    )

    stored = await SessionstoreChatMessageHistory("trip", store, user_id="alice").aget_messages()
    turns = [["human", "ai"], ["human", "ai", "tool", "ai"], ["human", "ai"], ["human", "ai"]]
    assert [m.type for m in stored] == [kind for turn in turns for kind in turn]
    assert contents(stored) == contents(reference.messages)
    assert [m.tool_calls for m in stored if isinstance(m, AIMessage)][1][0]["id"] == "call-1"
    if case.shared:  # each memory:// store is private to its process
        shown = await shown_items(store_url, "trip", "alice")
        assert shown == [message_to_dict(message) for message in stored]
