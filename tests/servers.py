"""Real servers for the tests: the ones the machine runs, or throwaway ones.

A test that needs PostgreSQL, MariaDB or Redis reads its URL from the
environment (defaults: the servers on 127.0.0.1). When the server is not
there, a throwaway one is started if its binary is installed, else the test
is skipped with the reason -- except under ``CI=true``, where a missing server
is a failure.

A throwaway server writes its output to a log in the pytest temp directory
(see :func:`keep_logs_in`); when it fails to start, the error ends with the
log's last lines, and one that dies during the run is reported by
:func:`deaths` (``tests/conftest.py`` shows it with the failing test).
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:
    from tests.certificates import Certificates

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

REDIS_URL = os.environ.get("SESSIONSTORE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get(
    "SESSIONSTORE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
MYSQL_URL = os.environ.get("SESSIONSTORE_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")


def unavailable(reason: str) -> None:
    """Skip, or fail under CI, because a server the test needs is missing."""
    if IN_CI:
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def reachable(url: str, timeout: float = 1.0) -> bool:
    """Return whether something accepts TCP connections at the URL's host:port."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port), timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    """Return a TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    """Block until 127.0.0.1:port accepts connections or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if reachable(f"tcp://127.0.0.1:{port}", 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout}s")


# -- logs of the throwaway servers ---------------------------------------------

_log_dir: Path | None = None
_log_numbers = itertools.count()


def keep_logs_in(directory: Path) -> None:
    """Write the logs of throwaway servers started from now on into ``directory``."""
    global _log_dir  # noqa: PLW0603 - one log directory per test run
    _log_dir = directory


def log_path(name: str) -> Path:
    """Return a new log file for ``name`` (in a temporary directory outside pytest)."""
    global _log_dir  # noqa: PLW0603 - created once, on first use outside pytest
    if _log_dir is None:
        _log_dir = Path(tempfile.mkdtemp(prefix="sessionstore-server-logs-"))
    return _log_dir / f"{name}-{next(_log_numbers)}.log"


def tail(log: Path, lines: int = 25) -> str:
    """Return the last ``lines`` lines of ``log``, headed by its path."""
    try:
        text = log.read_text(errors="replace").splitlines()[-lines:]
    except OSError as exc:
        text = [f"(cannot read it: {exc})"]
    return "\n".join([f"--- last lines of {log} ---", *text])


def run_logged(command: list[str], log: Path, timeout: float = 120) -> None:
    """Run a setup command with its output appended to ``log``; fail with the log's tail."""
    with log.open("ab") as out:
        code = subprocess.run(
            command, stdout=out, stderr=subprocess.STDOUT, check=False, timeout=timeout
        ).returncode
    if code != 0:
        raise RuntimeError(f"{Path(command[0]).name} exited with {code}\n{tail(log)}")


