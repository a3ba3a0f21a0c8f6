"""Agent trace steps with LLM summaries and their fallbacks (SPEC §6)."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from sessionstore import InvalidParameterError, SessionManager, SessionStore, StoreError
from sessionstore.llm import SUMMARY_SYSTEM_PROMPT, TIMEOUT_ENV
from tests.contract.cases import pure_logic
from tests.manager.fakes import PUBLIC_CALLS, ScriptedLLM, Sleep, StoreSpy


async def _feedback(manager: SessionManager, **kwargs: object) -> str:
    await manager.add_agent_trace_step(session_id="t", **kwargs)  # type: ignore[arg-type]
    return (await manager.get_agent_trace_feedback("t"))[-1]


async def test_step_is_stored_with_a_new_uuid4(
    manager: SessionManager, store: SessionStore, llm: ScriptedLLM
) -> None:
    llm.script = ["Found two documents about Paris."]
    trace_id = await manager.add_agent_trace_step(
        origin_function="search",
        status="success",
        session_id="s",
        user_id="u",
        memory_query="paris?",
        memory_context="ctx",
        method_params={"k": 2},
        method_return_value=["doc1", "doc2"],
    )
    assert uuid.UUID(trace_id).version == 4
    assert str(uuid.UUID(trace_id)) == trace_id
    [step] = await store.read_trace_steps("s", "u")
    assert step.trace_id == trace_id
    assert (step.origin_function, step.status) == ("search", "success")
    assert (step.memory_query, step.memory_context) == ("paris?", "ctx")
    assert step.method_params == {"k": 2}
    assert step.method_return_value == ["doc1", "doc2"]
    assert step.error_message == ""
    assert step.session_feedback == "Found two documents about Paris."
    other = await manager.add_agent_trace_step(origin_function="f", status="ok")
    assert other != trace_id
    assert await manager.get_agent_trace_count() == 1


@pure_logic
async def test_llm_request(manager: SessionManager, llm: ScriptedLLM) -> None:
    await manager.add_agent_trace_step(
        origin_function="f", status="ok", method_return_value={"a": [1, 2], "é": None}
    )
    [call] = llm.calls
    assert call.temperature == 0
    assert call.max_tokens == 120
    assert call.messages == [
        {"role": "system", "content": SUMMARY_SYSTEM_PROMPT},
        {"role": "user", "content": '{"a":[1,2],"é":null}'},
    ]
    prompt = SUMMARY_SYSTEM_PROMPT.lower()
    assert "one short" in prompt
    assert "sentence" in prompt
    assert "return value" in prompt
    assert "do not invent" in prompt


SENT = [
    ("x" * 998, '"' + "x" * 998 + '"'),
    ("x" * 999, '"' + "x" * 999 + "..."),
    (list(range(1000)), json.dumps(list(range(1000)), separators=(",", ":"))[:1000] + "..."),
    (0, "0"),
    (False, "false"),
]


@pure_logic
async def test_return_value_is_cut_to_1000_chars(
    manager: SessionManager, llm: ScriptedLLM, store: SessionStore
) -> None:
    for value, sent in SENT:
        await manager.add_agent_trace_step(
            origin_function="f", status="ok", method_return_value=value
        )
        assert llm.calls[-1].messages[-1] == {"role": "user", "content": sent}
        assert len(sent) <= 1003
    # The stored return value itself is never cut.
    steps = await store.read_trace_steps("default_session", None)
    assert [step.method_return_value for step in steps] == [value for value, _ in SENT]


SCRUBBED = [
    ("\x1b[31mRed\x1b[0m text\x1b[2K", "Red text"),
    ("line one\nline two\ttabbed", "line one line two tabbed"),
    ("a \r\n b\x00\x07c", "a b c"),
    ("a  b", "a  b"),  # only spaces made from control characters are merged
    ("  \n padded \t ", "padded"),
    ("bell\x1b only", "bell only"),
    ("C1\x9b1mcsi and\x85next", "C1csi and next"),
    ("x" * 550, "x" * 500 + "..."),
    ("x" * 500, "x" * 500),
    ("\x1b[1m" + "y" * 499 + "\x1b[0m\n", "y" * 499),
]


@pure_logic
async def test_llm_text_is_scrubbed(manager: SessionManager, llm: ScriptedLLM) -> None:
    llm.script = [reply for reply, _ in SCRUBBED]
    for _, stored in SCRUBBED:
        feedback = await _feedback(manager, origin_function="f", status="ok", method_return_value=1)
        assert feedback == stored


@pure_logic
async def test_unusable_llm_answer_stores_the_fallback(
    manager: SessionManager, llm: ScriptedLLM
) -> None:
    unusable = ["", "   ", "\n\t\r", "\x1b[0m\x1b[2J", None, 42, RuntimeError("down"), ValueError()]
    llm.script = list(unusable)
    for _ in unusable:
        feedback = await _feedback(
            manager, origin_function="lookup", status="success", method_return_value={"x": 1}
        )
        assert feedback == "lookup succeeded."
    assert len(llm.calls) == len(unusable)
    assert await manager.get_agent_trace_count("t") == len(unusable)


@pure_logic
async def test_a_failing_llm_is_logged_by_its_class_only(
    manager: SessionManager, llm: ScriptedLLM, caplog: pytest.LogCaptureFixture
) -> None:
    # An LLM client's error may quote the prompt, which holds the stored return value.
    secret = "return-value-" + uuid.uuid4().hex
    llm.script = [ConnectionError(f"upstream refused the prompt {secret!r}")]
    caplog.set_level("DEBUG", logger="sessionstore")
    feedback = await _feedback(
        manager, origin_function="lookup", status="success", method_return_value=secret
    )
    assert feedback == "lookup succeeded."
    failures = [r for r in caplog.records if "LLM failed" in r.getMessage()]
    assert [r.getMessage() for r in failures] == [
        "trace summary LLM failed (ConnectionError); storing the fallback sentence"
    ]
    assert all(r.exc_info is None for r in failures)
    assert secret not in caplog.text


@pure_logic
async def test_llm_timeout_stores_the_fallback(
    manager: SessionManager, llm: ScriptedLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TIMEOUT_ENV, "50")
    llm.script = [Sleep(30.0)]
    started = time.monotonic()
    feedback = await _feedback(
        manager,
        origin_function="slow",
        status="error",
        error_message=" boom ",
        method_return_value="partial",
    )
    assert time.monotonic() - started < 5
    assert feedback == "slow failed. Reason: boom."


@pure_logic
async def test_llm_within_the_timeout_is_used(
    manager: SessionManager, llm: ScriptedLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TIMEOUT_ENV, "5000")
    llm.script = [Sleep(0.05, "quick enough")]
    assert await _feedback(manager, origin_function="f", status="ok", method_return_value=1) == (
        "quick enough"
    )


FALLBACKS = [
    ("error", "disk full", "tool failed. Reason: disk full."),
    ("  ERROR \n", "  disk full\n", "tool failed. Reason: disk full."),
    ("Error", "", "tool failed."),
    ("error", "   ", "tool failed."),
    ("success", "", "tool succeeded."),
    ("failed", "ignored", "tool succeeded."),
    ("errors", "x", "tool succeeded."),
]


@pure_logic
async def test_fallback_sentences(store: SessionStore) -> None:
    manager = SessionManager(store)  # no LLM
    for status, error, expected in FALLBACKS:
        feedback = await _feedback(
            manager,
            origin_function="tool",
            status=status,
            error_message=error,
            method_return_value={"r": 1},
        )
        assert feedback == expected, (status, error)


@pure_logic
async def test_llm_is_skipped_when_not_wanted(manager: SessionManager, llm: ScriptedLLM) -> None:
    no_flag = await _feedback(
        manager, origin_function="f", status="ok", method_return_value=1, generate_feedback=False
    )
    no_value = await _feedback(manager, origin_function="g", status="error")
    assert (no_flag, no_value) == ("f succeeded.", "g failed.")
    assert llm.calls == []


@pure_logic
async def test_bad_step_fails_before_llm_and_store(
    manager: SessionManager, store: SessionStore, llm: ScriptedLLM
) -> None:
    spy = StoreSpy(store)
    spy.watch(*PUBLIC_CALLS, fail=True)
    bad: list[dict[str, object]] = [
        {"origin_function": " ", "status": "ok"},
        {"origin_function": "f", "status": ""},
        {"origin_function": "f", "status": "ok", "method_return_value": {1, 2}},
        {"origin_function": "f", "status": "ok", "method_params": {"x": float("nan")}},
        {"origin_function": "f", "status": "ok", "session_id": ""},
        {"origin_function": "f", "status": "ok", "user_id": "a\x00"},
        {"origin_function": "f", "status": "ok", "error_message": None},
    ]
    for kwargs in bad:
        with pytest.raises(InvalidParameterError):
            await manager.add_agent_trace_step(**{"method_return_value": 1, **kwargs})  # type: ignore[arg-type]
    assert llm.calls == []
    assert spy.calls == []


@pure_logic
async def test_store_failure_is_not_hidden(store: SessionStore) -> None:
    manager = SessionManager(store, llm=ScriptedLLM())
    await store.close()
    with pytest.raises(StoreError):
        await manager.add_agent_trace_step(origin_function="f", status="ok")


async def test_trace_reads(manager: SessionManager, llm: ScriptedLLM) -> None:
    llm.script = ["one", RuntimeError(), "three"]
    for i in range(3):
        await manager.add_agent_trace_step(
            origin_function=f"f{i}", status="ok", session_id="s", user_id="u", method_return_value=i
        )
    await manager.add_agent_trace_step(origin_function="other", status="ok", user_id="u")
    steps = await manager.get_agent_trace_session("s", "u")
    assert [s.origin_function for s in steps] == ["f0", "f1", "f2"]
    assert [s.origin_function for s in await manager.get_agent_trace_session("s", "u", 2)] == [
        "f1",
        "f2",
    ]
    assert await manager.get_agent_trace_session("s", "u", last_n=0) == []
    assert await manager.get_agent_trace_feedback("s", "u") == ["one", "f1 succeeded.", "three"]
    assert await manager.get_agent_trace_feedback("s", "u", 1) == ["three"]
    assert await manager.get_agent_trace_count("s", "u") == 3
    assert await manager.get_agent_trace_count(user_id="u") == 1
    assert await manager.get_agent_trace_count("s") == 0
    assert await manager.get_agent_trace_feedback(user_id="u") == ["other succeeded."]
    with pytest.raises(InvalidParameterError):
        await manager.get_agent_trace_session("s", "u", -1)
