"""Reading ``entries.jsonl`` back: which entries are live and what each holds.

The log only grows (until compacted): an entry is what its last ``update``
(or else its ``add``) line says, unless a ``delete`` line follows; its place
in the order is its ``add`` line. Reading from the end finds the newest
entries and a single entry without reading the whole file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sessionstore.backends.files.codec import ADD, DELETE, UPDATE
from sessionstore.backends.files.directory import Directory
from sessionstore.backends.files.log import (
    LogInfo,
    lines_backward,
    lines_forward,
    open_committed,
    parse_line,
)
from sessionstore.errors import StoreError

__all__ = ["find_entry", "latest_entries", "live_entries"]


def _bad_record(path: Path, offset: int) -> StoreError:
    return StoreError(
        f"{path} is corrupt: unknown record at byte {offset}; sessionstore leaves the file as it is"
    )


def latest_entries(
    directory: Directory, name: str, info: LogInfo | None, count: int
) -> list[dict[str, Any]]:
    """Return the records of the newest ``count`` live entries of log ``name``, oldest first."""
    path = directory.path / name
    found: list[dict[str, Any]] = []
    with open_committed(directory, name, info) as log:
        if log is None:
            return found
        deleted: set[str] = set()
        newer: dict[str, dict[str, Any]] = {}
        for offset, line in lines_backward(*log):
            record = parse_line(path, offset, line)
            op = record.get("op")
            if op == DELETE:
                deleted.add(record["id"])
            elif op == UPDATE:
                newer.setdefault(record["entry"]["id"], record["entry"])
            elif op == ADD:
                qa_id = record["entry"]["id"]
                if qa_id not in deleted:
                    found.append(newer.get(qa_id, record["entry"]))
                    if len(found) == count:
                        break
            else:
                raise _bad_record(path, offset)
    found.reverse()
    return found


def find_entry(
    directory: Directory, name: str, info: LogInfo | None, qa_id: str
) -> dict[str, Any] | None:
    """Return the current record of entry ``qa_id`` (reading from the end), or ``None``."""
    path = directory.path / name
    needle = qa_id.encode()
    with open_committed(directory, name, info) as log:
        if log is None:
            return None
        for offset, line in lines_backward(*log):
            if needle not in line:
                continue
            record = parse_line(path, offset, line)
            if record.get("op") == DELETE and record.get("id") == qa_id:
                return None
            entry = record.get("entry")
            if isinstance(entry, dict) and entry.get("id") == qa_id:
                return entry
    return None


def live_entries(
    directory: Directory, name: str, info: LogInfo | None
) -> dict[str, tuple[int, dict[str, Any]]]:
    """Return every live entry as ``id -> (n of its add line, record)``, oldest first."""
    path = directory.path / name
    live: dict[str, tuple[int, dict[str, Any]]] = {}
    with open_committed(directory, name, info) as log:
        if log is None:
            return live
        for offset, line in lines_forward(*log):
            record = parse_line(path, offset, line)
            op = record.get("op")
            if op == ADD:
                live[record["entry"]["id"]] = (record["n"], record["entry"])
            elif op == UPDATE:
                qa_id = record["entry"]["id"]
                if qa_id in live:
                    live[qa_id] = (live[qa_id][0], record["entry"])
            elif op == DELETE:
                live.pop(record["id"], None)
            else:
                raise _bad_record(path, offset)
    return live
