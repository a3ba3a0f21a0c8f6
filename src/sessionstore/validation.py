"""Input rules shared by every model, call and backend (README.md states them).

Each check raises :class:`InvalidParameterError` naming the argument and the
rule, before any I/O happens.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Mapping
from typing import Any

from sessionstore.errors import InvalidParameterError

__all__ = [
    "DEFAULT_MAX_FIELD_BYTES",
    "MAX_ID_LENGTH",
    "MAX_JSON_DEPTH",
    "MAX_JSON_INT_DIGITS",
    "MAX_LAST_N",
    "MAX_TTL",
    "check_app_name",
    "check_file_path",
    "check_json",
    "check_last_n",
    "check_limit",
    "check_max_field_bytes",
    "check_score",
    "check_seconds",
    "check_session_id",
    "check_text",
    "check_ttl",
    "check_user_id",
    "normalize_qa_id",
]

MAX_ID_LENGTH = 256
MAX_JSON_INT_DIGITS = 4000
"""Digits of the largest int a JSON value may hold; Python writes none above 4300."""
MAX_JSON_INT = 10**MAX_JSON_INT_DIGITS
DEFAULT_MAX_FIELD_BYTES = 16 * 1024 * 1024
MAX_PAGE_LIMIT = 1000
MAX_JSON_DEPTH = 64
"""How deep lists and dicts may nest in a JSON value: ``{"a": [1]}`` is 2 deep.

Far below the interpreter's recursion limit, so that encoding, decoding or
comparing a stored value never runs out of stack, whoever calls it.
"""
MAX_LAST_N = 2**31 - 1
"""A larger ``last_n`` means the same: no session holds more than this."""
MAX_TTL = 100 * 365.25 * 86400
"""The longest ``ttl``, 100 years: now + ttl stays a time every backend can store."""


def _check_id(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise InvalidParameterError(f"{name} must be a str, got {type(value).__name__}")
    if not value:
        raise InvalidParameterError(f"{name} must not be empty")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidParameterError(
            f"{name} must be at most {MAX_ID_LENGTH} characters, got {len(value)}"
        )
    if "\x00" in value:
        raise InvalidParameterError(f"{name} must not contain NUL characters")
    _check_encodable(value, name)
    return value


def check_session_id(value: object) -> str:
    """Return ``value`` if it is a legal session id.

    Raises:
        InvalidParameterError: not a non-empty, NUL-free str of at most 256
            characters that UTF-8 can encode.

    """
    return _check_id(value, "session_id")


def check_user_id(value: object) -> str | None:
    """Return ``value`` if it is ``None`` (the anonymous user) or a legal id.

    Raises:
        InvalidParameterError: as :func:`check_session_id`.

    """
    if value is None:
        return None
    return _check_id(value, "user_id")


def check_app_name(value: object) -> str:
    """Return ``value`` if it is a legal app name (the scope of app state): session-id rules.

    Raises:
        InvalidParameterError: as :func:`check_session_id`.

    """
    return _check_id(value, "app")


def _check_encodable(value: str, name: str) -> int:
    """Return the UTF-8 size of ``value``, refusing lone surrogates."""
    if value.isascii():  # a flag of the str: no encoding needed
        return len(value)
    try:
        return len(value.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidParameterError(
            f"{name} cannot be encoded as UTF-8 (lone surrogate at index {exc.start})"
        ) from None


def _text_size(value: str, name: str, max_bytes: int) -> int:
    size = _check_encodable(value, name)
    if size > max_bytes:
        raise InvalidParameterError(
            f"{name} is {size} bytes, over the max_field_bytes limit of {max_bytes}"
        )
    return size


def check_text(value: object, name: str, max_bytes: int = DEFAULT_MAX_FIELD_BYTES) -> str:
    """Return ``value`` if it is a str UTF-8 can encode within ``max_bytes``.

    Raises:
        InvalidParameterError: wrong type, lone surrogates, or too large.

    """
    if not isinstance(value, str):
        raise InvalidParameterError(f"{name} must be a str, got {type(value).__name__}")
    _text_size(value, name, max_bytes)
    return value


def check_score(value: object, name: str = "feedback_score") -> int | None:
    """Return ``value`` if it is ``None`` or an int from 1 to 5 (not a bool).

    Raises:
        InvalidParameterError: any other value.

    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameterError(
            f"{name} must be an int from 1 to 5, got {type(value).__name__}"
        )
    if not 1 <= value <= 5:
        raise InvalidParameterError(f"{name} must be between 1 and 5, got {value}")
    return value


