"""Time as sessionstore stores it: aware UTC datetimes and microseconds.

Every backend asks :func:`now_utc` for the time of a write, so a test can
move time forward with :func:`set_clock` instead of sleeping through a
TTL. Redis expires keys on the server's clock, which it does not move.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

__all__ = ["from_micros", "now_utc", "set_clock", "to_micros"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _system_now() -> datetime:
    return datetime.now(UTC)


_now: Callable[[], datetime] = _system_now


def now_utc() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return _now()


@contextmanager
def set_clock(clock: Callable[[], datetime]) -> Iterator[None]:
    """Make :func:`now_utc` return ``clock()`` inside the block (for tests).

    Only backends that compute expiry themselves (memory, SQLite, files) see
    it; it changes the time of this process for every store in it.
    """
    global _now  # noqa: PLW0603 - one clock per process is the point
    previous, _now = _now, clock
    try:
        yield
    finally:
        _now = previous


def to_micros(value: datetime) -> int:
    """Return ``value`` as whole microseconds since the Unix epoch."""
    return (value - _EPOCH) // timedelta(microseconds=1)


def from_micros(value: int) -> datetime:
    """Return the aware UTC datetime ``value`` microseconds after the epoch."""
    return _EPOCH + timedelta(0, 0, value)  # positional: a third faster than microseconds=
