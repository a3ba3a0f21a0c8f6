"""TLS and the other driver options, turned into what asyncpg and asyncmy take.

PostgreSQL keeps libpq's names (``sslmode``, ``sslrootcert``, ``sslcert``,
``sslkey``, ``sslpassword``, ...). asyncpg reads them only from a DSN, so
they reach it in a ``dsn`` holding nothing else (the host, user and
database come as keywords, which win): asyncpg then applies them as libpq
does, ``sslmode=prefer``'s fallback and ``~/.postgresql/root.crt`` included.
A keyword ``ssl`` may instead be an :class:`ssl.SSLContext`, used as it is.

MySQL/MariaDB take MySQL's names (``ssl_mode``, ``ssl_ca``, ``ssl_cert``,
``ssl_key``, ...), built here into one :class:`ssl.SSLContext` for asyncmy,
with the rules of MySQL's own client:

- ``ssl_mode=disabled``: no TLS; ``required``: TLS, the certificate not
  verified unless ``ssl_ca``/``ssl_capath`` is given; ``verify_ca``: TLS,
  the certificate verified (against the system's CAs without ``ssl_ca``);
  ``verify_identity``: that and the host name. ``preferred`` is refused:
  asyncmy cannot fall back to an unencrypted connection.
- Without ``ssl_mode``, any TLS option (or ``ssl=true``) turns TLS on, and a
  given ``ssl_ca``/``ssl_capath`` verifies the certificate and the host name.
- ``ssl_verify_cert`` and ``ssl_verify_identity`` (or ``ssl_check_hostname``)
  set those two checks explicitly.

Every combination is checked when the store is built (no I/O); the files are
read when the first engine is built, and one that cannot be read is an
:class:`~sessionstore.errors.InvalidParameterError` naming its option.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlencode

from sessionstore.errors import InvalidParameterError

__all__ = [
    "LIBPQ_TLS",
    "MYSQL_MODES",
    "MYSQL_TLS",
    "PG_SSL_MODES",
    "asyncmy_arguments",
    "asyncpg_arguments",
    "check_mysql_tls",
    "check_postgres_tls",
]

PG_SSL_MODES: Final = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
"""libpq's ``sslmode`` values, weakest first."""
LIBPQ_TLS: Final = (
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslcrl",
    "sslnegotiation",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
)
"""The PostgreSQL options asyncpg reads from its DSN, as libpq does."""
_PG_FILES: Final = ("sslrootcert", "sslcert", "sslkey", "sslcrl")
# asyncpg's keyword arguments that the options of the same name set.
_PG_KEYWORDS: Final = (
    "target_session_attrs",
    "statement_cache_size",
    "passfile",
    "krbsrvname",
    "gsslib",
)

MYSQL_MODES: Final = ("disabled", "required", "verify_ca", "verify_identity")
"""MySQL's ``ssl_mode`` values asyncmy can honour, weakest first."""
MYSQL_TLS: Final = (
    "ssl_ca",
    "ssl_capath",
    "ssl_cert",
    "ssl_key",
    "ssl_key_password",
    "ssl_cipher",
    "ssl_verify_cert",
    "ssl_verify_identity",
    "ssl_check_hostname",
)
"""The MySQL TLS options built into the SSLContext (besides ``ssl_mode`` and ``ssl``)."""
_MYSQL_FILES: Final = ("ssl_ca", "ssl_capath", "ssl_cert", "ssl_key")
_MYSQL_KEYWORDS: Final = ("read_timeout", "program_name", "unix_socket")


def _conflict(message: str) -> InvalidParameterError:
    return InvalidParameterError(f"conflicting TLS options: {message}")


def check_postgres_tls(options: Mapping[str, Any]) -> None:
    """Refuse PostgreSQL TLS options that contradict each other.

    Raises:
        InvalidParameterError: ``ssl`` and ``sslmode`` both given, an
            SSLContext with libpq's file options, or a key without its
            certificate.

    """
    given = options.get("ssl")
    if given is not None and "sslmode" in options:
        raise _conflict("give sslmode or ssl, not both")
    if isinstance(given, ssl.SSLContext) and any(name in options for name in LIBPQ_TLS):
        raise _conflict("an ssl SSLContext already holds its certificates; drop the ssl* options")
    if ("sslkey" in options or "sslpassword" in options) and "sslcert" not in options:
        raise _conflict("sslkey and sslpassword need sslcert (the client certificate)")


