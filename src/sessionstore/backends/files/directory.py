"""Directories under a ``file://`` root, reached without following symbolic links.

Every file and directory inside the root is opened relative to an open
directory descriptor with ``O_NOFOLLOW``, one name at a time: a symbolic link
planted anywhere inside the root (a user or session directory, a session
file, the marker, a lock or temp file) raises :class:`SymlinkError` naming it
and is never followed, so nothing outside the root is read, written,
truncated or deleted through it, even if the link appears while a call runs.
The root itself may be reached through links: that is the URL's choice.

Files are also opened with ``O_NONBLOCK`` and must be regular files, so a
FIFO or device planted under a session's name is refused instead of
blocking the call forever.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sessionstore.errors import StoreError

__all__ = ["Directory", "SymlinkError"]

_FILE_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# What opening a symbolic link with O_NOFOLLOW fails with (O_DIRECTORY: ENOTDIR;
# FreeBSD: EMLINK).
_LINK_ERRNOS = (errno.ELOOP, errno.ENOTDIR, errno.EMLINK)


class SymlinkError(StoreError):
    """A symbolic link inside the root, where the store expected its own file or directory."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"{path} is a symbolic link; the file store never follows links inside "
            "its root: remove the link (or move what it points to into its place)"
        )
        self.path = path


def _not_a_file(path: Path) -> StoreError:
    return StoreError(
        f"{path} is not a regular file; the file store opens only files it makes: move it away"
    )


class Directory:
    """One open directory under the root; ``path`` is only for messages.

    Every method raises :class:`OSError` (with the full path as its
    ``filename``) for what the operating system refuses, and
    :class:`SymlinkError` for a symbolic link.
    """

    def __init__(self, fd: int, path: Path, parent: Directory | None = None) -> None:
        self.fd = fd
        self.path = path
        self.parent = parent  # open while this one is, for subdir()s

    @classmethod
    @contextmanager
    def root(cls, path: Path) -> Iterator[Directory]:
        """Open the root directory itself (links on the way to it are followed)."""
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            yield cls(fd, path)
        finally:
            os.close(fd)

    @contextmanager
    def subdir(self, name: str, *, create: bool, sync: bool = False) -> Iterator[Directory | None]:
        """Open the directory ``name`` in this one (``None``: it does not exist).

        Args:
            name: the directory's name.
            create: make it if missing.
            sync: ``fsync`` this directory after making one in it.

        Raises:
            FileNotFoundError: ``create`` is true and the directory was removed
                again before it could be opened (the caller may retry).
        """
        fd = self._open_dir(name)
        if fd is None and create:
            try:
                os.mkdir(name, 0o777, dir_fd=self.fd)  # less the umask, as Path.mkdir
            except FileExistsError:
                pass  # made by another writer meanwhile
            except OSError as exc:
                raise self._error(exc, name) from exc
            else:
                if sync:
                    self.fsync()
            fd = self._open_dir(name)
            if fd is None:
                missing = os.strerror(errno.ENOENT)
                raise FileNotFoundError(errno.ENOENT, missing, str(self.path / name))
        if fd is None:
            yield None
            return
        try:
            yield Directory(fd, self.path / name, self)
        finally:
            os.close(fd)

    def _open_dir(self, name: str) -> int | None:
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=self.fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._error(exc, name) from exc

    def open(self, name: str, flags: int, mode: int = 0o644) -> int:
        """Open the regular file ``name``; return its descriptor."""
        try:
            fd = os.open(name, flags | _FILE_FLAGS, mode, dir_fd=self.fd)
        except OSError as exc:
            raise self._error(exc, name) from exc
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise _not_a_file(self.path / name)
        return fd

    def read(self, name: str) -> bytes | None:
        """Return the contents of file ``name``, or ``None`` if it does not exist."""
        try:
            fd = self.open(name, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            chunks = []
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def has_file(self, name: str) -> bool:
        """Return whether the regular file ``name`` exists here.

        Raises:
            SymlinkError: ``name`` is a symbolic link.
            StoreError: ``name`` is something else than a regular file.
        """
        try:
            mode = os.stat(name, dir_fd=self.fd, follow_symlinks=False).st_mode
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise self._error(exc, name) from exc
        if stat.S_ISLNK(mode):
            raise SymlinkError(self.path / name)
        if not stat.S_ISREG(mode):
            raise _not_a_file(self.path / name)
        return True

    def inode(self, name: str) -> int | None:
        """Return the inode number of ``name`` (not followed), or ``None`` if missing."""
        try:
            return os.stat(name, dir_fd=self.fd, follow_symlinks=False).st_ino
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._error(exc, name) from exc

    def replace(self, source: str, target: str) -> None:
        """Rename ``source`` to ``target``, replacing it (a link is replaced, not followed)."""
        try:
            os.replace(source, target, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except OSError as exc:
            raise self._error(exc, source) from exc

    def unlink(self, name: str) -> None:
        """Remove the file ``name`` if it exists (a link itself, never its target)."""
        try:
            os.unlink(name, dir_fd=self.fd)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise self._error(exc, name) from exc

    def rmdir(self, name: str) -> None:
        """Remove the directory ``name`` if it is empty (else leave it: not only ours)."""
        with contextlib.suppress(OSError):
            os.rmdir(name, dir_fd=self.fd)

    def remove(self) -> None:
        """Remove this directory (opened by :meth:`subdir`) if it is empty."""
        if self.parent is not None:
            self.parent.rmdir(self.path.name)

    def subdirs(self, wanted: Callable[[str], bool]) -> tuple[list[str], list[Path]]:
        """Return the ``wanted`` names of the directories here, and the links so named.

        Anything else (files, and names ``wanted`` rejects) is left out.
        """
        found: list[str] = []
        links: list[Path] = []
        with os.scandir(self.fd) as entries:
            for entry in entries:
                if not wanted(entry.name):
                    continue
                if entry.is_symlink():
                    links.append(self.path / entry.name)
                elif entry.is_dir(follow_symlinks=False):
                    found.append(entry.name)
        return found, links

    def fsync(self) -> None:
        """Make this directory's entries (new, renamed, removed names) durable."""
        os.fsync(self.fd)

    def _error(self, exc: OSError, name: str) -> OSError | StoreError:
        path = self.path / name
        if exc.errno in _LINK_ERRNOS:
            try:
                is_link = stat.S_ISLNK(os.stat(name, dir_fd=self.fd, follow_symlinks=False).st_mode)
            except OSError:
                is_link = False
            if is_link:
                return SymlinkError(path)
        return OSError(exc.errno, exc.strerror, str(path))
