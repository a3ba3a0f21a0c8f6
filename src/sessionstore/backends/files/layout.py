"""Where the ``file://`` backend keeps things: file and directory names, and locks.

Layout under the root (see ``docs/backends/files.md``)::

    <root>/sessionstore.json           marker: which layout this root holds
    <root>/<user dir>/<session dir>/   one directory per user and per session
        state.json  entries.jsonl  traces.jsonl  trace_ids.jsonl  graph.json
        items.jsonl  values.json  .lock
    <root>/scoped/<scope dir>/         a user's or an app's state
        scope.json  .lock

A user directory is ``anonymous`` for the anonymous user (``user_id=None``),
``u-<encoded id>`` for any other user; a session directory is
``s-<encoded id>``. A scope directory is a user directory's name (that user's
state) or ``a-<encoded app name>`` (an app's state); ``scoped`` is no user
directory's name, so no user or session id reaches it.

The encoding keeps ``a-z 0-9 . _ -`` and writes every other UTF-8 byte as
``%xx`` with lower-case hex, so names are reversible, never hold ``/`` or
upper-case letters (``A`` and ``a`` stay apart on case-insensitive file
systems), and never equal ``.``, ``..`` or a reserved device name. An encoded
name over 255 bytes becomes ``uh-``/``sh-``/``ah-`` plus the SHA-256 of the
id; the original id is then read from the session's ``state.json`` (or the
scope's ``scope.json``).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import unquote

from sessionstore.backends.files.directory import Directory
from sessionstore.errors import StoreError

__all__ = [
    "ANONYMOUS_DIR",
    "ENTRIES",
    "GRAPH",
    "ITEMS",
    "LAYOUT",
    "LOCK_ATTEMPTS",
    "LOCK_FILE",
    "MARKER",
    "NEXT",
    "SCOPED_DIR",
    "STATE",
    "TRACES",
    "TRACE_IDS",
    "VALUES",
    "decode_name",
    "is_scope_dir_name",
    "is_session_dir_name",
    "is_user_dir_name",
    "scope_dir_name",
    "session_dir_name",
    "session_lock",
    "user_dir_name",
]

MARKER = "sessionstore.json"
LAYOUT = "sessionstore.files/1"  # what the marker says this root holds
# The files of a session directory (what each holds: ``session.py``).
STATE, ENTRIES, TRACES, GRAPH = "state.json", "entries.jsonl", "traces.jsonl", "graph.json"
ITEMS, VALUES = "items.jsonl", "values.json"  # the item log; a state's values
TRACE_IDS = "trace_ids.jsonl"  # the index of the trace ids in traces.jsonl
SCOPED_DIR = "scoped"  # holds the users' and apps' states: no user directory is named so
LOCK_FILE = ".lock"
NEXT = ".next"  # a file staged to replace another, in place once state.json lists it
# Times a call tries to lock a session that others keep deleting before it gives up.
LOCK_ATTEMPTS = 1000

ANONYMOUS_DIR = "anonymous"
MAX_NAME_BYTES = 255
_SAFE = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-")
_USER, _USER_HASHED = "u-", "uh-"
_SESSION, _SESSION_HASHED = "s-", "sh-"
_APP, _APP_HASHED = "a-", "ah-"


def _encode(prefix: str, hashed_prefix: str, value: str) -> str:
    raw = value.encode("utf-8")
    body = "".join(chr(b) if chr(b) in _SAFE else f"%{b:02x}" for b in raw)
    if body.endswith("."):  # Windows and some tools drop a trailing dot
        body = body[:-1] + "%2e"
    name = prefix + body
    if len(name) > MAX_NAME_BYTES:  # the name is ASCII: characters are bytes
        return hashed_prefix + hashlib.sha256(raw).hexdigest()
    return name


def user_dir_name(user_id: str | None) -> str:
    """Return the directory name of ``user_id`` (``None``: the anonymous user)."""
    return ANONYMOUS_DIR if user_id is None else _encode(_USER, _USER_HASHED, user_id)


def session_dir_name(session_id: str) -> str:
    """Return the directory name of ``session_id``."""
    return _encode(_SESSION, _SESSION_HASHED, session_id)


def scope_dir_name(kind: str, name: str | None) -> str:
    """Return the directory name, under :data:`SCOPED_DIR`, of a user's or an app's state."""
    if kind == "user":
        return user_dir_name(name)
    assert name is not None, "an app always has a name"
    return _encode(_APP, _APP_HASHED, name)


def is_scope_dir_name(name: str) -> bool:
    """Return whether ``name`` is a scope directory this backend makes."""
    return is_user_dir_name(name) or name.startswith((_APP, _APP_HASHED))


def is_user_dir_name(name: str) -> bool:
    """Return whether ``name`` is a user directory this backend makes."""
    return name == ANONYMOUS_DIR or name.startswith((_USER, _USER_HASHED))


def is_session_dir_name(name: str) -> bool:
    """Return whether ``name`` is a session directory this backend makes."""
    return name.startswith((_SESSION, _SESSION_HASHED))


def decode_name(name: str) -> str | None:
    """Return the id a directory name encodes.

    Returns:
        The user or session id; ``None`` for ``anonymous`` and for hashed
        names (``uh-``/``sh-``), whose id is kept in ``state.json``.
    """
    for prefix in (_USER, _SESSION):
        if name.startswith(prefix):
            return unquote(name[len(prefix) :], errors="strict")
    return None


@contextmanager
def session_lock(
    root: Path, user: str, session: str, *, exclusive: bool, create: bool, sync: bool = False
) -> Iterator[Directory | None]:
    """Hold the ``flock`` of a session directory and yield the directory, open.

    The directories are opened one name at a time without following links
    (:class:`Directory`). The lock is taken on ``<session>/.lock``, which a
    session delete removes while holding it; a waiter that then gets the lock
    of a removed file notices (the inode at the name changed) and tries
    again. Threads of one process exclude each other too, since each opens
    its own descriptor.

    Args:
        root: the store's root directory.
        user: the user directory's name.
        session: the session directory's name.
        exclusive: a writer's lock (``LOCK_EX``) rather than a reader's.
        create: make the directories and lock file if missing.
        sync: ``fsync`` the parent of each directory made.

    Yields:
        The session directory while locked; ``None`` (unlocked) when it does
        not exist and ``create`` is false.

    Raises:
        StoreError: the session kept being removed while this call waited
            (:data:`LOCK_ATTEMPTS` times), or a link was found on the way.
    """
    flags = os.O_RDWR | (os.O_CREAT if create else 0)
    for _ in range(LOCK_ATTEMPTS):
        with ExitStack() as held:
            found = _lock_once(held, root, user, session, flags, exclusive=exclusive, sync=sync)
            if not isinstance(found, _Retry):
                yield found
                return
    raise StoreError(
        f"{root / user / session} was removed {LOCK_ATTEMPTS} times while this call "
        "waited for its lock; retry the call"
    )


class _Retry:
    """The session directory or its lock file went away while we waited: try again."""


_RETRY = _Retry()


def _lock_once(
    held: ExitStack, root: Path, user: str, session: str, flags: int, *, exclusive: bool, sync: bool
) -> Directory | _Retry | None:
    create = bool(flags & os.O_CREAT)
    top = held.enter_context(Directory.root(root))  # a missing root is an error, not a retry
    try:
        user_dir = held.enter_context(top.subdir(user, create=create, sync=sync))
        if user_dir is None:
            return None
        directory = held.enter_context(user_dir.subdir(session, create=create, sync=sync))
        if directory is None:
            return None
        fd = directory.open(LOCK_FILE, flags)
    except FileNotFoundError:  # removed by a session delete or prune meanwhile
        return _RETRY if create else None
    held.callback(os.close, fd)
    fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
    if directory.inode(LOCK_FILE) != os.fstat(fd).st_ino:
        return _RETRY
    return directory
