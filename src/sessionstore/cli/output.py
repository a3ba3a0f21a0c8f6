"""How results reach people (Rich) and scripts (JSON), and progress bars."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

__all__ = [
    "Advance",
    "err_console",
    "escaped",
    "json_text",
    "out_console",
    "plain",
    "print_json",
    "progress",
    "progress_shown",
    "say",
    "terminal_safe",
    "user_label",
    "when",
]


def out_console() -> Console:
    """Return a console on stdout (made per call: tests swap ``sys.stdout``)."""
    return Console(file=sys.stdout, highlight=False)


def err_console() -> Console:
    """Return a console on stderr, for progress and notes."""
    return Console(file=sys.stderr, highlight=False)


# Characters that act on a terminal instead of showing: C0 and C1 controls and
# DEL (U+009B is an escape on some terminals), the line and paragraph
# separators, and the bidirectional controls that reorder the rest of a line.
_BEYOND_C0 = "\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069"
_UNSAFE = re.compile(f"[\x00-\x1f{_BEYOND_C0}]")
# json.dumps already escapes C0 controls; its indentation's newlines must stay.
_JSON_UNSAFE = re.compile(f"[{_BEYOND_C0}]")


def escaped(ch: str) -> str:
    r"""Return the visible escape of one character: ``\x1b``, ``\u202e``."""
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text: str, *, keep_newlines: bool = False) -> str:
    r"""Return ``text`` with every character that acts on a terminal shown escaped.

    ``keep_newlines`` keeps newlines and tabs as they are; any other control,
    a C1 control or a bidirectional override becomes ``\xNN`` / ``\uNNNN``.
    """

    def show(found: re.Match[str]) -> str:
        ch = found.group()
        if keep_newlines and ch in "\n\t":
            return ch
        return "\\n" if ch == "\n" else escaped(ch)

    return _UNSAFE.sub(show, text)


def json_text(value: Any, *, indent: int | None = None) -> str:
    r"""Return ``value`` as JSON that is safe to print: controls escaped as ``\uNNNN``.

    ``json.dumps`` escapes C0 controls but leaves DEL, C1 controls, the line
    separators and bidirectional controls raw; they can only occur inside
    strings, where ``\uNNNN`` is the same character to any JSON reader.
    """
    text = json.dumps(value, ensure_ascii=False, indent=indent)
    return _JSON_UNSAFE.sub(lambda found: f"\\u{ord(found.group()):04x}", text)


def print_json(value: Any) -> None:
    """Write ``value`` as indented JSON on stdout (see :func:`json_text`)."""
    sys.stdout.write(json_text(value, indent=2) + "\n")


def plain(value: str | None, *, keep_newlines: bool = True) -> Text:
    """Return stored text as inert Rich text: no markup, control characters shown escaped.

    Stored strings may hold ``[bold]``, ANSI escapes, NUL, C1 controls or
    bidirectional overrides; none of it must reach the terminal as anything
    but visible characters (:func:`terminal_safe`).
    """
    if value is None:
        return Text("-", style="dim")
    return Text(terminal_safe(value, keep_newlines=keep_newlines))


def say(message: str) -> None:
    """Print a short confirmation for people on stderr (stdout stays for data)."""
    err_console().print(plain(message, keep_newlines=False), soft_wrap=True)


def when(value: datetime | None) -> str:
    """Return ``value`` as ``YYYY-MM-DD HH:MM:SS`` in UTC."""
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def user_label(user_id: str | None) -> str:
    """Name a user for people: the anonymous user has no id."""
    return "the anonymous user" if user_id is None else f"user {user_id!r}"


def progress_shown() -> bool:
    """Return whether a progress bar would show: only when stderr is a terminal."""
    return err_console().is_terminal


class Advance(Protocol):
    """Moves a progress bar on by one item."""

    def __call__(self) -> None:
        """Count one more item done."""


class _RateColumn(ProgressColumn):
    """How many items a second, over the last few seconds."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        shown = "?" if speed is None else f"{speed:,.0f}"
        return Text(f"{shown}/s", style="progress.data.speed")


@contextmanager
def progress(
    description: str, total: int | None = None, *, enabled: bool = True
) -> Iterator[Advance]:
    """Show a progress bar on stderr while the block runs, if stderr is a terminal.

    With a ``total`` it shows done/total, the rate and the time left;
    without, the count, the rate and the time so far. Nothing is printed
    when stderr is not a terminal (or ``enabled`` is false).
    """
    console = err_console()
    counted: list[ProgressColumn] = (
        [BarColumn(), MofNCompleteColumn(), _RateColumn(), TimeRemainingColumn()]
        if total is not None
        else [TextColumn("{task.completed}"), _RateColumn(), TimeElapsedColumn()]
    )
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        *counted,
        console=console,
        # Data may be going to stdout meanwhile (``export > file``): never touch it.
        redirect_stdout=False,
        disable=not (enabled and console.is_terminal),
    ) as bar:
        task = bar.add_task(description, total=total)

        def advance() -> None:
            bar.advance(task)

        yield advance
