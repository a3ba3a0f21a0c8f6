"""ADK's session service contract, run on ADK's own services and on ours on every backend.

Each test states behaviour ADK documents for a ``BaseSessionService`` (its
base class, ``Session``, ``State`` and ``GetSessionConfig`` docstrings, and
what its ``InMemorySessionService`` and ``DatabaseSessionService`` do). The
same module runs against those two reference services: a test either of them
fails is a wrong test. Stale-session tests run on the persistent services
only (``DatabaseSessionService`` and ours): the in-memory service keeps no
copy a session could be stale against.

Our service runs on one store per backend for the whole module; every test
works in an app of its own, so tests never see each other's sessions.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from google.adk.errors import StaleSessionError
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.sessions import BaseSessionService, InMemorySessionService, Session
from google.adk.sessions.base_session_service import GetSessionConfig
from google.adk.sessions.database_session_service import DatabaseSessionService
from google.genai import types
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionstore import SessionStore, open_store
from sessionstore.clock import set_clock
from sessionstore.integrations.adk import STALE_SESSION_MESSAGE, SessionstoreSessionService
from tests.contract.cases import CASES, BackendCase, CaseContext

# -- the services ----------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceCase:
    """One session service the contract runs on."""

    name: str
    backend: BackendCase | None = None  # ours on this backend; None: ADK's own
    persistent: bool = True  # a stored copy a session can be stale against
    # Known gaps: test function name -> reason; run as xfail(strict=True).
    gaps: Mapping[str, str] = field(default_factory=dict)


REFERENCES = [ServiceCase("adk-memory", persistent=False), ServiceCase("adk-database")]
OURS = [ServiceCase(f"sessionstore-{case.name}", backend=case) for case in CASES]
SERVICES = REFERENCES + OURS
PERSISTENT = [case for case in SERVICES if case.persistent]


class Stores:
    """One store per backend for the module, opened when a test first needs it."""

    def __init__(self, request: pytest.FixtureRequest, root: Path) -> None:
        self._request = request
        self._root = root
        self._opened: dict[str, SessionStore] = {}

    def get(self, case: BackendCase) -> SessionStore:
        if case.name not in self._opened:
            token = "adk" + uuid.uuid4().hex[:10]
            context = CaseContext(self._request, self._root / case.name, token)
            (self._root / case.name).mkdir()
            store = open_store(case.url(context))
            # Added after the URL's own finalizers (which drop SQL tables), so it runs first.
            self._request.addfinalizer(lambda: asyncio.run(_shut(store)))
            self._opened[case.name] = store
        return self._opened[case.name]


async def _shut(store: SessionStore) -> None:
    await store.prune()
    await store.close()


@pytest.fixture(scope="module")
def stores(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Stores:
    return Stores(request, tmp_path_factory.mktemp("adk-stores"))


@pytest.fixture(params=SERVICES, ids=[case.name for case in SERVICES])
async def service(
    request: pytest.FixtureRequest, stores: Stores, tmp_path: Path
) -> AsyncIterator[BaseSessionService]:
    case: ServiceCase = request.param
    reason = case.gaps.get(request.node.originalname)
    if reason:
        request.applymarker(pytest.mark.xfail(reason=reason, strict=True))
    if case.backend is not None:
        yield SessionstoreSessionService(stores.get(case.backend))
    elif case.persistent:
        database = DatabaseSessionService(f"sqlite+aiosqlite:///{tmp_path / 'adk.db'}")
        yield database
        await database.close()
    else:
        yield InMemorySessionService()


persistent_only = pytest.mark.parametrize(
    "service", PERSISTENT, ids=[case.name for case in PERSISTENT], indirect=True
)


@pytest.fixture
def app() -> str:
    """An app name of the test's own."""
    return f"app-{uuid.uuid4().hex[:12]}"


def _event(
    delta: dict[str, Any] | None = None,
    *,
    text: str | None = None,
    author: str = "user",
    timestamp: float | None = None,
    partial: bool | None = None,
) -> Event:
    content = None
    if text is not None:
        role = "user" if author == "user" else "model"
        content = types.Content(role=role, parts=[types.Part(text=text)])
    extra: dict[str, Any] = {} if timestamp is None else {"timestamp": timestamp}
    return Event(
        invocation_id="inv-1",
        author=author,
        content=content,
        actions=EventActions(state_delta=delta or {}),
        partial=partial,
        **extra,
    )


