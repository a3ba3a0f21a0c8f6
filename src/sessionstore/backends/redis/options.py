"""The Redis backend's options: the store's own, and redis-py's passed through.

The store's own options (:data:`OPTIONS`) shape how it uses Redis. The
driver's (:data:`DRIVER_OPTIONS`: database number, credentials, TLS files
and modes, health checks, the RESP version) go to redis-py's client as they
are, once typed and checked here: a URL's text is parsed, a keyword's value
checked, both before any I/O, so a bad value is an
:class:`~sessionstore.errors.InvalidParameterError` naming the option. A few
redis-py options would break the store (:data:`REFUSED`); each is refused
with its reason. This module imports no redis.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sessionstore.errors import InvalidParameterError
from sessionstore.urls import OptionParser, parse_bool, parse_optional_float
from sessionstore.validation import check_file_path, check_seconds

__all__ = [
    "DRIVER_OPTIONS",
    "OPTIONS",
    "REFUSED",
    "DriverOption",
    "check_driver_options",
    "refuse_breaking_options",
]

OPTIONS: Final[Mapping[str, OptionParser]] = {
    "prefix": str,
    "socket_timeout": parse_optional_float,
    "connect_timeout": parse_optional_float,
    "max_connections": int,
}
"""The store's own options, with their URL text parsers."""


@dataclass(frozen=True, slots=True)
class DriverOption:
    """A redis-py option the store passes on: how its URL text is read, and its rule."""

    parse: OptionParser
    """Turns the URL's text into the value (a ``ValueError`` when it cannot)."""
    check: Callable[[object, str], Any]
    """Returns the value (a URL's parsed one, or a keyword's) as redis-py takes it.

    Raises InvalidParameterError otherwise; never quotes a secret value.
    """
    cluster: bool = True
    """Whether redis-py's ``RedisCluster`` takes it too."""


def _text(value: object, name: str) -> str:
    if not isinstance(value, str) or not value or "\x00" in value:
        raise InvalidParameterError(f"{name} must be a non-empty str")
    return value


def _client_name(value: object, name: str) -> str:
    text = _text(value, name)
    if any(c.isspace() for c in text):
        raise InvalidParameterError(
            f"{name} must hold no spaces (Redis refuses them), got {text!r}"
        )
    return text


def _file(value: object, name: str) -> str:
    path = check_file_path(value, name)
    if not Path(path).is_file():
        raise InvalidParameterError(f"{name}: no file at {path!r}")
    return path


def _directory(value: object, name: str) -> str:
    path = check_file_path(value, name)
    if not Path(path).is_dir():
        raise InvalidParameterError(f"{name}: no directory at {path!r}")
    return path


