"""What every command shares: which store, how to run it, how failures exit."""

from __future__ import annotations

import asyncio
import os
import sys
import traceback
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from sessionstore.backends.files import FileStore
from sessionstore.backends.files.layout import MARKER
from sessionstore.backends.sqlite import SQLiteStore
from sessionstore.cli.output import terminal_safe
from sessionstore.errors import (
    InvalidParameterError,
    MissingDependencyError,
    NotFoundError,
    StoreError,
)
from sessionstore.store import SessionStore
from sessionstore.urls import default_store_url, open_store, redact_url

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_INTERRUPTED",
    "EXIT_STORE_FAILED",
    "CliState",
    "CommandError",
    "JsonOption",
    "StoreChoice",
    "UserOption",
    "exit_code_for",
    "missing_location",
    "opened",
    "report_failure",
    "run",
    "state_of",
]

T = TypeVar("T")

EXIT_BAD_INPUT = 1
EXIT_STORE_FAILED = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a command stopped by Ctrl-C

UserOption = Annotated[
    str | None,
    typer.Option("--user", "-u", help="User id; omit for the anonymous user's sessions."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]

# Click's error base class, whether Typer vendors Click or depends on it.
CLICK_ERROR: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)


class CommandError(Exception):
    """A failure the command line explains in one line and exits with."""

    def __init__(self, message: str, exit_code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True, slots=True)
class StoreChoice:
    """The store a command uses and why that one."""

    url: str
    reason: str

    @property
    def shown(self) -> str:
        """The URL with credentials redacted."""
        return redact_url(self.url)


@dataclass(slots=True)
class CliState:
    """Options given before the command (``--store``, ``--debug``)."""

    store_url: str | None = None
    debug: bool = False

    def choice(self) -> StoreChoice:
        """Return the store to use: ``--store``, else ``SESSIONSTORE_URL``, else the default."""
        if self.store_url is not None:
            return StoreChoice(self.store_url, "given with --store")
        if os.environ.get("SESSIONSTORE_URL"):
            return StoreChoice(
                os.environ["SESSIONSTORE_URL"], "from the SESSIONSTORE_URL environment variable"
            )
        return StoreChoice(
            default_store_url(),
            "the default SQLite file (no --store given, SESSIONSTORE_URL not set)",
        )


def state_of(ctx: typer.Context) -> CliState:
    """Return the state the root command stored in ``ctx.obj``."""
    state = ctx.find_root().obj
    if not isinstance(state, CliState):
        state = CliState()
        ctx.find_root().obj = state
    return state


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one command's coroutine to completion."""
    return asyncio.run(coro)


def missing_location(store: SessionStore) -> Path | None:
    """Return where ``store`` keeps its files when they are not there yet, else ``None``.

    A SQLite store exists once its database file does; a ``file://`` store
    once its root holds the layout marker. Every other backend (memory, or a
    server) always exists.
    """
    if isinstance(store, SQLiteStore):
        in_memory = str(store.path) == ":memory:"
        return None if in_memory or store.path.exists() else store.path
    if isinstance(store, FileStore):
        return None if (store.root / MARKER).exists() else store.root
    return None


@asynccontextmanager
async def opened(url: str, *, create: bool = True) -> AsyncIterator[SessionStore]:
    """Open the store at ``url`` for the block and close it after.

    Raises:
        CommandError: ``create`` is false and the store, kept in local files,
            does not exist: nothing is created then (a mistyped path must not
            leave an empty store behind).

    """
    store = open_store(url)
    if not create:
        missing = await asyncio.to_thread(missing_location, store)
        if missing is not None:
            raise CommandError(f"no store at {missing}; nothing was created there")
    async with store:
        yield store


def exit_code_for(exc: BaseException) -> int:
    """Return the exit code a failure maps to."""
    if isinstance(exc, CommandError):
        return exc.exit_code
    if isinstance(
        exc, (InvalidParameterError, NotFoundError, MissingDependencyError, CLICK_ERROR, OSError)
    ):
        return EXIT_BAD_INPUT
    if isinstance(exc, typer.Abort):
        return EXIT_BAD_INPUT
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    return EXIT_STORE_FAILED


def _message(exc: BaseException) -> str:
    if isinstance(exc, CLICK_ERROR):
        text = str(getattr(exc, "format_message", lambda: str(exc))())
        click_ctx = getattr(exc, "ctx", None)
        path = getattr(click_ctx, "command_path", None) or "sessionstore"
        return f"{text} (see '{path} --help')"
    if isinstance(exc, typer.Abort):
        return "aborted"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, StoreError):
        return f"store failed: {exc}"
    if isinstance(exc, (CommandError, InvalidParameterError, NotFoundError)):
        return str(exc)
    if isinstance(exc, MissingDependencyError):
        return str(exc)
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
    return f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)"


def report_failure(exc: BaseException, *, debug: bool) -> int:
    """Print one line about ``exc`` on stderr (and the traceback if ``debug``).

    Both are shown with control characters escaped (:func:`terminal_safe`):
    a message may quote stored ids or a file name.
    """
    if debug:
        text = "".join(traceback.format_exception(exc))
        sys.stderr.write(terminal_safe(text, keep_newlines=True))
    line = terminal_safe(" ".join(_message(exc).split())) or type(exc).__name__
    sys.stderr.write(f"sessionstore: error: {line}\n")
    sys.stderr.flush()
    return exit_code_for(exc)
