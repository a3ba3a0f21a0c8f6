"""A scripted LLM and a store spy for the manager tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sessionstore import SessionStore


@dataclass
class Sleep:
    """A scripted turn that hangs for ``seconds`` before answering ``reply``."""

    seconds: float
    reply: str = "too late"


@dataclass
class Call:
    messages: list[dict[str, str]]
    temperature: float
    max_tokens: int


@dataclass
class ScriptedLLM:
    """Plays its script one turn per call: a reply, an exception to raise, or a Sleep.

    An exhausted script answers ``default``.
    """

    script: list[Any] = field(default_factory=list)
    default: Any = "The call returned a value."
    calls: list[Call] = field(default_factory=list)

    async def generate(
        self, messages: list[dict[str, str]], *, temperature: float, max_tokens: int
    ) -> Any:
        self.calls.append(Call(messages, temperature, max_tokens))
        turn = self.script.pop(0) if self.script else self.default
        if isinstance(turn, BaseException):
            raise turn
        if isinstance(turn, Sleep):
            await asyncio.sleep(turn.seconds)
            return turn.reply
        return turn


class StoreSpy:
    """Counts calls to a store's public methods, optionally making them fail."""

    def __init__(self, store: SessionStore) -> None:
        self.calls: list[str] = []
        self._store = store

    def watch(self, *names: str, fail: bool = False) -> None:
        for name in names:
            original = getattr(self._store, name)
            setattr(self._store, name, self._wrap(name, original, fail))

    def _wrap(self, name: str, original: Callable[..., Any], fail: bool) -> Callable[..., Any]:
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            if fail:
                raise AssertionError(f"{name} must not be called")
            return await original(*args, **kwargs)

        return wrapper


PUBLIC_CALLS = (
    "create_qa_entry",
    "get_latest_qa_entries",
    "get_all_qa_entries",
    "get_qa_entry",
    "count_qa_entries",
    "update_qa_entry",
    "delete_qa_entry",
    "delete_session",
    "latest_qa_id",
    "get_graph_context",
    "set_graph_context",
    "save_trace_step",
    "read_trace_steps",
    "open",
)
