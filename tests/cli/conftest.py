"""Running the command line: in a subprocess (the real entry point) or in process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from sessionstore import (
    SessionStore,
    open_store,
)
from sessionstore.cli.app import app

ALL_COMMANDS = (
    "demo",
    "where",
    "ls",
    "show",
    "stats",
    "users",
    "add",
    "feedback",
    "rm",
    "prune",
    "migrate",
    "export",
    "import",
    "copy",
)

RunCli = Callable[..., subprocess.CompletedProcess[str]]
InvokeCli = Callable[..., Result]


@pytest.fixture(autouse=True)
def _isolated_default_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the default store into tmp_path so no test touches the user's data."""
    data_home = tmp_path / "xdg"
    monkeypatch.setenv("XDG_DATA_HOME", str(data_home))
    monkeypatch.delenv("SESSIONSTORE_URL", raising=False)
    return data_home


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


@pytest.fixture
def sessionstore() -> RunCli:
    """Run ``python -m sessionstore.cli ARGS`` and return the finished process."""

    def run(*args: str, input: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "sessionstore.cli", *args],
            capture_output=True,
            text=True,
            encoding="utf-8",
            input=input,
            env={**os.environ, "PYTHONIOENCODING": "utf-8", **env},
            timeout=120,
            check=False,
        )

    return run


@pytest.fixture
def cli() -> InvokeCli:
    """Run the command line in this process through Typer's runner."""
    runner = CliRunner()

    def invoke(*args: str, input: str | bytes | None = None) -> Result:
        return runner.invoke(app, list(args), input=input)

    return invoke


def on_store(url: str, work: Callable[[SessionStore], Coroutine[Any, Any, Any]]) -> Any:
    """Open ``url``, run ``work(store)`` and close it, from synchronous test code."""

    async def go() -> Any:
        async with open_store(url) as store:
            return await work(store)

    return asyncio.run(go())
