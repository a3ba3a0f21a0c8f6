"""Bringing a ``file://`` session's files in line with its ``state.json`` after a crash.

A writer that died left at most: bytes appended past a log's committed size
(moved to ``<log>.torn``), a log replaced by a compaction that never
committed (adopted: it holds the same entries), a ``graph.json`` written but
never committed (removed), or files of a session whose ``state.json`` was
never written (removed). Anything that cannot come from a crash of this
backend, such as a log shorter than its committed size, raises
:class:`StoreError` and changes nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

from sessionstore.backends.files.layout import ENTRIES, GRAPH, STATE, TRACES
from sessionstore.backends.files.log import LogInfo, last_line_end, lines_forward, set_aside
from sessionstore.backends.files.replay import live_entries
from sessionstore.backends.files.state import State
from sessionstore.errors import StoreError

__all__ = ["clear_leftovers", "repair"]


def clear_leftovers(directory: Path) -> None:
    """Remove the files of a session that ended or never committed (no ``state.json``)."""
    for name in (ENTRIES, TRACES, GRAPH):
        for suffix in ("", ".tmp"):
            (directory / (name + suffix)).unlink(missing_ok=True)


def repair(directory: Path, state: State) -> bool:
    """Bring the files of the session in ``directory`` in line with ``state``.

    Returns:
        Whether ``state`` changed (it must then be committed).

    Raises:
        StoreError: a file is missing or shorter than ``state`` says.

    """
    changed = False
    for name in (ENTRIES, TRACES):
        info = state.entries if name == ENTRIES else state.traces
        repaired = _repair_log(directory, name, info)
        if repaired is info:
            continue
        changed = True
        if name == TRACES:
            state.traces = repaired
            continue
        state.entries = repaired
        if repaired is not None:
            _recount(directory / ENTRIES, state, repaired)
    graph = directory / GRAPH
    if not state.graph and graph.exists():
        graph.unlink()  # a graph context set by a write that never committed
    elif state.graph and not graph.exists():
        raise StoreError(f"{graph} is missing but {directory / STATE} lists it; restore it")
    return changed


def _repair_log(directory: Path, name: str, info: LogInfo | None) -> LogInfo | None:
    path = directory / name
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        if info is not None and info.size:
            raise StoreError(
                f"{path} is missing but {directory / STATE} says it holds "
                f"{info.size} bytes; restore it from a backup"
            ) from None
        return info
    try:
        stat = os.fstat(fd)
        if info is None:
            set_aside(path, fd, 0)  # appended, then crashed before the first commit
            return LogInfo(stat.st_ino, 0, 0)
        if stat.st_ino == info.ino:
            if stat.st_size < info.size:
                raise StoreError(
                    f"{path} is shorter than its committed {info.size} bytes; "
                    "restore it from a backup"
                )
            set_aside(path, fd, info.size)  # a torn or unacknowledged tail
            return info
        # A crash between replacing the file (compaction) and committing:
        # the new file holds the same entries; adopt it.
        end = last_line_end(fd)
        set_aside(path, fd, end)
        lines = sum(1 for _ in lines_forward(fd, end))
        return LogInfo(stat.st_ino, end, lines)
    finally:
        os.close(fd)


def _recount(path: Path, state: State, info: LogInfo) -> None:
    entries = live_entries(path, info)
    state.qa_count = len(entries)
    last = max((n for n, _ in entries.values()), default=0)
    state.next_n = max(state.next_n, last + 1)
