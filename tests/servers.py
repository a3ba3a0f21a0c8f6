"""Real servers for the tests: the ones the machine runs, or throwaway ones.

A test that needs PostgreSQL, MariaDB or Redis reads its URL from the
environment (defaults: the servers on 127.0.0.1). When the server is not
there, a throwaway one is started if its binary is installed, else the test
is skipped with the reason -- except under ``CI=true``, where a missing server
is a failure.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

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
        proc = subprocess.Popen(
            redis_server_command(binary, port, workdir, *extra_args),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(port)
            yield port, proc
        finally:
            proc.kill()
            proc.wait()


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
    except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
        unavailable(f"no {kind} server at {_where(configured)} and no throwaway one: {exc}")
        raise AssertionError("unreachable") from exc
    _STARTED[kind] = url
    return url


def _where(url: str) -> str:
    return url.rsplit("@", maxsplit=1)[-1].rsplit("://", maxsplit=1)[-1]


def _spawn(command: list[str], port: int, data: Path) -> None:
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    atexit.register(_stop, proc, data)
    wait_for_port(port, timeout=30)


def _stop(proc: subprocess.Popen[bytes], data: Path) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
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
    _spawn(redis_server_command(binary, port, data), port, data)
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
    subprocess.run(
        _as_service_user([initdb, "-D", str(data), "-U", "postgres", "--auth=trust"], "postgres"),
        check=True,
        capture_output=True,
    )
    port = free_port()
    server = [str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(data)]
    server += ["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]
    _spawn(_as_service_user(server, "postgres"), port, data)
    createdb = [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres"]
    subprocess.run([*createdb, "test"], check=True, capture_output=True)
    return f"postgresql://postgres@127.0.0.1:{port}/test"


def _start_mariadb() -> str:
    install = _binary("mariadb-install-db")
    daemon = _binary("mariadbd", "usr/sbin/mariadbd")
    data = workdir("mariadb-")
    user = ["--user=root"] if os.geteuid() == 0 else []
    subprocess.run(
        [
            install,
            "--no-defaults",
            f"--datadir={data}",
            "--auth-root-authentication-method=normal",
            *user,
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    _spawn(
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
    subprocess.run(
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
        check=True,
        capture_output=True,
    )
    return f"mysql://root@127.0.0.1:{port}/test"


def workdir(prefix: str) -> Path:
    """Return a fresh temporary directory that outlives the fixture's scope."""
    return Path(tempfile.mkdtemp(prefix=prefix))
