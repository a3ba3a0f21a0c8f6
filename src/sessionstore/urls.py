"""Choosing a backend by URL: the scheme registry, options, credential redaction."""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote_plus

from sessionstore.errors import InvalidParameterError
from sessionstore.store import SessionStore

__all__ = [
    "UNPARSEABLE_URL",
    "BackendFactory",
    "default_store_url",
    "is_secret_option",
    "open_store",
    "parse_bool",
    "parse_optional_float",
    "redact_url",
    "register_backend",
    "split_options",
]


class BackendFactory(Protocol):
    """Builds a store from its URL and options (see :func:`register_backend`)."""

    def __call__(self, url: str, /, **options: Any) -> SessionStore:
        """Return a new, unopened store for ``url``."""


def _builtin(target: str) -> BackendFactory:
    module_name, class_name = target.split(":")

    def factory(url: str, /, **options: Any) -> SessionStore:
        backend = getattr(importlib.import_module(module_name), class_name)
        store: SessionStore = backend.from_url(url, **options)
        return store

    return factory


_SQL = "sessionstore.backends.sql:SQLStore"
_REDIS = "sessionstore.backends.redis:RedisStore"
_REGISTRY: dict[str, BackendFactory] = {
    "memory": _builtin("sessionstore.backends.memory:MemoryStore"),
    "sqlite": _builtin("sessionstore.backends.sqlite:SQLiteStore"),
    "file": _builtin("sessionstore.backends.files:FileStore"),
    "redis": _builtin(_REDIS),
    "rediss": _builtin(_REDIS),
    "valkey": _builtin(_REDIS),
    "valkeys": _builtin(_REDIS),
    "redis+cluster": _builtin(_REDIS),
    "rediss+cluster": _builtin(_REDIS),
    "postgresql": _builtin(_SQL),
    "postgres": _builtin(_SQL),
    "mysql": _builtin(_SQL),
    "mariadb": _builtin(_SQL),
}
# Schemes also written "<scheme>+<driver>://" (SQLAlchemy's style); their backend
# takes the driver it ships and refuses any other with a clear error.
_WITH_DRIVERS = frozenset({"postgresql", "postgres", "mysql", "mariadb"})


def register_backend(scheme: str, factory: BackendFactory, *, replace: bool = False) -> None:
    """Make ``open_store`` build stores for URLs of ``scheme`` with ``factory``.

    Args:
        scheme: the URL scheme, matched without regard to case.
        factory: called as ``factory(url, **options)``.
        replace: allow replacing the factory of a scheme that is already
            registered (a built-in one included).

    Raises:
        InvalidParameterError: ``scheme`` is empty or holds ``:`` or ``/``, or
            is already registered and ``replace`` is false.

    """
    if not isinstance(scheme, str) or not scheme or any(c in scheme for c in ":/"):
        raise InvalidParameterError(f"scheme must be a bare name like 'mystore', got {scheme!r}")
    if not callable(factory):
        raise InvalidParameterError("factory must be callable as factory(url, **options)")
    if scheme.lower() in _REGISTRY and not replace:
        raise InvalidParameterError(
            f"scheme {scheme.lower()!r} is already registered; pass replace=True to replace it"
        )
    _REGISTRY[scheme.lower()] = factory


def default_store_url() -> str:
    """Return the store used when no URL is given, and create nothing yet.

    ``SESSIONSTORE_URL`` if set, else ``sessions.db`` in the user's data
    directory (``$XDG_DATA_HOME/sessionstore`` on Linux).
    """
    from_env = os.environ.get("SESSIONSTORE_URL")
    if from_env:
        return from_env
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return f"sqlite:///{(base / 'sessionstore' / 'sessions.db').as_posix()}"


