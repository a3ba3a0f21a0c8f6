"""``state.json`` of a ``file://`` session: the commit point of every write.

It names the session (the original ids, also for hashed directory names),
its times and counters, for each log its *committed* size (readers read a
log only up to that size), and ``pending``: the files whose committed
version is still staged as ``<name>.next`` (or, once moved into place,
``<name>``) after a write that replaced them (``session.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sessionstore.backends.files.layout import ENTRIES, GRAPH, TRACES
from sessionstore.backends.files.log import LogInfo, dump_line
from sessionstore.errors import StoreError

__all__ = ["STATE_FORMAT", "State", "Write"]

STATE_FORMAT = "sessionstore.files.session/1"
_REPLACEABLE = frozenset((ENTRIES, TRACES, GRAPH))


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
    pending: tuple[str, ...] = ()  # of ENTRIES, TRACES, GRAPH

    def expired(self, now: datetime) -> bool:
        """Return whether the session had expired at ``now``."""
        return self.expires_at is not None and self.expires_at <= now

    def take_n(self) -> int:
        """Return the number of the next line of ``entries.jsonl`` and advance it."""
        n = self.next_n
        self.next_n += 1
        return n

    def is_empty(self) -> bool:
        """Return whether the session holds nothing (and so no longer exists)."""
        return not self.qa_count and not self.graph and not (self.traces and self.traces.lines)

    def to_bytes(self) -> bytes:
        """Return the state as the JSON text of ``state.json``."""
        logs = {
            name: None
            if info is None
            else {"ino": info.ino, "size": info.size, "lines": info.lines}
            for name, info in (("entries", self.entries), ("traces", self.traces))
        }
        return dump_line(
            {
                "format": STATE_FORMAT,
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
            if data["format"] != STATE_FORMAT:
                raise ValueError(f"unknown format {data['format']!r}")
            logs = {
                name: None if data[name] is None else LogInfo(**data[name])
                for name in ("entries", "traces")
            }
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
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(
                f"{path} is corrupt ({exc}); sessionstore leaves it as it is: "
                "restore it from a backup or move the session directory away"
            ) from exc


@dataclass(slots=True)
class Write:
    """An open write to one session: the state to commit and what happened."""

    state: State
    touched: bool = False  # a logical write: slides updated_at and expiry
    remove: bool = False  # delete the whole session instead of committing
