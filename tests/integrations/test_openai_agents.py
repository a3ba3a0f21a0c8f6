"""The OpenAI Agents SDK adapter: the ``Session`` protocol on every backend.

What the SDK's own ``SQLiteSession`` returns is the reference: the same
operations on both must give the same results. The SDK's own test modules
also run against this adapter (``tests/frameworks/openai_agents.py``, in
``make framework-tests``).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from typing import Any, cast

import pytest
from agents import Agent, RunConfig, Runner, SQLiteSession, TResponseInputItem, function_tool
from agents.extensions.memory.encrypt_session import EncryptedSession
from agents.memory import Session, SessionABC, SessionSettings
from agents.testing import ScriptedModel, assistant_message, function_call
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.types.responses import ResponseReasoningItem
from openai.types.responses.response_reasoning_item import Summary

from sessionstore import InvalidParameterError, SessionStore, StoreError
from sessionstore.integrations.openai_agents import SessionstoreSession
from tests.contract.cases import BackendCase, pure_logic

USER = "alice"
OFFLINE = RunConfig(tracing_disabled=True)

TURN: list[TResponseInputItem] = cast(
    "list[TResponseInputItem]",
    [
        {"role": "user", "content": [{"type": "input_text", "text": "Weather in Paris?"}]},
        {"id": "rs_1", "type": "reasoning", "summary": [{"type": "summary_text", "text": "…"}]},
        {
            "type": "function_call",
            "call_id": "call_1",
            "name": "get_weather",
            "arguments": '{"city": "Paris"}',
        },
        {"type": "function_call_output", "call_id": "call_1", "output": "18.5C \x00 ☀️"},
        {
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [
                {"type": "output_text", "text": "It is 18.5C.", "annotations": []},
                {"type": "refusal", "refusal": ""},
            ],
            "score": 1.0,
            "tokens": 2**70,
        },
    ],
)


def contents(items: list[TResponseInputItem]) -> list[Any]:
    return [cast("dict[str, Any]", item).get("content") for item in items]


# -- the protocol -----------------------------------------------------------------------


async def test_it_is_an_sdk_session(store: SessionStore) -> None:
    session = SessionstoreSession("chat", store, user_id=USER)
    assert isinstance(session, Session)
    assert isinstance(session, SessionABC)
    assert (session.session_id, session.user_id, session.store) == ("chat", USER, store)
    assert session.session_settings == SessionSettings()
    limited = SessionstoreSession("chat", store, session_settings={"limit": 2})
    assert limited.session_settings == SessionSettings(limit=2)


async def test_a_turn_comes_back_exactly(store: SessionStore) -> None:
    session = SessionstoreSession("chat", store, user_id=USER)
    await session.add_items(TURN)
    back = await session.get_items()
    assert json.dumps(back) == json.dumps(TURN)  # 1.0 stays a float, key order is kept
    assert await session.get_items(limit=2) == TURN[-2:]
    assert [i.data for i in await store.get_items("chat", USER)] == TURN


async def test_limits_pop_and_clear_as_the_sdk_sqlite_session(store: SessionStore) -> None:
    ours = SessionstoreSession("chat", store, user_id=USER)
    theirs = SQLiteSession("chat")
    try:
        for session in (ours, theirs):
            await session.add_items(TURN)
            await session.add_items([{"role": "user", "content": "more"}])
        for limit in (None, 0, 1, 3, 6, 7, 100, -1):
            assert await ours.get_items(limit) == await theirs.get_items(limit), limit
        for _ in range(3):
            assert await ours.pop_item() == await theirs.pop_item()
        assert await ours.get_items() == await theirs.get_items()
        for session in (ours, theirs):
            await session.clear_session()
        assert await ours.get_items() == await theirs.get_items() == []
        assert await ours.pop_item() is await theirs.pop_item() is None
        assert await store.count_items("chat", USER) == 0
    finally:
        theirs.close()


async def test_session_settings_limit_is_the_default(store: SessionStore) -> None:
    session = SessionstoreSession("chat", store, session_settings=SessionSettings(limit=2))
    await session.add_items([{"role": "user", "content": str(i)} for i in range(5)])
    assert contents(await session.get_items()) == ["3", "4"]
    assert contents(await session.get_items(limit=3)) == ["2", "3", "4"]
    session.session_settings = None
    assert len(await session.get_items()) == 5


async def test_sessions_of_other_ids_and_users_are_apart(store: SessionStore) -> None:
    sessions = [
        SessionstoreSession("chat", store, user_id=USER),
        SessionstoreSession("chat", store, user_id="bob"),
        SessionstoreSession("chat", store),
        SessionstoreSession("other", store, user_id=USER),
    ]
    for number, session in enumerate(sessions):
        await session.add_items([{"role": "user", "content": str(number)}])
    await sessions[0].clear_session()
    assert await sessions[0].pop_item() is None
    assert [contents(await s.get_items()) for s in sessions] == [[], ["1"], ["2"], ["3"]]


@pytest.mark.parametrize("one_object", [True, False], ids=["one-session", "16-sessions"])
async def test_concurrent_turns_are_never_split(store: SessionStore, one_object: bool) -> None:
    shared = SessionstoreSession("busy", store, user_id=USER)

    async def turn(task: int) -> None:
        session = shared if one_object else SessionstoreSession("busy", store, user_id=USER)
        await session.add_items([{"role": "user", "content": f"{task}.{i}"} for i in range(4)])

    await asyncio.gather(*(turn(task) for task in range(16)))
    stored = contents(await shared.get_items())
    assert len(stored) == 64
    groups = [stored[i : i + 4] for i in range(0, 64, 4)]
    tasks = [group[0].split(".")[0] for group in groups]
    assert sorted(tasks, key=int) == [str(t) for t in range(16)]
    assert groups == [[f"{task}.{i}" for i in range(4)] for task in tasks]


# -- bad input and the store it opens ------------------------------------------------------


@pure_logic
async def test_bad_arguments_are_refused(store: SessionStore) -> None:
    with pytest.raises(InvalidParameterError, match="session_id"):
        SessionstoreSession("", store)
    with pytest.raises(InvalidParameterError, match="user_id"):
        SessionstoreSession("chat", store, user_id=cast("str", 5))
    with pytest.raises(TypeError, match="limitt"):
        SessionstoreSession("chat", store, session_settings={"limitt": 1})
    session = SessionstoreSession("chat", store)
    await session.add_items([{"role": "user", "content": "kept"}])
    bad = cast("TResponseInputItem", {"role": "user", "content": float("nan")})
    with pytest.raises(InvalidParameterError):
        await session.add_items([{"role": "user", "content": "lost"}, bad])
    assert contents(await session.get_items()) == ["kept"]
    await session.add_items([])
    assert len(await session.get_items()) == 1


async def test_a_url_store_belongs_to_the_session(
    store_url: str, store: SessionStore, case: BackendCase
) -> None:
    async with SessionstoreSession("chat", store_url, user_id=USER) as owner:
        await owner.add_items([{"role": "user", "content": "hi"}])
        assert contents(await owner.get_items()) == ["hi"]
    with pytest.raises(StoreError):
        await owner.get_items()
    await owner.close()  # idempotent
    borrower = SessionstoreSession("chat", store, user_id=USER)
    await borrower.close()  # a store it was given stays open
    assert contents(await borrower.get_items()) == (["hi"] if case.shared else [])


async def test_a_cancelled_write_is_finished_before_the_cancellation(store: SessionStore) -> None:
    session = SessionstoreSession("chat", store, user_id=USER)
    for operation in ("add", "pop", "clear"):
        await session.clear_session()
        await session.add_items([{"role": "user", "content": "first"}])
        write = {
            "add": lambda: session.add_items([{"role": "user", "content": "second"}]),
            "pop": session.pop_item,
            "clear": session.clear_session,
        }[operation]
        task = asyncio.ensure_future(write())
        await asyncio.sleep(0)  # the task has started its write
        task.cancel()
        await asyncio.sleep(0)
        task.cancel()  # a second cancellation is held too
        with pytest.raises(asyncio.CancelledError):
            await task
        expected = {"add": ["first", "second"], "pop": [], "clear": []}[operation]
        assert contents(await session.get_items()) == expected, operation


# -- against the SDK's SQLiteSession, any sequence of calls -----------------------------------

texts = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12)
sdk_items = st.one_of(
    st.builds(lambda t: {"role": "user", "content": t}, texts),
    st.builds(
        lambda parts: {
            "role": "user",
            "content": [{"type": "input_text", "text": p} for p in parts],
        },
        st.lists(texts, max_size=3),
    ),
    st.builds(
        lambda n, a: {"type": "function_call", "call_id": n, "name": "f", "arguments": a},
        texts,
        texts,
    ),
    st.builds(
        lambda n, o: {"type": "function_call_output", "call_id": n, "output": o}, texts, texts
    ),
)
calls = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.lists(sdk_items, max_size=4)),
        st.tuples(st.just("get"), st.none() | st.integers(min_value=-2, max_value=8)),
        st.tuples(st.just("pop"), st.none()),
        st.tuples(st.just("clear"), st.none()),
    ),
    max_size=8,
)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(script=calls, default_limit=st.none() | st.integers(min_value=0, max_value=4))
async def test_any_calls_answer_as_the_sdk_sqlite_session(
    store: SessionStore, script: list[tuple[str, Any]], default_limit: int | None
) -> None:
    limit = SessionSettings(limit=default_limit)
    ours = SessionstoreSession("prop", store, user_id=USER, session_settings=limit)
    theirs = SQLiteSession("prop", session_settings=limit)
    try:
        for call, argument in script:
            if call == "add":
                answers = [await s.add_items(argument) for s in (ours, theirs)]
            elif call == "get":
                answers = [await s.get_items(argument) for s in (ours, theirs)]
            elif call == "pop":
                answers = [await s.pop_item() for s in (ours, theirs)]
            else:
                answers = [await s.clear_session() for s in (ours, theirs)]
            assert answers[0] == answers[1], (call, argument)
        assert await ours.get_items(-1) == await theirs.get_items(-1)
    finally:
        theirs.close()
        await ours.clear_session()


# -- the SDK's agent loop, offline -------------------------------------------------------------


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"18C and sunny in {city}"


def scripted_model() -> ScriptedModel:
    """Three turns: a tool call with reasoning, then two plain answers."""
    reasoning = ResponseReasoningItem(
        id="rs_1", type="reasoning", summary=[Summary(text="look it up", type="summary_text")]
    )
    return ScriptedModel(
        [
            [reasoning, function_call("get_weather", {"city": "Paris"}, call_id="call_1")],
            [assistant_message("It is 18C and sunny.", item_id="msg_1")],
            [assistant_message("You asked about Paris.", item_id="msg_2")],
            [assistant_message("Bye!", item_id="msg_3")],
        ]
    )


def _run_sync_on_a_fresh_loop(agent: Agent[Any], text: Any, session: Session) -> Any:
    """``Runner.run_sync`` from a thread, as sync code calls it; its loop closed after."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return Runner.run_sync(agent, text, session=session, run_config=OFFLINE)
    finally:
        asyncio.set_event_loop(None)
        loop.close()