def _flag(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidParameterError(f"{name} must be true or false, got {value!r}")
    return value


def _database(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidParameterError(f"{name} must be an int >= 0, got {value!r}")
    return value


def _seconds(value: object, name: str) -> float:
    return check_seconds(value, name, allow_zero=True)


def _protocol(value: object, name: str) -> int:
    if isinstance(value, bool) or value not in (2, 3):
        raise InvalidParameterError(f"{name} must be 2 or 3 (the RESP version), got {value!r}")
    return int(value)


_CERT_REQS: Final = {"none": "none", "optional": "optional", "required": "required"}


def _cert_reqs(value: object, name: str) -> str | ssl.VerifyMode:
    if isinstance(value, ssl.VerifyMode):
        return value
    if isinstance(value, str) and value.lower() in _CERT_REQS:
        return _CERT_REQS[value.lower()]
    raise InvalidParameterError(f"{name} must be none, optional or required, got {value!r}")


_TLS_VERSIONS: Final = {
    "tlsv1_2": ssl.TLSVersion.TLSv1_2,
    "tlsv1.2": ssl.TLSVersion.TLSv1_2,
    "1.2": ssl.TLSVersion.TLSv1_2,
    "tlsv1_3": ssl.TLSVersion.TLSv1_3,
    "tlsv1.3": ssl.TLSVersion.TLSv1_3,
    "1.3": ssl.TLSVersion.TLSv1_3,
}


def _tls_version(value: object, name: str) -> ssl.TLSVersion:
    if isinstance(value, ssl.TLSVersion):
        return value
    if isinstance(value, str) and value.lower() in _TLS_VERSIONS:
        return _TLS_VERSIONS[value.lower()]
    raise InvalidParameterError(f"{name} must be TLSv1_2 or TLSv1_3, got {value!r}")


def _secret(value: object, name: str) -> str:
    if not isinstance(value, str) or "\x00" in value:
        raise InvalidParameterError(f"{name} must be a str")  # the value is never shown
    return value


def _same(text: str) -> str:
    return text


def _int_or_float(text: str) -> float:
    return float(text)


DRIVER_OPTIONS: Final[Mapping[str, DriverOption]] = {
    "db": DriverOption(int, _database),
    "username": DriverOption(_same, _text),
    "password": DriverOption(_same, _secret),
    "client_name": DriverOption(_same, _client_name),
    "health_check_interval": DriverOption(_int_or_float, _seconds),
    "socket_keepalive": DriverOption(parse_bool, _flag),
    "protocol": DriverOption(int, _protocol),
    "ssl_cert_reqs": DriverOption(_same, _cert_reqs),
    "ssl_check_hostname": DriverOption(parse_bool, _flag),
    "ssl_ca_certs": DriverOption(_same, _file),
    "ssl_ca_path": DriverOption(_same, _directory, cluster=False),
    "ssl_ca_data": DriverOption(_same, _text),
    "ssl_certfile": DriverOption(_same, _file),
    "ssl_keyfile": DriverOption(_same, _file),
    "ssl_password": DriverOption(_same, _secret, cluster=False),
    "ssl_min_version": DriverOption(_same, _tls_version),
    "ssl_ciphers": DriverOption(_same, _text),
}
"""redis-py's options the store passes on, by name (redis-py's own names)."""

_NO_RETRY: Final = (
    "a retried script could apply twice; the store never retries a call, it raises "
    "StoreUnavailableError instead"
)
_BYTES: Final = "the store reads Redis's raw bytes and encodes and decodes UTF-8 itself"

REFUSED: Final[Mapping[str, str]] = {
    "decode_responses": _BYTES,
    "encoding": _BYTES,
    "encoding_errors": _BYTES,
    "retry": _NO_RETRY,
    "retry_on_timeout": _NO_RETRY,
    "retry_on_error": _NO_RETRY,
    "socket_connect_timeout": "use the store's connect_timeout",
    "read_from_replicas": "a replica may lag behind: a read must see every write that returned",
    "single_connection_client": "the store's calls run concurrently over a pool",
    "connection_pool": "give your own client instead (client=...)",
    "ssl": "use the rediss:// scheme for TLS",
}
"""redis-py options that would break the store, with the reason each is refused."""


def refuse_breaking_options(names: Iterable[str]) -> None:
    """Refuse, with its reason, any option of :data:`REFUSED` among ``names``.

    Raises:
        InvalidParameterError: one of ``names`` is in :data:`REFUSED`.

    """
    for name in names:
        reason = REFUSED.get(name)
        if reason is not None:
            raise InvalidParameterError(
                f"option {name} cannot be used with sessionstore's Redis store: {reason}"
            )


def check_driver_options(options: Mapping[str, object], *, cluster: bool) -> dict[str, Any]:
    """Return the driver options as redis-py takes them.

    Args:
        options: driver option name -> value (parsed from the URL, or a keyword's).
        cluster: whether they go to a ``RedisCluster``.

    Raises:
        InvalidParameterError: a bad value, an option a Cluster does not
            take, or a database other than 0 on a Cluster.

    """
    checked: dict[str, Any] = {}
    for name, value in options.items():
        option = DRIVER_OPTIONS[name]
        if cluster and not option.cluster:
            raise InvalidParameterError(
                f"option {name} is not supported on a Redis Cluster by redis-py"
            )
        checked[name] = option.check(value, name)
    if cluster and checked.get("db", 0) != 0:
        raise InvalidParameterError(f"a Redis Cluster has only database 0, got db={checked['db']}")
    return checked