async def _get(service: BaseSessionService, session: Session, **config: Any) -> Session:
    found = await service.get_session(
        app_name=session.app_name,
        user_id=session.user_id,
        session_id=session.id,
        config=GetSessionConfig(**config) if config else None,
    )
    assert found is not None
    return found


# -- create and get --------------------------------------------------------------------


async def test_an_unknown_session_is_none(service: BaseSessionService, app: str) -> None:
    assert await service.get_session(app_name=app, user_id="u", session_id="nope") is None
    await service.create_session(app_name=app, user_id="u", session_id="s")
    assert await service.get_session(app_name=app, user_id="other", session_id="s") is None
    assert await service.get_session(app_name=app + "x", user_id="u", session_id="s") is None


async def test_created_session_reads_back_equal(service: BaseSessionService, app: str) -> None:
    before = time.time()
    state = {"key": "value", "nested": {"list": [1, 2.5, None]}, "flag": False}
    created = await service.create_session(app_name=app, user_id="alice", state=state)
    assert created.id
    assert (created.app_name, created.user_id) == (app, "alice")
    assert created.state == state
    assert created.events == []
    assert before <= created.last_update_time <= time.time()
    assert await _get(service, created) == created


async def test_a_given_id_is_kept_and_taken_only_once(
    service: BaseSessionService, app: str
) -> None:
    created = await service.create_session(app_name=app, user_id="u", session_id="chat-1")
    assert created.id == "chat-1"
    with pytest.raises(AlreadyExistsError):
        await service.create_session(app_name=app, user_id="u", session_id="chat-1", state={"a": 1})
    assert (await _get(service, created)).state == {}
    # The id is per app and user.
    await service.create_session(app_name=app, user_id="v", session_id="chat-1")
    await service.create_session(app_name=app + "-2", user_id="u", session_id="chat-1")
    generated = [(await service.create_session(app_name=app, user_id="u")).id for _ in range(3)]
    assert len(set(generated)) == 3
    assert "chat-1" not in generated


# -- state scopes ----------------------------------------------------------------------


async def test_app_and_user_keys_are_shared_scopes(service: BaseSessionService, app: str) -> None:
    first = await service.create_session(
        app_name=app, user_id="u1", state={"app:a": 1, "user:b": 2, "c": 3}
    )
    assert first.state == {"app:a": 1, "user:b": 2, "c": 3}
    second = await service.create_session(app_name=app, user_id="u1")
    assert second.state == {"app:a": 1, "user:b": 2}
    other_user = await service.create_session(app_name=app, user_id="u2")
    assert other_user.state == {"app:a": 1}
    other_app = await service.create_session(app_name=app + "-other", user_id="u1")
    assert other_app.state == {}

    await service.append_event(first, _event({"app:a": 10, "user:b": 20, "c": 30}))
    assert first.state == {"app:a": 10, "user:b": 20, "c": 30}
    assert (await _get(service, second)).state == {"app:a": 10, "user:b": 20}
    assert (await _get(service, other_user)).state == {"app:a": 10}
    assert (await _get(service, other_app)).state == {}
    assert await service.get_user_state(app_name=app, user_id="u1") == {"b": 20}
    assert await service.get_user_state(app_name=app, user_id="u2") == {}


async def test_temp_keys_live_in_the_session_object_only(
    service: BaseSessionService, app: str
) -> None:
    session = await service.create_session(app_name=app, user_id="u", state={"temp:t": 0, "k": 0})
    assert session.state == {"k": 0}
    appended = await service.append_event(session, _event({"temp:x": 1, "k": 1}))
    assert session.state == {"temp:x": 1, "k": 1}
    assert appended.actions.state_delta == {"k": 1}
    stored = await _get(service, session)
    assert stored.state == {"k": 1}
    assert [e.actions.state_delta for e in stored.events] == [{"k": 1}]


async def test_none_is_a_state_value(service: BaseSessionService, app: str) -> None:
    session = await service.create_session(app_name=app, user_id="u", state={"a": None, "b": 1})
    await service.append_event(session, _event({"b": None, "app:c": None, "user:d": None}))
    await service.append_event(session, _event({"e": [None, {"f": None}]}))
    expected = {"a": None, "b": None, "app:c": None, "user:d": None, "e": [None, {"f": None}]}
    assert session.state == expected
    assert (await _get(service, session)).state == expected
    assert await service.get_user_state(app_name=app, user_id="u") == {"d": None}