async def three_turns(session: Session) -> tuple[list[str], ScriptedModel]:
    """Run, run_sync and run_streamed in turn on ``session``; the answers and the model."""
    model = scripted_model()
    agent = Agent(name="weather", model=model, tools=[get_weather])
    first = await Runner.run(agent, "Weather in Paris?", session=session, run_config=OFFLINE)
    question = [
        {"role": "user", "content": [{"type": "input_text", "text": "Which"}]},
        {"role": "user", "content": [{"type": "input_text", "text": " city?"}]},
    ]
    second = await asyncio.to_thread(_run_sync_on_a_fresh_loop, agent, question, session)
    streamed = Runner.run_streamed(agent, "Thanks", session=session, run_config=OFFLINE)
    async for _event in streamed.stream_events():
        pass
    answers = [first.final_output, second.final_output, streamed.final_output]
    return answers, model


async def test_runner_turns_store_what_the_sdk_sqlite_session_stores(store: SessionStore) -> None:
    ours = SessionstoreSession("agent", store, user_id=USER)
    answers, model = await three_turns(ours)
    assert answers == ["It is 18C and sunny.", "You asked about Paris.", "Bye!"]
    stored = await ours.get_items()
    types = [cast("dict[str, Any]", i).get("type", "message") for i in stored]
    assert types[:5] == ["message", "reasoning", "function_call", "function_call_output", "message"]
    assert len(stored) == 10
    assert model.calls[-1].input[:-1] == stored[:-2]  # the last turn saw the whole history

    theirs = SQLiteSession("agent")
    try:
        reference_answers, reference_model = await three_turns(theirs)
        assert (answers, stored) == (reference_answers, await theirs.get_items())
        assert [c.input for c in model.calls] == [c.input for c in reference_model.calls]
    finally:
        theirs.close()


