"""How sessions are named (``SessionKey``) and how ``list_sessions`` pages."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Final, NamedTuple

from sessionstore.clock import from_micros, to_micros
from sessionstore.errors import InvalidParameterError
from sessionstore.validation import check_session_id

if TYPE_CHECKING:
    from sessionstore.models import SessionInfo

__all__ = ["ALL_USERS", "AllUsers", "PageCursor", "SessionKey", "select_page"]


class SessionKey(NamedTuple):
    """Names one session: ``user_id=None`` is the anonymous user's namespace."""

    session_id: str
    user_id: str | None


class AllUsers:
    """Type of :data:`ALL_USERS`, the "every user" filter of ``export_sessions``."""

    def __repr__(self) -> str:
        return "ALL_USERS"


ALL_USERS: Final = AllUsers()


@dataclass(frozen=True, slots=True)
class PageCursor:
    """Where a ``list_sessions`` page ended: the last item's sort key."""

    updated_at: datetime
    session_id: str

    def encode(self) -> str:
        """Return the opaque cursor string handed to callers."""
        raw = json.dumps([to_micros(self.updated_at), self.session_id]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def admits(self, updated_at: datetime, session_id: str) -> bool:
        """Return whether a session with this sort key belongs after the cursor."""
        if updated_at == self.updated_at:
            return session_id > self.session_id
        return updated_at < self.updated_at

    @classmethod
    def decode(cls, cursor: object) -> PageCursor:
        """Parse a cursor made by :meth:`encode`.

        Raises:
            InvalidParameterError: not a cursor this library made.

        """
        if not isinstance(cursor, str):
            raise InvalidParameterError(f"cursor must be a str, got {type(cursor).__name__}")
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            micros, session_id = json.loads(raw)
            if isinstance(micros, bool) or not isinstance(micros, int):
                raise TypeError("bad time")
            return cls(from_micros(micros), check_session_id(session_id))
        # RecursionError: JSON nested deeper than the interpreter's stack.
        except (ValueError, TypeError, OverflowError, RecursionError, binascii.Error) as exc:
            raise InvalidParameterError(
                f"cursor {cursor[:40]!r} is not a cursor returned by list_sessions"
            ) from exc


def select_page(
    sessions: Iterable[SessionInfo], limit: int, after: PageCursor | None
) -> list[SessionInfo]:
    """Return one ``list_sessions`` page from every session of a user, in memory.

    For backends without an index to page through: newest write first, ties
    by ``session_id`` ascending, starting after ``after``.
    """
    rest = [s for s in sessions if after is None or after.admits(s.updated_at, s.session_id)]
    rest.sort(key=lambda s: s.session_id)
    rest.sort(key=lambda s: s.updated_at, reverse=True)
    return rest[:limit]