# -- events ----------------------------------------------------------------------------


def _tool_turn() -> list[Event]:
    call = types.FunctionCall(id="call-1", name="get_weather", args={"city": "Paris"})
    result = types.FunctionResponse(id="call-1", name="get_weather", response={"temp_c": 18})
    return [
        _event(text="Weather in Paris?"),
        Event(
            invocation_id="inv-1",
            author="agent",
            content=types.Content(role="model", parts=[types.Part(function_call=call)]),
        ),
        Event(
            invocation_id="inv-1",
            author="agent",
            content=types.Content(role="user", parts=[types.Part(function_response=result)]),
            custom_metadata={"tool": "get_weather", "cost": 0.25},
        ),
        _event({"city": "Paris"}, text="18C and sunny. ☀", author="agent"),
    ]


async def test_events_read_back_in_order_and_equal(service: BaseSessionService, app: str) -> None:
    session = await service.create_session(app_name=app, user_id="u")
    events = _tool_turn()
    for event in events:
        assert await service.append_event(session, event) is event
    assert session.events == events
    stored = await _get(service, session)
    assert stored.events == events
    assert stored.state == {"city": "Paris"}
    assert stored.last_update_time == pytest.approx(events[-1].timestamp, abs=1e-6)
    assert session.last_update_time == stored.last_update_time


async def test_partial_events_are_not_stored(service: BaseSessionService, app: str) -> None:
    session = await service.create_session(app_name=app, user_id="u")
    partial = _event({"k": 1}, text="stream…", author="agent", partial=True)
    assert await service.append_event(session, partial) is partial
    stored = await _get(service, session)
    assert (stored.events, stored.state) == ([], {})


async def test_num_recent_events_and_after_timestamp(service: BaseSessionService, app: str) -> None:
    session = await service.create_session(app_name=app, user_id="u")
    start = time.time()
    for n in range(5):
        await service.append_event(session, _event({"n": n}, text=str(n), timestamp=start + n))

    def numbers(found: Session) -> list[int]:
        return [e.actions.state_delta["n"] for e in found.events]

    assert numbers(await _get(service, session, num_recent_events=2)) == [3, 4]
    assert numbers(await _get(service, session, num_recent_events=10)) == [0, 1, 2, 3, 4]
    assert numbers(await _get(service, session, after_timestamp=start + 2)) == [2, 3, 4]
    assert numbers(await _get(service, session, after_timestamp=start + 1.5)) == [2, 3, 4]
    both = await _get(service, session, num_recent_events=2, after_timestamp=start + 1)
    assert numbers(both) == [3, 4]
    assert numbers(await _get(service, session, after_timestamp=start + 9)) == []
    nothing = await _get(service, session, num_recent_events=0)
    assert (nothing.events, nothing.state) == ([], {"n": 4})


async def test_last_update_time_is_the_last_event_time(
    service: BaseSessionService, app: str
) -> None:
    session = await service.create_session(app_name=app, user_id="u")
    later = session.last_update_time + 100.25
    await service.append_event(session, _event({"k": 1}, timestamp=later))
    # DatabaseSessionService keeps times to the microsecond.
    assert session.last_update_time == pytest.approx(later, abs=1e-6)
    assert (await _get(service, session)).last_update_time == pytest.approx(later, abs=1e-6)


# -- listing and deleting ----------------------------------------------------------------


async def test_list_sessions_of_a_user_and_of_every_user(
    service: BaseSessionService, app: str
) -> None:
    now = time.time()
    made = {}
    for user, sid in [("u1", "a"), ("u1", "b"), ("u2", "c")]:
        made[sid] = await service.create_session(
            app_name=app, user_id=user, session_id=sid, state={"app:shared": 1, "own": sid}
        )
    await service.create_session(app_name=app + "-other", user_id="u1", session_id="x")
    # Last update: b, then c, then a (the oldest first in a listing).
    await service.append_event(made["b"], _event({"user:who": "u1"}, timestamp=now + 10))
    await service.append_event(made["c"], _event(timestamp=now + 20))
    await service.append_event(made["a"], _event(timestamp=now + 30))

    mine = (await service.list_sessions(app_name=app, user_id="u1")).sessions
    assert [s.id for s in mine] == ["b", "a"]
    everyone = (await service.list_sessions(app_name=app)).sessions
    assert [(s.user_id, s.id) for s in everyone] == [("u1", "b"), ("u2", "c"), ("u1", "a")]
    assert all(s.events == [] and s.app_name == app for s in everyone)
    by_id = {s.id: s for s in everyone}
    assert by_id["a"].state == {"app:shared": 1, "own": "a", "user:who": "u1"}
    assert by_id["c"].state == {"app:shared": 1, "own": "c"}
    assert by_id["a"].last_update_time == pytest.approx(now + 30, abs=1e-6)
    assert (await service.list_sessions(app_name=app, user_id="nobody")).sessions == []
    assert (await service.list_sessions(app_name=app + "-none")).sessions == []


