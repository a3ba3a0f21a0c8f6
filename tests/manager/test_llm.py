"""The OpenAI-compatible adapter and the summary helpers, without any backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from sessionstore import LLM, OpenAICompatibleLLM
from sessionstore.llm import TIMEOUT_ENV, scrub_summary, summary_timeout
from tests.manager.fakes import ScriptedLLM


@dataclass
class FakeCompletions:
    response: Any
    requests: list[dict[str, Any]] = field(default_factory=list)

    async def create(self, **kwargs: Any) -> Any:
        self.requests.append(kwargs)
        return self.response


def _client(response: Any) -> tuple[Any, FakeCompletions]:
    completions = FakeCompletions(response)
    return SimpleNamespace(chat=SimpleNamespace(completions=completions)), completions


async def test_adapter_sends_an_openai_request() -> None:
    message = SimpleNamespace(content="It returned 3 rows.")
    client, completions = _client(SimpleNamespace(choices=[SimpleNamespace(message=message)]))
    llm = OpenAICompatibleLLM(client, "gpt-test", seed=7)
    assert isinstance(llm, LLM)
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    assert await llm.generate(messages, temperature=0.0, max_tokens=120) == "It returned 3 rows."
    assert completions.requests == [
        {
            "model": "gpt-test",
            "messages": messages,
            "temperature": 0.0,
            "max_tokens": 120,
            "seed": 7,
        }
    ]
    assert "gpt-test" in repr(llm)


@pytest.mark.parametrize(
    ("response", "text"),
    [
        ({"choices": [{"message": {"content": "dict form"}}]}, "dict form"),
        (SimpleNamespace(choices=[]), ""),
        (SimpleNamespace(choices=[SimpleNamespace(message=SimpleNamespace(content=None))]), ""),
        ({"choices": None}, ""),
    ],
)
async def test_adapter_reads_any_response_shape(response: Any, text: str) -> None:
    client, _ = _client(response)
    assert await OpenAICompatibleLLM(client, "m").generate([], temperature=0, max_tokens=1) == text


def test_scripted_fake_is_an_llm() -> None:
    assert isinstance(ScriptedLLM(), LLM)


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        (None, 8.0),
        ("", 8.0),
        ("250", 0.25),
        ("1500.5", 1.5005),
        ("0", 8.0),
        ("-5", 8.0),
        ("soon", 8.0),
        ("inf", 8.0),
        ("nan", 8.0),
    ],
)
def test_timeout_from_env(monkeypatch: pytest.MonkeyPatch, raw: str | None, seconds: float) -> None:
    if raw is None:
        monkeypatch.delenv(TIMEOUT_ENV, raising=False)
    else:
        monkeypatch.setenv(TIMEOUT_ENV, raw)
    assert summary_timeout() == pytest.approx(seconds)


def test_scrub_never_leaves_control_characters_or_double_spaces_it_made() -> None:
    raw = "".join(chr(c) for c in range(0xA0)) + " x"
    scrubbed = scrub_summary("a" + raw)
    assert all(ch.isprintable() for ch in scrubbed)
    assert "  " not in scrubbed
    assert scrub_summary("lone \ud800 surrogate") == "lone ? surrogate"
