"""Fixtures: every manager test runs once per backend in the contract matrix."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from sessionstore import SessionManager, SessionStore, open_store
from tests.contract.cases import CASES, BackendCase, CaseContext
from tests.manager.fakes import ScriptedLLM

MakeStore = Callable[..., Awaitable[SessionStore]]


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


@pytest.fixture
def llm() -> ScriptedLLM:
    return ScriptedLLM()


@pytest.fixture
def manager(store: SessionStore, llm: ScriptedLLM) -> SessionManager:
    return SessionManager(store, llm=llm)
