"""One session directory of the ``file://`` backend and its commit protocol.

A session directory holds ``state.json`` (ids, times, counters, and the
committed size of each log), ``entries.jsonl`` and ``traces.jsonl`` (the logs,
whose lines ``codec.py`` describes), ``graph.json``, and ``.lock``, the
``flock`` every call takes (shared to read, exclusive to write).

``state.json`` is the commit point: a writer appends to a log, then replaces
``state.json`` (temp file + ``os.replace``) with the new committed sizes. A
crash before that leaves the old state; readers read the logs only up to the
committed sizes, and the next writer repairs the files (``repair.py``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sessionstore.backends.files import replay
from sessionstore.backends.files.codec import ADD, decode_graph, encode_graph, entry_line
from sessionstore.backends.files.layout import (
    ENTRIES,
    GRAPH,
    LOCK_FILE,
    STATE,
    TRACES,
    session_lock,
)
from sessionstore.backends.files.log import (
    LogInfo,
    append_lines,
    dump_line,
    fsync_dir,
    tail_records,
    write_replace,
    write_temp,
)
from sessionstore.backends.files.repair import clear_leftovers, repair
from sessionstore.backends.files.state import State, Write
from sessionstore.errors import StoreError
from sessionstore.keys import SessionKey

__all__ = ["COMPACT_MIN_GARBAGE", "SessionDir"]

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
                clear_leftovers(self.path)
                write = Write(State(self.key.session_id, self.key.user_id, now, now))
                write.dirty = True
                if self.sync:  # make the new directories' names durable too
                    fsync_dir(self.path.parent)
                    fsync_dir(self.path.parent.parent)
            else:
                write = Write(state)
                write.dirty = repair(self.path, state)
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

    # -- reads (inside ``reading`` or ``writing``) -------------------------------

    def latest_entries(self, state: State, count: int) -> list[dict[str, Any]]:
        """Return the records of the newest ``count`` live entries, oldest first."""
        return replay.latest_entries(self.path / ENTRIES, state.entries, count)

    def find_entry(self, state: State, qa_id: str) -> dict[str, Any] | None:
        """Return the current record of entry ``qa_id``, or ``None``."""
        return replay.find_entry(self.path / ENTRIES, state.entries, qa_id)

    def live_entries(self, state: State) -> dict[str, tuple[int, dict[str, Any]]]:
        """Return every live entry as ``id -> (n, record)`` in order of creation."""
        return replay.live_entries(self.path / ENTRIES, state.entries)

    def trace_records(self, state: State, count: int | None) -> list[dict[str, Any]]:
        """Return the newest ``count`` trace records (all if ``None``), oldest first."""
        return tail_records(self.path / TRACES, state.traces, count)

    def read_graph(self, state: State) -> str | None:
        """Return the committed graph context, or ``None``."""
        if not state.graph:
            return None
        path = self.path / GRAPH
        return decode_graph(path, path.read_bytes())

    # -- writes (inside ``writing``) -------------------------------------------

    def append_entries(self, write: Write, lines: list[dict[str, Any]]) -> None:
        """Append lines to ``entries.jsonl`` and advance its committed info in ``write``."""
        write.state.entries = self._append(ENTRIES, lines, write.state.entries)
        write.touched = True

    def append_traces(self, write: Write, records: list[dict[str, Any]]) -> None:
        """Append trace records to ``traces.jsonl`` and advance its committed info."""
        write.state.traces = self._append(TRACES, records, write.state.traces)
        write.touched = True

    def _append(self, name: str, records: list[dict[str, Any]], old: LogInfo | None) -> LogInfo:
        data = b"".join(dump_line(r) for r in records)
        fd = os.open(self.path / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        try:
            append_lines(fd, data, sync=self.sync)
            stat = os.fstat(fd)
        finally:
            os.close(fd)
        info = LogInfo(stat.st_ino, stat.st_size, len(records))
        if old is not None and old.ino == info.ino:
            info.lines += old.lines
        return info

    def compact_if_needed(self, state: State) -> None:
        """Rewrite ``entries.jsonl`` with live entries only, if dead lines dominate."""
        info = state.entries
        if info is None:
            return
        garbage = info.lines - state.qa_count
        if garbage < COMPACT_MIN_GARBAGE or garbage <= state.qa_count:
            return
        live = self.live_entries(state)
        data = b"".join(dump_line(entry_line(n, ADD, entry)) for n, entry in live.values())
        inode = write_replace(self.path / ENTRIES, data, sync=self.sync)
        state.entries = LogInfo(inode, len(data), len(live))

    def write_graph(self, write: Write, context: str) -> None:
        """Replace ``graph.json``."""
        write_replace(self.path / GRAPH, encode_graph(context), sync=self.sync)
        write.state.graph = True
        write.touched = True

    def replace(
        self,
        state: State,
        lines: list[dict[str, Any]],
        traces: list[dict[str, Any]],
        graph: str | None,
    ) -> None:
        """Replace the whole session with the given contents (for import).

        The new files are written first; the old session ends when its
        ``state.json`` is removed, and the new one exists once the new
        ``state.json`` is in place.

        Args:
            state: the new session's state; its logs and counts are filled in.
            lines: the lines of the new ``entries.jsonl``, numbered from 1.
            traces: the trace records of the new ``traces.jsonl``.
            graph: the new graph context, or ``None`` for none.

        """
        staged: list[tuple[Path, Path]] = []

        def stage(name: str, data: bytes) -> int:
            tmp, inode = write_temp(self.path / name, data, sync=self.sync)
            staged.append((tmp, self.path / name))
            return inode

        data = b"".join(dump_line(line) for line in lines)
        state.entries = LogInfo(stage(ENTRIES, data), len(data), len(lines))
        data = b"".join(dump_line(record) for record in traces)
        state.traces = LogInfo(stage(TRACES, data), len(data), len(traces))
        if graph is not None:
            stage(GRAPH, encode_graph(graph))
        state.graph = graph is not None
        state.qa_count = len(lines)
        state.next_n = len(lines) + 1
        (self.path / STATE).unlink(missing_ok=True)
        if graph is None:
            (self.path / GRAPH).unlink(missing_ok=True)
        for tmp, final in staged:
            tmp.replace(final)
        if state.is_empty():
            self.remove_files()
        else:
            self._commit(state)
