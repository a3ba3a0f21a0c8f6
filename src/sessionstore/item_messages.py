"""Chat messages from an item log: which items are messages, and their text.

An item log holds whatever a framework appends: messages, tool calls, tool
results, reasoning. :func:`messages_from_items` keeps the items shaped like
chat messages and turns each into ``{"role": ..., "content": str}``; the rest
is skipped. The rules (also in ``docs/manager.md``):

- The item is a dict with a ``"role"`` of ``"user"``, ``"assistant"``,
  ``"system"`` or ``"developer"`` (``"model"``, Gemini's and ADK's name for
  the assistant, becomes ``"assistant"``); any other role (``"tool"``, ...)
  is skipped.
- If it has a ``"type"``, that type is ``"message"`` (the OpenAI Responses
  shape); items of other types (``"function_call"``, ``"reasoning"``, ...)
  are skipped.
- Its text is ``"content"`` when that is a str. When ``"content"`` (or,
  without one, ``"parts"``) is a list of parts, the text is the parts' texts
  joined by newlines: a part that is a str, or a dict with a str ``"text"``
  (``{"type": "input_text", "text": ...}``, ``{"text": ...}``). Other parts
  (images, files, audio) are left out, and a message with no text at all is
  skipped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from sessionstore.models import SessionItem

__all__ = ["CHAT_ROLES", "format_messages", "message_from_value", "messages_from_items"]

CHAT_ROLES: Final = {
    "user": "user",
    "assistant": "assistant",
    "system": "system",
    "developer": "developer",
    "model": "assistant",
}
"""The roles an item may have to count as a message, and the role it gets."""

HISTORY_HEADER: Final = "Previous conversation:\n\n"


def message_from_value(value: Any) -> dict[str, str] | None:
    """Return the chat message an item's value is, or ``None`` when it is none."""
    if not isinstance(value, Mapping):
        return None
    given = value.get("role")
    role = CHAT_ROLES.get(given) if isinstance(given, str) else None
    if role is None or value.get("type", "message") != "message":
        return None
    content = value.get("content", value.get("parts"))
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        return None
    texts = [text for part in content if (text := _part_text(part)) is not None]
    return {"role": role, "content": "\n".join(texts)} if texts else None


def _part_text(part: Any) -> str | None:
    if isinstance(part, str):
        return part
    if isinstance(part, Mapping) and isinstance(part.get("text"), str):
        text: str = part["text"]
        return text
    return None


def messages_from_items(items: Sequence[SessionItem]) -> list[dict[str, str]]:
    """Return the chat messages among ``items``, in their order (see the module's rules)."""
    messages = []
    for item in items:
        message = message_from_value(item.data)
        if message is not None:
            messages.append(message)
    return messages


def format_messages(messages: Sequence[Mapping[str, str]]) -> str:
    r"""Return messages as prompt text; ``""`` for none.

    The text is ``"Previous conversation:\\n\\n"`` and, per message,
    ``"<ROLE>: <content>\\n\\n"`` (the role in capitals).
    """
    if not messages:
        return ""
    parts = [HISTORY_HEADER]
    parts.extend(f"{m['role'].upper()}: {m['content']}\n\n" for m in messages)
    return "".join(parts)
