"""``trace_ids.jsonl``: what keeps a trace id unique within its ``file://`` session.

The index holds, line for line, the id of each step of ``traces.jsonl``
(:func:`~sessionstore.backends.files.codec.trace_id_line`: one id, one byte
string), so a save looks for its id by searching the index's committed bytes
for that line: one read of about 40 bytes per step for UUIDs, never a parse
of the steps. It is a log like the others: appended past its committed size,
committed in ``state.json`` with the step it indexes, set aside past that size
by ``repair.py`` after a crash, and replaced whole (staged, then installed) by
an import.

A session written by a version without the index, or by one that left it
behind (``state.trace_ids`` missing, or counting other than ``traces.jsonl``'s
lines), has it made again from ``traces.jsonl`` by its next trace write.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from sessionstore.backends.files.codec import trace_id_line
from sessionstore.backends.files.directory import Directory
from sessionstore.backends.files.log import LogInfo, open_committed

__all__ = ["holds", "index_of", "read_index"]


def read_index(
    directory: Directory, name: str, index: LogInfo | None, traces: LogInfo | None
) -> bytes | None:
    """Return the committed bytes of the index ``name``; ``None`` when it must be made again.

    Args:
        directory: the session's directory.
        name: the file that holds the committed index.
        index: the committed index's size (``state.trace_ids``).
        traces: the committed trace log's size (``state.traces``).

    Raises:
        StoreError: the index is shorter than its committed size.

    """
    steps = 0 if traces is None else traces.lines
    if index is None:
        return b"" if steps == 0 else None
    if index.lines != steps:
        return None
    with open_committed(directory, name, index) as log:
        if log is None:
            return b""
        fd, end = log
        return os.pread(fd, end, 0)


def holds(index: bytes, line: bytes) -> bool:
    """Return whether ``index`` has the whole line ``line`` (which ends with a newline)."""
    return index.startswith(line) or b"\n" + line in index


def index_of(records: Iterable[Mapping[str, Any]]) -> bytes:
    """Return the index of trace step records, in their order.

    A record without a str id (none this backend wrote) gets the line
    ``null``, which no id's line equals, so the index keeps its line count.
    """
    lines = []
    for record in records:
        trace_id = record.get("trace_id")
        lines.append(trace_id_line(trace_id) if isinstance(trace_id, str) else b"null\n")
    return b"".join(lines)