async def test_deleted_session_is_gone_and_scopes_stay(
    service: BaseSessionService, app: str
) -> None:
    session = await service.create_session(
        app_name=app, user_id="u", session_id="s", state={"app:a": 1, "user:b": 2, "c": 3}
    )
    await service.append_event(session, _event({"c": 4}, text="hi"))
    await service.delete_session(app_name=app, user_id="u", session_id="s")
    assert await service.get_session(app_name=app, user_id="u", session_id="s") is None
    assert (await service.list_sessions(app_name=app, user_id="u")).sessions == []
    assert (await service.list_sessions(app_name=app)).sessions == []
    await service.delete_session(app_name=app, user_id="u", session_id="s")  # no error
    again = await service.create_session(app_name=app, user_id="u", session_id="s")
    assert again.state == {"app:a": 1, "user:b": 2}
    assert (await _get(service, again)).events == []


async def test_appending_to_a_deleted_session_raises_not_found(
    service: BaseSessionService, app: str
) -> None:
    session = await service.create_session(app_name=app, user_id="u")
    await service.delete_session(app_name=app, user_id="u", session_id=session.id)
    with pytest.raises(SessionNotFoundError):
        await service.append_event(session, _event({"k": 1}))


async def test_names_that_share_text_stay_apart(service: BaseSessionService, app: str) -> None:
    # "<app>/<user>" would be one text for all three if the app were not escaped.
    pairs = [(f"{app}/x", "y"), (app, "x/y"), (f"{app}%2Fx", "y")]
    for n, (app_name, user) in enumerate(pairs):
        await service.create_session(
            app_name=app_name, user_id=user, session_id="s", state={"n": n, "app:n": n, "user:n": n}
        )
    for n, (app_name, user) in enumerate(pairs):
        found = await service.get_session(app_name=app_name, user_id=user, session_id="s")
        assert found is not None
        assert found.state == {"n": n, "app:n": n, "user:n": n}
        everyone = (await service.list_sessions(app_name=app_name)).sessions
        assert [(s.user_id, s.state["n"]) for s in everyone] == [(user, n)]


async def test_appends_through_one_session_object_all_land(
    service: BaseSessionService, app: str
) -> None:
    session = await service.create_session(app_name=app, user_id="u")
    events = [_event({f"k{n}": n}, text=str(n)) for n in range(5)]
    await asyncio.gather(*(service.append_event(session, event) for event in events))
    stored = await _get(service, session)
    assert {e.id for e in stored.events} == {e.id for e in events} == {e.id for e in session.events}
    assert stored.state == {f"k{n}": n for n in range(5)}


# -- stale sessions (persistent services) ------------------------------------------------


@persistent_only
async def test_a_stale_copy_is_refused(service: BaseSessionService, app: str) -> None:
    first = await service.create_session(app_name=app, user_id="u", state={"k": 0})
    second = await _get(service, first)
    await service.append_event(first, _event({"k": 1}, text="one"))
    with pytest.raises(StaleSessionError) as refused:
        await service.append_event(second, _event({"k": 2, "user:u": 2}, text="two"))
    assert str(refused.value) == STALE_SESSION_MESSAGE
    stored = await _get(service, first)
    assert ([e.content.parts[0].text for e in stored.events if e.content], stored.state) == (
        ["one"],
        {"k": 1},
    )
    # The copy that wrote goes on; a reloaded copy does too.
    await service.append_event(first, _event({"k": 3}))
    reloaded = await _get(service, first)
    await service.append_event(reloaded, _event({"k": 4}))
    assert (await _get(service, first)).state == {"k": 4}