class ServerProcess:
    """A throwaway server whose output goes to its log file."""

    def __init__(self, name: str, command: list[str], *, watch: bool = False) -> None:
        """Start ``command``; with ``watch``, :func:`deaths` reports it if it exits unasked."""
        self.name = name
        self.log = log_path(name)
        self.stopping = False
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
        if watch:
            _WATCHED.append(self)

    def wait_for_port(self, port: int, timeout: float = 10.0) -> None:
        """Block until it listens on ``port``; fail with its log if it exits or never does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise self.failure(f"exited with {self.proc.returncode} while starting")
            if reachable(f"tcp://127.0.0.1:{port}", 0.2):
                return
            time.sleep(0.05)
        raise self.failure(f"did not listen on port {port} within {timeout}s")

    def failure(self, what: str) -> RuntimeError:
        return RuntimeError(f"{self.name} {what}\n{tail(self.log)}")

    def stop(self) -> None:
        """Terminate it (kill it if it takes more than 10 s) and wait for it."""
        self.stopping = True
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


_WATCHED: list[ServerProcess] = []


def deaths() -> list[str]:
    """Return, once each, the log tails of watched servers that exited unasked."""
    dead = [s for s in _WATCHED if not s.stopping and s.proc.poll() is not None]
    for server in dead:
        _WATCHED.remove(server)
    return [str(s.failure(f"died (exit status {s.proc.returncode})")) for s in dead]


def redis_server_command(binary: str, port: int, workdir: str | Path, *extra: str) -> list[str]:
    """Return the command of a private, non-persistent ``redis-server`` on ``port``."""
    persistence_off = ["--save", "", "--appendonly", "no"]
    return [binary, "--port", str(port), *persistence_off, "--dir", str(workdir), *extra]


@contextmanager
def throwaway_redis(*extra_args: str) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """Run a private ``redis-server`` on a free port for the block."""
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server is not installed")
        raise AssertionError("unreachable")
    port = free_port()
    with tempfile.TemporaryDirectory() as workdir:
        server = ServerProcess("redis", redis_server_command(binary, port, workdir, *extra_args))
        try:
            server.wait_for_port(port)
            yield port, server.proc
        finally:
            server.proc.kill()
            server.proc.wait()


_STARTED: dict[str, str] = {}


def server_url(kind: str) -> str:
    """Return a URL of a ``redis``, ``postgresql`` or ``mariadb`` server for the tests.

    The configured server when it answers; else a throwaway one started once
    per test run (if its binaries are installed) and stopped at exit; else the
    test is skipped, or fails under ``CI=true``.
    """
    configured = {"redis": REDIS_URL, "postgresql": POSTGRES_URL, "mariadb": MYSQL_URL}[kind]
    if kind in _STARTED:
        return _STARTED[kind]
    if reachable(configured):
        return configured
    starter = {"redis": _start_redis, "postgresql": _start_postgres, "mariadb": _start_mariadb}
    try:
        url = starter[kind]()
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        unavailable(f"no {kind} server at {_where(configured)} and no throwaway one: {exc}")
        raise AssertionError("unreachable") from exc
    _STARTED[kind] = url
    return url


def _where(url: str) -> str:
    return url.rsplit("@", maxsplit=1)[-1].rsplit("://", maxsplit=1)[-1]


def _spawn(name: str, command: list[str], port: int, data: Path) -> None:
    server = ServerProcess(name, command, watch=True)
    atexit.register(_stop, server, data)
    server.wait_for_port(port, timeout=30)


def _stop(server: ServerProcess, data: Path) -> None:
    server.stop()
    shutil.rmtree(data, ignore_errors=True)


def _binary(name: str, *patterns: str) -> str:
    # The versioned install directories first: /usr/bin may hold wrappers.
    found = next(
        (str(p) for pattern in patterns for p in sorted(Path("/").glob(pattern))), None
    ) or shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed")
    return found


def _start_redis() -> str:
    binary = _binary("redis-server")
    port = free_port()
    data = workdir("redis-")
    _spawn("redis", redis_server_command(binary, port, data), port, data)
    return f"redis://127.0.0.1:{port}/0"


def _as_service_user(command: list[str], user: str) -> list[str]:
    # PostgreSQL refuses to run as root; run it as its own system user then.
    if os.geteuid() == 0:
        return ["runuser", "-u", user, "--", *command]
    return command


def _start_postgres() -> str:
    initdb = _binary("initdb", "usr/lib/postgresql/*/bin/initdb")
    bindir = Path(initdb).parent
    data = workdir("postgres-")
    if os.geteuid() == 0:
        shutil.chown(data, "postgres")
    setup = log_path("postgres-setup")
    run_logged(
        _as_service_user([initdb, "-D", str(data), "-U", "postgres", "--auth=trust"], "postgres"),
        setup,
    )
    port = free_port()
    server = [str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(data)]
    server += ["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]
    _spawn("postgres", _as_service_user(server, "postgres"), port, data)
    createdb = [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres"]
    run_logged([*createdb, "test"], setup)
    return f"postgresql://postgres@127.0.0.1:{port}/test"


def _start_mariadb() -> str:
    install = _binary("mariadb-install-db")
    daemon = _binary("mariadbd", "usr/sbin/mariadbd")
    data = workdir("mariadb-")
    user = ["--user=root"] if os.geteuid() == 0 else []
    setup = log_path("mariadb-setup")
    run_logged(
        [
            install,
            "--no-defaults",
            f"--datadir={data}",
            "--auth-root-authentication-method=normal",
            *user,
        ],
        setup,
    )
    port = free_port()
    _spawn(
        "mariadb",
        [
            daemon,
            "--no-defaults",
            f"--datadir={data}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            f"--socket={data / 'sock'}",
            *user,
        ],
        port,
        data,
    )
    client = _binary("mariadb")
    run_logged(
        [
            client,
            "-h",
            "127.0.0.1",
            "-P",
            str(port),
            "-uroot",
            "-e",
            "CREATE DATABASE IF NOT EXISTS test",
        ],
        setup,
    )
    return f"mysql://root@127.0.0.1:{port}/test"


def workdir(prefix: str) -> Path:
    """Return a fresh temporary directory that outlives the fixture's scope."""
    return Path(tempfile.mkdtemp(prefix=prefix))


# -- servers that speak TLS -----------------------------------------------------


