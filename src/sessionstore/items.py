"""Item logs and states as backends store them: JSON text, never Python objects.

The store turns every item into :class:`ItemRecord` (compact JSON text made
once, by :func:`encode_value`) and every state change into a mapping of key
to JSON text (``None`` removes the key). Backends store and return that text
as it is; the store decodes it (:func:`decode_item`, :func:`decode_state`).
Keeping text means every backend returns exactly what was given: types, the
sign of ``-0.0``, big ints and key order all survive, and a backend never
parses user JSON (Redis' Lua could not do it faithfully).

The size of a state, checked against ``max_field_bytes``, is
:func:`state_size`: the UTF-8 bytes of its keys and of their values' JSON text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sessionstore.errors import ConflictError, InvalidParameterError
from sessionstore.models import SessionItem, SessionState
from sessionstore.stored import compact_json

__all__ = [
    "ItemRecord",
    "StateRecord",
    "StateScope",
    "apply_changes",
    "check_revision",
    "decode_item",
    "decode_state",
    "encode_value",
    "state_size",
]


@dataclass(frozen=True, slots=True)
class ItemRecord:
    """An item as stored: its id, its value as compact JSON text, and when it was appended."""

    id: str
    data: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StateRecord:
    """A state as stored: each key's value as JSON text, and the revision."""

    values: Mapping[str, str] = field(default_factory=dict)
    revision: int = 0


@dataclass(frozen=True, slots=True)
class StateScope:
    """A state that belongs to no session: one user's, or one app's (a namespace).

    ``kind`` and ``name`` together name it; no session id or user id can reach
    it, and a user's state and an app's state of the same name are distinct.
    ``name`` is a user id (``None``: the anonymous user) for ``"user"``, an app
    name for ``"app"``.
    """

    kind: Literal["user", "app"]
    name: str | None


def encode_value(value: Any) -> str:
    """Return a checked JSON value as compact JSON text (``check_json`` has run)."""
    try:
        return compact_json(value)
    except (TypeError, ValueError) as exc:  # pragma: no cover - check_json refuses these first
        raise InvalidParameterError(f"not a JSON value: {exc}") from None


def decode_item(record: ItemRecord) -> SessionItem:
    """Return the item a stored record holds."""
    return SessionItem.model_construct(
        id=record.id, data=json.loads(record.data), created_at=record.created_at
    )


def decode_state(record: StateRecord) -> SessionState:
    """Return the state a stored record holds, its keys sorted."""
    data = {key: json.loads(record.values[key]) for key in sorted(record.values)}
    return SessionState.model_construct(data=data, revision=record.revision)


def state_size(values: Mapping[str, str]) -> int:
    """Return the size of a stored state: UTF-8 bytes of every key and value text."""
    return sum(len(k.encode("utf-8")) + len(v.encode("utf-8")) for k, v in values.items())


def apply_changes(
    current: Mapping[str, str], changes: Mapping[str, str | None], max_bytes: int
) -> dict[str, str]:
    """Return ``current`` with ``changes`` merged in (``None`` removes a key).

    For backends that merge in Python; Redis does the same in Lua.

    Raises:
        InvalidParameterError: the merged state is over ``max_bytes``.

    """
    merged = dict(current)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    size = state_size(merged)
    if size > max_bytes:
        raise InvalidParameterError(
            f"the state would hold {size} bytes, over max_field_bytes={max_bytes}"
        )
    return merged


def check_revision(current: int, expected: int | None) -> None:
    """Raise :class:`ConflictError` when ``expected`` is set and is not ``current``."""
    if expected is not None and expected != current:
        raise ConflictError(expected, current)
