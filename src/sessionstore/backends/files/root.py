"""The root directory of a ``file://`` store: what the store has instead of a connection.

It runs the blocking calls in a worker thread and translates their
:class:`OSError` into :class:`StoreError` (:meth:`StoreRoot.run`, the one
place), and holds the marker, walking the root, prune and sweep.

Only names this backend makes are touched: ``sessionstore.json``, user
directories (``anonymous``, ``u-*``, ``uh-*``) and, inside them, session
directories (``s-*``, ``sh-*``) with their known files, and ``scoped`` with
its scope directories (``scoped.py``). Anything else a
person puts under the root is left alone, and a symbolic link is never
followed (``directory.py``).
"""

from __future__ import annotations

import asyncio
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

from sessionstore.backends.files.directory import Directory, SymlinkError
from sessionstore.backends.files.layout import (
    LAYOUT,
    MARKER,
    is_session_dir_name,
    is_user_dir_name,
    session_dir_name,
    user_dir_name,
)
from sessionstore.backends.files.log import append_lines
from sessionstore.backends.files.scoped import prune_scopes
from sessionstore.backends.files.session import SessionDir, read_state
from sessionstore.backends.files.state import State
from sessionstore.errors import StoreError
from sessionstore.keys import SessionKey
from sessionstore.observe import logger_for

__all__ = ["StoreRoot"]

_log = logger_for(__name__)

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
        self._sweep_users: deque[str] = deque()  # user directory names
        self._sweep_sessions: deque[tuple[str, str]] = deque()  # (user, session) names

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
            StoreError: the directory holds a marker of another layout, or
                the marker is a link.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, "Permission denied", str(self.path))
        self.resolved = self.path.resolve(strict=True)
        with Directory.root(self.path) as top:
            raw = top.read(MARKER)
            if raw is None:
                tmp = f".{MARKER}.{os.getpid()}.{uuid.uuid4().hex}"
                fd = top.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
                try:
                    append_lines(fd, json.dumps({"layout": LAYOUT}).encode() + b"\n", sync=False)
                finally:
                    os.close(fd)
                top.replace(tmp, MARKER)
                return
        try:
            layout = json.loads(raw)["layout"]
        except (ValueError, KeyError, TypeError):
            layout = None
        if layout != LAYOUT:
            raise StoreError(
                f"{self.path / MARKER} does not describe a {LAYOUT!r} store; "
                "point the file:// URL at a store directory or an empty one"
            )

    def session(self, key: SessionKey) -> SessionDir:
        """Return the directory of one session (it may not exist)."""
        return self._session(user_dir_name(key.user_id), session_dir_name(key.session_id), key)

    def _session(self, user: str, session: str, key: SessionKey | None = None) -> SessionDir:
        return SessionDir(self.path, user, session, key, sync=self.sync)

    def user_dirs(self) -> list[str]:
        """Return the name of every user directory under the root.

        Raises:
            SymlinkError: one of them is a symbolic link.
        """
        with Directory.root(self.path) as top:
            names, links = top.subdirs(is_user_dir_name)
        if links:
            raise SymlinkError(links[0])
        return names

    def live_states(self, user: str, now: datetime) -> list[State]:
        """Return the live, non-empty sessions of the user directory ``user``.

        ``state.json`` is replaced atomically, so it is read without the lock.
        Expired sessions found on the way are removed.

        Raises:
            SymlinkError: the user directory or one of its sessions' is a link.
        """
        states = []
        expired = []
        with Directory.root(self.path) as top, top.subdir(user, create=False) as user_dir:
            if user_dir is None:
                return []
            names, links = user_dir.subdirs(is_session_dir_name)
            if links:
                raise SymlinkError(links[0])
            for name in names:
                with user_dir.subdir(name, create=False) as directory:
                    state = None if directory is None else read_state(directory, None)
                if state is None:
                    continue
                if state.expired(now):
                    expired.append(name)
                elif not state.is_empty():
                    states.append(state)
        for name in expired:
            self._session(user, name).remove_if_expired(now)
        if expired:
            _log.info("removed %d expired sessions under %s", len(expired), self.path)
        return states

    def prune(self) -> None:
        """Delete every session of every user, and every user's and app's state; leave the rest.

        Symbolic links are left too, never followed; they are named in the
        error raised once everything else is deleted.

        Raises:
            StoreError: the root holds links named like a user or session
                directory, or session directories holding links.
        """
        refused: list[Path] = []
        with Directory.root(self.path) as top:
            users, links = top.subdirs(is_user_dir_name)
            refused += links
            for user in users:
                with top.subdir(user, create=False) as user_dir:
                    if user_dir is None:
                        continue
                    sessions, links = user_dir.subdirs(is_session_dir_name)
                refused += links
                for session in sessions:
                    try:
                        self._session(user, session).remove()
                    except SymlinkError as exc:
                        refused.append(exc.path)
                # It may hold something this store did not make, or a new session.
                top.rmdir(user)
            refused += prune_scopes(self.path, top)
        if refused:
            raise StoreError(
                "prune deleted every session but left these symbolic links, which the "
                f"file store never follows: {', '.join(map(str, refused))}; remove them"
            )

    def sweep(self, now: datetime) -> None:
        """Remove a few expired sessions, resuming where the last call stopped.

        Lazy expiry for sessions nobody reads again: each write looks at
        ``SWEEP_STEP`` directories, so no call walks the whole root. Links
        and damaged sessions are skipped: whoever reads them is told.
        """
        if not self._sweep_lock.acquire(blocking=False):
            return
        try:
            for _ in range(SWEEP_STEP):
                try:
                    if not self._sweep_step(now):
                        break
                except (StoreError, OSError):
                    # The write that called this has committed: a session the sweep
                    # cannot read is left for whoever reads it, never reported here.
                    continue
        finally:
            self._sweep_lock.release()

    def _peek_state(self, user: str, session: str) -> State | None:
        """Return the committed state of one session, read without its lock."""
        with Directory.root(self.path) as top, top.subdir(user, create=False) as user_dir:
            if user_dir is None:
                return None
            with user_dir.subdir(session, create=False) as directory:
                return None if directory is None else read_state(directory, None)

    def _sweep_step(self, now: datetime) -> bool:
        """Look at the next directory; return ``False`` after starting a new round."""
        if self._sweep_sessions:
            user, name = self._sweep_sessions.popleft()
            state = self._peek_state(user, name)
            if state is not None and state.expired(now):
                self._session(user, name).remove_if_expired(now)
                _log.info("expiry sweep removed 1 expired session under %s", self.path)
        elif self._sweep_users:
            user = self._sweep_users.popleft()
            with Directory.root(self.path) as top, top.subdir(user, create=False) as user_dir:
                names = [] if user_dir is None else user_dir.subdirs(is_session_dir_name)[0]
            self._sweep_sessions.extend((user, name) for name in names)
        else:
            with Directory.root(self.path) as top:
                self._sweep_users.extend(top.subdirs(is_user_dir_name)[0])
            return False
        return True
