"""Logging and tracing: the rules checked once, and each backend's own events.

What every backend must do (open/close records, nothing private, slow
calls, span names) is in ``tests/contract/test_observe.py``. Here: the
options, which methods are traced, how spans nest and record errors, life
without OpenTelemetry, and the records of migrations, sweeps and retries.
"""

from __future__ import annotations

import inspect
import logging
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from sessionstore import (
    InvalidParameterError,
    SessionManager,
    SessionStore,
    StoreError,
    open_store,
    sync,
)
from sessionstore.backends.files import FileStore
from sessionstore.backends.memory import MemoryStore
from sessionstore.backends.redis import RedisStore
from sessionstore.backends.sql import SQLStore
from sessionstore.backends.sqlite import SQLiteStore
from sessionstore.backends.sqlite.schema import SCHEMA_VERSION as SQLITE_VERSION
from sessionstore.clock import now_utc, set_clock
from tests.backends.sql_fixtures import SERVERS, drop_namespace
from tests.otel_spans import SpanRecorder, span_recorder
from tests.servers import server_url
from tests.tcp_proxy import TcpProxy

MARK = "Qx7mark"
WRAPPED = "__sessionstore_observed__"


@pytest.fixture
def spans() -> Iterator[SpanRecorder]:
    recorder = span_recorder()
    recorder.start()
    yield recorder
    recorder.stop()


def messages(
    caplog: pytest.LogCaptureFixture, logger: str, level: int = logging.DEBUG
) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger and r.levelno >= level]


def attributes_and_events(span: Any) -> str:
    events = [dict(event.attributes or {}) for event in span.events]
    return repr((dict(span.attributes or {}), events, span.status.description))


# -- options and wiring -----------------------------------------------------------------


def test_the_library_adds_only_a_null_handler() -> None:
    root = logging.getLogger("sessionstore")
    assert root.handlers
    assert all(type(handler) is logging.NullHandler for handler in root.handlers)
    assert root.propagate


def test_slow_call_ms_and_otel_ids_are_options_of_every_store() -> None:
    assert open_store("memory://").slow_call_ms is None
    assert open_store("memory://").otel_ids is False
    assert open_store("memory://?slow_call_ms=250").slow_call_ms == 250.0
    assert open_store("memory://?slow_call_ms=none").slow_call_ms is None
    assert open_store("memory://", slow_call_ms=2).slow_call_ms == 2.0
    assert open_store("memory://?otel_ids=true").otel_ids is True
    for bad in (0, -1, float("inf"), float("nan"), True, "250"):
        with pytest.raises(InvalidParameterError, match="slow_call_ms"):
            open_store("memory://", slow_call_ms=bad)
    for text in ("0", "-5", "abc", "inf"):
        with pytest.raises(InvalidParameterError, match="slow_call_ms"):
            open_store(f"memory://?slow_call_ms={text}")
    for not_a_flag in ("yes", 1, None):
        with pytest.raises(InvalidParameterError, match="otel_ids"):
            open_store("memory://", otel_ids=not_a_flag)


@pytest.mark.parametrize(
    "cls", [SessionStore, SessionManager, MemoryStore, SQLiteStore, FileStore, RedisStore, SQLStore]
)
def test_every_public_async_method_is_observed(cls: type) -> None:
    public = {name: getattr(cls, name) for name in dir(cls) if not name.startswith("_")}
    coroutines = {name for name, member in public.items() if inspect.iscoroutinefunction(member)}
    assert {"create_qa_entry", "open", "close"} <= coroutines or cls is SessionManager
    # An override is observed through the base method it calls (SQLStore.close).
    unobserved = {
        name
        for name in coroutines
        if not any(getattr(vars(owner).get(name), WRAPPED, False) for owner in cls.__mro__)
    }
    assert unobserved == set()
    for name in ("export_sessions", "improve_lock"):
        if name in public:
            assert getattr(public[name], WRAPPED)
    assert not hasattr(
        public["describe" if cls is not SessionManager else "format_entries"], WRAPPED
    )


async def test_a_subclass_gets_spans_for_new_methods_and_one_per_override(
    spans: SpanRecorder,
) -> None:
    class Custom(MemoryStore):
        async def extra(self, session_id: str) -> int:
            return len(session_id)

        async def count_qa_entries(self, session_id: str, user_id: str | None) -> int:
            return await super().count_qa_entries(session_id, user_id)

    async with Custom() as store:
        assert await store.extra("abc") == 3
        assert await store.count_qa_entries("s", "u") == 0
    assert len(spans.spans("sessionstore.extra")) == 1
    assert len(spans.spans("sessionstore.count_qa_entries")) == 1


