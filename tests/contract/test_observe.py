"""Logging and tracing on every backend: what is said, where, and that nothing private is.

Ids and texts carry a marker word; no log record and, by default, no span
attribute or event may hold it. Slow calls are provoked with a threshold
every call exceeds, never by waiting.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from sessionstore import (
    InvalidParameterError,
    SessionManager,
    SessionQAUpdate,
    SessionStore,
    SessionTraceStep,
    StoreError,
    open_store,
)
from sessionstore.clock import now_utc, set_clock
from tests.contract.cases import BackendCase, MakeStore
from tests.otel_spans import SpanRecorder, span_recorder

MARK = "Qx7mark"
LOGGERS = {
    "memory": "sessionstore.memory",
    "sqlite": "sessionstore.sqlite",
    "postgresql": "sessionstore.sql",
    "mariadb": "sessionstore.sql",
    "files": "sessionstore.files",
    "redis": "sessionstore.redis",
    "redis-cluster": "sessionstore.redis",
}
"""Each backend's logger; a new backend must say which it uses."""
SYSTEMS = {
    "memory": "sessionstore.memory",
    "sqlite": "sqlite",
    "postgresql": "postgresql",
    "mariadb": "mariadb",
    "files": "sessionstore.files",
    "redis": "redis",
    "redis-cluster": "redis",
}
"""Each backend's ``db.system.name``."""


@pytest.fixture
def spans() -> Iterator[SpanRecorder]:
    recorder = span_recorder()
    recorder.start()
    yield recorder
    recorder.stop()


def ours(caplog: pytest.LogCaptureFixture, level: int = logging.DEBUG) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if (r.name == "sessionstore" or r.name.startswith("sessionstore.")) and r.levelno >= level
    ]


def shown(record: logging.LogRecord) -> str:
    """Everything a handler could print of a record."""
    return " ".join(
        [record.getMessage(), record.exc_text or "", logging.Formatter().format(record)]
    )


async def workout(store: SessionStore, session_id: str, user_id: str) -> None:
    """Call most of the API with marked ids and texts, failures included."""
    manager = SessionManager(store, default_session_id=session_id)
    qa_id = await store.create_qa_entry(
        session_id,
        user_id,
        f"q {MARK}",
        f"a {MARK}",
        f"c {MARK}",
        feedback_text=f"f {MARK}",
        metadata={"k": f"v {MARK}"},
    )
    await store.get_latest_qa_entries(session_id, user_id, 5)
    await store.get_qa_entry(session_id, user_id, qa_id)
    await store.update_qa_entry(session_id, user_id, qa_id, SessionQAUpdate(answer=f"b {MARK}"))
    await store.set_graph_context(session_id, user_id, f"g {MARK}")
    step = SessionTraceStep(trace_id=f"t-{MARK}", origin_function=f"o {MARK}", status="ok")
    await store.save_trace_step(session_id, user_id, step)
    await store.list_sessions(user_id)
    dumps = [dump async for dump in store.export_sessions(user_id=user_id)]
    await store.import_sessions(dumps)
    await manager.save_qa(f"q2 {MARK}", f"a2 {MARK}", user_id=user_id)
    await manager.add_feedback(qa_id, user_id=user_id, text=f"fb {MARK}", score=4)
    await manager.build_context(user_id=user_id)
    async with manager.improve_lock(user_id=user_id):
        pass
    with pytest.raises(InvalidParameterError):
        await store.get_latest_qa_entries(session_id, user_id, -1)
    with pytest.raises(InvalidParameterError):
        await store.create_qa_entry(session_id, user_id, MARK, MARK, feedback_score=9)


async def test_open_and_close_are_logged_with_the_store_description(
    case: BackendCase, store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="sessionstore")
    store = open_store(store_url)
    await store.open()
    await store.count_qa_entries("s", "u")
    await store.close()
    await store.close()
    said = [
        (r.name, r.levelno, r.getMessage())
        for r in ours(caplog, logging.INFO)
        if not r.getMessage().startswith("migrating ")  # a new SQLite file or SQL namespace
    ]
    logger = LOGGERS[case.name]
    assert said == [
        (logger, logging.INFO, f"opened {store.describe()}"),
        (logger, logging.INFO, f"closed {store.describe()}"),
    ]


