"""Choosing a backend by URL: the scheme registry, options, credential redaction."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from sessionstore.errors import InvalidParameterError
from sessionstore.store import SessionStore

__all__ = [
    "BackendFactory",
    "default_store_url",
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
    "postgresql": _builtin(_SQL),
    "postgres": _builtin(_SQL),
    "mysql": _builtin(_SQL),
    "mariadb": _builtin(_SQL),
}


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
    if not isinstance(url, str) or "://" not in url:
        raise InvalidParameterError(
            f"store URL must look like 'scheme://...', got {redact_url(str(url))!r}"
        )
    scheme = url.split("://", 1)[0].lower()
    factory = _REGISTRY.get(scheme)
    if factory is None:
        raise InvalidParameterError(
            f"unknown store scheme {scheme!r} in {redact_url(url)!r}; "
            f"valid schemes: {', '.join(sorted(_REGISTRY))}"
        )
    return factory(url, **options)


_SECRET_PARAMS = frozenset({"password", "pass", "passwd", "token", "secret", "api_key"})


def redact_url(url: str) -> str:
    """Return ``url`` with its password and secret query values replaced by ``***``."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
        query = "&".join(
            f"{k}=***" if k.lower() in _SECRET_PARAMS else f"{k}={v}"
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        )
        if "://" not in url:
            return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
        # Rebuilt by hand: urlunsplit turns sqlite:////abs/path into sqlite://abs/path.
        shown = f"{parts.scheme}://{netloc}{parts.path}"
        shown += f"?{query}" if query else ""
        return shown + (f"#{parts.fragment}" if parts.fragment else "")
    except ValueError:
        return "<unparseable URL>"


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
}


def split_options(
    url: str, options: Mapping[str, Any], parsers: Mapping[str, OptionParser]
) -> tuple[str, dict[str, Any]]:
    """Merge URL query options with keyword options (keywords win).

    Args:
        url: the store URL, possibly with a ``?query``.
        options: keyword options, already typed.
        parsers: every option name the backend accepts, with its text parser;
            the base options ``ttl`` and ``max_field_bytes`` are always added.

    Returns:
        The URL without its query, and the merged options.

    Raises:
        InvalidParameterError: an unknown option or a value that does not parse.

    """
    known = {**BASE_OPTIONS, **parsers}
    base, _, query = url.partition("?")
    merged: dict[str, Any] = {}
    for name, text in parse_qsl(query, keep_blank_values=True):
        parser = known.get(name)
        if parser is None:
            raise _unknown(name, known, url)
        try:
            merged[name] = parser(text)
        except ValueError as exc:
            shown = "***" if name in _SECRET_PARAMS else text
            raise InvalidParameterError(f"option {name}={shown!r} is invalid: {exc}") from None
    for name, value in options.items():
        if name not in known:
            raise _unknown(name, known, url)
        merged[name] = value
    return base, merged


def _unknown(name: str, known: Mapping[str, OptionParser], url: str) -> InvalidParameterError:
    return InvalidParameterError(
        f"unknown option {name!r} for {redact_url(url)!r}; valid options: "
        f"{', '.join(sorted(known))}"
    )
