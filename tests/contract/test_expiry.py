"""Expiry: writes slide it, reads do not, expired data is invisible at once.

Time moves with ``sessionstore.clock.set_clock`` on the backends that expire
sessions by it, and by waiting on those whose server expires them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from sessionstore import (
    InvalidParameterError,
    SessionQAUpdate,
    SessionStore,
    SessionTraceStep,
    open_store,
)
from sessionstore.clock import set_clock
from tests.contract.cases import BackendCase, MakeStore

MOST = 0.6  # of the ttl: two of these pass it, one does not


class Clock:
    """The time a store sees: moved at once where it can be, else waited for."""

    def __init__(self, ttl: float, *, fake: bool) -> None:
        self.ttl = ttl  # seconds; open the store with it
        self._fake = fake
        self._offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    async def advance(self, part: float) -> None:
        """Let ``part`` of the ttl pass."""
        if self._fake:
            self._offset += timedelta(seconds=part * self.ttl)
        else:
            await asyncio.sleep(part * self.ttl)


@pytest.fixture
def clock(case: BackendCase) -> Iterator[Clock]:
    if not case.fake_clock:
        yield Clock(0.8, fake=False)  # the server's clock: short real waits
        return
    clock = Clock(60.0, fake=True)
    with set_clock(clock.now):
        yield clock


async def _everything_gone(store: SessionStore, sid: str, user: str | None, qa_id: str) -> None:
    assert await store.get_all_qa_entries(sid, user) == []
    assert await store.get_latest_qa_entries(sid, user, 3) == []
    assert await store.get_qa_entry(sid, user, qa_id) is None
    assert await store.count_qa_entries(sid, user) == 0
    assert await store.latest_qa_id(sid, user) is None
    assert await store.get_graph_context(sid, user) is None
    assert await store.read_trace_steps(sid, user) == []
    assert (await store.list_sessions(user)).items == []
    assert [d async for d in store.export_sessions()] == []


async def test_writes_slide_expiry_of_all_session_data(make_store: MakeStore, clock: Clock) -> None:
    store = await make_store(ttl=clock.ttl)
    qa_id = await store.create_qa_entry("s", "u", "q", "a")
    await store.set_graph_context("s", "u", "g")
    await store.save_trace_step("s", "u", SessionTraceStep(origin_function="f", status="ok"))
    await clock.advance(MOST)
    await store.create_qa_entry("s", "u", "q2", "a2")  # a write slides everything
    await clock.advance(MOST)
    assert await store.count_qa_entries("s", "u") == 2
    assert await store.get_graph_context("s", "u") == "g"
    assert len(await store.read_trace_steps("s", "u")) == 1
    assert await store.get_qa_entry("s", "u", qa_id) is not None
    assert [i.session_id for i in (await store.list_sessions("u")).items] == ["s"]
    await clock.advance(MOST)
    await _everything_gone(store, "s", "u", qa_id)


async def test_reads_do_not_slide_expiry(make_store: MakeStore, clock: Clock) -> None:
    store = await make_store(ttl=clock.ttl)
    qa_id = await store.create_qa_entry("s", None, "q", "a")
    await clock.advance(MOST)
    assert await store.count_qa_entries("s", None) == 1
    assert len(await store.get_all_qa_entries("s", None)) == 1
    assert (await store.list_sessions(None)).items
    await clock.advance(MOST)
    await _everything_gone(store, "s", None, qa_id)


@pytest.mark.parametrize("write", ["update", "graph", "trace"])
async def test_every_kind_of_write_slides(make_store: MakeStore, clock: Clock, write: str) -> None:
    store = await make_store(ttl=clock.ttl)
    qa_id = await store.create_qa_entry("s", "u", "q", "a")
    await clock.advance(MOST)
    if write == "update":
        assert await store.update_qa_entry("s", "u", qa_id, SessionQAUpdate(feedback_score=1))
    elif write == "graph":
        await store.set_graph_context("s", "u", "g")
    else:
        await store.save_trace_step("s", "u", SessionTraceStep(origin_function="f", status="ok"))
    await clock.advance(MOST)
    assert await store.get_qa_entry("s", "u", qa_id) is not None


async def test_expired_session_starts_fresh_on_next_write(
    make_store: MakeStore, clock: Clock
) -> None:
    store = await make_store(ttl=clock.ttl)
    await store.create_qa_entry("s", "u", "old", "a")
    await store.set_graph_context("s", "u", "old graph")
    await clock.advance(1.2)
    new_id = await store.create_qa_entry("s", "u", "new", "a")
    assert [e.id for e in await store.get_all_qa_entries("s", "u")] == [new_id]
    assert await store.get_graph_context("s", "u") is None
    info = (await store.list_sessions("u")).items
    assert [(i.session_id, i.qa_count) for i in info] == [("s", 1)]
    assert await store.delete_session("s", "u") is True


async def test_an_expired_sessions_trace_ids_are_free_again(
    make_store: MakeStore, clock: Clock
) -> None:
    store = await make_store(ttl=clock.ttl)
    step = SessionTraceStep(trace_id="step-1", origin_function="old", status="ok")
    assert await store.save_trace_step("s", "u", step) == "step-1"
    await clock.advance(1.2)  # no prune: the session is only past its ttl
    again = step.model_copy(update={"origin_function": "new"})
    assert await store.save_trace_step("s", "u", again) == "step-1"
    steps = await store.read_trace_steps("s", "u")
    assert [(t.trace_id, t.origin_function) for t in steps] == [("step-1", "new")]


async def test_other_sessions_keep_their_own_clock(make_store: MakeStore, clock: Clock) -> None:
    store = await make_store(ttl=clock.ttl)
    await store.create_qa_entry("old", "u", "q", "a")
    await clock.advance(MOST)
    await store.create_qa_entry("new", "u", "q", "a")
    await clock.advance(MOST)
    assert [i.session_id for i in (await store.list_sessions("u")).items] == ["new"]


@pytest.mark.parametrize("ttl", [0, -1, float("nan"), float("inf"), "60", True])
def test_bad_ttl_is_rejected(ttl: object) -> None:
    with pytest.raises(InvalidParameterError, match="ttl"):
        open_store("memory://", ttl=ttl)
