"""Fixtures: every manager test runs once per backend of the matrix in tests/conftest.py."""

from __future__ import annotations

import pytest

from sessionstore import SessionManager, SessionStore
from tests.manager.fakes import ScriptedLLM


@pytest.fixture
def llm() -> ScriptedLLM:
    return ScriptedLLM()


@pytest.fixture
def manager(store: SessionStore, llm: ScriptedLLM) -> SessionManager:
    return SessionManager(store, llm=llm)