# -- spans ----------------------------------------------------------------------------


async def test_an_error_is_recorded_by_its_type_only(spans: SpanRecorder) -> None:
    async with open_store("memory://") as store:
        with pytest.raises(InvalidParameterError, match=MARK):
            await store.get_latest_qa_entries("s", "u", MARK)  # type: ignore[arg-type]
    (span,) = spans.spans("sessionstore.get_latest_qa_entries")
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "InvalidParameterError"
    assert span.attributes is not None
    assert span.attributes["error.type"] == "sessionstore.errors.InvalidParameterError"
    (event,) = span.events
    assert event.name == "exception"
    assert event.attributes is not None
    assert event.attributes["exception.type"] == "sessionstore.errors.InvalidParameterError"
    assert event.attributes["exception.message"] == "InvalidParameterError"
    assert "get_latest_qa_entries" in str(event.attributes["exception.stacktrace"])
    assert MARK not in attributes_and_events(span)


async def test_otel_ids_records_error_messages_too(spans: SpanRecorder) -> None:
    async with open_store("memory://", otel_ids=True) as store:
        with pytest.raises(InvalidParameterError):
            await store.get_latest_qa_entries("s", "u", MARK)  # type: ignore[arg-type]
    (span,) = spans.spans("sessionstore.get_latest_qa_entries")
    assert span.status.description is not None
    assert MARK in span.status.description
    assert MARK in str(dict(span.events[0].attributes or {})["exception.message"])


async def test_a_call_on_a_closed_store_is_an_error_span(spans: SpanRecorder) -> None:
    store = open_store("memory://")
    await store.close()
    with pytest.raises(StoreError):
        await store.count_qa_entries("s", "u")
    (span,) = spans.spans("sessionstore.count_qa_entries")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["error.type"] == "sessionstore.errors.StoreError"
    assert [s.status.status_code for s in spans.spans("sessionstore.close")] == [StatusCode.UNSET]


async def test_manager_spans_hold_the_store_spans(spans: SpanRecorder) -> None:
    async with open_store("memory://") as store:
        await SessionManager(store).save_qa("q", "a", user_id="u")
    (outer,) = spans.spans("sessionstore.save_qa")
    (inner,) = spans.spans("sessionstore.create_qa_entry")
    assert inner.parent is not None
    assert inner.parent.span_id == outer.context.span_id
    assert (outer.kind, inner.kind) == (SpanKind.INTERNAL, SpanKind.CLIENT)
    assert outer.attributes is not None
    assert outer.attributes["db.system.name"] == "sessionstore.memory"
    assert "sessionstore.session_id" not in outer.attributes


async def test_the_export_span_covers_the_iteration(spans: SpanRecorder) -> None:
    async with open_store("memory://") as store:
        for n in range(3):
            await store.create_qa_entry(f"s{n}", "u", "q", "a")
        dumps = store.export_sessions()
        first = await anext(dumps)
        assert spans.spans("sessionstore.export_sessions") == []
        rest = [dump async for dump in dumps]
        assert len([first, *rest]) == 3
        assert len(spans.spans("sessionstore.export_sessions")) == 1
        stopped = store.export_sessions()
        await anext(stopped)
        await stopped.aclose()  # type: ignore[attr-defined]
        assert len(spans.spans("sessionstore.export_sessions")) == 2
        with pytest.raises(InvalidParameterError):
            store.export_sessions(user_id=5)  # type: ignore[arg-type]  # checked at once
    failed = spans.spans("sessionstore.export_sessions")[2]
    assert failed.status.status_code is StatusCode.ERROR


async def test_the_improve_lock_span_covers_its_block(spans: SpanRecorder) -> None:
    async with open_store("memory://") as store:
        manager = SessionManager(store)
        async with manager.improve_lock("s", "u") as held:
            assert held
            assert spans.spans("sessionstore.improve_lock") == []
            await store.count_qa_entries("s", "u")
    (lock,) = spans.spans("sessionstore.improve_lock")
    (counted,) = spans.spans("sessionstore.count_qa_entries")
    assert lock.start_time is not None
    assert lock.end_time is not None
    assert lock.start_time <= counted.start_time <= counted.end_time <= lock.end_time  # type: ignore[operator]


