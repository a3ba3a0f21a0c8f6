"""The item log and session state steps of a ``file://`` session, inside its lock.

Each write step runs inside :meth:`SessionDir.writing` on the :class:`Write`
it yields (``None``: the session does not exist) and checks everything
(a stale revision, a state over the limit) before it writes a byte, so a
refused call leaves the files as they were. Items are appended to
``items.jsonl`` in one write; a state's values are staged as a new
``values.json``; both commit with ``state.json``, together. Removing items
appends ``delete`` or ``clear`` records, and the log is compacted once dead
lines dominate, as ``entries.jsonl`` is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sessionstore.backends.files.codec import clear_line, delete_line
from sessionstore.backends.files.session import SessionDir
from sessionstore.backends.files.state import State, Write
from sessionstore.items import ItemRecord, StateRecord, apply_changes, check_revision

__all__ = ["append", "clear", "delete", "pop", "read_state", "update_state"]


def append(
    session: SessionDir,
    write: Write | None,
    items: list[ItemRecord],
    changes: Mapping[str, str | None] | None,
    *,
    expected: int | None,
    max_bytes: int,
) -> int:
    """Append ``items`` and apply ``changes`` (``None``: none); return the state's revision.

    Raises:
        ConflictError: ``expected`` (a revision) is set and stale.
        InvalidParameterError: the state would be over ``max_bytes``.

    """
    assert write is not None, "a session is created for an append"
    state = write.state
    check_revision(state.state_revision, expected)
    values = None
    if changes is not None:
        values = apply_changes(session.read_values(state), changes, max_bytes)
    if items:
        session.append_items(write, items)
    if values is not None:
        session.write_values(write, values)
    return state.state_revision


def update_state(
    session: SessionDir,
    write: Write | None,
    changes: Mapping[str, str | None],
    *,
    expected: int | None,
    max_bytes: int,
) -> StateRecord:
    """Apply ``changes`` to the session's state; return the state this write made.

    Raises:
        ConflictError: as :func:`append`.
        InvalidParameterError: as :func:`append`.

    """
    assert write is not None, "a session is created for a state update"
    check_revision(write.state.state_revision, expected)
    values = apply_changes(session.read_values(write.state), changes, max_bytes)
    session.write_values(write, values)
    return StateRecord(values, write.state.state_revision)


def pop(session: SessionDir, write: Write | None) -> ItemRecord | None:
    """Remove and return the newest item (``None`` when there is none)."""
    if write is None or not write.state.item_count:
        return None
    state = write.state
    newest = session.items(state, 1)
    if not newest:  # pragma: no cover - a count without items: a file changed by hand
        return None
    _remove(session, write, delete_line(state.take_n(), newest[0].id), count=1)
    return newest[0]


def delete(session: SessionDir, write: Write | None, item_id: str) -> bool:
    """Delete the item ``item_id``; return whether it existed."""
    if write is None or not write.state.item_count:
        return False
    state = write.state
    if not session.has_item(state, item_id):
        return False
    _remove(session, write, delete_line(state.take_n(), item_id), count=1)
    return True


def clear(session: SessionDir, write: Write | None) -> bool:
    """Delete every item; return whether there was any."""
    if write is None or not write.state.item_count:
        return False
    state = write.state
    _remove(session, write, clear_line(state.take_n()), count=state.item_count)
    return True


def _remove(session: SessionDir, write: Write, record: dict[str, Any], *, count: int) -> None:
    session.append_item_records(write, [record])
    write.state.item_count -= count
    session.compact_items_if_needed(write)


def read_state(session: SessionDir, state: State | None) -> StateRecord:
    """Return the session's state, read under the lock ``state`` was read under."""
    if state is None:
        return StateRecord()
    return StateRecord(session.read_values(state), state.state_revision)
