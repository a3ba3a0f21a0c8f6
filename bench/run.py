"""Benchmark every sessionstore backend that exists and can reach its server.

Usage (from the repository root; ``make bench`` runs the defaults)::

    python -m bench.run [--backends sqlite,redis] [--workloads append,latest] [--quick]

A backend whose module does not exist yet, whose extra is missing or whose
server is unreachable is reported as ``n/a (reason)``. Results go to
``bench/results/sessionstore.json``; ``python -m bench.report`` turns them
into the tables of ``docs/benchmarks.md``. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from bench import facts, report
from bench.adapter import StoreAdapter
from bench.targets import RUN, Target, build_targets, module_missing, redis_cluster
from bench.workloads import (
    ROOT,
    Sizes,
    add_size_flags,
    analyze_postgres,
    processes,
    run_all,
    session_name,
    sizes_from,
)
from sessionstore import (
    MissingDependencyError,
    StoreError,
    StoreUnavailableError,
    open_store,
)

ALL_WORKLOADS = (
    "append", "latest", "many", "update", "concurrent", "items", "agents", "processes", "floor",
)  # fmt: skip
ALL_BACKENDS = ("memory", "sqlite", "file", "redis", "redis-cluster", "postgresql", "mariadb")
OUT = Path(ROOT) / "bench" / "results" / "sessionstore.json"


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(ALL_BACKENDS), help="rows to run")
    parser.add_argument("--workloads", default=",".join(ALL_WORKLOADS), help="workloads to run")
    parser.add_argument("--floor-ops", type=int, default=2000, help="floor: bare-driver inserts")
    parser.add_argument("--out", type=Path, default=OUT, help="where to write the JSON results")
    add_size_flags(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.floor_ops = 200
    return args


_UNAVAILABLE = (MissingDependencyError, ImportError, StoreUnavailableError, StoreError, OSError)


async def bench_target(
    target: Target, sizes: Sizes, workloads: list[str], floor_ops: int
) -> dict[str, Any]:
    missing = module_missing(target.module)
    if missing:
        return {"na": missing}
    try:
        store = open_store(target.url)
        await store.open()
    except _UNAVAILABLE as exc:
        return {"na": f"{type(exc).__name__}: {exc}"[:200]}
    adapter = StoreAdapter(target.name, store)
    if target.name == "postgresql":
        adapter.settle = lambda: analyze_postgres(target.url)
    started = time.perf_counter()
    try:
        results: dict[str, Any] = await run_all(adapter, sizes, workloads, log)
        if "latest" in results and adapter.fill_method != "import_sessions":
            results["latest"]["fill"] = adapter.fill_method
        if "processes" in workloads:
            results["processes"] = await run_processes(target, adapter, sizes)
            log(f"  {target.name} processes: {results['processes']}")
        if "floor" in workloads and target.floor is not None:
            results["floor"] = await run_floor(target, floor_ops, adapter)
            log(f"  {target.name} floor: {results['floor']}")
    finally:
        try:
            await store.prune()
            drop_tables = getattr(store, "drop_tables", None)  # the SQL store offers it
            if drop_tables is not None:
                await drop_tables()
        finally:
            await store.close()
            if target.cleanup is not None:
                await target.cleanup()  # whatever is left under this run's prefix
    results["seconds"] = round(time.perf_counter() - started, 1)
    return results


async def run_processes(target: Target, adapter: StoreAdapter, sizes: Sizes) -> dict[str, Any]:
    if not target.multi_process:
        return {"na": "not shared between processes on this backend"}
    session = session_name("processes")

    def argv_for(index: int, start_at: float) -> list[str]:
        return [
            sys.executable, "-m", "bench.child", target.url, session,
            str(sizes.process_appends), repr(start_at), str(index),
        ]  # fmt: skip

    try:
        return await processes(argv_for, sizes, lambda: adapter.count(session))
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}


async def run_floor(target: Target, ops: int, adapter: StoreAdapter) -> dict[str, Any]:
    assert target.floor is not None
    session = session_name("floor")
    await adapter.append(session, -1)

    async def ours(i: int) -> None:
        await adapter.append(session, i)

    try:
        return await target.floor(ops, ours)
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}


async def main(argv: list[str]) -> int:
    args = parse_args(argv)
    sizes = sizes_from(args)
    wanted = [b.strip() for b in args.backends.split(",") if b.strip()]
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    rows: dict[str, Any] = {}
    load_before = os.getloadavg()
    cluster = redis_cluster() if "redis-cluster" in wanted else nullcontext()
    with tempfile.TemporaryDirectory(prefix=f"bench-{RUN}-") as tmp, cluster as cluster_url:
        for target in build_targets(Path(tmp), cluster_url):
            name = target[0] if isinstance(target, tuple) else target.name
            if name not in wanted:
                continue
            log(f"{name}:")
            if isinstance(target, tuple):
                rows[name] = {"na": target[1]}
            else:
                rows[name] = await bench_target(target, sizes, workloads, args.floor_ops)
            if "na" in rows[name]:
                log(f"  n/a ({rows[name]['na']})")
    result = {
        "command": f"python -m bench.run {shlex.join(argv)}".strip(),
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": facts.machine() | {"load_before": load_before, "load_after": os.getloadavg()},
        "versions": await facts.versions(),
        "sizes": sizes.__dict__ | {"latest_sizes": list(sizes.latest_sizes)},
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(report.ours_tables(result))
    log(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(sys.argv[1:])))
