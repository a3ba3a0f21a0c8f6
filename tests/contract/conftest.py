"""Fixtures that run every contract test once per backend in ``CASES``."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from sessionstore import SessionStore, open_store
from tests.contract.cases import CASES, BackendCase, CaseContext

MakeStore = Callable[..., Awaitable[SessionStore]]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out tests that need what a backend does not offer (not skipped: absent)."""
    needs = {"shared": "shared", "multi_process": "multi_process"}
    keep, drop = [], []
    for item in items:
        backend = getattr(getattr(item, "callspec", None), "params", {}).get("case")
        wanted = [flag for marker, flag in needs.items() if item.get_closest_marker(marker)]
        if isinstance(backend, BackendCase) and not all(getattr(backend, f) for f in wanted):
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


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
async def make_store(store_url: str) -> AsyncIterator[MakeStore]:
    """Open more stores on this test's namespace; all are pruned and closed after."""
    opened: list[SessionStore] = []

    async def make(**options: Any) -> SessionStore:
        store = open_store(store_url, **options)
        await store.open()
        opened.append(store)
        return store

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