def open_store(url: str | None = None, **options: Any) -> SessionStore:
    """Return a store for ``url`` without doing any I/O.

    Args:
        url: ``memory://``, ``sqlite:///path.db``, ``file:///dir``,
            ``redis://...``, ``postgresql://...``, ``mysql://...`` or a
            registered scheme; ``None`` uses :func:`default_store_url`.
        **options: backend options (``ttl``, ``max_field_bytes``, ...); they
            may also be given as URL query parameters.

    Raises:
        InvalidParameterError: unknown scheme or option, or a bad value.
        MissingDependencyError: the backend's extra is not installed.

    """
    if url is None:
        url = default_store_url()
    parts = _after_scheme(url) if isinstance(url, str) else None
    if parts is None:
        # Shown without its text: a mistyped URL may be all credentials.
        raise InvalidParameterError(
            f"store URL must look like 'scheme://...', got {UNPARSEABLE_URL}"
            + ("" if isinstance(url, str) else f" (a {type(url).__name__}, not a str)")
        )
    scheme = parts[0].lower()
    factory = _REGISTRY.get(scheme)
    if factory is None and scheme.partition("+")[0] in _WITH_DRIVERS:
        factory = _REGISTRY[scheme.partition("+")[0]]  # it names the driver it ships
    if factory is None:
        raise InvalidParameterError(
            f"unknown store scheme {scheme!r} in {redact_url(url)!r}; "
            f"valid schemes: {', '.join(sorted(_REGISTRY))}"
        )
    return factory(url, **options)


UNPARSEABLE_URL = "<unparseable URL>"
"""What :func:`redact_url` shows of a URL it cannot take apart: nothing of it."""

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
# RFC 3986 user name characters; a user name with any other is shown as ***.
_PLAIN_USER = re.compile(r"[A-Za-z0-9._~%!$'()*+,;=-]+")
_PLAIN_OPTION = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
# A query parameter ``name=`` wherever it appears, for the secret ones.
_PARAMETER = re.compile(r"[?&;]([^?&;=]*)=")
# An option whose (decoded, lower-cased) name holds one of these is a secret.
_SECRET_WORDS = ("pass", "pwd", "secret", "token", "key", "auth", "cred")


def is_secret_option(name: str) -> bool:
    """Return whether a URL query parameter or option named ``name`` holds a secret.

    ``password``, ``sslpassword``, ``passwd``, ``token``, ``api_key``,
    ``client_secret``, ...: any name holding ``pass``, ``pwd``, ``secret``,
    ``token``, ``key``, ``auth`` or ``cred``, however it is cased or
    percent-encoded.
    """
    folded = unquote_plus(name).lower()
    return any(word in folded for word in _SECRET_WORDS)


def _after_scheme(url: str) -> tuple[str, str] | None:
    """Return the scheme and the text after ``://`` (``None``: no ``scheme://``)."""
    scheme, sep, rest = url.partition("://")
    if not sep or not _SCHEME.fullmatch(scheme):
        return None
    return scheme, rest


def _userinfo_end(rest: str, *, cautious: bool) -> int:
    """Return where the userinfo of ``rest`` (the text after ``://``) ends: its ``@``, or -1.

    A password may hold raw ``/``, ``?``, ``#``, ``:`` and ``@``, which the
    drivers accept, so the userinfo runs to the *last* ``@``. Text starting
    with ``/`` (``sqlite:///x.db``, ``file:///dir``) has none. ``cautious``
    (for showing a URL) takes any last ``@`` as the end; otherwise (for
    finding the query) only one whose user name, the text before the first
    ``:``, holds no ``/``, ``?``, ``#`` or ``@``, so that ``memory://?a=b@c``
    still has a query.
    """
    end = rest.rfind("@")
    if end < 0 or rest.startswith("/"):
        return -1
    user = rest[:end].partition(":")[0]
    if not cautious and any(c in user for c in "/?#@"):
        return -1
    return end


def _secret_value_start(text: str) -> int | None:
    """Return where the first secret query value in ``text`` starts (``None``: none)."""
    for found in _PARAMETER.finditer(text):
        if is_secret_option(found.group(1)):
            return found.end()
    return None


def redact_url(url: object) -> str:
    """Return ``url`` as it may be shown: no password, no secret query value.

    The userinfo, up to the last ``@``, is shown as ``user:***@`` (a user
    name of other than plain characters as ``***`` too), however the
    password is spelled. Everything from the value of the first secret
    query parameter on (:func:`is_secret_option`) is ``***``: a raw ``&``
    in the secret would make its end look like more parameters. A port
    that is no number is ``***`` (a password whose ``@host`` is missing).
    A URL without ``scheme://`` is ``<unparseable URL>``, nothing of it.
    """
    parts = _after_scheme(url) if isinstance(url, str) else None
    if parts is None:
        return UNPARSEABLE_URL
    scheme, rest = parts
    cut = _secret_value_start(rest)
    end = _userinfo_end(rest, cautious=True)
    shown_user = ""
    if end >= 0:
        if cut is not None and cut <= end:
            # A secret parameter before the "@": its value may hold the "@" and run past it.
            return f"{scheme}://***"
        name, colon, _ = rest[:end].partition(":")
        if name and not _PLAIN_USER.fullmatch(name):
            name = "***"
        shown_user = f"{name}{':***' if colon else ''}@"
    shown = rest[end + 1 :] if cut is None else rest[end + 1 : cut] + "***"
    return f"{scheme}://{shown_user}{_hide_odd_port(shown)}"


