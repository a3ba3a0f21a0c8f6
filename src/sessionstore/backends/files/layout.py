"""Where the ``file://`` backend keeps things: file and directory names, and locks.

Layout under the root (see ``docs/backends/files.md``)::

    <root>/sessionstore.json           marker: which layout this root holds
    <root>/<user dir>/<session dir>/   one directory per user and per session
        state.json  entries.jsonl  traces.jsonl  graph.json  .lock

A user directory is ``anonymous`` for the anonymous user (``user_id=None``),
``u-<encoded id>`` for any other user; a session directory is
``s-<encoded id>``. The encoding keeps ``a-z 0-9 . _ -`` and writes every other
UTF-8 byte as ``%xx`` with lower-case hex, so names are reversible, never hold
``/`` or upper-case letters (``A`` and ``a`` stay apart on case-insensitive
file systems), and never equal ``.``, ``..`` or a reserved device name. An
encoded name over 255 bytes becomes ``uh-``/``sh-`` plus the SHA-256 of the
id; the original id is then read from the session's ``state.json``.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote

__all__ = [
    "ANONYMOUS_DIR",
    "ENTRIES",
    "GRAPH",
    "LAYOUT",
    "LOCK_FILE",
    "MARKER",
    "STATE",
    "TRACES",
    "decode_name",
    "is_session_dir_name",
    "is_user_dir_name",
    "session_dir_name",
    "session_lock",
    "user_dir_name",
]

MARKER = "sessionstore.json"
LAYOUT = "sessionstore.files/1"  # what the marker says this root holds
# The files of a session directory (what each holds: ``session.py``).
STATE, ENTRIES, TRACES, GRAPH = "state.json", "entries.jsonl", "traces.jsonl", "graph.json"
LOCK_FILE = ".lock"

ANONYMOUS_DIR = "anonymous"
MAX_NAME_BYTES = 255
_SAFE = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-")
_USER, _USER_HASHED = "u-", "uh-"
_SESSION, _SESSION_HASHED = "s-", "sh-"


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
def session_lock(directory: Path, *, exclusive: bool, create: bool) -> Iterator[bool]:
    """Hold the ``flock`` of a session directory.

    The lock is taken on ``<directory>/.lock``, which a session delete removes
    while holding it; a waiter that then gets the lock of a removed file
    notices (the inode at the path changed) and tries again. Threads of one
    process exclude each other too, since each opens its own descriptor.

    Args:
        directory: the session directory.
        exclusive: a writer's lock (``LOCK_EX``) rather than a reader's.
        create: make the directory and lock file if missing.

    Yields:
        ``True`` while locked; ``False`` (unlocked) when the session
        directory does not exist and ``create`` is false.
    """
    path = directory / LOCK_FILE
    flags = os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    while True:
        if create:
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except FileNotFoundError:  # a parent was removed meanwhile (prune)
                continue
        try:
            fd = os.open(path, flags, 0o644)
        except FileNotFoundError:
            if create:
                continue
            yield False
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            try:
                current = path.stat().st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                current = False
            if current:
                yield True
                return
        finally:
            os.close(fd)
