"""A pytest plugin that runs the OpenAI Agents SDK's own session tests on our session.

Loaded (``-p openai_agents_plugin``) into a pytest run inside the SDK's
source distribution by ``tests/frameworks/openai_agents.py``, never by our
own test suite. After collection it replaces, in every collected SDK test
module, the names ``SQLiteSession`` and ``SQLAlchemySession`` with classes
that take those constructors' arguments and build a
:class:`~sessionstore.integrations.openai_agents.SessionstoreSession` on
the backend named by ``SESSIONSTORE_AGENTS_BACKEND``.

What the SDK's tests call "a database" (a SQLite path, a SQLAlchemy URL or
engine) becomes one empty store namespace of that backend, private to the
test: sessions built on the same database share it, ``:memory:`` is a new
one every time. A namespace is pruned when its test ends and reused by a
later test; the run's end removes them all. The SDK's own modules
(``EncryptedSession``, the runner) keep the SDK's classes.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from sessionstore import SessionStore, open_store
from sessionstore.backends.sql import SQLStore
from sessionstore.integrations.openai_agents import SessionstoreSession

if TYPE_CHECKING:
    from agents.memory.session_settings import SessionSettings

BACKEND = os.environ.get("SESSIONSTORE_AGENTS_BACKEND", "memory")
"""memory, sqlite, files, redis, redis-cluster, postgresql or mariadb."""
SERVER_URL = os.environ.get("SESSIONSTORE_AGENTS_SERVER_URL", "")
"""The server of the redis, redis-cluster, postgresql and mariadb backends."""

_SQL = ("postgresql", "mariadb")
_REDIS = ("redis", "redis-cluster")


class _Namespaces:
    """Stores on fresh namespaces of the backend, for the whole pytest run.

    A test takes one per database it names and gives it back pruned (empty
    again) when it ends, so the next test gets an empty namespace without
    the cost of creating SQL tables each time. The run's end closes them
    and removes what they left (tables, keys, files).
    """

    def __init__(self) -> None:
        self._workdir = Path(tempfile.mkdtemp(prefix="sessionstore-agents-"))
        self._free: list[SessionStore] = []
        self._urls: list[str] = []
        self._opened: list[SessionStore] = []
        # One loop thread for the pruning, so it keeps its connections between tests.
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def take(self) -> SessionStore:
        if self._free:
            return self._free.pop()
        url = self._fresh_url()
        self._urls.append(url)
        self._opened.append(open_store(url))
        return self._opened[-1]

    def give_back(self, stores: list[SessionStore]) -> None:
        async def prune() -> None:
            for store in stores:
                await store.prune()

        self._run(prune())
        self._free.extend(stores)

    def remove_all(self) -> None:
        async def remove() -> None:
            for store in self._opened:
                await store.close()
            for url in self._urls:
                if BACKEND in _SQL:
                    dropper = SQLStore.from_url(url)
                    try:
                        await dropper.drop_tables()
                    finally:
                        await dropper.close()

        try:
            self._run(remove())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()
            shutil.rmtree(self._workdir, ignore_errors=True)

    def _run(self, work: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(work, self._loop).result()

    def _fresh_url(self) -> str:
        token = "a" + uuid.uuid4().hex[:12]
        if BACKEND == "memory":
            return "memory://"
        if BACKEND == "sqlite":
            return f"sqlite:///{self._workdir / token}.db"
        if BACKEND == "files":
            return f"file://{self._workdir / token}"
        if BACKEND in _REDIS:
            return f"{SERVER_URL}?prefix={token}"
        if BACKEND in _SQL:
            return f"{SERVER_URL}?table_prefix={token}_"
        raise ValueError(f"unknown backend {BACKEND!r}")


class _Databases:
    """The stores of one test, one per database the SDK's test names."""

    def __init__(self, namespaces: _Namespaces) -> None:
        self._namespaces = namespaces
        self._stores: dict[object, SessionStore] = {}
        self._engines: dict[str, object] = {}
        self._lock = threading.Lock()  # SDK tests build sessions from several threads

    def store_for(self, database: object) -> SessionStore:
        """The store of ``database``; an empty namespace the first time."""
        with self._lock:
            _built.append(BACKEND)
            if database not in self._stores:
                self._stores[database] = self._namespaces.take()
            return self._stores[database]

    def engine_for(self, url: str) -> object:
        """What stands for the engine ``from_url`` would make: one per URL, new for ``:memory:``."""
        if ":memory:" in url:
            return object()
        with self._lock:
            return self._engines.setdefault(url, object())

    def end(self) -> None:
        self._namespaces.give_back(list(self._stores.values()))


