"""Real servers for the tests: the ones the machine runs, or throwaway ones.

A test that needs PostgreSQL, MariaDB or Redis reads its URL from the
environment (defaults: the servers on 127.0.0.1). When the server is not
there, a throwaway one is started if its binary is installed, else the test
is skipped with the reason -- except under ``CI=true``, where a missing server
is a failure.
"""

from __future__ import annotations

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
            [
                binary,
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                workdir,
                *extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(port)
            yield port, proc
        finally:
            proc.kill()
            proc.wait()


def workdir(prefix: str) -> Path:
    """Return a fresh temporary directory that outlives the fixture's scope."""
    return Path(tempfile.mkdtemp(prefix=prefix))
