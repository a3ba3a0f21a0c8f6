"""What every peer script shares: storage locations, the main loop, child processes.

A peer script runs in its own virtualenv (``bench/.venvs/<peer>``) with only
the peer's packages, so this module, like ``bench/workloads.py``, imports only
the standard library.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bench.workloads import (
    Adapter,
    add_size_flags,
    analyze_postgres,
    child_append,
    processes,
    run_all,
    sizes_from,
)

REDIS_URL = os.environ.get("SESSIONSTORE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get(
    "SESSIONSTORE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
MYSQL_URL = os.environ.get("SESSIONSTORE_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
STORAGES = ("sqlite", "redis", "postgresql", "mariadb")


def sqlalchemy_url(storage: str, location: str) -> str:
    """Return the SQLAlchemy async URL for a storage (``location``: the SQLite file)."""
    if storage == "sqlite":
        return f"sqlite+aiosqlite:///{location}"
    if storage == "postgresql":
        return "postgresql+asyncpg://" + POSTGRES_URL.split("://", 1)[1]
    return "mysql+asyncmy://" + MYSQL_URL.split("://", 1)[1]


@dataclass
class Place:
    """Where one storage's data lives for this run."""

    storage: str
    location: str  # SQLite file, or the server URL
    prefix: str  # key or table prefix, unique per run


class PeerAdapter(Adapter, Protocol):
    """An adapter that also knows how to remove what it wrote."""

    multi_process: bool

    async def close(self, remove: bool = True) -> None:
        """Close clients; with ``remove``, also drop this run's keys or tables."""


Factory = Callable[[Place], Awaitable[PeerAdapter]]


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def place_for(storage: str, tmp: Path, run: str) -> Place:
    location = {
        "sqlite": str(tmp / "peer.db"),
        "redis": REDIS_URL,
        "postgresql": POSTGRES_URL,
        "mariadb": MYSQL_URL,
    }[storage]
    return Place(storage, location, f"peer_{run}_")


async def bench_storage(
    factories: dict[str, Factory | str], place: Place, args: argparse.Namespace, module: str
) -> dict[str, Any]:
    factory = factories.get(place.storage, "not offered by this system")
    if isinstance(factory, str):
        return {"na": factory}
    try:
        adapter = await factory(place)
    except Exception as exc:
        return {"na": f"{type(exc).__name__}: {exc}"[:200]}
    if place.storage == "postgresql":
        adapter.settle = lambda: analyze_postgres(place.location)  # as bench/run.py does
    sizes = sizes_from(args)
    workloads = args.workloads.split(",")
    started = time.perf_counter()
    try:
        results: dict[str, Any] = await run_all(adapter, sizes, workloads, log)
        if "processes" in workloads and adapter.multi_process:
            session = f"processes-{uuid.uuid4().hex[:8]}"

            def argv_for(index: int, start_at: float) -> list[str]:
                return [
                    sys.executable, "-m", module, "child", place.storage, place.location,
                    place.prefix, session, str(sizes.process_appends), repr(start_at), str(index),
                ]  # fmt: skip

            results["processes"] = await processes(argv_for, sizes, lambda: adapter.count(session))
            log(f"  {adapter.name} processes: {results['processes']}")
    finally:
        await adapter.close()
    results["seconds"] = round(time.perf_counter() - started, 1)
    return {"name": adapter.name, **results}


async def peer_main(
    name: str, version: str, factories: dict[str, Factory | str], module: str, argv: list[str]
) -> int:
    """Run the workloads of one peer on every storage it offers; print JSON."""
    if argv and argv[0] == "child":
        storage, location, prefix, session, appends, start_at, index = argv[1:8]
        factory = factories[storage]
        assert not isinstance(factory, str)
        adapter = await factory(Place(storage, location, prefix))
        try:
            await child_append(adapter, session, int(appends), float(start_at), int(index))
        finally:
            await adapter.close(remove=False)  # the parent removes the data
        return 0
    parser = argparse.ArgumentParser(description=f"benchmark {name}")
    parser.add_argument("--storages", default=",".join(STORAGES))
    parser.add_argument(
        "--workloads", default="append,latest,many,update,concurrent,items,processes"
    )
    parser.add_argument("--out", type=Path, required=True)
    add_size_flags(parser)
    args = parser.parse_args(argv)
    run = uuid.uuid4().hex[:8]
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-peer-{run}-"))
    storages: dict[str, Any] = {}
    try:
        for storage in args.storages.split(","):
            log(f"{name} on {storage}:")
            storages[storage] = await bench_storage(
                factories, place_for(storage, tmp, run), args, module
            )
            if "na" in storages[storage]:
                log(f"  n/a ({storages[storage]['na']})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    args.out.write_text(json.dumps({"system": name, "version": version, "storages": storages}))
    return 0


def run(name: str, version: str, factories: dict[str, Factory | str], module: str) -> None:
    raise SystemExit(asyncio.run(peer_main(name, version, factories, module, sys.argv[1:])))