_built: list[str] = []  # one entry per session of ours an SDK test built
_current: list[_Databases] = []  # the running test's, while it runs


def _databases() -> _Databases:
    if not _current:
        raise RuntimeError("a session was built outside of a test")
    return _current[0]


@pytest.fixture(scope="session")
def _sessionstore_namespaces() -> Iterator[_Namespaces]:
    namespaces = _Namespaces()
    try:
        yield namespaces
    finally:
        namespaces.remove_all()


@pytest.fixture(autouse=True)
def _sessionstore_databases(_sessionstore_namespaces: _Namespaces) -> Iterator[None]:
    _current.append(_Databases(_sessionstore_namespaces))
    try:
        yield
    finally:
        _current.pop().end()


# -- the SDK's constructors, building our session ----------------------------------


class SQLiteSessionOnSessionstore(SessionstoreSession):
    """``SQLiteSession(session_id, db_path=":memory:", ...)`` on a sessionstore."""

    def __init__(
        self,
        session_id: str,
        db_path: str | Path = ":memory:",
        sessions_table: str = "agent_sessions",
        messages_table: str = "agent_messages",
        session_settings: SessionSettings | dict[str, Any] | None = None,
    ) -> None:
        database: object = (
            object()
            if str(db_path) == ":memory:"
            else ("sqlite", str(Path(db_path).resolve()), sessions_table, messages_table)
        )
        super().__init__(
            session_id, _databases().store_for(database), session_settings=session_settings
        )
        self.db_path = db_path
        self.sessions_table = sessions_table
        self.messages_table = messages_table

    def close(self) -> None:  # type: ignore[override]  # SQLiteSession.close is sync
        """Nothing to release: the test's stores are closed when it ends."""


class _Engine:
    """What the SDK's SQLAlchemy tests do with ``session.engine``: dispose of it."""

    async def dispose(self) -> None:
        """Nothing to release: the test's stores are closed when it ends."""


class SQLAlchemySessionOnSessionstore(SessionstoreSession):
    """``SQLAlchemySession(session_id, engine=..., ...)`` and ``.from_url`` on a sessionstore."""

    def __init__(
        self,
        session_id: str,
        *,
        engine: Any,
        create_tables: bool = False,
        sessions_table: str = "agent_sessions",
        messages_table: str = "agent_messages",
        session_settings: SessionSettings | dict[str, Any] | None = None,
        ensure_ascii: bool = True,
    ) -> None:
        database = ("engine", id(engine), sessions_table, messages_table)
        super().__init__(
            session_id, _databases().store_for(database), session_settings=session_settings
        )
        self._engine_kept = engine  # keeps id(engine) from naming another engine
        self.engine = _Engine()

    @classmethod
    def from_url(
        cls,
        session_id: str,
        *,
        url: str,
        engine_kwargs: dict[str, Any] | None = None,
        session_settings: SessionSettings | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> SQLAlchemySessionOnSessionstore:
        """A session on the database at ``url`` (``:memory:``: a new one)."""
        engine = _databases().engine_for(url)
        return cls(session_id, engine=engine, session_settings=session_settings, **kwargs)


SUBSTITUTES: dict[str, type[SessionstoreSession]] = {
    "SQLiteSession": SQLiteSessionOnSessionstore,
    "SQLAlchemySession": SQLAlchemySessionOnSessionstore,
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Point the collected SDK test modules' session classes at ours."""
    modules = {item.module for item in items if isinstance(item, pytest.Function)}
    for module in modules:
        for name, substitute in SUBSTITUTES.items():
            if name in vars(module):
                setattr(module, name, substitute)


def pytest_report_header() -> str:
    where = SERVER_URL.split("@")[-1] if SERVER_URL else "a temporary directory"
    return f"sessionstore: the SDK's sessions -> SessionstoreSession on {BACKEND} ({where})"


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Fail a run that skipped a test or never built our session: nothing may silently not run."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    print(f"\n{len(_built)} SessionstoreSession objects built on {BACKEND} by the SDK's tests")
    if session.exitstatus != 0:
        return
    if skipped:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print(f"{len(skipped)} SDK test(s) skipped: exclude them with a reason instead")
    if not _built and session.testscollected:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print("no SDK test built a SessionstoreSession: the substitution did not happen")
