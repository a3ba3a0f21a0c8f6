"""The LlamaIndex chat stores: each check runs on LlamaIndex's own store and on ours.

``CHAT_CHECKS`` hold for a ``BaseChatStore`` (reference: ``SimpleChatStore``),
``MEMORY_CHECKS`` for an ``AsyncDBChatStore`` (reference:
``SQLAlchemyChatStore`` on an in-memory SQLite): a check the reference fails
is a wrong check. Ours run on every backend. Then LlamaIndex's own agent loop
(``FunctionAgent`` with its offline ``MockFunctionCallingLLM``) and chat
engine (``MockLLM``) over several turns, and the CLI's view of what they
stored.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ImageBlock, TextBlock, ToolCallBlock
from llama_index.core.chat_engine import SimpleChatEngine
from llama_index.core.llms import ChatMessage, MessageRole, MockLLM
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.memory import ChatMemoryBuffer, Memory
from llama_index.core.storage.chat_store import BaseChatStore, SimpleChatStore
from llama_index.core.storage.chat_store.base_db import AsyncDBChatStore, MessageStatus
from llama_index.core.storage.chat_store.sql import SQLAlchemyChatStore
from llama_index.core.tools import FunctionTool

from sessionstore import InvalidParameterError, SessionStore, StoreError
from sessionstore.integrations.llama_index import (
    ARCHIVED_SUFFIX,
    SessionstoreChatStore,
    SessionstoreMemoryStore,
)
from tests.contract.cases import BackendCase, pure_logic
from tests.integrations.cli_show import shown_items
from tests.integrations.doc_examples import run_examples

ARCHIVED = MessageStatus.ARCHIVED


def user(text: str) -> ChatMessage:
    return ChatMessage(role=MessageRole.USER, content=text)


def bot(text: str) -> ChatMessage:
    return ChatMessage(role=MessageRole.ASSISTANT, content=text)


def texts(messages: list[ChatMessage]) -> list[str | None]:
    return [message.content for message in messages]


def exact(messages: list[ChatMessage]) -> str:
    """The messages as JSON text: tells -0.0 from 0.0 and 1.0 from 1, keeps key order."""
    return json.dumps([message.model_dump(mode="json") for message in messages])


# Every kind of content a stored message must give back unchanged.
TRICKY = [
    ChatMessage(role=MessageRole.SYSTEM, content="emoji 🦙, NUL \x00, CRLF \r\n, tab \t, <b>&amp;"),
    ChatMessage(
        role=MessageRole.USER,
        blocks=[
            TextBlock(text="what is in this image?"),
            ImageBlock(image=b"\x89PNG\r\n\x1a\n\x00\xff", image_mimetype="image/png"),
        ],
    ),
    ChatMessage(
        role=MessageRole.ASSISTANT,
        blocks=[ToolCallBlock(tool_call_id="c1", tool_name="look", tool_kwargs={"zoom": 2.0})],
        additional_kwargs={
            "usage": {"in": 12, "ratio": 0.5, "negative_zero": -0.0, "big": 2**64 + 1},
            "mixed": [1, "two", None, True, {"z": 1, "a": [[]]}],
        },
    ),
    ChatMessage(role=MessageRole.TOOL, content="", additional_kwargs={"tool_call_id": "c1"}),
    ChatMessage(role=MessageRole.ASSISTANT, blocks=[]),
]


# -- BaseChatStore checks --------------------------------------------------------------

ChatCheck = Callable[[BaseChatStore], Awaitable[None]]
CHAT_CHECKS: list[ChatCheck] = []


def chat_check(check: ChatCheck) -> ChatCheck:
    CHAT_CHECKS.append(check)
    return check


@chat_check
async def messages_are_kept_per_key(chat: BaseChatStore) -> None:
    chat.set_messages("chat-1", [ChatMessage(role="system", content="be brief"), user("hi")])
    await chat.aset_messages("chat-2", [user("other")])
    chat.add_message("chat-1", bot("hello"))
    await chat.async_add_message("chat-1", user("and then?"))
    assert texts(chat.get_messages("chat-1")) == ["be brief", "hi", "hello", "and then?"]
    assert texts(await chat.aget_messages("chat-1")) == texts(chat.get_messages("chat-1"))
    assert texts(await chat.aget_messages("chat-2")) == ["other"]
    assert chat.get_messages("never-written") == []
    assert sorted(chat.get_keys()) == sorted(await chat.aget_keys()) == ["chat-1", "chat-2"]
    chat.set_messages("chat-1", [user("again")])
    assert texts(chat.get_messages("chat-1")) == ["again"]
    assert texts(chat.get_messages("chat-2")) == ["other"]


@chat_check
async def messages_are_deleted_by_position_from_the_end_or_all(chat: BaseChatStore) -> None:
    chat.set_messages("k", [user("a"), bot("b"), user("c"), bot("d")])
    deleted = chat.delete_message("k", 1)
    assert deleted is not None
    assert deleted.content == "b"
    assert await chat.adelete_message("k", 3) is None  # past the end
    assert chat.delete_message("never-written", 0) is None
    assert texts([m for m in [chat.delete_last_message("k")] if m]) == ["d"]
    assert texts([m for m in [await chat.adelete_last_message("k")] if m]) == ["c"]
    assert chat.delete_last_message("never-written") is None
    removed = chat.delete_messages("k")
    assert removed is not None
    assert texts(removed) == ["a"]
    assert chat.get_messages("k") == []
    assert "k" not in chat.get_keys()
    assert chat.delete_messages("k") is None
    assert await chat.adelete_messages("never-written") is None


@chat_check
async def every_kind_of_content_round_trips(chat: BaseChatStore) -> None:
    chat.set_messages("set", list(TRICKY))
    for message in TRICKY:
        await chat.async_add_message("added", message)
    assert exact(chat.get_messages("set")) == exact(TRICKY)
    assert exact(await chat.aget_messages("added")) == exact(TRICKY)
    assert chat.get_messages("set") == TRICKY


def _name(check: Callable[..., Any]) -> str:
    return check.__name__


@pytest.mark.parametrize("check", CHAT_CHECKS, ids=_name)
async def test_simple_chat_store_passes(check: ChatCheck) -> None:
    await check(SimpleChatStore())


@pytest.mark.parametrize("check", CHAT_CHECKS, ids=_name)
async def test_chat_store_passes(check: ChatCheck, store: SessionStore) -> None:
    await check(SessionstoreChatStore(store, user_id="alice"))


# -- AsyncDBChatStore checks (Memory's) ---------------------------------------------------

MemoryCheck = Callable[[AsyncDBChatStore], Awaitable[None]]
MEMORY_CHECKS: list[MemoryCheck] = []


def memory_check(check: MemoryCheck) -> MemoryCheck:
    MEMORY_CHECKS.append(check)
    return check


@memory_check
async def oldest_messages_are_archived_or_deleted(chat: AsyncDBChatStore) -> None:
    await chat.add_message("m", user("q1"))
    await chat.add_messages("m", [bot("a1"), user("q2"), bot("a2")])
    await chat.add_message("other", user("x"))
    assert texts(await chat.get_messages("m")) == ["q1", "a1", "q2", "a2"]
    assert texts(await chat.get_messages("m", offset=1, limit=2)) == ["a1", "q2"]
    assert texts(await chat.get_messages("m", offset=3)) == ["a2"]
    assert texts(await chat.get_messages("m", limit=1)) == ["q1"]
    assert await chat.get_messages("m", offset=4) == []
    assert await chat.count_messages("m") == 4
    assert texts(await chat.archive_oldest_messages("m", 2)) == ["q1", "a1"]
    assert texts(await chat.get_messages("m")) == ["q2", "a2"]
    assert texts(await chat.get_messages("m", status=ARCHIVED)) == ["q1", "a1"]
    assert texts(await chat.get_messages("m", status=None)) == ["q1", "a1", "q2", "a2"]
    assert texts(await chat.get_messages("m", status=None, limit=2, offset=1)) == ["a1", "q2"]
    assert [await chat.count_messages("m", status) for status in (ARCHIVED, None)] == [2, 4]
    assert texts(await chat.delete_oldest_messages("m", 1)) == ["q2"]
    assert texts(await chat.archive_oldest_messages("m", 5)) == ["a2"]
    assert await chat.get_messages("m") == []
    assert await chat.archive_oldest_messages("m", 1) == []
    assert sorted(await chat.get_keys()) == ["m", "other"]
    await chat.delete_messages("m", status=ARCHIVED)
    assert await chat.count_messages("m", status=None) == 0
    assert await chat.get_keys() == ["other"]


@memory_check
async def set_messages_replaces_both_statuses(chat: AsyncDBChatStore) -> None:
    await chat.add_messages("m", [user("q1"), bot("a1"), user("q2")])
    await chat.archive_oldest_messages("m", 2)
    await chat.set_messages("m", [user("x"), bot("y")])
    assert texts(await chat.get_messages("m", status=None)) == ["x", "y"]
    assert await chat.count_messages("m", status=ARCHIVED) == 0
    await chat.set_messages("m", list(TRICKY), status=ARCHIVED)
    assert await chat.get_messages("m") == []
    assert exact(await chat.get_messages("m", status=ARCHIVED)) == exact(TRICKY)
    await chat.add_message("m", user("new"), status=ARCHIVED)
    assert texts(await chat.get_messages("m", status=ARCHIVED))[-1] == "new"
    await chat.delete_messages("m")
    assert await chat.get_messages("m", status=None) == []


@pytest.mark.parametrize("check", MEMORY_CHECKS, ids=_name)
async def test_sqlalchemy_chat_store_passes(check: MemoryCheck) -> None:
    reference = SQLAlchemyChatStore(table_name="messages")
    try:
        await check(reference)
    finally:
        if reference._async_engine is not None:
            await reference._async_engine.dispose()


@pytest.mark.parametrize("check", MEMORY_CHECKS, ids=_name)
async def test_memory_store_passes(check: MemoryCheck, store: SessionStore) -> None:
    await check(SessionstoreMemoryStore(store, user_id="alice"))


# -- what only ours has ------------------------------------------------------------------


async def test_memory_store_keeps_archived_messages_in_their_own_session(
    store: SessionStore,
) -> None:
    chat = SessionstoreMemoryStore(store, user_id="alice")
    await chat.add_messages("m", [user("q1"), bot("a1"), user("q2")])
    await chat.archive_oldest_messages("m", 1)
    active = await store.get_items("m", "alice")
    archived = await store.get_items("m" + ARCHIVED_SUFFIX, "alice")
    assert [i.data["blocks"][0]["text"] for i in active] == ["a1", "q2"]
    assert [i.data["blocks"][0]["text"] for i in archived] == ["q1"]
    assert texts([m for m in [await chat.delete_message("m", -1)] if m]) == ["q2"]
    assert await chat.delete_message("m", 1) is None
    for bad in ("m" + ARCHIVED_SUFFIX, "x" * 250, ""):
        with pytest.raises(InvalidParameterError):
            await chat.get_messages(bad)


@pure_logic
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    messages=st.lists(
        st.builds(
            ChatMessage,
            role=st.sampled_from(MessageRole),
            blocks=st.lists(st.builds(TextBlock, text=st.text()), max_size=3),
            additional_kwargs=st.dictionaries(
                st.text(max_size=8),
                st.recursive(
                    st.none()
                    | st.booleans()
                    | st.integers()
                    | st.floats(allow_nan=False)
                    | st.text(),
                    lambda inner: (
                        st.lists(inner, max_size=3)
                        | st.dictionaries(st.text(max_size=5), inner, max_size=3)
                    ),
                    max_leaves=8,
                ),
                max_size=3,
            ),
        ),
        max_size=4,
    )
)
async def test_any_message_round_trips_exactly(
    store: SessionStore, messages: list[ChatMessage]
) -> None:
    chat = SessionstoreChatStore(store)
    key = uuid.uuid4().hex
    await chat.aset_messages(key, messages)
    assert exact(await chat.aget_messages(key)) == exact(messages)


async def test_a_url_store_is_opened_and_closed_by_the_chat_store(
    store: SessionStore, store_url: str
) -> None:
    chat = SessionstoreChatStore(store_url, user_id="bob")
    await chat.async_add_message("k", user("hi"))
    assert texts(chat.get_messages("k")) == ["hi"]  # sync and async share one store
    assert chat.model_dump()["user_id"] == "bob"
    await chat.aclose()
    with pytest.raises(StoreError):
        await chat.aget_messages("k")
    given = SessionstoreMemoryStore(store)
    await given.aclose()  # the caller's store stays open
    assert await given.get_messages("k") == []


def test_the_missing_framework_is_named_with_its_extra() -> None:
    code = (
        "import sys\n"
        "sys.modules['llama_index'] = None\n"
        "import sessionstore, sessionstore.sync\n"
        "from sessionstore import MissingDependencyError\n"
        "try:\n"
        "    import sessionstore.integrations.llama_index\n"
        "except MissingDependencyError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "pip install 'sessionstore[llama-index]'" in done.stdout


def test_import_sessionstore_imports_no_framework() -> None:
    code = (
        "import json, sys, sessionstore, sessionstore.sync; print(json.dumps(sorted(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = {name.split(".")[0] for name in json.loads(done.stdout)}
    assert "sessionstore" in loaded
    assert not loaded & {"llama_index", "pydantic_ai", "langchain_core", "agents", "google"}


def test_the_docs_examples_run(tmp_path: Path) -> None:
    buffer, agent = run_examples("integrations/llama-index.md", tmp_path)
    assert buffer.splitlines()[-2:] == ["['user', 'assistant', 'user', 'assistant']", "['chat-1']"]
    assert agent.splitlines() == [
        "Tool calls complete.",
        "['user', 'assistant', 'tool', 'assistant']",
        "18C and sunny in Paris",
    ]


# -- end to end: LlamaIndex's agent loop and chat engine, offline ------------------------------


def weather(city: str) -> str:
    """Return the weather in a city."""
    return f"18C and sunny in {city}"


def scripted_model(messages: list[ChatMessage], **kwargs: Any) -> ChatMessage:
    """Call the weather tool when asked about the weather; otherwise answer in text."""
    last = messages[-1]
    if last.role == MessageRole.TOOL:
        return bot(f"Forecast: {last.content}")
    if "weather" in (last.content or ""):
        call = ToolCallBlock(
            tool_call_id=f"call-{len(messages)}", tool_name="weather", tool_kwargs={"city": "Paris"}
        )
        return ChatMessage(role=MessageRole.ASSISTANT, blocks=[call])
    return bot(f"You said: {last.content}")


# LlamaIndex's workflow machinery reads deprecated pydantic attributes of the agent
# which pydantic deprecated: the framework's warnings, not ours.
agent_warnings = pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecationWarning")
PROMPTS = ["hello", "what is the weather in Paris?", "thanks", "and tomorrow's weather?"]
ROLES = ["user", "assistant", "user", "assistant", "tool", "assistant"]
EXPECTED_ROLES = [*ROLES, *ROLES[:2], *ROLES[2:]]  # the four turns


async def run_agent(memory: ChatMemoryBuffer | Memory) -> list[str]:
    agent = FunctionAgent(
        tools=[FunctionTool.from_defaults(weather)],
        llm=MockFunctionCallingLLM(response_generator=scripted_model),
    )
    return [str(await agent.run(user_msg=prompt, memory=memory)) for prompt in PROMPTS]


@agent_warnings
async def test_function_agent_keeps_its_chat_memory_buffer_in_the_store(
    store: SessionStore, store_url: str, case: BackendCase
) -> None:
    reference = SimpleChatStore()
    expected = await run_agent(buffer_on(reference))
    answers = await run_agent(buffer_on(SessionstoreChatStore(store, user_id="alice")))
    assert answers == expected
    assert answers[1] == "Forecast: 18C and sunny in Paris"

    # A new process would see it: a new chat store and memory on the same store.
    stored = await buffer_on(SessionstoreChatStore(store, user_id="alice")).aget_all()
    assert [m.role.value for m in stored] == EXPECTED_ROLES
    assert exact(stored) == exact(reference.get_messages("trip"))
    assert isinstance(stored[3].blocks[0], ToolCallBlock)
    if case.shared:  # each memory:// store is private to its process
        shown = await shown_items(store_url, "trip", "alice")
        assert shown == [message.model_dump(mode="json") for message in stored]


def buffer_on(chat: BaseChatStore) -> ChatMemoryBuffer:
    return ChatMemoryBuffer.from_defaults(
        chat_store=chat, chat_store_key="trip", token_limit=100_000, tokenizer_fn=str.split
    )


@agent_warnings
async def test_function_agent_with_memory_archives_the_oldest_turns(
    store: SessionStore, store_url: str, case: BackendCase
) -> None:
    reference = SQLAlchemyChatStore(table_name="memory")
    try:
        expected = await run_agent(memory_on(reference))
        kept = await reference.get_messages("trip", status=None)
    finally:
        assert reference._async_engine is not None
        await reference._async_engine.dispose()
    chat = SessionstoreMemoryStore(store, user_id=None)
    assert await run_agent(memory_on(chat)) == expected

    every = await chat.get_messages("trip", status=None)
    assert [m.role.value for m in every] == EXPECTED_ROLES
    assert exact(every) == exact(kept)
    archived = await chat.count_messages("trip", status=ARCHIVED)
    assert 0 < archived < len(every)  # Memory's token limit moved the oldest turns out
    active = await store.get_items("trip", None)
    assert [item.data for item in active] == [m.model_dump(mode="json") for m in every[archived:]]
    if case.shared:  # the archived turns, as the CLI shows them
        oldest = await shown_items(store_url, "trip" + ARCHIVED_SUFFIX)
        assert oldest == [m.model_dump(mode="json") for m in every[:archived]]


def memory_on(chat: AsyncDBChatStore) -> Memory:
    return Memory.from_defaults(
        session_id="trip",
        chat_store=chat,
        token_limit=60,
        token_flush_size=10,
        tokenizer_fn=str.split,
    )


def test_chat_engine_with_a_sync_memory(store: SessionStore) -> None:
    chat = SessionstoreChatStore(store, user_id="carol")
    memory = ChatMemoryBuffer.from_defaults(
        chat_store=chat, chat_store_key="engine", tokenizer_fn=str.split
    )
    engine = SimpleChatEngine.from_defaults(llm=MockLLM(), memory=memory)
    for prompt in ("first question", "second question", "third question"):
        assert prompt in str(engine.chat(prompt))
    stored = chat.get_messages("engine")
    assert [m.role.value for m in stored] == ["user", "assistant"] * 3
    assert [m.content for m in stored[::2]] == [
        "first question",
        "second question",
        "third question",
    ]
    engine.reset()
    assert chat.get_keys() == []