@persistent_only
async def test_of_copies_read_together_one_writes(service: BaseSessionService, app: str) -> None:
    session = await service.create_session(app_name=app, user_id="u")
    copies = [await _get(service, session) for _ in range(6)]
    outcomes = await asyncio.gather(
        *(service.append_event(c, _event({"n": i})) for i, c in enumerate(copies)),
        return_exceptions=True,
    )
    written = [o for o in outcomes if isinstance(o, Event)]
    assert len(written) == 1
    assert all(isinstance(o, StaleSessionError) for o in outcomes if not isinstance(o, Event))
    assert (await _get(service, session)).events == written


@persistent_only
async def test_a_session_built_by_hand_is_judged_by_its_last_event(
    service: BaseSessionService, app: str
) -> None:
    session = await service.create_session(app_name=app, user_id="u")
    await service.append_event(session, _event({"k": 1}, timestamp=session.last_update_time + 1))
    stale = Session(id=session.id, app_name=app, user_id="u", last_update_time=0.0)
    with pytest.raises(StaleSessionError):
        await service.append_event(stale, _event({"k": 2}))
    current = Session(id=session.id, app_name=app, user_id="u", events=list(session.events))
    await service.append_event(current, _event({"k": 3}))
    assert (await _get(service, session)).state == {"k": 3}


# -- any id, any value ------------------------------------------------------------------

names = st.text(alphabet=st.sampled_from("ab/%:é☃ -_"), min_size=1, max_size=12).filter(
    lambda s: s.strip() == s
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
deltas = st.dictionaries(
    st.sampled_from(["k", "", "x:y", "app:k", "user:k", "temp:k"]), json_values, max_size=4
)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    keys=st.lists(st.tuples(names, names, names), min_size=2, max_size=3, unique=True),
    delta=deltas,
)
async def test_any_names_stay_apart_and_any_value_round_trips(
    service: BaseSessionService, keys: list[tuple[str, str, str]], delta: dict[str, Any]
) -> None:
    run = uuid.uuid4().hex[:8]  # examples share the service: each works in apps of its own
    made = []
    for n, (app, user, sid) in enumerate(keys):
        session = await service.create_session(
            app_name=run + app, user_id=user, session_id=sid, state={"n": n}
        )
        await service.append_event(session, _event(delta, text=f"{app}|{user}|{sid}"))
        made.append(session)
    for n, session in enumerate(made):
        stored = await _get(service, session)
        assert [e.content.parts[0].text for e in stored.events if e.content] == [
            f"{session.app_name[len(run) :]}|{session.user_id}|{session.id}"
        ]
        assert stored.events[0].actions.state_delta == {
            k: v for k, v in delta.items() if not k.startswith("temp:")
        }
        assert stored.state["n"] == n
        listed = await service.list_sessions(app_name=session.app_name, user_id=session.user_id)
        assert session.id in [s.id for s in listed.sessions]
    # The last write of a scoped key wins; a session key is the session's own.
    last = await _get(service, made[-1])
    expected = {"n": len(made) - 1}
    expected.update({k: v for k, v in delta.items() if not k.startswith("temp:")})
    assert last.state == expected


# -- ours only --------------------------------------------------------------------------


async def test_with_a_ttl_an_active_user_stays_listed_and_an_idle_one_expires() -> None:
    moments = [datetime.now(UTC)]
    with set_clock(lambda: moments[-1]):
        async with SessionstoreSessionService("memory://?ttl=100") as ours:
            session = await ours.create_session(app_name="app", user_id="u", session_id="s")
            moments.append(moments[0] + timedelta(seconds=80))
            await ours.append_event(session, _event({"k": 1}))
            # 160 s after the session was created, 80 s after its last event.
            moments.append(moments[0] + timedelta(seconds=160))
            listed = (await ours.list_sessions(app_name="app")).sessions
            assert [(s.user_id, s.id, s.state) for s in listed] == [("u", "s", {"k": 1})]
            moments.append(moments[0] + timedelta(seconds=300))
            assert (await ours.list_sessions(app_name="app")).sessions == []
            assert await ours.get_session(app_name="app", user_id="u", session_id="s") is None


def test_every_backend_is_in_the_matrix() -> None:
    assert [case.backend for case in OURS] == CASES
    assert {case.name for case in REFERENCES} == {"adk-memory", "adk-database"}
