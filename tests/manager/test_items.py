"""History from the item log: which items are messages, build_context(source="items")."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from sessionstore import InvalidParameterError, SessionItem, SessionManager, SessionStore
from tests.contract.cases import pure_logic

# An OpenAI Agents SDK-like turn: messages with parts, a tool call and its output, reasoning.
TURN: list[Any] = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": [{"type": "input_text", "text": "Weather in Paris?"}]},
    {"type": "reasoning", "summary": [{"text": "look it up"}]},
    {"type": "function_call", "name": "weather", "arguments": '{"city": "Paris"}'},
    {"type": "function_call_output", "output": "18C"},
    {
        "type": "message",
        "role": "assistant",
        "content": [
            {"type": "output_text", "text": "It is 18C."},
            {"type": "output_text", "text": "Sunny."},
        ],
    },
]
TURN_MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": "It is 18C.\nSunny."},
]


def _items(*values: Any) -> list[SessionItem]:
    now = datetime.now(UTC)
    return [SessionItem(id=f"i{n}", data=value, created_at=now) for n, value in enumerate(values)]


@pure_logic
def test_only_chat_shaped_items_become_messages(manager: SessionManager) -> None:
    assert manager.messages_from_items(_items(*TURN)) == TURN_MESSAGES


@pure_logic
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"role": "developer", "content": "rules"}, {"role": "developer", "content": "rules"}),
        ({"role": "model", "parts": [{"text": "hi"}]}, {"role": "assistant", "content": "hi"}),
        ({"role": "user", "content": ["a", {"text": "b"}]}, {"role": "user", "content": "a\nb"}),
        ({"role": "user", "content": ""}, {"role": "user", "content": ""}),
        (  # the image part is left out
            {"role": "user", "content": [{"type": "input_image", "url": "x"}, "t"]},
            {"role": "user", "content": "t"},
        ),
        ({"role": "user", "content": [{"type": "input_image", "url": "x"}]}, None),
        ({"role": "tool", "content": "42"}, None),
        ({"role": "USER", "content": "x"}, None),
        ({"role": 1, "content": "x"}, None),
        ({"role": "user"}, None),
        ({"role": "user", "content": {"text": "x"}}, None),
        ({"type": "function_call", "role": "assistant", "content": "x"}, None),
        ("user: hi", None),
        (["user", "hi"], None),
        (None, None),
    ],
    ids=repr,
)
def test_each_item_shape(manager: SessionManager, value: Any, message: Any) -> None:
    expected = [] if message is None else [message]
    assert manager.messages_from_items(_items(value)) == expected


async def test_item_history_is_the_messages_of_the_newest_items(store: SessionStore) -> None:
    manager = SessionManager(store, history_limit=2)  # the newest 4 items
    await store.append_items("s", "u", [{"role": "user", "content": "old"}, *TURN])
    assert await manager.load_item_messages("s", "u") == [
        {"role": "assistant", "content": "It is 18C.\nSunny."}
    ]
    await store.append_items("s", "u", [{"role": "user", "content": "Thanks"}])
    assert await manager.load_item_messages("s", "u") == [
        {"role": "assistant", "content": "It is 18C.\nSunny."},
        {"role": "user", "content": "Thanks"},
    ]
    assert await SessionManager(store, history_limit=0).load_item_messages("s", "u") == []
    assert await manager.load_item_messages("empty", "u") == []


async def test_build_context_from_items(store: SessionStore) -> None:
    manager = SessionManager(store, history_limit=10, default_session_id="chat")
    await store.append_items("chat", None, TURN)
    await manager.save_qa("entry question", "entry answer")  # entries stay out of it
    await store.set_graph_context("chat", None, "Paris -[in]-> France")
    context = await manager.build_context(source="items")
    assert context.session_id == "chat"
    assert context.history == TURN_MESSAGES
    assert context.graph_context == "Paris -[in]-> France"
    assert context.formatted_history == (
        "Background knowledge from the knowledge graph:\nParis -[in]-> France\n\n"
        "Previous conversation:\n\n"
        "SYSTEM: Be brief.\n\n"
        "USER: Weather in Paris?\n\n"
        "ASSISTANT: It is 18C.\nSunny.\n\n"
    )
    from_entries = await manager.build_context()
    assert from_entries.history == [
        {"role": "user", "content": "entry question"},
        {"role": "assistant", "content": "entry answer"},
    ]
    assert await manager.build_context(source="entries") == from_entries


async def test_build_context_from_no_items_is_empty(manager: SessionManager) -> None:
    context = await manager.build_context("nothing", "u", source="items")
    assert (context.history, context.formatted_history, context.graph_context) == ([], "", None)


@pure_logic
@pytest.mark.parametrize("source", ["item", "ENTRIES", None, 1])
async def test_build_context_refuses_an_unknown_source(
    manager: SessionManager, source: Any
) -> None:
    with pytest.raises(InvalidParameterError, match="source"):
        await manager.build_context("s", source=source)