async def test_run_config_session_limit_reads_the_newest_items(store: SessionStore) -> None:
    session = SessionstoreSession("agent", store, user_id=USER)
    await session.add_items([{"role": "user", "content": f"old {i}"} for i in range(6)])
    model = ScriptedModel([[assistant_message("ok")]])
    limited = RunConfig(tracing_disabled=True, session_settings=SessionSettings(limit=2))
    await Runner.run(Agent(name="a", model=model), "new", session=session, run_config=limited)
    assert contents(model.calls[0].input) == ["old 4", "old 5", "new"]
    assert len(await session.get_items()) == 8


async def test_encrypted_session_wraps_it(store: SessionStore) -> None:
    key = Fernet.generate_key().decode()
    ours = SessionstoreSession("secret", store, user_id=USER)
    encrypted = EncryptedSession("secret", ours, encryption_key=key, ttl=600)
    answers, _model = await three_turns(encrypted)
    assert answers[-1] == "Bye!"
    plain = await encrypted.get_items()
    assert len(plain) == 10
    assert await encrypted.get_items(limit=2) == plain[-2:]
    raw = [i.data for i in await store.get_items("secret", USER)]
    assert all(set(cast("dict[str, Any]", r)) == {"__enc__", "v", "kid", "payload"} for r in raw)
    assert "Paris" not in json.dumps(raw)
    stranger = EncryptedSession("secret", ours, encryption_key=Fernet.generate_key().decode())
    assert await stranger.get_items() == []
    assert await encrypted.pop_item() == plain[-1]
    assert len(await ours.get_items()) == 9


