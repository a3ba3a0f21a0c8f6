"""Users' and apps' states in a ``file://`` root: ``<root>/scoped/<scope dir>/scope.json``.

A scope directory is named like a user directory for a user's state
(``anonymous``, ``u-...``, ``uh-...``) or ``a-...``/``ah-...`` for an app's
(``layout.scope_dir_name``); ``scoped`` is no user directory's name, so no
session can reach it. ``scope.json`` holds the scope's kind and name (checked
on every read, for hashed names), its revision and its values::

    {"format":"sessionstore.files.scope/1","kind":"app","name":"my-app",
     "revision":3,"values":{"flag":true}}

An update takes the directory's ``flock`` (``layout.session_lock``, with its
no-follow opening and its retry when a prune removes the directory), reads,
merges and replaces the file (temp file + ``os.replace``): a crash leaves the
old state or the new. These states never expire; :func:`prune_scopes` removes
them.
"""

from __future__ import annotations

import json
from pathlib import Path

from sessionstore.backends.files.codec import encode_values
from sessionstore.backends.files.directory import Directory, SymlinkError
from sessionstore.backends.files.layout import (
    LOCK_FILE,
    SCOPED_DIR,
    is_scope_dir_name,
    scope_dir_name,
    session_lock,
)
from sessionstore.backends.files.log import TMP, write_replace
from sessionstore.errors import StoreError
from sessionstore.items import StateRecord, StateScope, apply_changes, check_revision
from sessionstore.stored import compact_json

__all__ = ["SCOPE_FILE", "SCOPE_FORMAT", "prune_scopes", "read_scope", "update_scope"]

SCOPE_FILE = "scope.json"
SCOPE_FORMAT = "sessionstore.files.scope/1"


def read_scope(root: Path, scope: StateScope) -> StateRecord:
    """Return a user's or an app's state (empty, revision 0, if never written).

    Raises:
        StoreError: ``scope.json`` is corrupt, a link, or another scope's.

    """
    name = scope_dir_name(scope.kind, scope.name)
    with session_lock(root, SCOPED_DIR, name, exclusive=False, create=False) as directory:
        return StateRecord() if directory is None else _load(directory, scope)


def update_scope(
    root: Path,
    scope: StateScope,
    changes: dict[str, str | None],
    *,
    expected: int | None,
    max_bytes: int,
    sync: bool,
) -> StateRecord:
    """Apply ``changes`` to a user's or an app's state; return the state after it.

    Raises:
        ConflictError: ``expected`` (a revision) is set and stale; nothing is written.
        InvalidParameterError: the state would be over ``max_bytes``; nothing is written.
        StoreError: as :func:`read_scope`.

    """
    name = scope_dir_name(scope.kind, scope.name)
    with session_lock(root, SCOPED_DIR, name, exclusive=True, create=True, sync=sync) as directory:
        assert directory is not None
        current = _load(directory, scope)
        try:
            check_revision(current.revision, expected)
            values = apply_changes(current.values, changes, max_bytes)
        except BaseException:
            if not current.revision:  # refused before its first write: leave no directory
                directory.unlink(LOCK_FILE)
                directory.remove()
            raise
        revision = current.revision + 1
        write_replace(directory, SCOPE_FILE, _encode(scope, revision, values), sync=sync)
    return StateRecord(values, revision)


def prune_scopes(root: Path, top: Directory) -> list[Path]:
    """Delete every user's and app's state under ``top`` (the open root).

    Returns:
        The symbolic links found where a scope directory (or ``scoped``) was
        expected: left as they are, never followed.

    """
    names, refused = top.subdirs(lambda name: name == SCOPED_DIR)
    if not names:
        return refused
    with top.subdir(SCOPED_DIR, create=False) as scoped:
        scopes, links = ([], []) if scoped is None else scoped.subdirs(is_scope_dir_name)
    refused += links
    for name in scopes:
        try:
            with session_lock(root, SCOPED_DIR, name, exclusive=True, create=False) as directory:
                if directory is not None:
                    for file in (SCOPE_FILE, SCOPE_FILE + TMP, LOCK_FILE):
                        directory.unlink(file)
                    directory.remove()  # unless it holds a file someone else put there
        except SymlinkError as exc:
            refused.append(exc.path)
    top.rmdir(SCOPED_DIR)
    return refused


def _encode(scope: StateScope, revision: int, values: dict[str, str]) -> bytes:
    head = {"format": SCOPE_FORMAT, "kind": scope.kind, "name": scope.name, "revision": revision}
    values_json = encode_values(values).rstrip(b"\n")
    return compact_json(head)[:-1].encode() + b',"values":' + values_json + b"}\n"


def _load(directory: Directory, scope: StateScope) -> StateRecord:
    raw = directory.read(SCOPE_FILE)
    if raw is None:
        return StateRecord()
    path = directory.path / SCOPE_FILE
    try:
        data = json.loads(raw)
        if data["format"] != SCOPE_FORMAT:
            raise ValueError(f"unknown format {data['format']!r}")
        revision, values = data["revision"], data["values"]
        if (
            isinstance(revision, bool)
            or not isinstance(revision, int)
            or not isinstance(values, dict)
        ):
            raise TypeError("revision or values of the wrong type")
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreError(
            f"{path} is corrupt ({exc}); sessionstore leaves it as it is: restore it "
            "from a backup or move it away"
        ) from exc
    if (data.get("kind"), data.get("name")) != (scope.kind, scope.name):
        raise StoreError(
            f"{path} holds the {data.get('kind')} state {data.get('name')!r}, not the "
            f"{scope.kind} state {scope.name!r}; move it away"
        )
    return StateRecord({key: compact_json(value) for key, value in values.items()}, revision)
