"""The backends the benchmark runs: their URLs, floors, servers and cleanup.

Server URLs come from the same environment variables, with the same
defaults, as ``tests/servers.py``. Every run uses its own key prefix or
table prefix and removes what it wrote.
"""

from __future__ import annotations

import importlib.util
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench import floors

REDIS_URL = os.environ.get("SESSIONSTORE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get(
    "SESSIONSTORE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
MYSQL_URL = os.environ.get("SESSIONSTORE_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")

RUN = uuid.uuid4().hex[:8]
REDIS_PREFIX = f"bench-{RUN}"
SQL_PREFIX = f"bench_{RUN}_"
CLUSTER_FAILURE: list[str] = []


@dataclass
class Target:
    """One backend row of the benchmark."""

    name: str
    module: str  # sessionstore.backends.<module>: the row is n/a while it does not exist
    url: str
    floor: floors.Floor | None = None
    multi_process: bool = False
    cleanup: Callable[[], Awaitable[None]] | None = None
    facts: dict[str, Any] = field(default_factory=dict)


def reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 1
        ):
            return True
    except OSError:
        return False


def module_missing(module: str) -> str | None:
    if importlib.util.find_spec(f"sessionstore.backends.{module}") is None:
        return f"sessionstore.backends.{module} does not exist yet"
    return None


def with_query(url: str, **query: str) -> str:
    joined = "&".join(f"{k}={v}" for k, v in query.items())
    return f"{url}{'&' if '?' in url else '?'}{joined}"


async def drop_sql_tables(url: str) -> None:
    """Drop every table whose name starts with this run's prefix."""
    like = SQL_PREFIX.replace("_", "\\_") + "%"
    if url.startswith("postgres"):
        import asyncpg  # noqa: PLC0415 (an optional extra)

        conn = await asyncpg.connect(url)
        try:
            names = await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                " AND tablename LIKE $1",
                like,
            )
            for row in names:
                await conn.execute(f'DROP TABLE IF EXISTS "{row[0]}" CASCADE')
        finally:
            await conn.close()
        return
    conn = await floors.mysql_connect(url)
    try:
        async with conn.cursor() as cur:
            await cur.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = DATABASE() AND table_name LIKE %s",
                (like,),
            )
            names = [row[0] for row in await cur.fetchall()]
            await cur.execute("SET FOREIGN_KEY_CHECKS = 0")
            for name in names:
                await cur.execute(f"DROP TABLE IF EXISTS `{name}`")
            await cur.execute("SET FOREIGN_KEY_CHECKS = 1")
    finally:
        conn.close()


async def unlink_redis_prefix(url: str, cluster: bool) -> None:
    """Remove any key of this run's prefix that ``prune`` left (locks, floors)."""
    if cluster:
        from redis.asyncio.cluster import RedisCluster  # noqa: PLC0415

        client: Any = RedisCluster.from_url(url.replace("redis+cluster://", "redis://"))
    else:
        from redis.asyncio import Redis  # noqa: PLC0415

        client = Redis.from_url(url)
    try:
        async for key in client.scan_iter(match=f"{REDIS_PREFIX}*", count=1000):
            await client.unlink(key)
    finally:
        await client.aclose()


@contextmanager
def redis_cluster() -> Iterator[str | None]:
    """Run a throwaway 3-master Redis Cluster; yield its URL (``None`` if impossible)."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        yield None
        return
    ports: list[int] = []
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as workdir:
        try:
            try:
                for i in range(3):
                    port = _cluster_port(ports)
                    node_dir = Path(workdir) / str(i)
                    node_dir.mkdir()
                    procs.append(
                        subprocess.Popen(
                            [server, "--port", str(port), "--cluster-enabled", "yes",
                             "--cluster-config-file", "nodes.conf", "--dir", str(node_dir),
                             "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                        )
                    )  # fmt: skip
                    ports.append(port)
                for port in ports:
                    _wait_port(port)
                subprocess.run(
                    [cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
                     "--cluster-replicas", "0", "--cluster-yes"],
                    check=True,
                    capture_output=True,
                    timeout=60,
                )  # fmt: skip
                _wait_cluster_ok(cli, ports)
                url: str | None = f"redis+cluster://127.0.0.1:{ports[0]}"
            except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
                detail = getattr(exc, "stderr", None) or getattr(exc, "stdout", None) or b""
                url = None
                CLUSTER_FAILURE.append(f"{exc} {detail.decode(errors='replace')[-300:]}".strip())
            yield url
        finally:
            for proc in procs:
                proc.kill()
                proc.wait()


def _cluster_port(taken: list[int]) -> int:
    """Return a free port whose cluster bus port (port + 10000) is free too."""
    rng = random.Random()
    while True:
        port = rng.randrange(20000, 50000)
        if port in taken:
            continue
        try:
            for candidate in (port, port + 10000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port


def _wait_port(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"redis-server on port {port} did not start")


def _wait_cluster_ok(cli: str, ports: list[int]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        states = [
            subprocess.run(
                [cli, "-p", str(p), "cluster", "info"], capture_output=True, text=True, check=False
            ).stdout
            for p in ports
        ]
        if all("cluster_state:ok" in s for s in states):
            return
        time.sleep(0.2)
    raise RuntimeError("the throwaway Redis Cluster never reached cluster_state:ok")


def build_targets(workdir: Path, cluster_url: str | None) -> list[Target | tuple[str, str]]:
    """Return every backend row; a row that cannot run is ``(name, reason)``."""
    rows: list[Target | tuple[str, str]] = [
        Target("memory", "memory", "memory://"),
        Target(
            "sqlite",
            "sqlite",
            f"sqlite:///{workdir / 'bench.db'}",
            floor=floors.sqlite_floor(workdir / "floor.db"),
            multi_process=True,
        ),
        Target(
            "file",
            "files",
            f"file://{workdir / 'files'}",
            floor=floors.file_floor(workdir / "floor-files"),
            multi_process=True,
        ),
    ]
    redis_rows = [("redis", REDIS_URL, False), ("redis-cluster", cluster_url, True)]
    for name, url, cluster in redis_rows:
        if url is None:
            why = "; ".join(CLUSTER_FAILURE or ["redis-server or redis-cli missing"])
            rows.append((name, f"no throwaway cluster: {why}"))
            continue
        if not reachable(url, 6379):
            rows.append((name, f"no server at {urlsplit(url).netloc}"))
            continue
        rows.append(
            Target(
                name,
                "redis",
                with_query(url, prefix=REDIS_PREFIX),
                floor=floors.redis_floor(url, f"{REDIS_PREFIX}:floor", cluster),
                cleanup=lambda url=url, cluster=cluster: unlink_redis_prefix(url, cluster),
            )
        )
    sql_rows = [
        ("postgresql", POSTGRES_URL, 5432, floors.postgres_floor),
        ("mariadb", MYSQL_URL, 3306, floors.mysql_floor),
    ]
    for name, url, port, floor in sql_rows:
        if not reachable(url, port):
            rows.append((name, f"no server at {urlsplit(url).netloc}"))
            continue
        rows.append(
            Target(
                name,
                "sql",
                with_query(url, table_prefix=SQL_PREFIX),
                floor=floor(url, f"{SQL_PREFIX}floor"),
                cleanup=lambda url=url: drop_sql_tables(url),
            )
        )
    return rows
