"""Reading ``items.jsonl`` back: which items are live, newest first or all in order.

The log only grows (until compacted): an item is live from its ``add`` line
until a ``delete`` line names it or a ``clear`` line follows. Reading from
the end finds the newest items without reading the whole file; compaction
(``session.py``) keeps the dead lines at the end bounded by the live ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sessionstore.backends.files.codec import ADD, CLEAR, DELETE, item_from_record
from sessionstore.backends.files.directory import Directory
from sessionstore.backends.files.log import (
    LogInfo,
    lines_backward,
    lines_forward,
    open_committed,
    parse_line,
)
from sessionstore.errors import StoreError
from sessionstore.items import ItemRecord

__all__ = ["has_item", "latest_items", "live_items"]

_CLEAR_OP = b'"op":"clear"'


def _item(path: Path, offset: int, record: dict[str, Any]) -> ItemRecord:
    try:
        return item_from_record(record)
    except (KeyError, TypeError, ValueError) as exc:
        raise _bad_record(path, offset) from exc


def _bad_record(path: Path, offset: int) -> StoreError:
    return StoreError(
        f"{path} is corrupt: unknown record at byte {offset}; sessionstore leaves the file as it is"
    )


def _record(path: Path, offset: int, line: bytes) -> tuple[str, dict[str, Any]]:
    """Return a committed line's ``op`` and record, checking it is one this backend writes."""
    record = parse_line(path, offset, line)
    op = record.get("op")
    if op not in (ADD, DELETE, CLEAR) or (op == DELETE and not isinstance(record.get("id"), str)):
        raise _bad_record(path, offset)
    return op, record


def _records(
    path: Path, lines: Iterator[tuple[int, bytes]]
) -> Iterator[tuple[int, str, dict[str, Any]]]:
    for offset, line in lines:
        yield offset, *_record(path, offset, line)


def latest_items(
    directory: Directory, name: str, info: LogInfo | None, count: int
) -> list[tuple[int, ItemRecord]]:
    """Return the newest ``count`` live items as ``(n, item)``, oldest first.

    ``n`` is the number of the item's ``add`` line.
    """
    path = directory.path / name
    found: list[tuple[int, ItemRecord]] = []
    with open_committed(directory, name, info) as log:
        if log is None or count == 0:
            return found
        deleted: set[str] = set()
        for offset, op, record in _records(path, lines_backward(*log)):
            if op == CLEAR:
                break
            if op == DELETE:
                deleted.add(record["id"])
                continue
            item = _item(path, offset, record)
            if item.id not in deleted:
                found.append((record["n"], item))
                if len(found) == count:
                    break
    found.reverse()
    return found


def has_item(directory: Directory, name: str, info: LogInfo | None, item_id: str) -> bool:
    """Return whether the item ``item_id`` is live, reading from the end until it is decided."""
    path = directory.path / name
    needle = item_id.encode()
    with open_committed(directory, name, info) as log:
        if log is None:
            return False
        for offset, line in lines_backward(*log):
            if needle not in line and _CLEAR_OP not in line:
                continue  # neither names the item nor may clear it: not parsed
            op, record = _record(path, offset, line)
            if op == CLEAR:
                return False
            if record.get("id") == item_id:
                return op == ADD
    return False


def live_items(
    directory: Directory, name: str, info: LogInfo | None
) -> list[tuple[int, ItemRecord]]:
    """Return every live item as ``(n, item)``, oldest first, reading the log forwards."""
    path = directory.path / name
    live: dict[str, tuple[int, ItemRecord]] = {}
    with open_committed(directory, name, info) as log:
        if log is None:
            return []
        for offset, op, record in _records(path, lines_forward(*log)):
            if op == CLEAR:
                live.clear()
            elif op == DELETE:
                live.pop(record["id"], None)
            else:
                item = _item(path, offset, record)
                live[item.id] = (record["n"], item)
    return list(live.values())
