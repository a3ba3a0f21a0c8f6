"""Fixtures: a manager test runs once per backend of the matrix in tests/conftest.py.

Tests of logic that runs before the store (validation, LLM text, fallbacks)
are marked ``pure_logic`` and run once, on the reference backend.
"""

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
