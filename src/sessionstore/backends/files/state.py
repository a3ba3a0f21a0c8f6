"""``state.json`` of a ``file://`` session: the commit point of every write.

It names the session (the original ids, also for hashed directory names),
its times and counters, for each log its *committed* size (readers read a
log only up to that size), and ``pending``: the files whose committed
version is still staged as ``<name>.next`` (or, once moved into place,
``<name>``) after a write that replaced them (``session.py``).

A session that uses the item log or a state is written as
``sessionstore.files.session/2``, which adds ``items`` (the item log's
committed size), ``item_count``, ``state_revision`` and ``state_values``
(whether ``values.json`` is committed); every other session is still written
as ``/1``, which versions before the item log read, and which reads as a
session without items or state.

``trace_ids``, the committed size of ``trace_ids.jsonl`` (the index of the
session's trace ids), is written in either format once the session has trace
steps. Versions before it ignore the key and drop it when they write: a
state without it, or whose index counts other than ``traces`` lines, has its
index made again from ``traces.jsonl`` by the next trace write.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sessionstore.backends.files.layout import ENTRIES, GRAPH, ITEMS, TRACE_IDS, TRACES, VALUES
from sessionstore.backends.files.log import LogInfo, dump_line
from sessionstore.errors import StoreError

__all__ = ["ITEMS_STATE_FORMAT", "STATE_FORMAT", "State", "Write"]

STATE_FORMAT = "sessionstore.files.session/1"
ITEMS_STATE_FORMAT = "sessionstore.files.session/2"  # with the item log and state
_FORMATS = frozenset((STATE_FORMAT, ITEMS_STATE_FORMAT))
_REPLACEABLE = frozenset((ENTRIES, TRACES, GRAPH, ITEMS, VALUES, TRACE_IDS))


@dataclass(slots=True)
class State:
    """The contents of ``state.json``."""

    session_id: str
    user_id: str | None
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None = None
    qa_count: int = 0
    next_n: int = 1
    graph: bool = False
    entries: LogInfo | None = None
    traces: LogInfo | None = None
    pending: tuple[str, ...] = ()  # of ENTRIES, TRACES, GRAPH, ITEMS, VALUES, TRACE_IDS
    items: LogInfo | None = None
    item_count: int = 0
    state_revision: int = 0
    state_values: bool = False  # values.json is committed
    trace_ids: LogInfo | None = None  # the index of trace ids, line for line with traces

    def expired(self, now: datetime) -> bool:
        """Return whether the session had expired at ``now``."""
        return self.expires_at is not None and self.expires_at <= now

    def take_n(self) -> int:
        """Return the next line number of ``entries.jsonl`` or ``items.jsonl``; advance it."""
        n = self.next_n
        self.next_n += 1
        return n

    def is_empty(self) -> bool:
        """Return whether the session holds nothing (and so no longer exists)."""
        return (
            not self.qa_count
            and not self.graph
            and not (self.traces and self.traces.lines)
            and not self.item_count
            and not self.state_revision
            and not self.state_values
        )

    def _uses_items(self) -> bool:
        return bool(
            self.items is not None or self.item_count or self.state_revision or self.state_values
        )

    def to_bytes(self) -> bytes:
        """Return the state as the JSON text of ``state.json``."""
        logs: dict[str, object] = {
            name: _log_record(info)
            for name, info in (("entries", self.entries), ("traces", self.traces))
        }
        if self._uses_items():
            logs.update(
                items=_log_record(self.items),
                item_count=self.item_count,
                state_revision=self.state_revision,
                state_values=self.state_values,
            )
        return dump_line(
            {
                "format": ITEMS_STATE_FORMAT if self._uses_items() else STATE_FORMAT,
                "session_id": self.session_id,
                "user_id": self.user_id,
                "created_at": self.created_at.isoformat(),
                "updated_at": self.updated_at.isoformat(),
                "expires_at": None if self.expires_at is None else self.expires_at.isoformat(),
                "qa_count": self.qa_count,
                "next_n": self.next_n,
                "graph": self.graph,
                **logs,
                "pending": list(self.pending),
                **({} if self.trace_ids is None else {"trace_ids": _log_record(self.trace_ids)}),
            }
        )

    @classmethod
    def parse(cls, path: Path, raw: bytes) -> State:
        """Read ``state.json``.

        Raises:
            StoreError: the file is not a state this backend wrote.
        """
        try:
            data = json.loads(raw)
            if data["format"] not in _FORMATS:
                raise ValueError(f"unknown format {data['format']!r}")
            logs = {
                name: None if data[name] is None else LogInfo(**data[name])
                for name in ("entries", "traces")
            }
            items = data.get("items")  # absent in /1 states
            trace_ids = data.get("trace_ids")  # absent before the trace id index
            expires = data["expires_at"]
            pending = tuple(data.get("pending", ()))  # absent in states of older versions
            if not set(pending) <= _REPLACEABLE:
                raise ValueError(f"unknown pending files {pending!r}")
            return cls(
                session_id=data["session_id"],
                user_id=data["user_id"],
                created_at=datetime.fromisoformat(data["created_at"]),
                updated_at=datetime.fromisoformat(data["updated_at"]),
                expires_at=None if expires is None else datetime.fromisoformat(expires),
                qa_count=data["qa_count"],
                next_n=data["next_n"],
                graph=data["graph"],
                **logs,
                pending=pending,
                items=None if items is None else LogInfo(**items),
                item_count=data.get("item_count", 0),
                state_revision=data.get("state_revision", 0),
                state_values=data.get("state_values", False),
                trace_ids=None if trace_ids is None else LogInfo(**trace_ids),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(
                f"{path} is corrupt ({exc}); sessionstore leaves it as it is: "
                "restore it from a backup or move the session directory away"
            ) from exc


def _log_record(info: LogInfo | None) -> dict[str, int] | None:
    return None if info is None else {"ino": info.ino, "size": info.size, "lines": info.lines}


@dataclass(slots=True)
class Write:
    """An open write to one session: the state to commit and what happened."""

    state: State
    touched: bool = False  # a logical write: slides updated_at and expiry
    remove: bool = False  # delete the whole session instead of committing
