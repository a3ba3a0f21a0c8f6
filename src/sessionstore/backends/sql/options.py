"""The SQL backend's options: their URL parsers, and every rule they must meet.

Every option is checked when the store is built (by ``open_store``), before
any I/O, so a bad value is :class:`~sessionstore.errors.InvalidParameterError`
naming the option, never a confusing failure later. This module imports no
SQLAlchemy, so options are checked even before a missing extra is reported.

Besides the store's own options (:data:`OPTIONS`), each database family
passes its driver's connection options on (:data:`DRIVER_OPTIONS`: TLS,
charset, timeouts, names): typed and checked here the same way, turned into
the driver's arguments by ``tls.py`` when an engine is built.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from sessionstore.backends.sql.tls import (
    MYSQL_MODES,
    PG_SSL_MODES,
    check_mysql_tls,
    check_postgres_tls,
)
from sessionstore.errors import InvalidParameterError
from sessionstore.urls import OptionParser, parse_bool
from sessionstore.validation import check_file_path, check_seconds

__all__ = [
    "DRIVER_OPTIONS",
    "MAX_WAIT",
    "OPTIONS",
    "DriverOption",
    "EngineOptions",
    "StoreOptions",
    "check_count",
    "check_driver_options",
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
    driver: Mapping[str, Any] = field(default_factory=dict)
    """The driver options (:data:`DRIVER_OPTIONS`), checked by :func:`check_driver_options`."""

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


# -- the drivers' options ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DriverOption:
    """A driver option: how its URL text is read, and the rule its value meets."""

    parse: OptionParser
    """Turns the URL's text into the value (a ``ValueError`` when it cannot)."""
    check: Callable[[object, str], Any]
    """Returns the value (a URL's parsed, or a keyword's) if valid, as the driver takes it.

    Raises InvalidParameterError otherwise.
    """


def _text(value: object, name: str) -> str:
    if not isinstance(value, str) or not value or "\x00" in value:
        raise InvalidParameterError(f"{name} must be a non-empty str")
    return value


def _one_of(choices: tuple[str, ...], *, fold: bool = False) -> Callable[[object, str], str]:
    """Return a check that the value is one of ``choices`` (``fold``: any case, ``-`` or ``_``)."""

    def check(value: object, name: str) -> str:
        chosen = value.lower().replace("-", "_") if fold and isinstance(value, str) else value
        if not isinstance(chosen, str) or chosen not in choices:
            raise InvalidParameterError(
                f"{name} must be one of {', '.join(choices)}; got {value!r}"
            )
        return chosen

    return check


def _flag(value: object, name: str) -> bool:
    return check_flag(value, name)


def _seconds(value: object, name: str) -> float:
    return check_wait(value, name)


def _size(value: object, name: str) -> int:
    return check_count(value, name, least=0)


def _pg_ssl(value: object, name: str) -> str | bool | ssl.SSLContext:
    """``ssl``: an sslmode, ``True``/``False`` (asyncpg's), or (keyword) an SSLContext."""
    if isinstance(value, (bool, ssl.SSLContext)) or value in PG_SSL_MODES:
        return value
    raise InvalidParameterError(
        f"{name} must be one of {', '.join(PG_SSL_MODES)}, true or false, or an ssl.SSLContext; "
        f"got {value!r}"
    )


def _pg_ssl_text(text: str) -> str | bool:
    return text if text in PG_SSL_MODES else parse_bool(text)


def _mysql_mode(value: object, name: str) -> str:
    if isinstance(value, str) and value.lower() == "preferred":
        raise InvalidParameterError(
            f"{name}=preferred is not supported: asyncmy cannot fall back to an unencrypted "
            "connection; use required (TLS, or fail) or disabled"
        )
    return _one_of(MYSQL_MODES, fold=True)(value, name)


