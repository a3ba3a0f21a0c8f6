"""The backends the contract suite runs on: one entry per backend.

A new backend joins the suite by adding one ``BackendCase`` to ``CASES``.
``url`` receives the test's context and returns the URL of a fresh, empty
namespace (a new file, directory, key prefix or table prefix), so tests never
see each other's data even on a shared server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.backends.sql_fixtures import sql_case_url

if TYPE_CHECKING:
    from sessionstore import SessionStore


MakeStore = Callable[..., Awaitable["SessionStore"]]
"""The ``make_store`` fixture: opens another store on the test's namespace."""


@dataclass(frozen=True)
class CaseContext:
    """What a case needs to build its URL."""

    request: pytest.FixtureRequest
    tmp_path: Path
    token: str  # unique per test, usable in prefixes and table names


@dataclass(frozen=True)
class BackendCase:
    """One backend in the contract matrix."""

    name: str
    url: Callable[[CaseContext], str]
    # Two stores opened on the same URL see the same data.
    shared: bool = True
    # Several processes may use the same URL at once.
    multi_process: bool = True
    # Its URL names a server and may carry a user and password.
    credentials: bool = False
    # Expiry follows ``sessionstore.clock.now_utc`` of this process, so a test
    # moves time with ``set_clock``; False where the server's clock expires data.
    fake_clock: bool = True
    # Known gaps: test function name -> reason; run as xfail(strict=True).
    gaps: Mapping[str, str] = field(default_factory=dict)


CASES: list[BackendCase] = [
    BackendCase("memory", lambda ctx: "memory://", shared=False, multi_process=False),
    BackendCase("sqlite", lambda ctx: f"sqlite:///{ctx.tmp_path / 'store.db'}"),
    BackendCase("postgresql", lambda ctx: sql_case_url(ctx, "postgresql"), credentials=True),
    BackendCase("mariadb", lambda ctx: sql_case_url(ctx, "mariadb"), credentials=True),
    BackendCase("files", lambda ctx: f"file://{ctx.tmp_path / 'root'}"),
    BackendCase(
        "redis",
        lambda ctx: f"{ctx.request.getfixturevalue('redis_server_url')}?prefix={ctx.token}",
        credentials=True,
        fake_clock=False,
    ),
    BackendCase(
        "redis-cluster",
        lambda ctx: f"{ctx.request.getfixturevalue('redis_cluster_url')}?prefix={ctx.token}",
        credentials=True,
        fake_clock=False,
    ),
]

REFERENCE = CASES[0]
"""The in-memory backend, the readable reference."""

pure_logic = pytest.mark.parametrize("case", [REFERENCE], ids=[REFERENCE.name], indirect=True)
"""Run a matrix test once, on the reference backend: what it checks happens before storage."""
