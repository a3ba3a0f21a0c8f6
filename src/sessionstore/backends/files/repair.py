"""Bringing a ``file://`` session's files in line with its ``state.json`` after a crash.

A writer that died left at most: bytes appended past a log's committed size
(moved to ``<log>.torn``), a staged ``<name>.next`` that never committed
(removed), a ``graph.json`` or ``values.json`` written but never committed
(removed), or files of a session whose ``state.json`` was never written
(removed). A staged file that
did commit is moved into place before this runs (``session.py``). Nothing is
ever adopted: anything that cannot come from a crash of this backend, such as
a log shorter than its committed size, raises :class:`StoreError` and changes
nothing.
"""

from __future__ import annotations

import os

from sessionstore.backends.files.directory import Directory
from sessionstore.backends.files.layout import (
    ENTRIES,
    GRAPH,
    ITEMS,
    NEXT,
    STATE,
    TRACE_IDS,
    TRACES,
    VALUES,
)
from sessionstore.backends.files.log import TMP, LogInfo, set_aside, shorter_than_committed
from sessionstore.backends.files.state import State
from sessionstore.errors import StoreError

__all__ = ["clear_leftovers", "repair"]


def clear_leftovers(directory: Directory) -> None:
    """Remove the files of a session that ended or never committed (no ``state.json``)."""
    for name in (ENTRIES, TRACES, GRAPH, ITEMS, VALUES, TRACE_IDS):
        for suffix in ("", TMP, NEXT):
            directory.unlink(name + suffix)


def repair(directory: Directory, state: State) -> None:
    """Bring the files of the session in ``directory`` in line with ``state``.

    ``state`` has nothing pending (its staged files are in place).

    Raises:
        StoreError: a file is missing or shorter than ``state`` says.

    """
    _repair_log(directory, ENTRIES, state.entries)
    _repair_log(directory, TRACES, state.traces)
    _repair_log(directory, ITEMS, state.items)
    if state.trace_ids is None:
        directory.unlink(TRACE_IDS)  # an index never committed: made again from traces.jsonl
    else:
        _repair_log(directory, TRACE_IDS, state.trace_ids)
    for name in (ENTRIES, TRACES, GRAPH, ITEMS, VALUES, TRACE_IDS):
        directory.unlink(name + NEXT)  # staged by a write that died before its commit
    # A graph context or state values written by a write that never committed go.
    _repair_file(directory, GRAPH, committed=state.graph)
    _repair_file(directory, VALUES, committed=state.state_values)


def _repair_file(directory: Directory, name: str, *, committed: bool) -> None:
    if not committed:
        directory.unlink(name)
    elif not directory.has_file(name):
        raise StoreError(
            f"{directory.path / name} is missing but {directory.path / STATE} lists it; restore it"
        )


def _repair_log(directory: Directory, name: str, info: LogInfo | None) -> None:
    try:
        fd = directory.open(name, os.O_RDWR)
    except FileNotFoundError:
        if info is not None and info.size:
            raise StoreError(
                f"{directory.path / name} is missing but {directory.path / STATE} says it "
                f"holds {info.size} bytes; restore it from a backup"
            ) from None
        return
    try:
        if info is None:
            set_aside(directory, name, fd, 0)  # appended, then crashed before the first commit
        elif os.fstat(fd).st_size < info.size:
            raise shorter_than_committed(directory.path / name, info)
        else:
            set_aside(directory, name, fd, info.size)  # a torn or unacknowledged tail
    finally:
        os.close(fd)
