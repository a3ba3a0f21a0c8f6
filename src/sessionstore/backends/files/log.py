"""JSON Lines files of the ``file://`` backend: append, read backwards, replace.

A log is read only up to its *committed* size (recorded in the session's
``state.json``), so a line being written, or torn by a crash, is never seen.
Bytes past the committed size are moved to ``<file>.torn`` by the next writer
rather than thrown away. Lines inside the committed size that are not JSON
make the file corrupt: the store raises :class:`StoreError` and never changes
such a file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sessionstore.backends.files.directory import Directory
from sessionstore.errors import StoreError
from sessionstore.stored import compact_json

__all__ = [
    "TMP",
    "TORN",
    "LogInfo",
    "append_lines",
    "dump_line",
    "lines_backward",
    "lines_forward",
    "open_committed",
    "parse_line",
    "set_aside",
    "shorter_than_committed",
    "tail_records",
    "write_new",
    "write_replace",
]

_CHUNK = 64 * 1024
TMP, TORN = ".tmp", ".torn"  # suffixes: a file being replaced, bytes set aside


@dataclass(slots=True)
class LogInfo:
    """The committed part of one log: how long, how many lines.

    A log is the file of its name: ``ino``, the inode number it had when
    committed, is only written for older versions of this backend, which
    compare it. A copy of the store (a backup restored) reads the same.
    """

    ino: int
    size: int
    lines: int


def dump_line(record: dict[str, Any]) -> bytes:
    """Return ``record`` as one UTF-8 JSON line (newlines and NUL are escaped)."""
    return compact_json(record).encode("utf-8") + b"\n"


def parse_line(path: Path, offset: int, line: bytes) -> dict[str, Any]:
    """Parse one committed line.

    Raises:
        StoreError: the line is not a JSON object; names the file and offset.
    """
    try:
        record = json.loads(line)
    except ValueError as exc:
        record = exc
    if not isinstance(record, dict):
        raise StoreError(
            f"{path} is corrupt: the line at byte {offset} is not a JSON object. "
            "sessionstore leaves the file as it is; repair that line or restore "
            "the file from a backup"
        )
    return record


def lines_backward(fd: int, end: int) -> Iterator[tuple[int, bytes]]:
    """Yield ``(offset, line)`` for the lines of ``[0, end)``, last line first.

    ``end`` must be 0 or just after a newline. Reads 64 KiB chunks from the
    end (growing for long lines), so the cost depends on how far back the
    caller reads, not on the file's length.
    """
    pos, buf, stop = end, b"", 0
    while True:
        cut = buf.rfind(b"\n", 0, stop - 1) if stop else -1
        if cut >= 0:
            yield pos + cut + 1, buf[cut + 1 : stop - 1]
            stop = cut + 1
            continue
        if pos == 0:
            if stop:
                yield 0, buf[: stop - 1]
            return
        size = min(max(_CHUNK, stop), pos)
        pos -= size
        chunk = os.pread(fd, size, pos)
        if len(chunk) != size:
            raise StoreError("a session file shrank while it was read; retry the call")
        buf = chunk + buf[:stop]
        stop = len(buf)


def lines_forward(fd: int, end: int) -> Iterator[tuple[int, bytes]]:
    """Yield ``(offset, line)`` for the lines of ``[0, end)``, first line first."""
    offset = 0
    while offset < end:
        size = min(4 * _CHUNK, end - offset)
        block = os.pread(fd, size, offset)
        cut = block.rfind(b"\n")
        while cut < 0:  # a line longer than the block
            size = min(size * 2, end - offset)
            block = os.pread(fd, size, offset)
            cut = block.rfind(b"\n")
            if cut < 0 and size == end - offset:
                raise StoreError("a session file does not end with a newline; retry the call")
        start = 0
        for line in block[:cut].split(b"\n"):
            yield offset + start, line
            start += len(line) + 1
        offset += cut + 1


@contextmanager
def open_committed(
    directory: Directory, name: str, info: LogInfo | None
) -> Iterator[tuple[int, int] | None]:
    """Yield ``(fd, committed end)`` of the log ``name``, or ``None`` if it is empty.

    Raises:
        StoreError: the file is shorter than its committed size.
    """
    if info is None or not info.size:
        yield None
        return
    fd = directory.open(name, os.O_RDONLY)
    try:
        if os.fstat(fd).st_size < info.size:
            raise shorter_than_committed(directory.path / name, info)
        yield fd, info.size
    finally:
        os.close(fd)


def shorter_than_committed(path: Path, info: LogInfo) -> StoreError:
    """Return the error for a log that lost committed bytes (never a crash of this store)."""
    return StoreError(
        f"{path} is shorter than its committed {info.size} bytes; sessionstore "
        "leaves it as it is: restore it from a backup"
    )


def tail_records(
    directory: Directory, name: str, info: LogInfo | None, count: int | None
) -> list[dict[str, Any]]:
    """Return the newest ``count`` committed records of a log (all if ``None``), oldest first."""
    path = directory.path / name
    found: list[dict[str, Any]] = []
    with open_committed(directory, name, info) as log:
        if log is None:
            return found
        if count is None:
            return [parse_line(path, offset, line) for offset, line in lines_forward(*log)]
        for offset, line in lines_backward(*log):
            found.append(parse_line(path, offset, line))
            if len(found) == count:
                break
    found.reverse()
    return found


def append_lines(fd: int, data: bytes, *, sync: bool) -> None:
    """Append ``data`` to the file open as ``fd`` (``fsync`` if ``sync``)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
    if sync:
        os.fsync(fd)


def set_aside(directory: Directory, name: str, fd: int, keep: int) -> None:
    """Move the bytes of log ``name`` after ``keep`` to ``<name>.torn``, then truncate it.

    The bytes are a write that was never acknowledged (a crash, or an edit by
    hand); they are kept for a person to look at, not deleted.
    """
    size = os.fstat(fd).st_size
    if size <= keep:
        return
    extra = os.pread(fd, size - keep, keep)
    torn = directory.open(name + TORN, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        append_lines(torn, extra, sync=True)
    finally:
        os.close(torn)
    os.ftruncate(fd, keep)


def write_new(directory: Directory, name: str, data: bytes, *, sync: bool) -> int:
    """Write ``data`` as the whole of file ``name``; return the file's inode number."""
    fd = directory.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        append_lines(fd, data, sync=sync)
        return os.fstat(fd).st_ino
    finally:
        os.close(fd)


def write_replace(directory: Directory, name: str, data: bytes, *, sync: bool) -> None:
    """Replace file ``name`` with ``data`` atomically (``<name>.tmp`` + ``os.replace``)."""
    write_new(directory, name + TMP, data, sync=sync)
    directory.replace(name + TMP, name)
    if sync:
        directory.fsync()
