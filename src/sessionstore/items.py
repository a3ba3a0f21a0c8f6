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

The input rules of the item and state calls live here too:
:func:`encode_items`, :func:`encode_changes`, :func:`check_expected_revision`
and :func:`check_item_id` check (and encode) what the public methods take,
before any I/O; :func:`check_encoded_size` applies ``max_field_bytes`` once the
store is open.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

from sessionstore.errors import ConflictError, InvalidParameterError
from sessionstore.models import SessionItem, SessionState
from sessionstore.stored import compact_json
from sessionstore.validation import check_json, check_text, normalize_qa_id

__all__ = [
    "MAX_ITEMS_PER_CALL",
    "MAX_REVISION",
    "ItemRecord",
    "StateRecord",
    "StateScope",
    "apply_changes",
    "check_delta_size",
    "check_encoded_size",
    "check_expected_revision",
    "check_item_id",
    "check_revision",
    "check_sequence",
    "decode_item",
    "decode_state",
    "encode_changes",
    "encode_items",
    "encode_value",
    "state_size",
]

MAX_ITEMS_PER_CALL: Final = 10_000
"""The most items one ``append_items`` call takes."""
MAX_REVISION: Final = 2**53
"""The largest revision a dump or ``expected_revision`` may name.

Every backend keeps it exactly (Redis' Lua numbers are doubles, exact to
2**53), and an update past it would take 2**53 updates: no counter overflows.
"""

_NOT_A_SEQUENCE = (str, bytes, bytearray, memoryview)


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


def check_sequence(value: object, name: str, of: str, most: int) -> Sequence[Any]:
    """Return ``value`` if it is a list or tuple (any sequence but text) of at most ``most``.

    Raises:
        InvalidParameterError: ``value`` is a str, bytes, a dict, a number,
            ``None`` ..., or holds more than ``most`` values.

    """
    if isinstance(value, _NOT_A_SEQUENCE) or not isinstance(value, Sequence):
        raise InvalidParameterError(
            f"{name} must be a list or tuple of {of}, got {type(value).__name__}"
        )
    if len(value) > most:
        raise InvalidParameterError(f"{name} holds at most {most} values, got {len(value)}")
    return value


def encode_items(items: object) -> list[str]:
    """Check that ``items`` is a sequence of JSON values; return each as JSON text.

    ``max_field_bytes`` is not applied here (see :func:`check_encoded_size`).

    Raises:
        InvalidParameterError: ``items`` is not a list or tuple (a str, bytes,
            a dict, a number, ``None`` ...), holds more than
            :data:`MAX_ITEMS_PER_CALL` values, or one is not JSON.

    """
    items = check_sequence(items, "items", "JSON values", MAX_ITEMS_PER_CALL)
    texts = []
    for index, value in enumerate(items):
        check_json(value, f"items[{index}]", sys.maxsize)
        texts.append(encode_value(value))
    return texts


def encode_changes(changes: object, name: str = "changes") -> dict[str, str | None]:
    """Check a state delta and return it as stored: key -> JSON text, ``None`` removes.

    Raises:
        InvalidParameterError: not a mapping, a key that is not an encodable
            str, or a value that is not JSON; or the values set are already
            over any ``max_field_bytes`` (checked later, by
            :func:`check_encoded_size`).

    """
    if not isinstance(changes, Mapping):
        raise InvalidParameterError(
            f"{name} must be a dict of str keys to JSON values, got {type(changes).__name__}"
        )
    encoded: dict[str, str | None] = {}
    for key, value in changes.items():
        if not isinstance(key, str):
            raise InvalidParameterError(f"{name} keys must be str, got {key!r}")
        check_text(key, f"{name} key", sys.maxsize)
        if value is None:
            encoded[key] = None
        else:
            check_json(value, f"{name}[{key!r}]", sys.maxsize)
            encoded[key] = encode_value(value)
    return encoded


def check_encoded_size(texts: Sequence[str], max_bytes: int) -> None:
    """Raise InvalidParameterError when an item's JSON text is over ``max_bytes`` UTF-8 bytes."""
    for index, text in enumerate(texts):
        size = len(text) if text.isascii() else len(text.encode("utf-8"))
        if size > max_bytes:
            raise InvalidParameterError(
                f"items[{index}] is {size} bytes as JSON, over the max_field_bytes limit "
                f"of {max_bytes}"
            )


def check_delta_size(changes: Mapping[str, str | None], max_bytes: int) -> None:
    """Raise InvalidParameterError when what ``changes`` sets alone is over ``max_bytes``.

    The merged state can only be larger, so such a delta is refused before
    any I/O; the merged state is checked by the backend, which knows it.
    """
    size = state_size({k: v for k, v in changes.items() if v is not None})
    if size > max_bytes:
        raise InvalidParameterError(
            f"the state would hold at least {size} bytes, over max_field_bytes={max_bytes}"
        )


def check_expected_revision(value: object) -> int | None:
    """Return ``value`` if it is ``None`` or an int from 0 to :data:`MAX_REVISION`.

    Raises:
        InvalidParameterError: a bool, a str, a float, a negative int ...

    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameterError(f"expected_revision must be an int >= 0 or None, got {value!r}")
    if not 0 <= value <= MAX_REVISION:
        raise InvalidParameterError(f"expected_revision must be from 0 to {MAX_REVISION}")
    return value


def check_item_id(value: object) -> str | None:
    """Return the canonical form of an item id, or ``None`` when it is no UUID.

    Raises:
        InvalidParameterError: ``value`` is not a str.

    """
    if not isinstance(value, str):
        raise InvalidParameterError(f"item_id must be a str, got {type(value).__name__}")
    return normalize_qa_id(value)
