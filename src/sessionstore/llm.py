"""One-sentence LLM summaries of agent trace steps (docs/manager.md).

:class:`LLM` is what :class:`~sessionstore.SessionManager` calls;
:class:`OpenAICompatibleLLM` adapts any OpenAI-compatible async client to it.
:func:`summarize_return_value` asks the LLM for one sentence, scrubs what comes
back, and falls back to a fixed sentence when the LLM fails, hangs or answers
nothing usable: a summary never fails the call that records the step.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from typing import Any, Protocol, runtime_checkable

from sessionstore.stored import compact_json

__all__ = [
    "DEFAULT_SUMMARY_TIMEOUT",
    "LLM",
    "SUMMARY_MAX_TOKENS",
    "SUMMARY_SYSTEM_PROMPT",
    "SUMMARY_TEMPERATURE",
    "TIMEOUT_ENV",
    "OpenAICompatibleLLM",
    "fallback_feedback",
    "scrub_summary",
    "summarize_return_value",
    "summary_messages",
    "summary_timeout",
]

logger = logging.getLogger(__name__)

SUMMARY_SYSTEM_PROMPT = (
    "You describe the result of one step of an AI agent. The user message is the "
    "JSON return value of the method that ran. Reply with exactly one short, "
    "human-readable sentence that says what the return value contains. Use only "
    "facts present in it and do not invent details. No markdown, no preamble."
)
SUMMARY_TEMPERATURE = 0.0
SUMMARY_MAX_TOKENS = 120
TIMEOUT_ENV = "SESSIONSTORE_FEEDBACK_LLM_TIMEOUT_MS"
DEFAULT_SUMMARY_TIMEOUT = 8.0
RETURN_VALUE_MAX_CHARS = 1000
SUMMARY_MAX_CHARS = 500
ELLIPSIS = "..."

# ECMA-48 CSI: ESC [ (or the 8-bit CSI), parameter bytes, intermediate bytes, final byte.
_ANSI_CSI = re.compile(r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]")
# A run of spaces and control characters holding at least one control
# character becomes one space, so "a\r\nb" and "a \n b" both read "a b".
_CONTROL = r"\x00-\x1f\x7f-\x9f"
_CONTROL_RUN = re.compile(rf"[ {_CONTROL}]*[{_CONTROL}][ {_CONTROL}]*")


@runtime_checkable
class LLM(Protocol):
    """Anything that turns chat messages into a reply.

    ``messages`` are OpenAI-style ``{"role": ..., "content": ...}`` dicts.
    """

    async def generate(
        self, messages: list[dict[str, str]], *, temperature: float, max_tokens: int
    ) -> str:
        """Return the model's reply to ``messages``."""
        ...


class OpenAICompatibleLLM:
    """Adapts an OpenAI-compatible async client to :class:`LLM`.

    Works with ``openai.AsyncOpenAI`` and any client exposing
    ``await client.chat.completions.create(model=..., messages=..., ...)``
    (Azure, vLLM, Ollama, LiteLLM, ...); ``openai`` itself is not a dependency.

    Args:
        client: the async client.
        model: the model name passed on every request.
        **request_options: more keyword arguments for every request.

    """

    def __init__(self, client: Any, model: str, **request_options: Any) -> None:
        self._client = client
        self.model = model
        self._request_options = request_options

    def __repr__(self) -> str:
        return f"<OpenAICompatibleLLM model={self.model!r}>"

    async def generate(
        self, messages: list[dict[str, str]], *, temperature: float, max_tokens: int
    ) -> str:
        """Return the first choice's text, or ``""`` when there is none."""
        response = await self._client.chat.completions.create(
            model=self.model,
            messages=messages,
            temperature=temperature,
            max_tokens=max_tokens,
            **self._request_options,
        )
        choices = _field(response, "choices") or []
        if not choices:
            return ""
        content = _field(_field(choices[0], "message"), "content")
        return content if isinstance(content, str) else ""


def _field(obj: Any, name: str) -> Any:
    """Read ``name`` from a response object or from its plain-dict form."""
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def fallback_feedback(origin_function: str, status: str, error_message: str) -> str:
    """Return the fixed sentence stored when no LLM summary is available.

    ``"<origin> failed. Reason: <error>."`` for an ``error`` status with an
    error message, ``"<origin> failed."`` without one, else
    ``"<origin> succeeded."``.
    """
    if status.strip().lower() == "error":
        error = error_message.strip()
        if error:
            return f"{origin_function} failed. Reason: {error}."
        return f"{origin_function} failed."
    return f"{origin_function} succeeded."


def summary_messages(return_value: Any) -> list[dict[str, str]]:
    """Return the system and user messages asking for a one-sentence summary.

    The user message is the return value as compact JSON, cut to 1000
    characters plus ``"..."``.
    """
    payload = compact_json(return_value)
    if len(payload) > RETURN_VALUE_MAX_CHARS:
        payload = payload[:RETURN_VALUE_MAX_CHARS] + ELLIPSIS
    return [
        {"role": "system", "content": SUMMARY_SYSTEM_PROMPT},
        {"role": "user", "content": payload},
    ]


def scrub_summary(text: str) -> str:
    """Make LLM output safe to store and show on one line.

    ANSI CSI sequences are removed, each control character (newline and tab
    included) becomes one space without doubling spaces, the text is stripped
    and cut to 500 characters plus ``"..."``. Lone surrogates become ``?``.
    """
    text = _ANSI_CSI.sub("", text)
    text = _CONTROL_RUN.sub(" ", text).strip()
    text = text.encode("utf-8", "replace").decode("utf-8")
    if len(text) > SUMMARY_MAX_CHARS:
        text = text[:SUMMARY_MAX_CHARS] + ELLIPSIS
    return text


def summary_timeout() -> float:
    """Return the LLM timeout in seconds: the env override, else 8 s.

    ``SESSIONSTORE_FEEDBACK_LLM_TIMEOUT_MS`` holds milliseconds; a value that
    is not a positive number is ignored with a warning.
    """
    raw = os.environ.get(TIMEOUT_ENV)
    if raw is None or not raw.strip():
        return DEFAULT_SUMMARY_TIMEOUT
    try:
        millis = float(raw)
    except ValueError:
        millis = -1.0
    if not millis > 0 or millis == float("inf"):
        logger.warning("ignoring %s=%r: not a positive number of milliseconds", TIMEOUT_ENV, raw)
        return DEFAULT_SUMMARY_TIMEOUT
    return millis / 1000.0


async def summarize_return_value(llm: LLM, return_value: Any) -> str | None:
    """Ask ``llm`` for a one-sentence summary of ``return_value``.

    Returns:
        The scrubbed sentence, or ``None`` when the LLM raised, timed out or
        answered nothing usable (the caller then stores the fallback).

    """
    messages = summary_messages(return_value)
    try:
        async with asyncio.timeout(summary_timeout()):
            reply = await llm.generate(
                messages, temperature=SUMMARY_TEMPERATURE, max_tokens=SUMMARY_MAX_TOKENS
            )
    except TimeoutError:
        logger.warning("trace summary LLM timed out; storing the fallback sentence")
        return None
    # An LLM client may raise anything; a summary never fails the step.
    except Exception as exc:  # noqa: BLE001
        # The class only: a client's message (and traceback) may quote the prompt,
        # which holds the stored return value.
        logger.warning(
            "trace summary LLM failed (%s); storing the fallback sentence", type(exc).__name__
        )
        return None
    if not isinstance(reply, str):
        logger.warning("trace summary LLM returned %s, not str", type(reply).__name__)
        return None
    return scrub_summary(reply) or None
