"""Where the Redis backend keeps things: the name of every key.

Every key starts with the store's prefix. The parts of a key that come from
user input (user id, session id) are percent-encoded so that only
``[A-Za-z0-9_-]`` and ``%`` remain: no id can contain ``:``, ``.``, ``{``,
``}`` or a glob character, so none can forge, collide with or match another
key. ``None`` (the anonymous user) is ``~``, which no encoded string is::

    <prefix>:s:{<user>.<session>}:meta        hash: created, updated, seq, gc, iseq, rev, ssize
    <prefix>:s:{<user>.<session>}:order       sorted set: qa_id scored by sequence
    <prefix>:s:{<user>.<session>}:entries     hash: qa_id -> entry record
    <prefix>:s:{<user>.<session>}:traces      list: trace step records
    <prefix>:s:{<user>.<session>}:item_order  sorted set: item id scored by item sequence
    <prefix>:s:{<user>.<session>}:items       hash: item id -> item record
    <prefix>:s:{<user>.<session>}:state       hash: state key -> JSON text
    <prefix>:s:{<user>.<session>}:trace_ids   set: the trace ids of its steps (unique)
    <prefix>:u:{<user>}:sessions              sorted set: session_id scored by -updated
    <prefix>:st:{u.<user>}:meta               hash: rev, ssize of a user's state
    <prefix>:st:{u.<user>}:values             hash: state key -> JSON text
    <prefix>:st:{a.<app>}:meta, :values       the same for an app's state

The ``{...}`` hash tag puts all keys of one session in one Cluster slot; each
user's index lives in its own slot, and each scoped state in its own. The
second part (``s``, ``u``, ``st``) keeps the three kinds apart, and ``u.`` /
``a.`` (which no encoded id contains) keeps a user's state apart from an
app's. What the values hold is in :mod:`.codec`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Final
from urllib.parse import quote, unquote

from sessionstore.errors import InvalidParameterError
from sessionstore.items import StateScope
from sessionstore.keys import SessionKey

__all__ = [
    "DEFAULT_PREFIX",
    "ScopeKeys",
    "SessionKeys",
    "check_prefix",
    "decode_id",
    "encode_id",
    "is_own_key",
    "parse_session_key",
    "prune_patterns",
    "scope_keys",
    "session_base",
    "session_keys",
    "session_meta_pattern",
    "user_index_key",
]

DEFAULT_PREFIX: Final = "sessionstore"
ANONYMOUS: Final = "~"
_PREFIX_RE = re.compile(r"[A-Za-z0-9_./-]{1,100}")
_SAFE = "_-"  # besides ASCII letters and digits, which quote() never escapes
_UNCHANGED = re.compile(r"[A-Za-z0-9_-]+").fullmatch  # ids quote() would leave as they are


def check_prefix(prefix: object) -> str:
    """Return ``prefix`` if it is a legal key prefix.

    Raises:
        InvalidParameterError: not 1 to 100 of ``A-Z a-z 0-9 _ . / -``.

    """
    if not isinstance(prefix, str) or not _PREFIX_RE.fullmatch(prefix):
        raise InvalidParameterError(
            f"prefix must be 1 to 100 of the characters A-Z a-z 0-9 _ . / -, got {prefix!r}"
        )
    return prefix


def encode_id(value: str | None) -> str:
    """Return the key-safe form of a user or session id (``~`` for ``None``)."""
    if value is None:
        return ANONYMOUS
    if _UNCHANGED(value):  # most ids (UUIDs, slugs): no need to run quote()
        return value
    # quote() leaves "." and "~" alone; both have meanings in our keys.
    return quote(value, safe=_SAFE, encoding="utf-8").replace(".", "%2E").replace("~", "%7E")


def decode_id(text: str) -> str | None:
    """Invert :func:`encode_id`."""
    return None if text == ANONYMOUS else unquote(text, encoding="utf-8", errors="strict")


@dataclass(frozen=True, slots=True)
class SessionKeys:
    """The keys of one session (one hash tag) and its user's index key."""

    meta: str
    order: str
    entries: str
    traces: str
    item_order: str
    items: str
    state: str
    trace_ids: str
    index: str

    @property
    def session(self) -> list[str]:
        """The session's keys in the order every script takes them."""
        return [
            self.meta,
            self.order,
            self.entries,
            self.traces,
            self.item_order,
            self.items,
            self.state,
            self.trace_ids,
        ]


