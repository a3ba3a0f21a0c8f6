"""One session directory of the ``file://`` backend and its commit protocol.

A session directory holds::

    state.json      ids, times, counters, and the committed size of each log
    entries.jsonl   {"n", "op": "add"|"update", "entry"} or {"n", "op": "delete", "id"}
    traces.jsonl    one trace step per line
    graph.json      {"graph_context": "..."}
    .lock           the flock every call takes (shared to read, exclusive to write)

``state.json`` is the commit point: a writer appends to a log, then replaces
``state.json`` (temp file + ``os.replace``) with the new committed sizes. A
crash before that leaves the old state; readers read the logs only up to the
committed sizes, and the next writer moves the uncommitted bytes aside.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sessionstore.backends.files_layout import LOCK_FILE, session_lock
from sessionstore.backends.files_log import (
    append_lines,
    dump_line,
    fsync_dir,
    last_line_end,
    lines_backward,
    lines_forward,
    parse_line,
    set_aside,
    write_replace,
    write_temp,
)
from sessionstore.backends.files_state import LogInfo, State, Write
from sessionstore.errors import StoreError
from sessionstore.store import SessionKey

__all__ = ["ENTRIES", "GRAPH", "STATE", "TRACES", "SessionDir"]

STATE, ENTRIES, TRACES, GRAPH = "state.json", "entries.jsonl", "traces.jsonl", "graph.json"
_OWN_FILES = (STATE, ENTRIES, TRACES, GRAPH)
_SUFFIXES = ("", ".tmp", ".torn")
# Compact entries.jsonl once dead lines are at least this many and outnumber live ones.
COMPACT_MIN_GARBAGE = 32


class SessionDir:
    """The files of one session; every method expects the caller's lock held."""

    def __init__(self, path: Path, key: SessionKey | None, *, sync: bool) -> None:
        self.path = path
        self.key = key
        self.sync = sync

    # -- state ---------------------------------------------------------------

    def load_state(self) -> State | None:
        """Return the committed state, or ``None`` if the session does not exist.

        Raises:
            StoreError: ``state.json`` is corrupt or belongs to another id.
        """
        path = self.path / STATE
        try:
            raw = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        state = State.parse(path, raw)
        if self.key is not None and (state.session_id, state.user_id) != self.key:
            raise StoreError(
                f"{path} holds session {state.session_id!r} of user {state.user_id!r}, "
                f"not {self.key.session_id!r} of {self.key.user_id!r}; move it away"
            )
        return state

    def _commit(self, state: State) -> None:
        write_replace(self.path / STATE, state.to_bytes(), sync=self.sync)

    # -- reading and writing --------------------------------------------------

    @contextmanager
    def reading(self, now: datetime) -> Iterator[State | None]:
        """Hold the shared lock and yield the live state (``None``: no session)."""
        expired = False
        with session_lock(self.path, exclusive=False, create=False) as locked:
            state = self.load_state() if locked else None
            if state is not None and state.expired(now):
                expired, state = True, None
            yield state
        if expired:
            self.remove_if_expired(now)

    @contextmanager
    def writing(
        self, now: datetime, expires_at: datetime | None, *, create: bool
    ) -> Iterator[Write | None]:
        """Hold the exclusive lock and yield a :class:`Write` to fill in.

        On leaving, commits ``state.json`` (or removes the session if it
        ended). Yields ``None`` when the session does not exist and ``create``
        is false.
        """
        with session_lock(self.path, exclusive=True, create=create) as locked:
            state = self.load_state() if locked else None
            if state is not None and state.expired(now):
                if not create:
                    self.remove_files()
                    yield None
                    return
                (self.path / STATE).unlink()
                state = None
            if state is None and not create:
                yield None
                return
            if state is None:
                assert self.key is not None
                self._clear_leftovers()
                write = Write(State(self.key.session_id, self.key.user_id, now, now))
                write.dirty = True
                if self.sync:  # make the new directories' names durable too
                    fsync_dir(self.path.parent)
                    fsync_dir(self.path.parent.parent)
            else:
                write = Write(state)
                write.dirty = self._repair(state)
            yield write
            state = write.state
            if write.remove or (write.touched and state.is_empty()):
                self.remove_files()
                return
            if write.touched:
                state.updated_at, state.expires_at = now, expires_at
            if write.touched or (write.dirty and not state.is_empty()):
                self._commit(state)

    def remove_if_expired(self, now: datetime) -> None:
        """Delete the session's files if it is (still) expired."""
        with session_lock(self.path, exclusive=True, create=False) as locked:
            state = self.load_state() if locked else None
            if state is not None and state.expired(now):
                self.remove_files()

    def remove_files(self) -> None:
        """Delete this session's files (``state.json`` first), lock file, directory.

        Files this backend did not make are left, and with them the directory.
        """
        for name in _OWN_FILES:
            for suffix in _SUFFIXES:
                (self.path / (name + suffix)).unlink(missing_ok=True)
        (self.path / LOCK_FILE).unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # a file someone else put here: not ours
            self.path.rmdir()

    def _clear_leftovers(self) -> None:
        """Remove files of a session that ended or never committed (no state.json)."""
        for name in (ENTRIES, TRACES, GRAPH):
            for suffix in ("", ".tmp"):
                (self.path / (name + suffix)).unlink(missing_ok=True)

    def _repair(self, state: State) -> bool:
        """Bring the files in line with ``state``; return whether it changed."""
        changed = False
        for name in (ENTRIES, TRACES):
            info = state.entries if name == ENTRIES else state.traces
            repaired = self._repair_log(name, info)
            if repaired is not info:
                changed = True
                if name == ENTRIES:
                    state.entries = repaired
                    if repaired is not None:
                        self._recount(state, repaired)
                else:
                    state.traces = repaired
        graph = self.path / GRAPH
        if not state.graph and graph.exists():
            graph.unlink()  # a graph context set by a write that never committed
        elif state.graph and not graph.exists():
            raise StoreError(f"{graph} is missing but {self.path / STATE} lists it; restore it")
        return changed

    def _repair_log(self, name: str, info: LogInfo | None) -> LogInfo | None:
        path = self.path / name
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            if info is not None and info.size:
                raise StoreError(
                    f"{path} is missing but {self.path / STATE} says it holds "
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

    def _recount(self, state: State, info: LogInfo) -> None:
        entries = self.entries_by_id(state)
        state.qa_count = len(entries)
        last = max((n for n, _ in entries.values()), default=0)
        state.next_n = max(state.next_n, last + 1)

    # -- logs ----------------------------------------------------------------

    @contextmanager
    def open_log(self, name: str, info: LogInfo | None) -> Iterator[tuple[int, int] | None]:
        """Yield ``(fd, committed end)`` of a log for reading, or ``None`` if empty."""
        if info is None or not info.size:
            yield None
            return
        fd = os.open(self.path / name, os.O_RDONLY | os.O_CLOEXEC)
        try:
            same = os.fstat(fd).st_ino == info.ino
            yield fd, info.size if same else last_line_end(fd)
        finally:
            os.close(fd)

    def _bad_record(self, offset: int) -> StoreError:
        return StoreError(
            f"{self.path / ENTRIES} is corrupt: unknown record at byte {offset}; "
            "sessionstore leaves the file as it is"
        )

    def latest_entries(self, state: State, count: int) -> list[dict[str, Any]]:
        """Return the newest ``count`` live entry records, oldest first."""
        found: list[dict[str, Any]] = []
        with self.open_log(ENTRIES, state.entries) as log:
            if log is None:
                return found
            deleted: set[str] = set()
            newer: dict[str, dict[str, Any]] = {}
            for offset, line in lines_backward(*log):
                record = parse_line(self.path / ENTRIES, offset, line)
                op = record.get("op")
                if op == "delete":
                    deleted.add(record["id"])
                elif op == "update":
                    newer.setdefault(record["entry"]["id"], record["entry"])
                elif op == "add":
                    qa_id = record["entry"]["id"]
                    if qa_id not in deleted:
                        found.append(newer.get(qa_id, record["entry"]))
                        if len(found) == count:
                            break
                else:
                    raise self._bad_record(offset)
        found.reverse()
        return found

    def find_entry(self, state: State, qa_id: str) -> dict[str, Any] | None:
        """Return the current record of one entry (reading from the end), or ``None``."""
        needle = qa_id.encode()
        with self.open_log(ENTRIES, state.entries) as log:
            if log is None:
                return None
            for offset, line in lines_backward(*log):
                if needle not in line:
                    continue
                record = parse_line(self.path / ENTRIES, offset, line)
                if record.get("op") == "delete" and record.get("id") == qa_id:
                    return None
                entry = record.get("entry")
                if isinstance(entry, dict) and entry.get("id") == qa_id:
                    return entry
        return None

    def entries_by_id(self, state: State) -> dict[str, tuple[int, dict[str, Any]]]:
        """Return every live entry as ``id -> (n, record)`` in order of creation."""
        live: dict[str, tuple[int, dict[str, Any]]] = {}
        with self.open_log(ENTRIES, state.entries) as log:
            if log is None:
                return live
            for offset, line in lines_forward(*log):
                record = parse_line(self.path / ENTRIES, offset, line)
                op = record.get("op")
                if op == "add":
                    live[record["entry"]["id"]] = (record["n"], record["entry"])
                elif op == "update":
                    qa_id = record["entry"]["id"]
                    if qa_id in live:
                        live[qa_id] = (live[qa_id][0], record["entry"])
                elif op == "delete":
                    live.pop(record["id"], None)
                else:
                    raise self._bad_record(offset)
        return live

    def trace_records(self, state: State, count: int | None) -> list[dict[str, Any]]:
        """Return the newest ``count`` trace records (all if ``None``), oldest first."""
        found: list[dict[str, Any]] = []
        with self.open_log(TRACES, state.traces) as log:
            if log is None:
                return found
            if count is None:
                return [parse_line(self.path / TRACES, o, line) for o, line in lines_forward(*log)]
            for offset, line in lines_backward(*log):
                found.append(parse_line(self.path / TRACES, offset, line))
                if len(found) == count:
                    break
        found.reverse()
        return found

    def read_graph(self, state: State) -> str | None:
        """Return the committed graph context, or ``None``."""
        if not state.graph:
            return None
        path = self.path / GRAPH
        try:
            value = json.loads(path.read_bytes())["graph_context"]
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"{path} is corrupt ({exc}); restore it from a backup") from exc
        if not isinstance(value, str):
            raise StoreError(f"{path} is corrupt: graph_context is not a string")
        return value

    # -- writes (inside ``writing``) -------------------------------------------

    def append(self, write: Write, name: str, records: list[dict[str, Any]]) -> None:
        """Append records to a log and advance its committed info in ``write``."""
        state = write.state
        data = b"".join(dump_line(r) for r in records)
        fd = os.open(self.path / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        try:
            append_lines(fd, data, sync=self.sync)
            stat = os.fstat(fd)
        finally:
            os.close(fd)
        info = LogInfo(stat.st_ino, stat.st_size, len(records))
        old = state.entries if name == ENTRIES else state.traces
        if old is not None and old.ino == info.ino:
            info.lines += old.lines
        if name == ENTRIES:
            state.entries = info
        else:
            state.traces = info
        write.touched = True

    def entry_line(self, state: State, op: str, body: dict[str, Any]) -> dict[str, Any]:
        """Return the next line of ``entries.jsonl`` and take its number."""
        line = {"n": state.next_n, "op": op, **body}
        state.next_n += 1
        return line

    def compact_if_needed(self, state: State) -> None:
        """Rewrite ``entries.jsonl`` with live entries only, if dead lines dominate."""
        info = state.entries
        if info is None:
            return
        garbage = info.lines - state.qa_count
        if garbage < COMPACT_MIN_GARBAGE or garbage <= state.qa_count:
            return
        live = self.entries_by_id(state)
        data = b"".join(
            dump_line({"n": n, "op": "add", "entry": entry}) for n, entry in live.values()
        )
        inode = write_replace(self.path / ENTRIES, data, sync=self.sync)
        state.entries = LogInfo(inode, len(data), len(live))

    def write_graph(self, write: Write, context: str) -> None:
        """Replace ``graph.json``."""
        write_replace(self.path / GRAPH, dump_line({"graph_context": context}), sync=self.sync)
        write.state.graph = True
        write.touched = True

    def replace(
        self,
        state: State,
        entries: list[dict[str, Any]],
        traces: list[dict[str, Any]],
        graph: str | None,
    ) -> None:
        """Replace the whole session with the given contents (for import).

        The new files are written first; the old session ends when its
        ``state.json`` is removed, and the new one exists once the new
        ``state.json`` is in place.
        """
        staged: list[tuple[Path, Path]] = []
        for name, records in ((ENTRIES, entries), (TRACES, traces)):
            data = b"".join(dump_line(r) for r in records)
            tmp, inode = write_temp(self.path / name, data, sync=self.sync)
            staged.append((tmp, self.path / name))
            info = LogInfo(inode, len(data), len(records))
            if name == ENTRIES:
                state.entries = info
            else:
                state.traces = info
        if graph is not None:
            data = dump_line({"graph_context": graph})
            staged.append(
                (write_temp(self.path / GRAPH, data, sync=self.sync)[0], self.path / GRAPH)
            )
        state.graph = graph is not None
        state.qa_count = len(entries)
        state.next_n = len(entries) + 1
        (self.path / STATE).unlink(missing_ok=True)
        if graph is None:
            (self.path / GRAPH).unlink(missing_ok=True)
        for tmp, final in staged:
            tmp.replace(final)
        if state.is_empty():
            self.remove_files()
        else:
            self._commit(state)