def test_calls_through_the_sync_facade_are_traced(
    spans: SpanRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    with sync.open_store("memory://") as store:
        store.create_qa_entry("s", "u", "q", "a")
        assert store.count_qa_entries("s", "u") == 1
        # Entered and left in two tasks of the store's loop: no context is left behind.
        with sync.SessionManager(store).improve_lock("s", "u") as held:
            assert held
    assert len(spans.spans("sessionstore.create_qa_entry")) == 1
    assert len(spans.spans("sessionstore.count_qa_entries")) == 1
    assert len(spans.spans("sessionstore.improve_lock")) == 1
    assert [r.getMessage() for r in caplog.records if r.name.startswith("opentelemetry")] == []


def test_without_opentelemetry_nothing_is_wrapped_until_slow_calls_are_asked() -> None:
    script = textwrap.dedent(
        f"""
        import asyncio, io, logging, sys
        sys.modules["opentelemetry"] = None  # as if the otel extra were not installed
        from sessionstore import SessionManager, SessionStore, observe, open_store

        def wrapped():
            return [hasattr(m, "{WRAPPED}") for m in (
                SessionStore.create_qa_entry, SessionStore.export_sessions,
                SessionManager.save_qa, SessionManager.improve_lock)]

        async def main():
            assert observe.TRACING is False
            assert wrapped() == [False] * 4, wrapped()
            async with open_store("memory://") as store:
                await SessionManager(store).save_qa("q", "a", session_id="s")
                assert await store.count_qa_entries("s", None) == 1
            said = io.StringIO()
            logging.getLogger("sessionstore").addHandler(logging.StreamHandler(said))
            async with open_store("memory://", slow_call_ms=1e-6) as store:
                assert wrapped() == [True] * 4, wrapped()
                await store.create_qa_entry("s", "u", "q", "a")
                async with SessionManager(store).improve_lock("s", "u") as held:
                    assert held
            async with open_store("memory://") as quiet:
                await quiet.count_qa_entries("s", "u")
            lines = said.getvalue().splitlines()
            assert any("slow call: SessionStore.create_qa_entry" in l for l in lines), lines
            assert any("slow call: SessionManager.improve_lock" in l for l in lines), lines
            assert not any("count_qa_entries" in l for l in lines), lines

        asyncio.run(main())
        print("fine")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "fine"


def test_import_sessionstore_does_not_import_opentelemetry() -> None:
    code = (
        "import sys, sessionstore\n"
        "from sessionstore import observe\n"
        "assert observe.TRACING, 'the otel extra is installed here'\n"
        "assert 'opentelemetry.trace' not in sys.modules, 'imported at the first call only'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_spans_start_when_the_application_sets_a_provider() -> None:
    script = textwrap.dedent(
        """
        import asyncio
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from sessionstore import observe, open_store

        async def main():
            store = open_store("memory://")  # made before any provider is set
            await store.create_qa_entry("s", "u", "q", "a")
            assert observe._tracer() is None  # the API's no-op spans: none are made
            exporter = InMemorySpanExporter()
            provider = TracerProvider()
            provider.add_span_processor(SimpleSpanProcessor(exporter))
            trace.set_tracer_provider(provider)
            assert await store.count_qa_entries("s", "u") == 1
            await store.close()
            names = [span.name for span in exporter.get_finished_spans()]
            assert names == ["sessionstore.count_qa_entries", "sessionstore.close"], names

        asyncio.run(main())
        print("fine")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "fine"


# -- what each backend logs -------------------------------------------------------------


async def test_sqlite_migrations_are_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="sessionstore")
    path = tmp_path / "new.db"
    for _ in range(2):
        async with open_store(f"sqlite:///{path}"):
            pass
    assert messages(caplog, "sessionstore.sqlite", logging.INFO) == [
        *(f"migrating {path} from schema version {n} to {n + 1}" for n in range(SQLITE_VERSION)),
        f"opened sqlite:///{path}",
        f"closed sqlite:///{path}",
        f"opened sqlite:///{path}",
        f"closed sqlite:///{path}",
    ]


def _with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", maxsplit=1)[-1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:{password}@{host}"))


