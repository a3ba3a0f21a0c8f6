"""How results reach people (Rich) and scripts (JSON), and progress bars."""

from __future__ import annotations

import json
import sys
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

__all__ = [
    "Advance",
    "err_console",
    "out_console",
    "plain",
    "print_json",
    "progress",
    "say",
    "user_label",
    "when",
]


def out_console() -> Console:
    """Return a console on stdout (made per call: tests swap ``sys.stdout``)."""
    return Console(file=sys.stdout, highlight=False)


def err_console() -> Console:
    """Return a console on stderr, for progress and notes."""
    return Console(file=sys.stderr, highlight=False)


def print_json(value: Any) -> None:
    """Write ``value`` as indented JSON on stdout."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2) + "\n")


def plain(value: str | None, *, keep_newlines: bool = True) -> Text:
    """Return stored text as inert Rich text: no markup, control characters shown escaped.

    Stored strings may hold ``[bold]``, ANSI escapes or NUL; none of it must
    reach the terminal as anything but visible characters.
    """
    if value is None:
        return Text("-", style="dim")
    kept = "\n\t" if keep_newlines else ""
    shown = "".join(
        ch
        if ch in kept or unicodedata.category(ch) != "Cc"
        else ("\\n" if ch == "\n" else f"\\x{ord(ch):02x}")
        for ch in value
    )
    return Text(shown)


def say(message: str) -> None:
    """Print a short confirmation for people on stderr (stdout stays for data)."""
    err_console().print(Text(message), soft_wrap=True)


def when(value: datetime | None) -> str:
    """Return ``value`` as ``YYYY-MM-DD HH:MM:SS`` in UTC."""
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def user_label(user_id: str | None) -> str:
    """Name a user for people: the anonymous user has no id."""
    return "the anonymous user" if user_id is None else f"user {user_id!r}"


class Advance(Protocol):
    """Moves a progress bar on by one item."""

    def __call__(self) -> None:
        """Count one more item done."""


@contextmanager
def progress(
    description: str, total: int | None = None, *, enabled: bool = True
) -> Iterator[Advance]:
    """Show a progress bar on stderr while the block runs, if stderr is a terminal."""
    console = err_console()
    columns = [
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn() if total is not None else TextColumn("{task.completed}"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=console, disable=not (enabled and console.is_terminal)) as bar:
        task = bar.add_task(description, total=total)

        def advance() -> None:
            bar.advance(task)

        yield advance