@dataclass(frozen=True, slots=True)
class ScopeKeys:
    """The two keys of a user's or an app's state (one hash tag)."""

    meta: str
    values: str

    @property
    def all(self) -> list[str]:
        """The keys in the order the state scripts take them."""
        return [self.meta, self.values]


def user_index_key(prefix: str, user_id: str | None) -> str:
    """Return the key of the user's ``list_sessions`` index."""
    return f"{prefix}:u:{{{encode_id(user_id)}}}:sessions"


def session_base(prefix: str, key: SessionKey) -> str:
    """Return what every key of the session starts with (``<base>:meta``, ...).

    ``scripts/describe_sessions.lua`` appends ``:meta``, ``:order`` and
    ``:items`` to it itself: a rename here must be made there too (the
    listing tests would fail otherwise).
    """
    return f"{prefix}:s:{{{encode_id(key.user_id)}.{encode_id(key.session_id)}}}"


def session_keys(prefix: str, key: SessionKey) -> SessionKeys:
    """Return every key of the session ``key`` names."""
    base = session_base(prefix, key)
    return SessionKeys(
        meta=f"{base}:meta",
        order=f"{base}:order",
        entries=f"{base}:entries",
        traces=f"{base}:traces",
        item_order=f"{base}:item_order",
        items=f"{base}:items",
        state=f"{base}:state",
        trace_ids=f"{base}:trace_ids",
        index=user_index_key(prefix, key.user_id),
    )


def scope_keys(prefix: str, scope: StateScope) -> ScopeKeys:
    """Return the keys of a user's (``u.``) or an app's (``a.``) state."""
    base = f"{prefix}:st:{{{scope.kind[0]}.{encode_id(scope.name)}}}"
    return ScopeKeys(meta=f"{base}:meta", values=f"{base}:values")


def session_meta_pattern(prefix: str, user_id: str | None, *, every_user: bool = False) -> str:
    """Return the SCAN pattern of the meta keys of one user's (or every user's) sessions."""
    user = "*" if every_user else encode_id(user_id)
    return f"{prefix}:s:{{{user}.*}}:meta"


def prune_patterns(prefix: str) -> list[str]:
    """Return the SCAN patterns that together match every key this store made."""
    return [f"{prefix}:s:{{*}}:*", f"{prefix}:u:{{*}}:sessions", f"{prefix}:st:{{*}}:*"]


_PART = r"(~|[A-Za-z0-9_%-]+)"


@cache
def _meta_re(prefix: str) -> re.Pattern[str]:
    return re.compile(rf"{re.escape(prefix)}:s:\{{{_PART}\.{_PART}\}}:meta")


@cache
def _own_re(prefix: str) -> re.Pattern[str]:
    names = "meta|order|entries|traces|item_order|items|state|trace_ids"
    session = rf"s:\{{{_PART}\.{_PART}\}}:({names})"
    scoped = rf"st:\{{[ua]\.{_PART}\}}:(meta|values)"
    return re.compile(rf"{re.escape(prefix)}:({session}|u:\{{{_PART}\}}:sessions|{scoped})")


def parse_session_key(prefix: str, meta_key: str) -> SessionKey | None:
    """Return the session a meta key belongs to, or ``None`` if it is not ours."""
    match = _meta_re(prefix).fullmatch(meta_key)
    if match is None or match.group(2) == ANONYMOUS:
        return None
    try:
        return SessionKey(unquote(match.group(2), errors="strict"), decode_id(match.group(1)))
    except UnicodeDecodeError:
        return None


def is_own_key(prefix: str, key: str) -> bool:
    """Return whether ``key`` has the exact shape of a key this store writes."""
    return _own_re(prefix).fullmatch(key) is not None
