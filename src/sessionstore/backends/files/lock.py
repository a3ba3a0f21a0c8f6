"""``improve_lock`` for a ``file://`` store: SQLite lock rows beside its root directory.

The locks are the SQLite backend's (:class:`SQLiteLockBackend`, with its
error translation), kept in ``<root>.locks`` and named within the root's
resolved path, so every process reaching the same directory shares them
however its URL spelled it (relative, through a symbolic link, with ``..``),
and lock traffic never touches the store's own files.
"""

from __future__ import annotations

from pathlib import Path

from sessionstore.backends.sqlite.lock import SQLiteLockBackend

__all__ = ["file_locks"]


def file_locks(resolved_root: Path) -> SQLiteLockBackend:
    """Return the improve locks of the store whose root's real path is ``resolved_root``."""
    return SQLiteLockBackend(resolved_root)
