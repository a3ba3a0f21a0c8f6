"""The root directory of a ``file://`` store: what the store has instead of a connection.

It runs the blocking calls in a worker thread and translates their
:class:`OSError` into :class:`StoreError` (:meth:`StoreRoot.run`, the one
place), and holds the marker, walking the root, prune and sweep.

Only names this backend makes are touched: ``sessionstore.json``, user
directories (``anonymous``, ``u-*``, ``uh-*``) and, inside them, session
directories (``s-*``, ``sh-*``) with their known files. Anything else a
person puts under the root is left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import threading
import uuid
from collections import deque
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import ParamSpec, TypeVar

from sessionstore.backends.files.layout import (
    LAYOUT,
    MARKER,
    is_session_dir_name,
    is_user_dir_name,
    session_dir_name,
    session_lock,
    user_dir_name,
)
from sessionstore.backends.files.session import SessionDir
from sessionstore.backends.files.state import State
from sessionstore.errors import StoreError
from sessionstore.keys import SessionKey

__all__ = ["StoreRoot"]

P = ParamSpec("P")
T = TypeVar("T")

# Session directories checked for expiry after each write (ttl stores only).
SWEEP_STEP = 2


class StoreRoot:
    """The directory holding one store; methods but :meth:`run` do blocking I/O.

    Args:
        path: the absolute root directory.
        sync: ``fsync`` every write (``durability="fsync"``).
    """

    def __init__(self, path: Path, *, sync: bool) -> None:
        self.path = path
        self.sync = sync
        self.resolved: Path | None = None
        self._sweep_lock = threading.Lock()
        self._sweep_users: deque[Path] = deque()
        self._sweep_sessions: deque[Path] = deque()

    # -- running calls -----------------------------------------------------------

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run the blocking ``fn`` in a worker thread.

        Raises:
            StoreError: ``fn`` raised :class:`OSError`; the message names the
                path and what to do.
        """
        return await asyncio.to_thread(self._translated, lambda: fn(*args, **kwargs))

    def _translated(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except OSError as exc:
            raise self.translate(exc) from exc

    def translate(self, exc: OSError) -> StoreError:
        """Return the :class:`StoreError` saying what ``exc`` means for this store."""
        where = exc.filename or self.path
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            advice = "the disk is full; free some space and retry"
        elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            advice = "make it writable by this process or choose another root directory"
        else:
            advice = "check the directory and retry"
        return StoreError(f"file store at {self.path}: {where}: {exc.strerror}; {advice}")

    # -- the root ----------------------------------------------------------------

    def open(self) -> None:
        """Create the root and its marker, or check an existing marker.

        Also sets :attr:`resolved`, the root's real path (symbolic links and
        ``..`` resolved): the identity of the store's data.

        Raises:
            OSError: the root cannot be created or written.
            StoreError: the directory holds a marker of another layout.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, "Permission denied", str(self.path))
        self.resolved = self.path.resolve(strict=True)
        marker = self.path / MARKER
        try:
            raw = marker.read_bytes()
        except FileNotFoundError:
            tmp = self.path / f".{MARKER}.{os.getpid()}.{uuid.uuid4().hex}"
            tmp.write_bytes(json.dumps({"layout": LAYOUT}).encode() + b"\n")
            tmp.replace(marker)
            return
        try:
            layout = json.loads(raw)["layout"]
        except (ValueError, KeyError, TypeError):
            layout = None
        if layout != LAYOUT:
            raise StoreError(
                f"{marker} does not describe a {LAYOUT!r} store; "
                "point the file:// URL at a store directory or an empty one"
            )

    def session(self, key: SessionKey) -> SessionDir:
        """Return the directory of one session (it may not exist)."""
        path = self.path / user_dir_name(key.user_id) / session_dir_name(key.session_id)
        return SessionDir(path, key, sync=self.sync)

    def user_dir(self, user_id: str | None) -> Path:
        """Return the directory of one user (it may not exist)."""
        return self.path / user_dir_name(user_id)

    def user_dirs(self) -> list[Path]:
        """Return every user directory under the root."""
        with os.scandir(self.path) as found:
            return [Path(e.path) for e in found if is_user_dir_name(e.name) and e.is_dir()]

    def session_dirs(self, user_dir: Path) -> list[Path]:
        """Return every session directory of one user directory."""
        try:
            with os.scandir(user_dir) as found:
                return [Path(e.path) for e in found if is_session_dir_name(e.name) and e.is_dir()]
        except FileNotFoundError:
            return []

    def live_states(self, user_dir: Path, now: datetime) -> list[State]:
        """Return the live, non-empty sessions of one user directory.

        ``state.json`` is replaced atomically, so it is read without the lock.
        Expired sessions found on the way are removed.
        """
        states = []
        for path in self.session_dirs(user_dir):
            session = SessionDir(path, None, sync=self.sync)
            state = session.load_state()
            if state is None:
                continue
            if state.expired(now):
                session.remove_if_expired(now)
            elif not state.is_empty():
                states.append(state)
        return states

    def prune(self) -> None:
        """Delete every session of every user; leave everything else."""
        for user_dir in self.user_dirs():
            for path in self.session_dirs(user_dir):
                with session_lock(path, exclusive=True, create=False) as locked:
                    if locked:
                        SessionDir(path, None, sync=self.sync).remove_files()
            # It may hold something this store did not make, or a new session.
            with contextlib.suppress(OSError):
                user_dir.rmdir()

    def sweep(self, now: datetime) -> None:
        """Remove a few expired sessions, resuming where the last call stopped.

        Lazy expiry for sessions nobody reads again: each write looks at
        ``SWEEP_STEP`` directories, so no call walks the whole root.
        """
        if not self._sweep_lock.acquire(blocking=False):
            return
        try:
            for _ in range(SWEEP_STEP):
                if self._sweep_sessions:
                    path = self._sweep_sessions.popleft()
                    session = SessionDir(path, None, sync=self.sync)
                    try:
                        state = session.load_state()
                        if state is not None and state.expired(now):
                            session.remove_if_expired(now)
                    except StoreError:
                        continue  # a corrupt session is reported to whoever reads it
                elif self._sweep_users:
                    self._sweep_sessions.extend(self.session_dirs(self._sweep_users.popleft()))
                else:
                    self._sweep_users.extend(self.user_dirs())
                    break
        finally:
            self._sweep_lock.release()