def _mysql_ssl(value: object, name: str) -> bool | ssl.SSLContext:
    """``ssl``: ``True`` (TLS with the ssl_* options) / ``False``, or (keyword) an SSLContext."""
    if isinstance(value, (bool, ssl.SSLContext)):
        return value
    raise InvalidParameterError(f"{name} must be true, false or an ssl.SSLContext, got {value!r}")


def _utf8mb4(value: object, name: str) -> str:
    if not isinstance(value, str) or value.lower() != "utf8mb4":
        raise InvalidParameterError(
            f"{name} must be utf8mb4: the store keeps any Unicode text, emoji included; "
            f"got {value!r}"
        )
    return "utf8mb4"


def _settings(value: object, name: str) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise InvalidParameterError(f"{name} must be a dict of str to str, got {value!r}")
    return dict(value)


_FILE = DriverOption(str, check_file_path)
_TLS_VERSION = DriverOption(str, _one_of(("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")))
_URL_FLAG = DriverOption(parse_bool, _flag)

POSTGRES_OPTIONS: Final[Mapping[str, DriverOption]] = {
    "sslmode": DriverOption(str, _one_of(PG_SSL_MODES)),
    "ssl": DriverOption(_pg_ssl_text, _pg_ssl),
    "sslrootcert": _FILE,
    "sslcert": _FILE,
    "sslkey": _FILE,
    "sslpassword": DriverOption(str, _text),
    "sslcrl": _FILE,
    "sslnegotiation": DriverOption(str, _one_of(("postgres", "direct"))),
    "ssl_min_protocol_version": _TLS_VERSION,
    "ssl_max_protocol_version": _TLS_VERSION,
    "application_name": DriverOption(str, _text),
    "server_settings": DriverOption(_keyword_only, _settings),
    "target_session_attrs": DriverOption(
        str,
        _one_of(("any", "primary", "standby", "read-write", "read-only", "prefer-standby")),
    ),
    "statement_cache_size": DriverOption(int, _size),
    "passfile": _FILE,
    "krbsrvname": DriverOption(str, _text),
    "gsslib": DriverOption(str, _one_of(("gssapi", "sspi"))),
}
"""asyncpg's options: libpq's TLS names, the session's name and settings, and the rest."""

MYSQL_OPTIONS: Final[Mapping[str, DriverOption]] = {
    "ssl_mode": DriverOption(str, _mysql_mode),
    "ssl": DriverOption(parse_bool, _mysql_ssl),
    "ssl_ca": _FILE,
    "ssl_capath": _FILE,
    "ssl_cert": _FILE,
    "ssl_key": _FILE,
    "ssl_key_password": DriverOption(str, _text),
    "ssl_cipher": DriverOption(str, _text),
    "ssl_verify_cert": _URL_FLAG,
    "ssl_verify_identity": _URL_FLAG,
    "ssl_check_hostname": _URL_FLAG,
    "charset": DriverOption(str, _utf8mb4),
    "read_timeout": DriverOption(float, _seconds),
    "program_name": DriverOption(str, _text),
    "unix_socket": _FILE,
}
"""asyncmy's options: MySQL's TLS names, the charset, a read timeout, names."""

DRIVER_OPTIONS: Final[Mapping[str, Mapping[str, DriverOption]]] = {
    "postgresql": POSTGRES_OPTIONS,
    "mysql": MYSQL_OPTIONS,
}
"""The driver options of each database family (by ``Family.name``)."""


def check_driver_options(family: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``given`` driver options of ``family`` checked, and typed as the driver takes them.

    Raises:
        InvalidParameterError: an option the family's driver does not take,
            a bad value, or TLS options that contradict each other.

    """
    known = DRIVER_OPTIONS[family]
    checked: dict[str, Any] = {}
    for name, value in given.items():
        option = known.get(name)
        if option is None:
            raise InvalidParameterError(
                f"{name} is not an option of the {family} driver; its options: "
                f"{', '.join(sorted(known))}"
            )
        checked[name] = option.check(value, name)
    (check_postgres_tls if family == "postgresql" else check_mysql_tls)(checked)
    return checked
