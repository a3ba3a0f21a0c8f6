"""Fixtures shared by every test directory.

The backend matrix: a test that asks for ``case``, ``store_url``,
``make_store`` or ``store`` runs once per backend in
``tests.contract.cases.CASES`` (the contract suite, the manager and the CLI
tests all use it). A test marked ``shared``, ``multi_process`` or
``credentials`` runs only on the backends with that flag; one decorated with
``pure_logic`` runs once, on the reference backend. Session-wide servers: the
machine's Redis and a throwaway Redis Cluster; throwaway servers log into the
pytest temp directory.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from sessionstore import SessionStore, open_store
from tests.contract.cases import CASES, BackendCase, CaseContext, MakeStore
from tests.redis_cluster import throwaway_cluster
from tests.servers import deaths, keep_logs_in, server_url
from tests.sync.through_facade import open_through_facade

# -- the backend matrix ------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--through-sync",
        action="store_true",
        help="give the contract suite stores that make every call through sessionstore.sync",
    )


# Contract modules about asyncio or the async objects themselves: nothing for the facade.
_NOT_THROUGH_SYNC = ("test_event_loops.py", "test_observe.py", "test_cases.py")


def _through_sync(config: pytest.Config) -> bool:
    return bool(config.getoption("--through-sync"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out tests that need what a backend does not offer (not skipped: absent).

    With ``--through-sync``, only the contract tests that get their stores
    from ``store`` or ``make_store`` run (the others would repeat the async run).
    """
    flags = ("shared", "multi_process", "credentials")  # marker name = BackendCase field
    keep, drop = [], []
    for item in items:
        backend = getattr(getattr(item, "callspec", None), "params", {}).get("case")
        wanted = [flag for flag in flags if item.get_closest_marker(flag)]
        lacking = isinstance(backend, BackendCase) and not all(getattr(backend, f) for f in wanted)
        if lacking or (_through_sync(config) and not _runs_through_sync(item)):
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def _runs_through_sync(item: pytest.Item) -> bool:
    path = item.path
    return (
        path.parent.name == "contract"
        and path.name not in _NOT_THROUGH_SYNC
        and "make_store" in getattr(item, "fixturenames", ())
    )


@pytest.fixture(params=CASES, ids=[case.name for case in CASES])
def case(request: pytest.FixtureRequest) -> BackendCase:
    backend: BackendCase = request.param
    reason = backend.gaps.get(request.node.originalname)
    if reason:
        request.applymarker(pytest.mark.xfail(reason=reason, strict=True))
    return backend


@pytest.fixture
def store_url(case: BackendCase, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    token = "t" + uuid.uuid4().hex[:12]
    return case.url(CaseContext(request=request, tmp_path=tmp_path, token=token))


@pytest.fixture
async def make_store(store_url: str, request: pytest.FixtureRequest) -> AsyncIterator[MakeStore]:
    """Open more stores on this test's namespace; all are pruned and closed after.

    With ``--through-sync`` they are async views of blocking stores
    (``tests/sync/through_facade.py``).
    """
    opened: list[Any] = []
    through_sync = _through_sync(request.config)

    async def make(**options: Any) -> SessionStore:
        if through_sync:
            store: Any = await open_through_facade(store_url, **options)
        else:
            store = open_store(store_url, **options)
            await store.open()
        opened.append(store)
        return cast("SessionStore", store)

    yield make
    if opened:
        cleaner = open_store(store_url)
        async with cleaner:
            await cleaner.prune()
    for store in opened:
        await store.close()


@pytest.fixture
async def store(make_store: MakeStore) -> SessionStore:
    return await make_store()


# -- servers --------------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def _server_logs(tmp_path_factory: pytest.TempPathFactory) -> None:
    keep_logs_in(tmp_path_factory.mktemp("server-logs"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Show, with a failing test, the log of any throwaway server that died."""
    report = yield
    if report.failed:
        report.sections.extend(("throwaway server died", text) for text in deaths())
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for text in deaths():
        terminalreporter.section("throwaway server died")
        terminalreporter.write_line(text)


# -- Redis ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server_url() -> str:
    """The machine's Redis server (``SESSIONSTORE_TEST_REDIS_URL``), or a throwaway one."""
    return server_url("redis")


@pytest.fixture(scope="session")
def redis_cluster_url() -> Iterator[str]:
    """A throwaway three-master Redis Cluster for the whole test run."""
    with throwaway_cluster() as ports:
        yield f"redis+cluster://127.0.0.1:{ports[0]}"
