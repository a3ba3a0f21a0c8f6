"""A throwaway local Redis Cluster: three masters on free ports, no replicas.

Each node's log is in the pytest temp directory (see ``tests/servers.py``); a
cluster that fails to form says why with the tails of those logs.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from tests.servers import (
    ServerProcess,
    free_port,
    log_path,
    redis_server_command,
    run_logged,
    tail,
    unavailable,
)


def _cluster_ok(cli: str, port: int) -> bool:
    info = subprocess.run(
        [cli, "-p", str(port), "cluster", "info"],
        capture_output=True,
        text=True,
        check=False,
        timeout=5,
    ).stdout
    return "cluster_state:ok" in info


def _failure(what: str, nodes: list[ServerProcess]) -> RuntimeError:
    return RuntimeError(
        "\n".join([f"the throwaway Redis Cluster {what}"] + [tail(n.log) for n in nodes])
    )


@contextmanager
def throwaway_cluster(masters: int = 3) -> Iterator[list[int]]:
    """Run a private ``masters``-node Redis Cluster for the block; yield its ports."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        unavailable("redis-server and redis-cli are needed for the Redis Cluster tests")
        raise AssertionError("unreachable")
    with ExitStack() as stack:
        workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="sessionstore-cluster-"))
        ports: list[int] = []
        nodes: list[ServerProcess] = []
        for i in range(masters):
            port = free_port()
            node = ServerProcess(
                f"redis-cluster-node-{i}",
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
                watch=True,
            )
            stack.callback(node.stop)
            node.wait_for_port(port)
            ports.append(port)
            nodes.append(node)
        create = [cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports)]
        try:
            run_logged(
                [*create, "--cluster-replicas", "0", "--cluster-yes"],
                log_path("redis-cluster-create"),
                timeout=60,
            )
        except (RuntimeError, subprocess.SubprocessError) as exc:
            raise _failure(f"was not created: {exc}", nodes) from None
        deadline = time.monotonic() + 30
        while not all(_cluster_ok(cli, p) for p in ports):
            if time.monotonic() > deadline:
                raise _failure("never reached cluster_state:ok", nodes)
            time.sleep(0.1)
        yield ports