@contextmanager
def throwaway_tls_postgres(certs: Certificates) -> Iterator[str]:
    """Run a private PostgreSQL that requires TLS for the block; yield ``127.0.0.1:port``.

    Its certificate is ``certs.server_cert``; it trusts client certificates
    signed by ``certs.ca``. TCP connections must use TLS (plain ones are
    refused). User ``postgres`` logs in without a password; user
    ``certuser`` only with a client certificate whose common name is
    ``certuser`` (``cert`` authentication: ``clientcert=verify-full``).
    Both reach database ``test``, which ``certuser`` owns.
    """
    try:
        initdb = _binary("initdb", "usr/lib/postgresql/*/bin/initdb")
    except RuntimeError as exc:
        unavailable(str(exc))
        raise AssertionError("unreachable") from exc
    bindir = Path(initdb).parent
    data = workdir("postgres-tls-")
    server: ServerProcess | None = None
    try:
        setup = log_path("postgres-tls-setup")
        _own(data)
        run_logged(
            _as_service_user(
                [initdb, "-D", str(data), "-U", "postgres", "--auth=trust"], "postgres"
            ),
            setup,
        )
        for source, name in ((certs.server_cert, "server.pem"), (certs.server_key, "server.key")):
            shutil.copy(source, data / name)
        shutil.copy(certs.ca, data / "ca.pem")
        for name in ("server.pem", "server.key", "ca.pem"):
            (data / name).chmod(0o600)
            _own(data / name)
        (data / "pg_hba.conf").write_text(
            "local all all trust\n"
            "hostssl all certuser 127.0.0.1/32 cert\n"
            "hostssl all all 127.0.0.1/32 trust\n"
            "hostnossl all all 127.0.0.1/32 reject\n"
        )
        port = free_port()
        command = [str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(data)]
        for setting in (
            "listen_addresses=127.0.0.1",
            "fsync=off",
            "ssl=on",
            "ssl_cert_file=server.pem",
            "ssl_key_file=server.key",
            "ssl_ca_file=ca.pem",
        ):
            command += ["-c", setting]
        server = ServerProcess("postgres-tls", _as_service_user(command, "postgres"))
        server.wait_for_port(port, timeout=30)
        local = ["-h", str(data), "-p", str(port), "-U", "postgres"]
        _wait_until_ready([str(bindir / "pg_isready"), *local], server)
        run_logged([str(bindir / "psql"), *local, "-c", "CREATE ROLE certuser LOGIN"], setup)
        run_logged([str(bindir / "createdb"), *local, "-O", "certuser", "test"], setup)
        yield f"127.0.0.1:{port}"
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(data, ignore_errors=True)


def _wait_until_ready(probe: list[str], server: ServerProcess, timeout: float = 30.0) -> None:
    """Run ``probe`` until it succeeds: the server listens before it accepts logins."""
    deadline = time.monotonic() + timeout
    while subprocess.run(probe, capture_output=True, check=False).returncode != 0:
        if server.proc.poll() is not None or time.monotonic() > deadline:
            raise server.failure("did not accept connections")
        time.sleep(0.1)


def _own(path: Path) -> None:
    # PostgreSQL runs as its own user when the tests run as root (see _as_service_user).
    if os.geteuid() == 0:
        shutil.chown(path, "postgres")


@contextmanager
def throwaway_tls_mariadb(certs: Certificates) -> Iterator[str]:
    """Run a private MariaDB with TLS for the block; yield ``127.0.0.1:port``.

    Its certificate is ``certs.server_cert``; it trusts client certificates
    signed by ``certs.ca``. Users, none with a password: ``root`` (TLS
    optional), ``tlsuser`` (``REQUIRE SSL``) and ``x509user`` (``REQUIRE
    X509``: a client certificate signed by that CA); database ``test``.
    """
    try:
        install = _binary("mariadb-install-db")
        daemon = _binary("mariadbd", "usr/sbin/mariadbd")
        client = _binary("mariadb")
    except RuntimeError as exc:
        unavailable(str(exc))
        raise AssertionError("unreachable") from exc
    data = workdir("mariadb-tls-")
    server: ServerProcess | None = None
    try:
        user = ["--user=root"] if os.geteuid() == 0 else []
        setup = log_path("mariadb-tls-setup")
        run_logged(
            [
                install,
                "--no-defaults",
                f"--datadir={data}",
                "--auth-root-authentication-method=normal",
                *user,
            ],
            setup,
        )
        port = free_port()
        server = ServerProcess(
            "mariadb-tls",
            [
                daemon,
                "--no-defaults",
                f"--datadir={data}",
                f"--port={port}",
                "--bind-address=127.0.0.1",
                f"--socket={data / 'sock'}",
                f"--ssl-ca={certs.ca}",
                f"--ssl-cert={certs.server_cert}",
                f"--ssl-key={certs.server_key}",
                *user,
            ],
        )
        server.wait_for_port(port, timeout=30)
        statements = (
            "CREATE DATABASE IF NOT EXISTS test; "
            # The anonymous users would match 'tlsuser' from localhost before 'tlsuser'@'%'.
            "DELETE FROM mysql.global_priv WHERE User = ''; "
            "FLUSH PRIVILEGES; "
            "CREATE USER 'tlsuser'@'%' REQUIRE SSL; "
            "CREATE USER 'x509user'@'%' REQUIRE X509; "
            "GRANT ALL ON test.* TO 'tlsuser'@'%'; "
            "GRANT ALL ON test.* TO 'x509user'@'%'"
        )
        run_logged([client, f"--socket={data / 'sock'}", "-uroot", "-e", statements], setup)
        yield f"127.0.0.1:{port}"
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(data, ignore_errors=True)
