"""Hostile input (issue #12): refused whole, as ``InvalidParameterError``, on every backend.

Deeply nested JSON, out-of-range times, repeated ids, huge ``last_n`` and
``ttl``: each is either a legal value that works on every backend or
``InvalidParameterError`` before anything is written, never a raw Python
error, a torn session or a store that later fails to read.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import sys
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any, TypeVar
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionstore import (
    InvalidParameterError,
    SessionQAUpdate,
    SessionStore,
    SessionTraceStep,
    open_store,
)
from sessionstore.validation import MAX_JSON_DEPTH, MAX_JSON_INT_DIGITS, MAX_TTL
from tests.contract.cases import BackendCase, MakeStore, pure_logic

T = TypeVar("T")
U = "user"


def nested(depth: int) -> dict[str, Any]:
    """Return a JSON object whose dicts and lists nest exactly ``depth`` deep."""
    value: Any = 1
    for level in range(depth - 1):
        value = [value] if level % 2 else {"k": value}
    return {"top": value}


async def _session_dump(store: SessionStore) -> dict[str, Any]:
    """Write session ("s", U) with two entries, a step and a graph context; return its dump."""
    first = await store.create_qa_entry("s", U, "q1", "a1", metadata={"n": 1})
    await store.create_qa_entry("s", U, "q2", "a2")
    await store.update_qa_entry("s", U, first, SessionQAUpdate(feedback_score=4))
    await store.save_trace_step("s", U, SessionTraceStep(origin_function="f", status="ok"))
    await store.set_graph_context("s", U, "g")
    dumps = [d async for d in store.export_sessions(user_id=U)]
    assert len(dumps) == 1
    return dumps[0]


async def _state(store: SessionStore) -> tuple[Any, ...]:
    """What every read says about ("s", U): the export, the listing, the entry reads."""
    page = await store.list_sessions(U)
    return (
        [d async for d in store.export_sessions(user_id=U)],
        [(i.session_id, i.created_at, i.updated_at, i.qa_count) for i in page.items],
        await store.get_all_qa_entries("s", U),
        await store.count_qa_entries("s", U),
        await store.latest_qa_id("s", U),
        await store.read_trace_steps("s", U),
        await store.get_graph_context("s", U),
    )


# -- dumps: all or nothing per session ----------------------------------------------


def _spell_upper(dump: dict[str, Any]) -> None:
    dump["entries"][1]["id"] = dump["entries"][0]["id"].upper()


BAD_DUMPS: dict[str, Callable[[dict[str, Any]], None]] = {
    "updated before 1970": lambda d: d.update(updated_at="1969-12-31T23:59:59.999999+00:00"),
    "created in year 1 east of UTC": lambda d: d.update(created_at="0001-01-01T00:00:00+01:00"),
    "created after 2255": lambda d: d.update(created_at="2255-06-06T00:00:00+00:00"),
    "entry in year 9999 west of UTC": lambda d: d["entries"][1].update(
        created_at="9999-12-31T23:59:59-01:00"
    ),
    "trace step in year 1": lambda d: d["trace_steps"][0].update(
        created_at="0001-01-01T00:00:00+00:00"
    ),
    "entry id twice": lambda d: d["entries"][1].update(id=d["entries"][0]["id"]),
    "entry id twice, spelled otherwise": _spell_upper,
    "trace id twice": lambda d: d["trace_steps"].append(dict(d["trace_steps"][0], status="again")),
    "metadata one level too deep": lambda d: d["entries"][1].update(
        metadata=nested(MAX_JSON_DEPTH + 1)
    ),
    "method_params 900 deep": lambda d: d["trace_steps"][0].update(method_params=nested(900)),
    "return value 5000 deep": lambda d: d["trace_steps"][0].update(
        method_return_value=nested(5000)
    ),
}


@pytest.mark.parametrize("breakage", list(BAD_DUMPS), ids=list(BAD_DUMPS))
async def test_bad_dump_leaves_the_session_it_would_replace_as_it_was(
    store: SessionStore, breakage: str
) -> None:
    dump = await _session_dump(store)
    await store.create_qa_entry("s", U, "written after the export", "a")
    before = await _state(store)
    bad = copy.deepcopy(dump)
    BAD_DUMPS[breakage](bad)
    with pytest.raises(InvalidParameterError):
        await store.import_sessions([bad])
    assert await _state(store) == before


async def test_dump_at_the_edges_of_the_time_range_round_trips(store: SessionStore) -> None:
    dump = await _session_dump(store)
    edges = copy.deepcopy(dump)
    edges["created_at"] = "1970-01-01T00:00:00+00:00"
    edges["updated_at"] = "2255-06-05T23:47:34.740992+00:00"
    edges["entries"][0]["created_at"] = "1970-01-01T01:00:00+01:00"  # the epoch, spelled east
    edges["entries"][1]["created_at"] = "2255-06-05T23:47:34.740992+00:00"
    assert await store.import_sessions([edges]) == 1
    (item,) = (await store.list_sessions(U)).items
    assert item.updated_at.isoformat() == "2255-06-05T23:47:34.740992+00:00"
    assert item.created_at.isoformat() == "1970-01-01T00:00:00+00:00"
    (exported,) = [d async for d in store.export_sessions(user_id=U)]
    assert exported["entries"][0]["created_at"] == "1970-01-01T00:00:00+00:00"
    assert exported["entries"][1]["created_at"] == "2255-06-05T23:47:34.740992+00:00"


# -- trace ids: unique within their session -------------------------------------------


def _step(trace_id: str, origin: str = "f") -> SessionTraceStep:
    return SessionTraceStep(trace_id=trace_id, origin_function=origin, status="ok")


async def _trace_ids(store: SessionStore, session_id: str, user_id: str | None) -> list[str]:
    return [step.trace_id for step in await store.read_trace_steps(session_id, user_id)]


async def test_a_trace_id_saved_twice_is_refused_and_nothing_is_written(
    store: SessionStore,
) -> None:
    await store.save_trace_step("s", U, _step("step-1", "first"))
    await store.create_qa_entry("s", U, "q", "a")
    before = await _state(store)
    with pytest.raises(InvalidParameterError, match="step-1") as refused:
        await store.save_trace_step("s", U, _step("step-1", "second"))
    assert "unique within its session" in str(refused.value)
    assert await _state(store) == before  # not even updated_at moved
    (kept,) = await store.read_trace_steps("s", U)
    assert (kept.trace_id, kept.origin_function) == ("step-1", "first")


# Pairwise different: case, spaces, Unicode normalization, NUL, long common prefixes.
DISTINCT_TRACE_IDS = [
    "id",
    "ID",
    "id ",
    " id",
    "\u00e9",  # é, one code point
    "e\u0301",  # é, two
    "\\u00e9",  # its JSON escape, as text
    "a\x00b",
    "a\x00c",
    '","origin_function":"x',  # what ends an id in a stored step document
    "\\",
    "\x01marker",
    "x" * 5000 + "1",
    "x" * 5000 + "2",
    "\U0001f600",
]


async def test_trace_ids_compare_exactly(store: SessionStore) -> None:
    for trace_id in DISTINCT_TRACE_IDS:
        assert await store.save_trace_step("s", U, _step(trace_id)) == trace_id
    for trace_id in DISTINCT_TRACE_IDS:
        with pytest.raises(InvalidParameterError):
            await store.save_trace_step("s", U, _step(trace_id, "again"))
    assert await _trace_ids(store, "s", U) == DISTINCT_TRACE_IDS


async def test_concurrent_saves_of_one_trace_id_leave_exactly_one(
    case: BackendCase, make_store: MakeStore
) -> None:
    stores = [await make_store() for _ in range(2 if case.shared else 1)]
    saves = [
        stores[n % len(stores)].save_trace_step("s", U, _step("raced", f"f{n}")) for n in range(8)
    ]
    results = await asyncio.gather(*saves, return_exceptions=True)
    assert results.count("raced") == 1, results
    assert all(isinstance(r, InvalidParameterError) for r in results if r != "raced"), results
    (kept,) = await stores[0].read_trace_steps("s", U)
    assert kept.origin_function == f"f{results.index('raced')}"


async def test_the_same_trace_id_in_another_session_or_user_is_fine(
    store: SessionStore,
) -> None:
    places = [("s", U), ("t", U), ("s", "other user"), ("s", None)]
    for session_id, user_id in places:
        assert await store.save_trace_step(session_id, user_id, _step("shared")) == "shared"
    for session_id, user_id in places:
        assert await _trace_ids(store, session_id, user_id) == ["shared"]


async def test_a_trace_id_is_free_again_once_its_session_is_gone(store: SessionStore) -> None:
    await store.save_trace_step("s", U, _step("again"))
    assert await store.delete_session("s", U)
    await store.save_trace_step("s", U, _step("again", "after delete"))
    await store.prune()
    await store.save_trace_step("s", U, _step("again", "after prune"))
    (step,) = await store.read_trace_steps("s", U)
    assert step.origin_function == "after prune"


async def test_an_imported_session_holds_exactly_its_dump_trace_ids(store: SessionStore) -> None:
    await store.save_trace_step("s", U, _step("old"))
    dump = await _session_dump(store)  # its steps: "old", then a new UUID
    dump["trace_steps"][0]["trace_id"] = "imported"
    await store.delete_session("s", U)
    await store.save_trace_step("s", U, _step("replaced"))
    assert await store.import_sessions([dump]) == 1
    await store.save_trace_step("s", U, _step("replaced"))  # gone with the old session
    with pytest.raises(InvalidParameterError):
        await store.save_trace_step("s", U, _step("imported"))
    second = dump["trace_steps"][1]["trace_id"]
    with pytest.raises(InvalidParameterError):
        await store.save_trace_step("s", U, _step(second))
    assert await _trace_ids(store, "s", U) == ["imported", second, "replaced"]


json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=8)
)
json_values = st.recursive(
    json_leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=12,
)
towers = st.builds(nested, st.integers(min_value=MAX_JSON_DEPTH - 2, max_value=2000))
times = st.datetimes(timezones=st.timezones()).map(lambda t: t.isoformat()) | st.text(max_size=30)
hostile = json_values | towers | times | st.sampled_from(["0001-01-01T00:00:00+14:00", 2**64])
# Where a hostile value goes: a path into the dump (str: key, int: index).
places = st.sampled_from(
    [
        ("updated_at",),
        ("created_at",),
        ("graph_context",),
        ("entries", 0, "id"),
        ("entries", 1, "created_at"),
        ("entries", 1, "metadata"),
        ("entries", 0, "metadata", "n"),
        ("entries", 1, "memify_metadata"),
        ("entries", 0, "used_graph_element_ids"),
        ("trace_steps", 0, "trace_id"),
        ("trace_steps", 0, "created_at"),
        ("trace_steps", 0, "method_params"),
        ("trace_steps", 0, "method_return_value"),
    ]
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(changes=st.lists(st.tuples(places, hostile), min_size=1, max_size=3))
async def test_any_hostile_dump_is_imported_whole_or_refused_whole(
    store: SessionStore, changes: list[tuple[tuple[str | int, ...], Any]]
) -> None:
    await store.prune()
    dump = await _session_dump(store)
    before = await _state(store)
    bad = copy.deepcopy(dump)
    for path, value in changes:
        parent: Any = bad
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = value
    try:
        await store.import_sessions([bad])
    except InvalidParameterError:
        assert await _state(store) == before
    else:
        (exported,) = [d async for d in store.export_sessions(user_id=U)]
        assert len(exported["entries"]) == len(bad["entries"])
        assert await store.count_qa_entries("s", U) == len(bad["entries"])


# -- JSON values: one depth limit, checked when written -------------------------------


@pure_logic  # the models refuse it when built, before any store is involved
@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 980, 100_000])
async def test_json_nested_past_the_limit_is_refused_and_nothing_written(
    store: SessionStore, depth: int
) -> None:
    deep = nested(depth)
    with pytest.raises(InvalidParameterError, match=f"more than {MAX_JSON_DEPTH} levels"):
        await store.create_qa_entry("s", U, "q", "a", metadata=deep)
    qa_id = await store.create_qa_entry("s", U, "q", "a", metadata={"kept": True})
    with pytest.raises(InvalidParameterError):
        await store.update_qa_entry("s", U, qa_id, SessionQAUpdate(metadata=deep))
    with pytest.raises(InvalidParameterError):
        SessionTraceStep(origin_function="f", status="ok", method_params=deep)
    with pytest.raises(InvalidParameterError):
        SessionTraceStep(origin_function="f", status="ok", method_return_value=[deep])
    # A step built without validation is checked again by the store.
    unchecked = SessionTraceStep.model_construct(
        origin_function="f", status="ok", method_params={}, method_return_value=deep
    )
    with pytest.raises(InvalidParameterError):
        await store.save_trace_step("s", U, unchecked)
    entry = await store.get_qa_entry("s", U, qa_id)
    assert entry is not None
    assert entry.metadata == {"kept": True}
    assert await store.count_qa_entries("s", U) == 1
    assert await store.read_trace_steps("s", U) == []


def _frames() -> int:
    frame: FrameType | None = sys._getframe()
    count = 0
    while frame is not None:
        count, frame = count + 1, frame.f_back
    return count


async def _with_frames_left(left: int, call: Callable[[], Awaitable[T]]) -> T:
    """Await ``call()`` from a stack with only ``left`` frames to spare, as deep callers do."""
    if sys.getrecursionlimit() - _frames() <= left:
        return await call()
    return await _with_frames_left(left, call)


async def test_deepest_json_accepted_reads_back_from_a_deep_stack(store: SessionStore) -> None:
    deepest = nested(MAX_JSON_DEPTH)
    listed = [nested(MAX_JSON_DEPTH - 1)]
    qa_id = await store.create_qa_entry("s", U, "q", "a", metadata=deepest)
    await store.update_qa_entry("s", U, qa_id, SessionQAUpdate(feedback_text="t"))
    await store.save_trace_step(
        "s",
        U,
        SessionTraceStep(
            origin_function="f", status="ok", method_params=deepest, method_return_value=listed
        ),
    )

    async def export() -> list[dict[str, Any]]:
        return [d async for d in store.export_sessions()]

    # A web framework or the command line may call from ~200 frames below the limit.
    entries = await _with_frames_left(200, lambda: store.get_all_qa_entries("s", U))
    assert entries[0].metadata == deepest
    latest = await _with_frames_left(200, lambda: store.get_latest_qa_entries("s", U, 1))
    assert latest == entries
    steps = await _with_frames_left(200, lambda: store.read_trace_steps("s", U))
    assert steps[0].method_return_value == listed
    dumps = await _with_frames_left(200, export)
    assert json.loads(json.dumps(dumps)) == dumps
    await store.prune()
    assert await _with_frames_left(200, lambda: store.import_sessions(dumps)) == 1
    assert await store.get_all_qa_entries("s", U) == entries


# -- last_n: any int >= 0 means "up to that many" -------------------------------------


@pytest.mark.parametrize("last_n", [2**31 - 1, 2**31, 2**63, 10**30], ids=repr)
async def test_huge_last_n_means_every_entry_and_step(store: SessionStore, last_n: int) -> None:
    ids = [await store.create_qa_entry("s", U, f"q{n}", "a") for n in range(3)]
    for _ in range(2):
        await store.save_trace_step("s", U, SessionTraceStep(origin_function="f", status="ok"))
    assert [e.id for e in await store.get_latest_qa_entries("s", U, last_n)] == ids
    assert len(await store.read_trace_steps("s", U, last_n)) == 2
    assert await store.get_latest_qa_entries("nobody", U, last_n) == []
    assert await store.read_trace_steps("nobody", U, last_n) == []


# -- ttl: bounded, refused when the store is opened -----------------------------------


@pytest.mark.parametrize("ttl", [MAX_TTL * 1.0001, 1e12, 1e300])
async def test_ttl_past_the_bound_is_refused_by_open_store(store_url: str, ttl: float) -> None:
    with pytest.raises(InvalidParameterError, match="ttl must be at most"):
        open_store(store_url, ttl=ttl)
    joined = "&" if "?" in store_url else "?"
    with pytest.raises(InvalidParameterError, match="ttl must be at most"):
        open_store(f"{store_url}{joined}ttl={quote(repr(ttl))}")


async def test_longest_ttl_works_for_every_call(make_store: MakeStore) -> None:
    store = await make_store(ttl=MAX_TTL)
    qa_id = await store.create_qa_entry("s", U, "q", "a")
    assert await store.update_qa_entry("s", U, qa_id, SessionQAUpdate(feedback_score=5))
    await store.set_graph_context("s", U, "g")
    await store.save_trace_step("s", U, SessionTraceStep(origin_function="f", status="ok"))
    (item,) = (await store.list_sessions(U)).items
    assert item.qa_count == 1
    dumps = [d async for d in store.export_sessions()]
    assert await store.import_sessions(dumps) == 1
    assert await store.delete_qa_entry("s", U, qa_id)
    assert await store.delete_session("s", U)


# -- cursors ---------------------------------------------------------------------------


@pure_logic
@pytest.mark.parametrize(
    "raw", [b"[" * 100_000, b"[" * 5000 + b"]" * 5000, b"[[[1]], []]", b'[1e999, "s"]'], ids=len
)
async def test_cursor_holding_hostile_json_is_invalid(store: SessionStore, raw: bytes) -> None:
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    with pytest.raises(InvalidParameterError, match="not a cursor"):
        await store.list_sessions(U, cursor=cursor)


def test_nested_builds_the_depth_it_names() -> None:
    def depth(value: Any) -> int:
        level, layer = 0, [value]
        while layer:
            level += 1
            layer = [
                child
                for item in layer
                if isinstance(item, (dict, list))
                for child in (item.values() if isinstance(item, dict) else item)
            ]
        return level - 1

    assert [depth(nested(n)) for n in (1, 2, 3, MAX_JSON_DEPTH)] == [1, 2, 3, MAX_JSON_DEPTH]


async def test_int_too_long_for_json_is_refused_and_nothing_written(store: SessionStore) -> None:
    longest = 10**MAX_JSON_INT_DIGITS - 1
    qa_id = await store.create_qa_entry("s", "u", "q", "a", metadata={"n": -longest})
    entry = await store.get_qa_entry("s", "u", qa_id)
    assert entry is not None
    assert entry.metadata == {"n": -longest}
    for value in (longest + 1, -longest - 1, 10**5000):
        with pytest.raises(InvalidParameterError, match="at most 4000 digits"):
            await store.create_qa_entry("s", "u", "q", "a", metadata={"n": [value]})
        step = SessionTraceStep(origin_function="f", status="ok")
        with pytest.raises(InvalidParameterError, match="at most 4000 digits"):
            await store.save_trace_step(
                "s", "u", step.model_copy(update={"method_params": {"n": value}})
            )
    assert await store.count_qa_entries("s", "u") == 1
    assert await store.read_trace_steps("s", "u") == []
