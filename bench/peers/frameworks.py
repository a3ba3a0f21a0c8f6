"""The frameworks' own session stores against our adapters, on the same storage.

Usage (from the repository root; ``make bench-peers`` runs it after the peers)::

    python -m bench.peers.frameworks [--quick] [--frameworks adk,llama-index]
        [--storages sqlite,postgresql] [--workloads turn,read,list,concurrent]

For each framework and storage, each workload runs once on our adapter and
once on the framework's own store, back to back (the order alternating from
one workload to the next), each in a fresh child process
(``bench/peers/frameworks_<name>.py``; see ``frameworks_common.py`` for the
workloads). Our side runs in this interpreter's environment; a native store
that needs packages ours does not have runs in its peer virtualenv under
``bench/.venvs/``. Each system gets its own SQLite file, its own PostgreSQL
database (created and dropped here) and its own Redis key prefix. Results go
to ``bench/results/frameworks.json``; ``python -m bench.report`` renders them.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.peers.common import POSTGRES_URL, REDIS_URL, log
from bench.peers.frameworks_common import QUICK, WORKLOADS, Place, Sizes, sizes_json
from bench.peers.frameworks_llama import NATIVE_REDIS_DB
from bench.peers.run import VENVS, ensure_venv
from bench.workloads import ROOT, python_env

OUT = Path(ROOT) / "bench" / "results" / "frameworks.json"
CHILD_TIMEOUT_S = 1800


@dataclass
class Framework:
    """One framework: its child module, and its native store per storage."""

    module: str
    package: str  # whose version is reported
    natives: dict[str, str | None]  # storage -> the native store's name (None: it has none)
    sqlite_as_path: bool = False  # the native store takes a file path, not a URL
    listing: bool = True  # whether the framework lists sessions at all
    peer_venv: dict[str, tuple[str, list[str]]] = field(default_factory=dict)


LLAMA_VENV = (
    "llama-index",
    [
        "llama-index-core==0.14.25",
        "llama-index-storage-chat-store-redis==0.8.0",
        "llama-index-storage-chat-store-postgres==0.5.0",
        "aiosqlite",
        "asyncpg",
    ],
)

FRAMEWORKS: dict[str, Framework] = {
    "openai-agents": Framework(
        "bench.peers.frameworks_openai",
        "openai-agents",
        {"sqlite": "SQLiteSession", "redis": "RedisSession", "postgresql": "SQLAlchemySession"},
        sqlite_as_path=True,
        listing=False,
    ),
    "adk": Framework(
        "bench.peers.frameworks_adk",
        "google-adk",
        {"sqlite": "DatabaseSessionService", "postgresql": "DatabaseSessionService", "redis": None},
    ),
    "llama-index": Framework(
        "bench.peers.frameworks_llama",
        "llama-index-core",
        {
            "sqlite": "SQLAlchemyChatStore",
            "postgresql": "SQLAlchemyChatStore",
            "redis": "RedisChatStore",
        },
        peer_venv={"redis": LLAMA_VENV},
    ),
}
STORAGES = ("sqlite", "redis", "postgresql")


def database_url(database: str) -> str:
    return POSTGRES_URL.rsplit("/", 1)[0] + f"/{database}"


async def postgres(statements: list[str]) -> None:
    import asyncpg  # noqa: PLC0415 (only when PostgreSQL is measured)

    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def unlink_prefix(prefix: str) -> None:
    from redis.asyncio import Redis  # noqa: PLC0415

    for db in (None, NATIVE_REDIS_DB):
        url = REDIS_URL if db is None else REDIS_URL.rsplit("/", 1)[0] + f"/{db}"
        client = Redis.from_url(url)
        try:
            async for key in client.scan_iter(match=f"{prefix}*", count=1000):
                await client.unlink(key)
        finally:
            await client.aclose()


class Run:
    """This run's namespaces, and what it must remove at the end."""

    def __init__(self) -> None:
        self.id = uuid.uuid4().hex[:8]
        self.tmp = Path(tempfile.mkdtemp(prefix=f"bench-fw-{self.id}-"))
        self.databases: list[str] = []

    def place(self, framework: str, side: str, storage: str) -> Place:
        name = f"{framework}-{side}"
        prefix = f"bench-fw-{self.id}-{name}"
        spec = FRAMEWORKS[framework]
        if storage == "sqlite":
            path = str(self.tmp / f"{name}.db")
            native = path if spec.sqlite_as_path else f"sqlite+aiosqlite:///{path}"
            return Place(storage, f"sqlite:///{path}", native, prefix)
        if storage == "redis":
            return Place(storage, f"{REDIS_URL}?prefix={prefix}", REDIS_URL, prefix)
        database = f"bench_fw_{self.id}_{name.replace('-', '_')}"
        if database not in self.databases:
            asyncio.run(postgres([f"CREATE DATABASE {database}"]))
            self.databases.append(database)
        url = database_url(database)
        return Place(storage, url, "postgresql+asyncpg://" + url.split("://", 1)[1], prefix)

    def clean(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
        if self.databases:
            drops = [f"DROP DATABASE IF EXISTS {d} WITH (FORCE)" for d in self.databases]
            asyncio.run(postgres(drops))
        asyncio.run(unlink_prefix(f"bench-fw-{self.id}-"))


def child(python: str, module: str, side: str, workload: str, place: Place, sizes: Sizes) -> Any:
    """Run one workload on one system in a fresh process; its result or ``{"error": ...}``."""
    argv = [python, "-m", module, side, workload, json.dumps(asdict(place)), sizes_json(sizes)]
    env = python_env() | {"PYTHONWARNINGS": "ignore"}
    try:
        done = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": f"no result after {CHILD_TIMEOUT_S} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = done.stderr.strip().splitlines()[-1:] or [f"exit {done.returncode}"]
        return {"error": tail[0][:300]}
    return json.loads(lines[-1])


def bench_case(
    run: Run, framework: str, storage: str, workloads: list[str], sizes: Sizes
) -> dict[str, Any]:
    spec = FRAMEWORKS[framework]
    native_name = spec.natives.get(storage)
    pythons = {"ours": sys.executable, "native": sys.executable}
    if storage in spec.peer_venv:
        pythons["native"] = str(ensure_venv(*spec.peer_venv[storage]))
    sides = ["ours", "native"] if native_name else ["ours"]
    results: dict[str, Any] = {}
    for index, workload in enumerate(workloads):
        order = sides if index % 2 == 0 else sides[::-1]
        results[workload] = {}
        if workload == "list" and not spec.listing:
            results[workload] = {side: {"na": "the framework lists no sessions"} for side in sides}
            continue
        for side in order:
            place = run.place(framework, side, storage)
            result = child(pythons[side], spec.module, side, workload, place, sizes)
            results[workload][side] = result
            log(f"  {framework} {storage} {workload} {side}: {result}")
    return {
        "native": native_name or "none (ours only)",
        "workloads": results,
    }


def versions(frameworks: list[str]) -> dict[str, str]:
    found = {"sessionstore": importlib.metadata.version("sessionstore")}
    for name in frameworks:
        package = FRAMEWORKS[name].package
        found[package] = importlib.metadata.version(package)
    if "llama-index" in frameworks:
        python = VENVS / LLAMA_VENV[0] / "bin" / "python"
        if python.exists():
            probe = "import importlib.metadata as m; print(m.version('{}'))"
            package = "llama-index-storage-chat-store-redis"
            done = subprocess.run(
                [str(python), "-c", probe.format(package)],
                capture_output=True,
                text=True,
                check=False,
            )
            found[package] = done.stdout.strip() or "?"
    return found


def sizes_from(args: argparse.Namespace) -> Sizes:
    base = QUICK if args.quick else Sizes()
    if args.read_sizes:
        base.read_sizes = tuple(int(s) for s in args.read_sizes.split(","))
    for name in ("turns", "sessions", "task_turns", "reads"):
        value = getattr(args, name)
        if value is not None:
            setattr(base, name, value)
    return base


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    parser.add_argument("--storages", default=",".join(STORAGES))
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--turns", type=int, help="turn: sequential turns")
    parser.add_argument("--read-sizes", help="read: items in the logs, e.g. 100,1000,10000")
    parser.add_argument("--reads", type=int, help="read: rounds of last-20 reads")
    parser.add_argument("--sessions", type=int, help="list: sessions listed")
    parser.add_argument("--task-turns", type=int, help="concurrent: turns per task (16 tasks)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep what --out holds that this run does not redo (cases and workloads)",
    )
    args = parser.parse_args(argv)
    sizes = sizes_from(args)
    frameworks = [f for f in args.frameworks.split(",") if f]
    workloads = [w for w in args.workloads.split(",") if w]
    cases = [
        (framework, storage)
        for framework in frameworks
        for storage in args.storages.split(",")
        if storage in FRAMEWORKS[framework].natives
    ]
    command = f"python -m bench.peers.frameworks {shlex.join(argv)}".strip()
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    earlier: dict[str, Any] = {}
    if args.merge and args.out.exists():
        earlier = json.loads(args.out.read_text())
    kept: dict[str, dict[str, Any]] = earlier.get("results", {})
    data = {
        "command": command,
        "when": when,
        "load_before": os.getloadavg(),
        "load_after": None,
        "sizes": asdict(sizes),
        "versions": versions(sorted({f for f in FRAMEWORKS if f in kept} | set(frameworks))),
        "pending": [f"{framework} {storage}" for framework, storage in cases],
        "results": kept,
    }
    if earlier:  # the earlier run stays the headline; this one is listed as an update
        data.update({k: earlier[k] for k in ("command", "when", "load_before", "load_after")})
        data["sizes"] = earlier.get("sizes", data["sizes"])
        data["pending"] = earlier.get("pending", [])
        data["updates"] = [
            *earlier.get("updates", []),
            {"command": command, "when": when, "load_before": os.getloadavg()},
        ]
    run = Run()
    try:
        for framework, storage in cases:
            log(f"{framework} on {storage}:")
            case = bench_case(run, framework, storage, workloads, sizes)
            case["sizes"] = asdict(sizes)
            before = kept.get(framework, {}).get(storage)
            if earlier and before is not None:  # keep the workloads this run did not redo
                case["workloads"] = {**before["workloads"], **case["workloads"]}
                case["sizes"] = before.get("sizes", case["sizes"])
            data["results"].setdefault(framework, {})[storage] = case
            pending = f"{framework} {storage}"
            if pending in data["pending"] and set(workloads) >= set(WORKLOADS):
                data["pending"].remove(pending)
            if earlier:
                data["updates"][-1]["load_after"] = os.getloadavg()
            else:
                data["load_after"] = os.getloadavg()
            write(args.out, data)  # after each case, so a stopped run keeps what it measured
    finally:
        run.clean()
    write(args.out, data)
    log(f"results written to {args.out}")
    return 0


def write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
