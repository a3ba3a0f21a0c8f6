"""Throwaway TLS certificates for the tests, made with the ``openssl`` command.

:func:`make_certificates` writes, into a directory: a CA, a server
certificate signed by it for ``127.0.0.1`` and ``localhost``, a client
certificate per name asked for (its common name is that name: PostgreSQL's
``cert`` authentication takes the user name from it), the client key also
encrypted with :data:`KEY_PASSWORD`, and a second CA that signed none of
them (the "wrong CA"). Keys are P-256, certificates valid for two days, with
the extensions strict verification asks for.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.servers import unavailable

__all__ = ["KEY_PASSWORD", "Certificates", "make_certificates"]

KEY_PASSWORD = "client-key-secret-7f3a"
"""The password of each client's encrypted key (``Certificates.encrypted_key``)."""

_CA_EXTENSIONS = (
    "basicConstraints=critical,CA:TRUE\n"
    "keyUsage=critical,keyCertSign,cRLSign\n"
    "subjectKeyIdentifier=hash\n"
)
_LEAF_EXTENSIONS = (
    "basicConstraints=critical,CA:FALSE\n"
    "keyUsage=critical,digitalSignature,keyEncipherment\n"
    "subjectKeyIdentifier=hash\n"
    "authorityKeyIdentifier=keyid,issuer\n"
)


@dataclass(frozen=True)
class Certificates:
    """The files :func:`make_certificates` wrote."""

    directory: Path
    ca: Path
    """The CA certificate that signed the server's and the clients' certificates."""
    other_ca: Path
    """A CA that signed nothing here: verifying the server with it fails."""
    server_cert: Path
    server_key: Path

    def client_cert(self, name: str) -> Path:
        """Return the certificate of client ``name`` (its common name)."""
        return self.directory / f"client-{name}.pem"

    def client_key(self, name: str) -> Path:
        """Return the unencrypted key of client ``name``."""
        return self.directory / f"client-{name}.key"

    def encrypted_key(self, name: str) -> Path:
        """Return the key of client ``name`` encrypted with :data:`KEY_PASSWORD`."""
        return self.directory / f"client-{name}-encrypted.key"


def _openssl(directory: Path, *arguments: str) -> None:
    binary = shutil.which("openssl")
    if binary is None:
        unavailable("the openssl command is not installed")
        raise AssertionError("unreachable")
    done = subprocess.run(
        [binary, *arguments], cwd=directory, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"openssl {arguments[0]} failed: {done.stderr.strip()}")


def _key(directory: Path, name: str) -> str:
    file = f"{name}.key"
    _openssl(
        directory,
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        file,
    )
    return file


def _ca(directory: Path, name: str) -> Path:
    key = _key(directory, name)
    (directory / f"{name}.ext").write_text(_CA_EXTENSIONS)
    _openssl(
        directory,
        "req",
        "-x509",
        "-new",
        "-key",
        key,
        "-subj",
        f"/CN=sessionstore test {name}",
        "-days",
        "2",
        "-sha256",
        "-extensions",
        "v3_ca",
        "-config",
        _request_config(directory, name, _CA_EXTENSIONS),
        "-out",
        f"{name}.pem",
    )
    return directory / f"{name}.pem"


def _request_config(directory: Path, name: str, extensions: str) -> str:
    config = directory / f"{name}.cnf"
    config.write_text(f"[req]\ndistinguished_name=dn\n[dn]\n[v3_ca]\n{extensions}")
    return config.name


def _signed(directory: Path, name: str, common_name: str, extensions: str) -> tuple[Path, Path]:
    key = _key(directory, name)
    _openssl(
        directory,
        "req",
        "-new",
        "-key",
        key,
        "-subj",
        f"/CN={common_name}",
        "-config",
        _request_config(directory, name, extensions),
        "-out",
        f"{name}.csr",
    )
    (directory / f"{name}.ext").write_text(extensions)
    _openssl(
        directory,
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-sha256",
        "-extfile",
        f"{name}.ext",
        "-out",
        f"{name}.pem",
    )
    return directory / f"{name}.pem", directory / key


def make_certificates(directory: Path, client_names: Sequence[str] = ()) -> Certificates:
    """Write a CA, a server certificate and client certificates into ``directory``.

    Under ``CI=true`` a missing ``openssl`` is a failure, else a skip.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca = _ca(directory, "ca")
    other_ca = _ca(directory, "other-ca")
    server_cert, server_key = _signed(
        directory,
        "server",
        "localhost",
        _LEAF_EXTENSIONS
        + "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    for name in client_names:
        _signed(
            directory, f"client-{name}", name, _LEAF_EXTENSIONS + "extendedKeyUsage=clientAuth\n"
        )
        _openssl(
            directory,
            "pkey",
            "-in",
            f"client-{name}.key",
            "-aes256",
            "-passout",
            f"pass:{KEY_PASSWORD}",
            "-out",
            f"client-{name}-encrypted.key",
        )
    return Certificates(directory, ca, other_ca, server_cert, server_key)