def _hide_odd_port(rest: str) -> str:
    """Hide a "port" that is no number: likely a password whose ``@host`` is missing."""
    if rest.startswith("/"):
        return rest
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    host, colon, port = authority.rpartition(":")
    if not colon or port.isdigit() or authority.endswith("]") or not port:
        return rest
    return f"{host}:***{rest[len(authority) :]}"


OptionParser = Callable[[str], Any]


def parse_optional_float(text: str) -> float | None:
    """Parse a URL option that is a number of seconds or ``none``."""
    if text.lower() in {"", "none", "null"}:
        return None
    return float(text)


def parse_bool(text: str) -> bool:
    """Parse a URL option that is ``true``/``false`` (or ``1``/``0``, ``yes``/``no``)."""
    lowered = text.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"expected true or false, got {text!r}")


BASE_OPTIONS: Mapping[str, OptionParser] = {
    "ttl": parse_optional_float,
    "max_field_bytes": int,
    "slow_call_ms": parse_optional_float,
    "otel_ids": parse_bool,
}


def split_options(
    url: str,
    options: Mapping[str, Any],
    parsers: Mapping[str, OptionParser],
    *,
    driver: Mapping[str, OptionParser] | None = None,
) -> tuple[str, dict[str, Any]]:
    """Merge URL query options with keyword options (keywords win).

    Args:
        url: the store URL, possibly with a ``?query``.
        options: keyword options, already typed.
        parsers: every option name the backend accepts, with its text parser;
            the base options (:data:`BASE_OPTIONS`: ``ttl``, ``max_field_bytes``,
            ``slow_call_ms``, ``otel_ids``) are always added.
        driver: the options the backend passes on to its driver, with their
            text parsers; merged like its own, and named apart in the error
            for an unknown option.

    Returns:
        The URL without its query, and the merged options.

    Raises:
        InvalidParameterError: an unknown option or a value that does not parse.

    """
    own = {**BASE_OPTIONS, **parsers}
    passed = {} if driver is None else driver
    known = {**passed, **own}
    base, query = _split_query(url)
    merged: dict[str, Any] = {}
    # Once a secret value is seen, what follows may be the rest of it (a raw "&").
    secret_seen = False
    for name, text in parse_qsl(query, keep_blank_values=True):
        parser = known.get(name)
        if parser is None:
            raise _unknown(name, own, url, shown=not secret_seen, driver=passed)
        secret_seen = secret_seen or is_secret_option(name)
        try:
            merged[name] = parser(text)
        except ValueError as exc:
            if secret_seen or any(c in text for c in "=&;"):
                raise InvalidParameterError(f"option {name} has an invalid value") from None
            raise InvalidParameterError(f"option {name}={text!r} is invalid: {exc}") from None
    for name, value in options.items():
        if name not in known:
            raise _unknown(name, own, url, driver=passed)
        merged[name] = value
    return base, merged


def _split_query(url: str) -> tuple[str, str]:
    """Return the URL up to its query, and the query (after the userinfo, if any)."""
    parts = _after_scheme(url)
    if parts is None:
        base, _, query = url.partition("?")
        return base, query
    rest = parts[1]
    start = _userinfo_end(rest, cautious=False) + 1
    mark = rest.find("?", start)
    if mark < 0:
        return url, ""
    return url[: len(url) - len(rest) + mark], rest[mark + 1 :]


def _unknown(
    name: str,
    known: Mapping[str, OptionParser],
    url: str,
    *,
    shown: bool = True,
    driver: Mapping[str, OptionParser] | None = None,
) -> InvalidParameterError:
    if shown and _PLAIN_OPTION.fullmatch(name):
        what = f"unknown option {name!r}"
    else:
        # Not a name any backend has: it may be a piece of a password or secret.
        what = (
            "an unknown option (its name is not shown: it may be part of a secret; "
            "percent-encode '&', '?' and '@' in secrets)"
        )
    passed = f"; passed to the driver: {', '.join(sorted(driver))}" if driver else ""
    return InvalidParameterError(
        f"{what} for {redact_url(url)!r}; valid options: {', '.join(sorted(known))}{passed}"
    )