@pytest.mark.credentials
async def test_open_is_logged_without_the_password(
    store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    password = f"pw{MARK}{uuid.uuid4().hex[:8]}"
    parts = urlsplit(store_url)
    host = parts.netloc.rsplit("@", maxsplit=1)[-1]
    url = urlunsplit(parts._replace(netloc=f"{parts.username or 'user'}:{password}@{host}"))
    caplog.set_level(logging.DEBUG, logger="sessionstore")
    store = open_store(url)
    try:
        await store.open()  # the server may ignore the password or refuse it
        opened = True
    except StoreError:
        opened = False
    finally:
        await store.close()
    records = ours(caplog)
    assert all(password not in shown(r) and MARK not in shown(r) for r in records)
    opened_records = [r.getMessage() for r in records if r.getMessage().startswith("opened ")]
    assert opened_records == ([f"opened {store.describe()}"] if opened else [])
    assert ":***@" in store.describe()


async def test_nothing_is_logged_at_info_per_call(
    store: SessionStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="sessionstore")
    for n in range(25):
        qa_id = await store.create_qa_entry("s", "u", f"q{n}", "a")
        await store.get_qa_entry("s", "u", qa_id)
    assert await store.count_qa_entries("s", "u") == 25
    assert ours(caplog, logging.INFO) == []


async def test_no_id_or_text_reaches_any_record_even_at_debug(
    case: BackendCase, make_store: MakeStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="sessionstore")
    store = await make_store(ttl=60, slow_call_ms=1e-6)
    session_id, user_id = f"s {MARK}", f"u {MARK}"
    await workout(store, session_id, user_id)
    if case.fake_clock:
        later = now_utc() + timedelta(seconds=120)
        with set_clock(lambda: later):
            # Expired now: reads drop it, writes sweep or purge.
            assert await store.get_all_qa_entries(session_id, user_id) == []
            await store.create_qa_entry(f"other {MARK}", user_id, "q", "a")
    records = ours(caplog)
    assert any(r.levelno == logging.WARNING for r in records)  # the slow calls
    leaked = [shown(r) for r in records if MARK in shown(r)]
    assert leaked == []


async def test_slow_calls_are_warned_naming_the_call_and_the_store(
    case: BackendCase, make_store: MakeStore, caplog: pytest.LogCaptureFixture
) -> None:
    store = await make_store(slow_call_ms=1e-6)
    quiet = await make_store()
    caplog.set_level(logging.DEBUG, logger="sessionstore")
    caplog.clear()  # the slow store's open
    await quiet.create_qa_entry(f"s{MARK}", f"u{MARK}", f"q{MARK}", f"a{MARK}")
    assert ours(caplog, logging.WARNING) == []
    await store.create_qa_entry(f"s{MARK}", f"u{MARK}", f"q{MARK}", f"a{MARK}")
    await SessionManager(store).save_qa(f"q{MARK}", f"a{MARK}", user_id=f"u{MARK}")
    warned = [(r.name, r.getMessage()) for r in ours(caplog, logging.WARNING)]
    store_part = f"on {store.describe()} took "
    assert [name for name, text in warned if "SessionStore.create_qa_entry " + store_part in text]
    assert {name for name, text in warned if "SessionStore." in text} == {LOGGERS[case.name]}
    assert [
        text
        for name, text in warned
        if name == "sessionstore.manager" and f"SessionManager.save_qa {store_part}" in text
    ]
    assert all(MARK not in text and "slow_call_ms=1e-06" in text for _, text in warned)


async def test_spans_name_the_call_and_the_backend_and_hide_ids(
    case: BackendCase, store: SessionStore, spans: SpanRecorder
) -> None:
    await store.create_qa_entry(f"s{MARK}", f"u{MARK}", f"q{MARK}", f"a{MARK}")
    with pytest.raises(InvalidParameterError):
        await store.get_latest_qa_entries(f"s{MARK}", f"u{MARK}", -1)
    (created,) = spans.spans("sessionstore.create_qa_entry")
    assert created.attributes is not None
    assert created.attributes["db.system.name"] == SYSTEMS[case.name]
    assert created.attributes["db.operation.name"] == "create_qa_entry"
    (failed,) = spans.spans("sessionstore.get_latest_qa_entries")
    assert failed.status.status_code.name == "ERROR"
    for span in spans.spans():
        assert MARK not in repr(dict(span.attributes or {}))
        assert all(MARK not in repr(dict(event.attributes or {})) for event in span.events)


async def test_otel_ids_puts_the_ids_in_the_attributes(
    make_store: MakeStore, spans: SpanRecorder
) -> None:
    store: Any = await make_store(otel_ids=True)
    qa_id = await store.create_qa_entry("s1", "u1", f"q{MARK}", f"a{MARK}")
    await store.get_qa_entry("s1", "u1", qa_id)
    (got,) = spans.spans("sessionstore.get_qa_entry")
    attributes = dict(got.attributes or {})
    assert attributes.pop("db.system.name")
    assert attributes == {
        "db.operation.name": "get_qa_entry",
        "sessionstore.session_id": "s1",
        "sessionstore.user_id": "u1",
        "sessionstore.qa_id": qa_id,
    }
    assert all(MARK not in repr(dict(span.attributes or {})) for span in spans.spans())


def test_slow_call_ms_and_otel_ids_reach_the_store_from_its_url(store_url: str) -> None:
    separator = "&" if "?" in store_url else "?"
    store = open_store(f"{store_url}{separator}slow_call_ms=250&otel_ids=true")
    assert (store.slow_call_ms, store.otel_ids) == (250.0, True)
    store = open_store(store_url, slow_call_ms=0.5, otel_ids=False)
    assert (store.slow_call_ms, store.otel_ids) == (0.5, False)
    with pytest.raises(InvalidParameterError, match="slow_call_ms"):
        open_store(f"{store_url}{separator}slow_call_ms=0")
