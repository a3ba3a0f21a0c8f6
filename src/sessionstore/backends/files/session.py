"""One session directory of the ``file://`` backend and its commit protocol.

A session directory holds ``state.json`` (ids, times, counters, the committed
size of each log, and the files pending), ``entries.jsonl``, ``traces.jsonl``
and ``items.jsonl`` (the logs, whose lines ``codec.py`` describes),
``graph.json``, ``values.json`` (the session's state), and ``.lock``, the
``flock`` every call takes (shared to read, exclusive to write).

``state.json`` is the one commit point: it is replaced (temp file +
``os.replace``) once everything it names is written, and a crash at any
moment leaves the old state or the new one, as every read sees it.

- An append writes past the committed size of a log, then commits the new
  size; readers read a log only up to its committed size.
- A write that replaces whole files (compaction, the graph context, the
  state's values, an import) *stages* each as ``<name>.next``, then commits a state listing
  them as ``pending``, then *installs* them: renames each over ``<name>``
  and commits the state again with nothing pending. While a file is
  pending, readers read ``<name>.next``, or ``<name>`` once the rename is
  done. The next writer finishes an install a crash interrupted, and
  removes a ``.next`` no commit lists (``repair.py``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sessionstore.backends.files import item_log, replay, trace_index
from sessionstore.backends.files.codec import (
    ADD,
    decode_graph,
    decode_values,
    encode_graph,
    encode_values,
    entry_line,
    item_line,
    trace_id_line,
)
from sessionstore.backends.files.directory import Directory
from sessionstore.backends.files.layout import (
    ENTRIES,
    GRAPH,
    ITEMS,
    LOCK_FILE,
    NEXT,
    STATE,
    TRACE_IDS,
    TRACES,
    VALUES,
    session_lock,
)
from sessionstore.backends.files.log import (
    TMP,
    TORN,
    LogInfo,
    append_lines,
    dump_line,
    tail_records,
    write_new,
    write_replace,
)
from sessionstore.backends.files.repair import clear_leftovers, repair
from sessionstore.backends.files.state import State, Write
from sessionstore.errors import StoreError
from sessionstore.items import ItemRecord
from sessionstore.keys import SessionKey

__all__ = ["COMPACT_MIN_GARBAGE", "SessionDir", "read_state"]

_OWN_FILES = (STATE, ENTRIES, TRACES, GRAPH, ITEMS, VALUES, TRACE_IDS)
_SUFFIXES = ("", TMP, NEXT, TORN)
# Compact a log once dead lines are at least this many and outnumber live ones.
COMPACT_MIN_GARBAGE = 32


def read_state(directory: Directory, key: SessionKey | None) -> State | None:
    """Return the committed state in ``directory``, or ``None`` if it holds no session.

    ``state.json`` is replaced atomically, so this needs no lock.

    Raises:
        StoreError: ``state.json`` is corrupt, a link, or belongs to another
            id than ``key`` (when given).
    """
    raw = directory.read(STATE)
    if raw is None:
        return None
    path = directory.path / STATE
    state = State.parse(path, raw)
    if key is not None and (state.session_id, state.user_id) != key:
        raise StoreError(
            f"{path} holds session {state.session_id!r} of user {state.user_id!r}, "
            f"not {key.session_id!r} of {key.user_id!r}; move it away"
        )
    return state


class SessionDir:
    """The files of one session, ``<root>/<user>/<session>``.

    Every method but :meth:`reading`, :meth:`writing`, :meth:`replace` and
    :meth:`remove_if_expired` runs inside one of them, on the directory they
    opened and locked.
    """

    def __init__(
        self, root: Path, user: str, session: str, key: SessionKey | None, *, sync: bool
    ) -> None:
        self.root = root
        self.names = (user, session)
        self.path = root / user / session
        self.key = key
        self.sync = sync
        self._open: Directory | None = None

    @property
    def _dir(self) -> Directory:
        assert self._open is not None, "used outside reading() or writing()"
        return self._open

    @contextmanager
    def _locked(self, *, exclusive: bool, create: bool) -> Iterator[bool]:
        with session_lock(
            self.root, *self.names, exclusive=exclusive, create=create, sync=self.sync
        ) as directory:
            self._open = directory
            try:
                yield directory is not None
            finally:
                self._open = None

    # -- state ---------------------------------------------------------------

    def _load(self) -> State | None:
        return read_state(self._dir, self.key)

    def _commit(self, state: State) -> None:
        write_replace(self._dir, STATE, state.to_bytes(), sync=self.sync)

    def _stage(self, name: str, data: bytes, state: State) -> int:
        """Write ``<name>.next`` and list it as pending; return its inode number."""
        inode = write_new(self._dir, name + NEXT, data, sync=self.sync)
        if self.sync:  # its name must be durable before a commit lists it
            self._dir.fsync()
        if name not in state.pending:
            state.pending += (name,)
        return inode

    def _install(self, state: State) -> None:
        """Move the committed state's staged files into place, then commit it again."""
        for name in state.pending:
            with contextlib.suppress(FileNotFoundError):  # moved before a crash
                self._dir.replace(name + NEXT, name)
        if self.sync:
            self._dir.fsync()
        state.pending = ()
        self._commit(state)

    def _committed_name(self, state: State, name: str) -> str:
        """Return which file holds the committed ``name`` (see the module docstring)."""
        if name in state.pending and self._dir.has_file(name + NEXT):
            return name + NEXT
        return name

    # -- reading and writing --------------------------------------------------

    @contextmanager
    def reading(self, now: datetime) -> Iterator[State | None]:
        """Hold the shared lock and yield the live state (``None``: no session)."""
        expired = False
        with self._locked(exclusive=False, create=False) as locked:
            state = self._load() if locked else None
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
        ended), then installs what the write staged. Yields ``None`` when the
        session does not exist and ``create`` is false.
        """
        with self._locked(exclusive=True, create=create) as locked:
            state = self._load() if locked else None
            if state is not None and state.expired(now):
                if not create:
                    self.remove_files()
                    yield None
                    return
                self._dir.unlink(STATE)
                state = None
            if state is None and not create:
                yield None
                return
            fresh = state is None
            if state is None:
                assert self.key is not None
                clear_leftovers(self._dir)
                state = State(self.key.session_id, self.key.user_id, now, now)
            else:
                self._settle(state)
            write = Write(state)
            try:
                yield write
            except BaseException:
                if fresh:  # refused before its commit (a stale revision): leave no directory
                    self.remove_files()
                raise
            state = write.state
            if write.remove or (write.touched and state.is_empty()):
                self.remove_files()
                return
            if write.touched:
                state.updated_at, state.expires_at = now, expires_at
                self._commit(state)
            if state.pending:
                self._install(state)

    def _settle(self, state: State) -> None:
        """Finish an install a crash interrupted, then repair what a crash left."""
        if state.pending:
            self._install(state)
        repair(self._dir, state)

    def remove_if_expired(self, now: datetime) -> None:
        """Delete the session's files if it is (still) expired."""
        with self._locked(exclusive=True, create=False) as locked:
            state = self._load() if locked else None
            if state is not None and state.expired(now):
                self.remove_files()

    def remove(self) -> bool:
        """Delete the session's files, whatever they hold; return whether it existed."""
        with self._locked(exclusive=True, create=False) as locked:
            if locked:
                self.remove_files()
            return locked

    def remove_files(self) -> None:
        """Delete this session's files (``state.json`` first), lock file, directory.

        Files this backend did not make are left, and with them the directory.
        """
        for name in _OWN_FILES:
            for suffix in _SUFFIXES:
                self._dir.unlink(name + suffix)
        self._dir.unlink(LOCK_FILE)
        self._dir.remove()  # unless it holds a file someone else put here

    # -- reads (inside ``reading`` or ``writing``) -------------------------------

    def latest_entries(self, state: State, count: int) -> list[dict[str, Any]]:
        """Return the records of the newest ``count`` live entries, oldest first."""
        name = self._committed_name(state, ENTRIES)
        return replay.latest_entries(self._dir, name, state.entries, count)

    def find_entry(self, state: State, qa_id: str) -> dict[str, Any] | None:
        """Return the current record of entry ``qa_id``, or ``None``."""
        name = self._committed_name(state, ENTRIES)
        return replay.find_entry(self._dir, name, state.entries, qa_id)

    def live_entries(self, state: State) -> dict[str, tuple[int, dict[str, Any]]]:
        """Return every live entry as ``id -> (n, record)`` in order of creation."""
        name = self._committed_name(state, ENTRIES)
        return replay.live_entries(self._dir, name, state.entries)

    def trace_records(self, state: State, count: int | None) -> list[dict[str, Any]]:
        """Return the newest ``count`` trace records (all if ``None``), oldest first."""
        name = self._committed_name(state, TRACES)
        return tail_records(self._dir, name, state.traces, count)

    def items(self, state: State, count: int | None) -> list[ItemRecord]:
        """Return the newest ``count`` live items (all if ``None``), oldest first."""
        return [item for _, item in self._items(state, count)]

    def _items(self, state: State, count: int | None) -> list[tuple[int, ItemRecord]]:
        name = self._committed_name(state, ITEMS)
        if count is None:
            return item_log.live_items(self._dir, name, state.items)
        return item_log.latest_items(self._dir, name, state.items, count)

    def has_item(self, state: State, item_id: str) -> bool:
        """Return whether the item ``item_id`` is live."""
        return item_log.has_item(
            self._dir, self._committed_name(state, ITEMS), state.items, item_id
        )

    def read_values(self, state: State) -> dict[str, str]:
        """Return the committed values of the session's state (key -> JSON text)."""
        if not state.state_values:
            return {}
        name = self._committed_name(state, VALUES)
        raw = self._dir.read(name)
        if raw is None:
            raise StoreError(f"{self._dir.path / name} is missing; restore it")
        return decode_values(self._dir.path / name, raw)

    def read_graph(self, state: State) -> str | None:
        """Return the committed graph context, or ``None``."""
        if not state.graph:
            return None
        name = self._committed_name(state, GRAPH)
        raw = self._dir.read(name)
        if raw is None:
            raise StoreError(f"{self._dir.path / name} is missing; restore it")
        return decode_graph(self._dir.path / name, raw)

    # -- writes (inside ``writing``) -------------------------------------------

    def append_entries(self, write: Write, lines: list[dict[str, Any]]) -> None:
        """Append lines to ``entries.jsonl`` and advance its committed info in ``write``."""
        write.state.entries = self._append(ENTRIES, lines, write.state.entries)
        write.touched = True

    def add_trace(self, write: Write, record: dict[str, Any], trace_id: str) -> bool:
        """Append a trace record and its id's index line, unless the session holds the id.

        Returns:
            ``False``, writing nothing, when ``trace_ids.jsonl`` holds the id.

        """
        state = write.state
        line = trace_id_line(trace_id)
        name = self._committed_name(state, TRACE_IDS)
        index = trace_index.read_index(self._dir, name, state.trace_ids, state.traces)
        if index is None:  # no index yet, or one another version left behind: make it
            index = trace_index.index_of(self.trace_records(state, None))
            if trace_index.holds(index, line):
                return False
            data = index + line
            lines = (0 if state.traces is None else state.traces.lines) + 1
            state.trace_ids = LogInfo(self._stage(TRACE_IDS, data, state), len(data), lines)
        elif trace_index.holds(index, line):
            return False
        else:
            state.trace_ids = self._append_bytes(TRACE_IDS, line, 1, state.trace_ids)
        state.traces = self._append(TRACES, [record], state.traces)
        write.touched = True
        return True

    def append_items(self, write: Write, items: list[ItemRecord]) -> None:
        """Append ``add`` lines of ``items`` to ``items.jsonl``, one write of the file."""
        state = write.state
        data = b"".join(item_line(state.take_n(), item) for item in items)
        state.items = self._append_bytes(ITEMS, data, len(items), state.items)
        state.item_count += len(items)
        write.touched = True

    def append_item_records(self, write: Write, records: list[dict[str, Any]]) -> None:
        """Append ``delete`` or ``clear`` records to ``items.jsonl`` (counts: the caller's)."""
        write.state.items = self._append(ITEMS, records, write.state.items)
        write.touched = True

    def _append(self, name: str, records: list[dict[str, Any]], old: LogInfo | None) -> LogInfo:
        return self._append_bytes(name, b"".join(dump_line(r) for r in records), len(records), old)

    def _append_bytes(self, name: str, data: bytes, count: int, old: LogInfo | None) -> LogInfo:
        # repair() truncated the file to ``old.size``: it is the committed log.
        fd = self._dir.open(name, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            append_lines(fd, data, sync=self.sync)
            stat = os.fstat(fd)
        finally:
            os.close(fd)
        lines = count + (0 if old is None else old.lines)
        return LogInfo(stat.st_ino, stat.st_size, lines)

    def compact_if_needed(self, write: Write) -> None:
        """Stage ``entries.jsonl`` with live entries only, if dead lines dominate."""
        state = write.state
        if not _dead_lines_dominate(state.entries, state.qa_count):
            return
        live = self.live_entries(state)
        data = b"".join(dump_line(entry_line(n, ADD, entry)) for n, entry in live.values())
        state.entries = LogInfo(self._stage(ENTRIES, data, state), len(data), len(live))

    def compact_items_if_needed(self, write: Write) -> None:
        """Stage ``items.jsonl`` with live items only, if dead lines dominate."""
        state = write.state
        if not _dead_lines_dominate(state.items, state.item_count):
            return
        live = self._items(state, None)
        data = b"".join(item_line(n, item) for n, item in live)
        state.items = LogInfo(self._stage(ITEMS, data, state), len(data), len(live))

    def write_values(self, write: Write, values: dict[str, str]) -> None:
        """Stage a new ``values.json`` and count one more revision of the state."""
        self._stage(VALUES, encode_values(values), write.state)
        write.state.state_values = True
        write.state.state_revision += 1
        write.touched = True

    def write_graph(self, write: Write, context: str) -> None:
        """Stage a new ``graph.json``."""
        self._stage(GRAPH, encode_graph(context), write.state)
        write.state.graph = True
        write.touched = True

    def replace(  # noqa: PLR0917 - the parts of a session, each its own file
        self,
        state: State,
        lines: list[dict[str, Any]],
        traces: list[dict[str, Any]],
        graph: str | None,
        items: list[ItemRecord],
        values: dict[str, str],
    ) -> None:
        """Replace the whole session with the given contents (for import), atomically.

        The new files are staged, then one commit of the new ``state.json``
        replaces the old session with the new one, then they are installed.

        Args:
            state: the new session's state; its logs and counts are filled in,
                its ``state_revision`` is the new state's.
            lines: the lines of the new ``entries.jsonl``, numbered from 1.
            traces: the trace records of the new ``traces.jsonl``.
            graph: the new graph context, or ``None`` for none.
            items: the items of the new ``items.jsonl``.
            values: the values of the new ``values.json``.

        """
        with self._locked(exclusive=True, create=True):
            old = self._load()
            if old is not None and old.pending:
                self._install(old)  # its staged files must be in place before ours
            if not (
                lines or traces or graph is not None or items or values or state.state_revision
            ):
                self.remove_files()
                return
            data = b"".join(dump_line(line) for line in lines)
            state.entries = LogInfo(self._stage(ENTRIES, data, state), len(data), len(lines))
            data = b"".join(dump_line(record) for record in traces)
            state.traces = LogInfo(self._stage(TRACES, data, state), len(data), len(traces))
            data = trace_index.index_of(traces)
            state.trace_ids = LogInfo(self._stage(TRACE_IDS, data, state), len(data), len(traces))
            if graph is not None:
                self._stage(GRAPH, encode_graph(graph), state)
            state.graph = graph is not None
            state.qa_count = len(lines)
            state.next_n = len(lines) + 1
            if items:
                data = b"".join(item_line(state.take_n(), item) for item in items)
                state.items = LogInfo(self._stage(ITEMS, data, state), len(data), len(items))
            state.item_count = len(items)
            state.state_values = bool(values)
            if values:
                self._stage(VALUES, encode_values(values), state)
            self._commit(state)
            if not state.graph:
                self._dir.unlink(GRAPH)
            if state.items is None:
                self._dir.unlink(ITEMS)
            if not state.state_values:
                self._dir.unlink(VALUES)
            self._install(state)


def _dead_lines_dominate(info: LogInfo | None, live: int) -> bool:
    """Return whether a log with ``live`` live records is worth compacting."""
    if info is None:
        return False
    garbage = info.lines - live
    return garbage >= COMPACT_MIN_GARBAGE and garbage > live
