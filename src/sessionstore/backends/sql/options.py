"""The SQL backend's options: their URL parsers, and every rule they must meet.

Every option is checked when the store is built (by ``open_store``), before
any I/O, so a bad value is :class:`~sessionstore.errors.InvalidParameterError`
naming the option, never a confusing failure later. This module imports no
SQLAlchemy, so options are checked even before a missing extra is reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from sessionstore.errors import InvalidParameterError
from sessionstore.urls import OptionParser, parse_bool
from sessionstore.validation import check_seconds

__all__ = [
    "MAX_WAIT",
    "OPTIONS",
    "EngineOptions",
    "StoreOptions",
    "check_count",
    "check_flag",
    "check_wait",
]


def _keyword_only(text: str) -> Any:
    raise ValueError("only a keyword argument can pass this, not the URL")


OPTIONS: Final[Mapping[str, OptionParser]] = {
    "table_prefix": str,
    "auto_migrate": parse_bool,
    "pool_size": int,
    "max_overflow": int,
    "pool_timeout": float,
    "pool_recycle": float,
    "connect_timeout": float,
    "command_timeout": float,
    "pre_ping": parse_bool,
    "lock_timeout": float,
    "retries": int,
    "sweep_interval": float,
    "sweep_batch": int,
    "engine": _keyword_only,
    "connect_args": _keyword_only,
}
"""The SQL backend's options (besides ``ttl`` and ``max_field_bytes``) and their URL parsers."""


MAX_WAIT: Final = 2_000_000.0
"""The longest timeout, about 23 days: what every server and driver setting can hold."""


def check_count(value: object, name: str, *, least: int, most: int = 2**31 - 1) -> int:
    """Return ``value`` if it is an int from ``least`` to ``most`` (a bool is not one).

    Raises:
        InvalidParameterError: any other value.

    """
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= most:
        raise InvalidParameterError(f"{name} must be an int from {least} to {most}, got {value!r}")
    return value


def check_wait(value: object, name: str, *, allow_zero: bool = False) -> float:
    """Return ``value`` if it is a number of seconds from 0 (or above) to :data:`MAX_WAIT`.

    Raises:
        InvalidParameterError: any other value (a bool, NaN, infinity included).

    """
    seconds = check_seconds(value, name, allow_zero=allow_zero)
    if seconds > MAX_WAIT:
        raise InvalidParameterError(f"{name} must be at most {MAX_WAIT:.0f} seconds, got {value!r}")
    return seconds


def check_flag(value: object, name: str) -> bool:
    """Return ``value`` if it is a bool.

    Raises:
        InvalidParameterError: any other value (``1`` and ``"yes"`` included).

    """
    if not isinstance(value, bool):
        raise InvalidParameterError(f"{name} must be True or False, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """Pool and connection settings of an engine the store builds itself.

    Raises:
        InvalidParameterError: a setting out of its range.

    """

    pool_size: int = 5
    """Connections kept open (at least 1)."""
    max_overflow: int = 10
    """Connections opened beyond ``pool_size`` under load (0 or more)."""
    pool_timeout: float = 10.0
    """Seconds to wait for a free connection (0: do not wait)."""
    pool_recycle: float = 1800.0
    """Seconds after which a connection is replaced (more than 0)."""
    connect_timeout: float = 5.0
    """Seconds a new connection may take, handshake and login included (more than 0)."""
    pre_ping: bool = True
    """Ping a connection that sat idle in the pool before using it."""
    connect_args: Mapping[str, Any] = field(default_factory=dict)
    """Extra keyword arguments for the driver's ``connect``."""

    def __post_init__(self) -> None:
        check_count(self.pool_size, "pool_size", least=1)
        check_count(self.max_overflow, "max_overflow", least=0)
        check_wait(self.pool_timeout, "pool_timeout", allow_zero=True)
        check_seconds(self.pool_recycle, "pool_recycle")
        check_wait(self.connect_timeout, "connect_timeout")
        check_flag(self.pre_ping, "pre_ping")
        if not isinstance(self.connect_args, Mapping) or not all(
            isinstance(key, str) for key in self.connect_args
        ):
            raise InvalidParameterError(
                f"connect_args must be a dict of keyword arguments, got {self.connect_args!r}"
            )


@dataclass(frozen=True, slots=True)
class StoreOptions:
    """How the store uses its engine, whoever built it.

    Raises:
        InvalidParameterError: a setting out of its range.

    """

    auto_migrate: bool = True
    """Create or upgrade the schema on first use."""
    command_timeout: float = 30.0
    """Seconds one call may take in all (more than 0); then StoreUnavailableError."""
    lock_timeout: float = 60.0
    """Seconds to wait for another process's migration (0: do not wait)."""
    retries: int = 5
    """How often a deadlock or serialization failure is retried (0 or more)."""
    sweep_interval: float = 60.0
    """Seconds between background sweeps of expired sessions (0 or more)."""
    sweep_batch: int = 500
    """Sessions deleted per sweep statement (at least 1)."""

    def __post_init__(self) -> None:
        check_flag(self.auto_migrate, "auto_migrate")
        check_wait(self.command_timeout, "command_timeout")
        check_wait(self.lock_timeout, "lock_timeout", allow_zero=True)
        check_count(self.retries, "retries", least=0)
        check_seconds(self.sweep_interval, "sweep_interval", allow_zero=True)
        check_count(self.sweep_batch, "sweep_batch", least=1, most=1_000_000)
