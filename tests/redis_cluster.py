"""A throwaway local Redis Cluster: three masters on free ports, no replicas."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from tests.servers import free_port, redis_server_command, unavailable, wait_for_port


def _cluster_ok(port: int) -> bool:
    info = subprocess.run(
        ["redis-cli", "-p", str(port), "cluster", "info"],
        capture_output=True,
        text=True,
        check=False,
        timeout=5,
    ).stdout
    return "cluster_state:ok" in info


@contextmanager
def throwaway_cluster(masters: int = 3) -> Iterator[list[int]]:
    """Run a private ``masters``-node Redis Cluster for the block; yield its ports."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        unavailable("redis-server and redis-cli are needed for the Redis Cluster tests")
        raise AssertionError("unreachable")
    with ExitStack() as stack:
        workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="sessionstore-cluster-"))
        ports = []
        for i in range(masters):
            port = free_port()
            proc = subprocess.Popen(
                redis_server_command(
                    server,
                    port,
                    workdir,
                    "--cluster-enabled",
                    "yes",
                    "--cluster-port",
                    str(free_port()),
                    "--cluster-config-file",
                    f"nodes-{i}.conf",
                    "--cluster-node-timeout",
                    "2000",
                    "--dbfilename",
                    f"dump-{i}.rdb",
                ),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            stack.callback(proc.wait)
            stack.callback(proc.kill)
            wait_for_port(port)
            ports.append(port)
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        deadline = time.monotonic() + 30
        while not all(_cluster_ok(p) for p in ports):
            if time.monotonic() > deadline:
                raise RuntimeError("the throwaway Redis Cluster never reached cluster_state:ok")
            time.sleep(0.1)
        yield ports
