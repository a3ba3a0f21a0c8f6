"""The root directory of a ``file://`` store: its marker, walking it, prune, sweep.

Only names this backend makes are touched: ``sessionstore.json``, user
directories (``anonymous``, ``u-*``, ``uh-*``) and, inside them, session
directories (``s-*``, ``sh-*``) with their known files. Anything else a
person puts under the root is left alone.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import threading
import uuid
from collections import deque
from datetime import datetime
from pathlib import Path

from sessionstore.backends.files_layout import (
    is_session_dir_name,
    is_user_dir_name,
    session_dir_name,
    session_lock,
    user_dir_name,
)
from sessionstore.backends.files_session import SessionDir
from sessionstore.backends.files_state import State
from sessionstore.errors import StoreError
from sessionstore.store import SessionKey

__all__ = ["LAYOUT", "MARKER", "StoreRoot"]

MARKER = "sessionstore.json"
LAYOUT = "sessionstore.files/1"
# Session directories checked for expiry after each write (ttl stores only).
SWEEP_STEP = 2


class StoreRoot:
    """The directory holding one store; methods do blocking I/O (run them in a thread).

    Args:
        path: the absolute root directory.
        sync: ``fsync`` every write (``durability="fsync"``).
    """

    def __init__(self, path: Path, *, sync: bool) -> None:
        self.path = path
        self.sync = sync
        self._sweep_lock = threading.Lock()
        self._sweep_users: deque[Path] = deque()
        self._sweep_sessions: deque[Path] = deque()

    def open(self) -> None:
        """Create the root and its marker, or check an existing marker.

        Raises:
            OSError: the root cannot be created or written.
            StoreError: the directory holds a marker of another layout.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, "Permission denied", str(self.path))
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