@pytest.mark.shared  # the CLI opens the URL itself: a memory:// store is private
def test_the_cli_shows_the_stored_turns(store_url: str) -> None:
    async def run_agent() -> list[TResponseInputItem]:
        async with SessionstoreSession("trip", store_url, user_id=USER) as session:
            await three_turns(session)
            return await session.get_items()

    stored = asyncio.run(run_agent())
    command = [sys.executable, "-m", "sessionstore.cli", "--store", store_url, "show", "trip"]
    env = {**os.environ, "COLUMNS": "400", "PYTHONIOENCODING": "utf-8"}

    def cli(*args: str) -> str:
        done = subprocess.run(
            [*command, "-u", USER, "--items", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    shown = json.loads(cli("--json"))
    assert [item["data"] for item in shown["items"]] == stored
    assert (shown["item_count"], shown["qa_count"]) == (10, 0)
    text = cli()
    assert "10 items" in text
    assert "item #10" in text
    assert '"name": "get_weather"' in text
    assert "18C and sunny in Paris" in text


# -- the dependency ------------------------------------------------------------------------


def test_without_the_sdk_the_import_says_what_to_install() -> None:
    code = (
        "import sys\n"
        "sys.modules['agents'] = None\n"
        "import sessionstore\n"
        "from sessionstore import MissingDependencyError\n"
        "try:\n"
        "    import sessionstore.integrations.openai_agents\n"
        "except MissingDependencyError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "pip install 'sessionstore[openai-agents]'" in done.stdout


def test_import_sessionstore_does_not_import_the_sdk() -> None:
    code = "import sys, sessionstore, sessionstore.integrations\nprint('agents' in sys.modules)\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.stdout.strip() == "False", done.stderr