def check_last_n(value: object, *, allow_none: bool = False) -> int | None:
    """Return ``value`` if it is a non-negative int (or ``None`` when allowed).

    Any larger value than :data:`MAX_LAST_N` is returned as ``MAX_LAST_N``:
    "up to that many" means the same for both.

    Raises:
        InvalidParameterError: negative, a bool, or not an int.

    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameterError(f"last_n must be an int >= 0, got {value!r}")
    if value < 0:
        raise InvalidParameterError(f"last_n must be >= 0, got {value}")
    return min(value, MAX_LAST_N)


def check_limit(value: object) -> int:
    """Return ``value`` if it is an int page size from 1 to 1000.

    Raises:
        InvalidParameterError: any other value.

    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameterError(f"limit must be an int from 1 to 1000, got {value!r}")
    if not 1 <= value <= MAX_PAGE_LIMIT:
        raise InvalidParameterError(f"limit must be from 1 to {MAX_PAGE_LIMIT}, got {value}")
    return value


def normalize_qa_id(value: object) -> str | None:
    """Return the canonical lowercase hyphenated form of a UUID, else ``None``.

    Any spelling :class:`uuid.UUID` parses is accepted; a str that is not a
    UUID simply names no entry.

    Raises:
        InvalidParameterError: ``value`` is not a str.

    """
    if not isinstance(value, str):
        raise InvalidParameterError(f"qa_id must be a str, got {type(value).__name__}")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def check_json(value: Any, name: str, max_bytes: int = DEFAULT_MAX_FIELD_BYTES) -> int:
    """Check that ``value`` is plain JSON and return the bytes of its strings.

    JSON here means ``None``, bool, int (at most :data:`MAX_JSON_INT_DIGITS`
    digits), finite float, str, list and dict with str keys, lists and dicts
    nested at most :data:`MAX_JSON_DEPTH` deep;
    every str must be encodable as UTF-8 and within ``max_bytes``. The check
    is a loop, not a recursion: a value of any depth gets the error.

    Raises:
        InvalidParameterError: any other value.

    """
    stack: list[tuple[Any, str, int]] = [(value, name, 1)]
    total = 0
    while stack:
        item, where, depth = stack.pop()
        if item is None or isinstance(item, bool):
            continue
        if isinstance(item, int):
            if not -MAX_JSON_INT < item < MAX_JSON_INT:
                raise InvalidParameterError(
                    f"{where} must be an int of at most {MAX_JSON_INT_DIGITS} digits"
                )
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                raise InvalidParameterError(f"{where} must be a finite number, got {item}")
            continue
        if isinstance(item, str):
            total += _text_size(item, where, max_bytes)
            continue
        if isinstance(item, (list, Mapping)) and depth > MAX_JSON_DEPTH:
            raise InvalidParameterError(
                f"{name} nests lists and dicts more than {MAX_JSON_DEPTH} levels deep"
            )
        if isinstance(item, list):
            stack.extend((v, f"{where}[{i}]", depth + 1) for i, v in enumerate(item))
        elif isinstance(item, Mapping):
            for key, sub in item.items():
                if not isinstance(key, str):
                    raise InvalidParameterError(f"{where} keys must be str, got {key!r}")
                _text_size(key, f"{where} key", max_bytes)
                stack.append((sub, f"{where}[{key!r}]", depth + 1))
        else:
            raise InvalidParameterError(
                f"{where} must be JSON (None, bool, int, float, str, list, dict), "
                f"got {type(item).__name__}"
            )
    if total > max_bytes:
        raise InvalidParameterError(
            f"{name} holds {total} bytes of text, over the max_field_bytes limit of {max_bytes}"
        )
    return total


def check_seconds(value: object, name: str, *, allow_zero: bool = False) -> float:
    """Return ``value`` as float seconds if it is a finite positive number.

    Args:
        value: the number to check.
        name: the argument's name, for the message.
        allow_zero: accept ``0`` too.

    Raises:
        InvalidParameterError: not a finite number (a bool is not one), or
            not above zero (at least zero with ``allow_zero``).

    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidParameterError(f"{name} must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        least = "zero or more" if allow_zero else "a positive number of"
        raise InvalidParameterError(f"{name} must be {least} seconds, got {value!r}")
    return float(value)


def check_ttl(ttl: object) -> float | None:
    """Return ``ttl`` as float seconds, or ``None`` (keep forever).

    Raises:
        InvalidParameterError: not a positive finite number, or over
            :data:`MAX_TTL` (100 years).
    """
    if ttl is None:
        return None
    seconds = check_seconds(ttl, "ttl")
    if seconds > MAX_TTL:
        raise InvalidParameterError(
            f"ttl must be at most {MAX_TTL:.0f} seconds (100 years), got {ttl!r}; "
            "use ttl=None to keep sessions forever"
        )
    return seconds


def check_max_field_bytes(value: object) -> int:
    """Return ``value`` if it is a positive int.

    Raises:
        InvalidParameterError: any other value.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidParameterError(f"max_field_bytes must be a positive int, got {value!r}")
    return value


def check_file_path(value: object, name: str) -> str:
    """Return a file path option (a ``str`` or ``os.PathLike``) as a ``str``.

    Raises:
        InvalidParameterError: not a path, empty, or holding a NUL.

    """
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value or "\x00" in value:
        raise InvalidParameterError(f"{name} must be a file path (a str or a path), got {value!r}")
    return value