def check_mysql_tls(options: Mapping[str, Any]) -> None:
    """Refuse MySQL TLS options that contradict each other.

    Raises:
        InvalidParameterError: TLS options with ``ssl_mode=disabled`` or
            ``ssl=false``, an SSLContext with other TLS options, a host name
            check without certificate verification, or a key without its
            certificate.

    """
    given, mode = options.get("ssl"), options.get("ssl_mode")
    named = [name for name in MYSQL_TLS if name in options]
    if isinstance(given, ssl.SSLContext) and (named or mode is not None):
        raise _conflict("an ssl SSLContext already holds its settings; drop the ssl_* options")
    off = mode == "disabled" or given is False
    if off and (named or given is True or mode not in {None, "disabled"}):
        raise _conflict("TLS is disabled (ssl_mode=disabled or ssl=false) but TLS options are set")
    verify, hostname = _checks(options)
    if hostname and not verify:
        raise _conflict("checking the host name needs the certificate verified (ssl_verify_cert)")
    if mode in {"verify_ca", "verify_identity"} and options.get("ssl_verify_cert") is False:
        raise _conflict(f"ssl_mode={mode} verifies the certificate; ssl_verify_cert=false does not")
    if ("ssl_key" in options or "ssl_key_password" in options) and "ssl_cert" not in options:
        raise _conflict("ssl_key and ssl_key_password need ssl_cert (the client certificate)")


def _checks(options: Mapping[str, Any]) -> tuple[bool, bool]:
    """Return whether the MySQL certificate and its host name are checked."""
    mode = options.get("ssl_mode")
    has_ca = "ssl_ca" in options or "ssl_capath" in options
    verify = mode in {"verify_ca", "verify_identity"} or has_ca
    hostname = mode == "verify_identity" or (mode is None and has_ca)
    verify = options.get("ssl_verify_cert", verify)
    explicit = options.get("ssl_verify_identity", options.get("ssl_check_hostname"))
    return verify, hostname if explicit is None else explicit


def _readable(options: Mapping[str, Any], names: tuple[str, ...]) -> None:
    """Refuse a certificate or key option naming a file or directory that is not there."""
    for name in names:
        path = options.get(name)
        if path is not None and not os.access(path, os.R_OK):
            raise InvalidParameterError(
                f"{name}: cannot read {path!r} (no such file, or no access)"
            )


def asyncpg_arguments(options: Mapping[str, Any]) -> dict[str, Any]:
    """Return asyncpg's ``connect`` arguments for the PostgreSQL driver options.

    Raises:
        InvalidParameterError: a certificate or key file cannot be read.

    """
    _readable(options, _PG_FILES)
    arguments = {name: options[name] for name in _PG_KEYWORDS if name in options}
    given = options.get("ssl")
    libpq = {name: options[name] for name in LIBPQ_TLS if name in options}
    if isinstance(given, str):
        libpq["sslmode"] = given
    elif given is not None:  # an SSLContext, or True / False
        arguments["ssl"] = given
    if libpq:
        arguments["dsn"] = "postgresql://?" + urlencode(libpq)
    return arguments


def asyncmy_arguments(options: Mapping[str, Any]) -> dict[str, Any]:
    """Return asyncmy's ``connect`` arguments for the MySQL driver options.

    Raises:
        InvalidParameterError: a certificate or key file cannot be read, or
            is not a certificate or key.

    """
    arguments = {name: options[name] for name in _MYSQL_KEYWORDS if name in options}
    context = _mysql_context(options)
    if context is not None:
        arguments["ssl"] = context
    return arguments


def _mysql_context(options: Mapping[str, Any]) -> ssl.SSLContext | None:
    given, mode = options.get("ssl"), options.get("ssl_mode")
    if isinstance(given, ssl.SSLContext):
        return given
    wanted = mode not in {None, "disabled"} or given is True
    if mode == "disabled" or given is False or not (wanted or any(n in options for n in MYSQL_TLS)):
        return None
    _readable(options, _MYSQL_FILES)
    verify, hostname = _checks(options)
    try:
        if verify:
            context = ssl.create_default_context(
                cafile=options.get("ssl_ca"), capath=options.get("ssl_capath")
            )
            context.check_hostname = hostname
        else:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if "ssl_cert" in options:
            context.load_cert_chain(
                options["ssl_cert"],
                keyfile=options.get("ssl_key"),
                password=options.get("ssl_key_password"),
            )
        if "ssl_cipher" in options:
            context.set_ciphers(options["ssl_cipher"])
    except ssl.SSLError as exc:  # the reason, never the key's password
        raise InvalidParameterError(
            f"the TLS options ssl_ca / ssl_cert / ssl_key / ssl_cipher are unusable: {exc.reason}"
        ) from None
    return context