@pytest.mark.parametrize("server", SERVERS)
async def test_sql_migrations_are_logged_without_the_password(
    server: str, caplog: pytest.LogCaptureFixture
) -> None:
    from sessionstore.backends.sql.schema import SCHEMA_VERSION  # noqa: PLC0415 - needs the extra

    url = f"{server_url(server)}?table_prefix=o{uuid.uuid4().hex[:12]}_"
    password = f"pw{MARK}"
    # PostgreSQL trusts local connections whatever the password; MariaDB's root has none.
    shown_url = _with_password(url, password) if server == "postgresql" else url
    caplog.set_level(logging.DEBUG, logger="sessionstore")
    store = open_store(shown_url)
    try:
        await store.open()
        await store.close()
    finally:
        await drop_namespace(url)
    said = messages(caplog, "sessionstore.sql", logging.INFO)
    where = store.describe()
    assert said == [
        *(f"migrating {where} from schema version {n} to {n + 1}" for n in range(SCHEMA_VERSION)),
        f"opened {where}",
        f"closed {where}",
    ]
    assert all(MARK not in r.getMessage() for r in caplog.records)
    assert ":***@" in where or server != "postgresql"


async def test_expiry_is_logged_with_counts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="sessionstore")
    later = now_utc() + timedelta(seconds=120)
    sqlite_url = f"sqlite:///{tmp_path / 'ttl.db'}"
    files_url = f"file://{tmp_path / 'root'}"
    for url in (sqlite_url, files_url):
        async with open_store(url, ttl=60) as store:
            await store.create_qa_entry("a", "u", "q", "a")
            await store.create_qa_entry("b", "u", "q", "a")
    memory = open_store("memory://", ttl=60)
    await memory.create_qa_entry("a", "u", "q", "a")
    with set_clock(lambda: later):
        async with open_store(sqlite_url, ttl=60) as store:
            await store.create_qa_entry("new", "u", "q", "a")  # purges on its first write
        async with open_store(files_url, ttl=60) as store:
            for n in range(6):  # each write sweeps a step further
                await store.create_qa_entry(f"new{n}", "u", "q", "a")
        assert await memory.count_qa_entries("a", "u") == 0
    await memory.close()
    assert "expiry purge removed 2 expired sessions" in messages(
        caplog, "sessionstore.sqlite", logging.INFO
    )
    root = tmp_path / "root"
    assert (
        messages(caplog, "sessionstore.files", logging.INFO).count(
            f"expiry sweep removed 1 expired session under {root}"
        )
        == 2
    )
    assert messages(caplog, "sessionstore.memory") == [
        "opened memory://",
        "dropped 1 expired session of memory://",
        "closed memory://",
    ]


@pytest.mark.parametrize("server", SERVERS)
async def test_sql_sweeps_are_logged_with_counts(
    server: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"{server_url(server)}?table_prefix=o{uuid.uuid4().hex[:12]}_"
    try:
        async with open_store(url, ttl=60) as store:
            await store.create_qa_entry("a", "u", "q", "a")
            await store.create_qa_entry("b", "u", "q", "a")
        caplog.set_level(logging.DEBUG, logger="sessionstore")
        later = now_utc() + timedelta(seconds=120)
        sweeper: Any = open_store(url, ttl=60)
        async with sweeper:
            assert await sweeper.sweep_expired() == 0
            with set_clock(lambda: later):
                assert await sweeper.sweep_expired() == 2
    finally:
        await drop_namespace(url)
    where = sweeper.describe()
    swept = [
        (r.levelno, r.getMessage())
        for r in caplog.records
        if r.name == "sessionstore.sql" and "expiry sweep" in r.getMessage()
    ]
    assert swept == [
        (logging.DEBUG, f"{where}: expiry sweep removed 0 expired sessions"),
        (logging.INFO, f"{where}: expiry sweep removed 2 expired sessions"),
    ]


@pytest.mark.parametrize("server", SERVERS)
async def test_a_sql_retry_is_logged_with_its_cause(
    server: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"{server_url(server)}?table_prefix=o{uuid.uuid4().hex[:12]}_"
    try:
        async with TcpProxy.to(url) as proxy:
            store = SQLStore.from_url(proxy.url(url), pre_ping=False, pool_size=1)
            async with store:
                await store.create_qa_entry("s", "u", "q", "a")
                caplog.set_level(logging.DEBUG, logger="sessionstore")
                proxy.reset()  # the pooled connection dies
                assert await store.count_qa_entries("s", "u") == 1
    finally:
        await drop_namespace(url)
    retries = [m for m in messages(caplog, "sessionstore.sql") if "retrying" in m]
    assert len(retries) == 1
    assert retries[0].startswith(f"{store.describe()}: retrying a read after ")
