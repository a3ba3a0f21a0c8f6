"""The workloads of ``bench.peers.frameworks``, run in one child process each.

A child measures one *system* (our adapter, or the framework's own store)
on one storage and one workload, and prints its result as JSON on its last
line. Each framework's module (``bench/peers/frameworks_<name>.py``) gives
its systems as factories and calls :func:`child_main`. This module imports
only the standard library: the native stores that need packages ours does
not have run in a peer virtualenv without sessionstore.

Every stored item carries a marker ``(turn I.P)``: turn ``I``, part ``P``
of 4. The concurrent workload reads the session back and counts, from the
markers alone, the turns lost, split (their 4 items not side by side and
in order) and reordered (stored before an earlier turn of the same task).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import re
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from bench.workloads import ANSWER, QUESTION, analyze_postgres, pct

PARTS = 4  # items per turn: the question, a tool call, its output, the reply
TASK_STRIDE = 100_000  # turn numbers of task t start at t * TASK_STRIDE
MARK = re.compile(r"\(turn (\d+)\.(\d)\)")


def marker(i: int, part: int) -> str:
    return f"(turn {i}.{part})"


def question(i: int) -> str:
    return QUESTION.format(i=i) + " " + marker(i, 0)


def reply(i: int) -> str:
    return marker(i, 3) + " " + ANSWER


def tool_output(i: int) -> str:
    return marker(i, 2) + " " + ANSWER[:200]


def tool_arguments(i: int) -> dict[str, Any]:
    return {"region": "EMEA", "turn": marker(i, 1)}


@dataclass
class Sizes:
    """The workloads' parameters."""

    turns: int = 1000  # turn: sequential turns on one session
    read_sizes: tuple[int, ...] = (100, 1000, 10_000)  # read: items in the logs
    reads: int = 30  # read: rounds of one last-20 read per log
    sessions: int = 10_000  # list: sessions (or keys) listed
    lists: int = 5  # list: timed listings
    tasks: int = 16  # concurrent: tasks on one session
    task_turns: int = 10  # concurrent: turns per task


QUICK = Sizes(
    turns=100, read_sizes=(100, 1000), reads=10, sessions=1000, lists=3, tasks=16, task_turns=4
)


@dataclass
class Place:
    """Where one system keeps its data for this run."""

    storage: str  # sqlite, redis or postgresql
    url: str  # sessionstore URL (for our adapters)
    native_url: str  # the same storage as the native store wants it
    prefix: str  # key prefix, unique per run and system


class System(Protocol):
    """One store under test, as a framework uses it."""

    name: str
    listing: str | None  # the framework's listing call, or None if it has none

    async def turn(self, session: str, i: int, worker: int = 0) -> None:
        """Store turn ``i`` (4 items with a tool call) the way the framework does."""

    async def fill(self, session: str, n: int) -> None:
        """Build a session of ``n`` items the fastest way the framework's API offers."""

    async def last20(self, session: str) -> int:
        """Read the newest 20 items the way the framework does; return how many came."""

    async def stored(self, session: str) -> list[Any]:
        """Return every stored item of ``session``, oldest first, in any JSON-able form."""

    async def make_sessions(self, n: int) -> None:
        """Create ``n`` sessions (or keys) to be listed."""

    async def list_sessions(self) -> int:
        """List them the way the framework does; return how many came."""

    async def close(self) -> None:
        """Close clients (the data stays; the runner removes it)."""


Factory = Callable[[Place], Awaitable[System]]


def markers(items: list[Any]) -> list[tuple[int, int]]:
    """The ``(turn, part)`` marker of each item; items without one are left out."""
    found = []
    for item in items:
        match = MARK.search(json.dumps(item, default=str))
        if match:
            found.append((int(match[1]), int(match[2])))
    return found


def audit(items: list[tuple[int, int]], expected: list[int]) -> dict[str, int]:
    """Count lost, split, reordered and duplicated turns of ``expected`` in a stored session.

    ``expected``: the turns whose write returned without an error (a turn
    that raised is counted in ``errors``, not here).
    """
    positions: dict[int, list[tuple[int, int]]] = {}
    for position, (i, part) in enumerate(items):
        positions.setdefault(i, []).append((position, part))
    lost = split = duplicated = reordered = 0
    for i in expected:
        seen = positions.get(i, [])
        parts = sorted(part for _, part in seen)
        if len(parts) > len(set(parts)):
            duplicated += 1
        if len(set(parts)) < PARTS:
            lost += 1
            continue
        first = seen[0][0]
        if [(p - first, part) for p, part in seen] != [(k, k) for k in range(len(seen))]:
            split += 1
    tasks: dict[int, list[tuple[int, int]]] = {}
    for i in expected:
        if positions.get(i):
            tasks.setdefault(i // TASK_STRIDE, []).append((i, positions[i][0][0]))
    for turns in tasks.values():
        ordered = [position for _, position in sorted(turns)]
        reordered += sum(1 for a, b in itertools.pairwise(ordered) if b < a)
    return {"lost": lost, "split": split, "reordered": reordered, "duplicated": duplicated}


async def timed(call: Awaitable[Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = await call
    return result, time.perf_counter() - start


async def turn_workload(system: System, sizes: Sizes) -> dict[str, Any]:
    """Sequential turns on one session: p50, p95 and turns per second."""
    session = "turns"
    samples = []
    start = time.perf_counter()
    for i in range(sizes.turns):
        _, took = await timed(system.turn(session, i))
        samples.append(took)
    elapsed = time.perf_counter() - start
    stored = len(await system.stored(session))
    if stored != sizes.turns * PARTS:
        raise AssertionError(f"{stored} items stored of {sizes.turns * PARTS}")
    return {
        "turns": sizes.turns,
        "turns_per_s": round(sizes.turns / elapsed, 1),
        "p50_ms": pct(samples, 0.5),
        "p95_ms": pct(samples, 0.95),
    }


_settling: list[Place] = []  # the running child's place (run_child sets it)


async def settle() -> None:
    """After a build on PostgreSQL, let it gather statistics, as autovacuum would.

    Both sides get the same ANALYZE (each system has its own database); see
    :func:`bench.workloads.analyze_postgres`.
    """
    if _settling and _settling[0].storage == "postgresql":
        await analyze_postgres(_settling[0].url)


async def read_workload(system: System, sizes: Sizes) -> dict[str, Any]:
    """The newest 20 items of logs of growing size, read round the sizes in turn."""
    build_s: dict[str, float] = {}
    for size in sizes.read_sizes:
        _, took = await timed(system.fill(f"log-{size}", size))
        build_s[str(size)] = round(took, 2)
        await settle()
        got = await system.last20(f"log-{size}")
        if got != min(20, size):
            raise AssertionError(f"the last 20 of {size} items gave {got}")
    samples: dict[str, list[float]] = {str(size): [] for size in sizes.read_sizes}
    for _ in range(sizes.reads):
        for size in sizes.read_sizes:
            _, took = await timed(system.last20(f"log-{size}"))
            samples[str(size)].append(took)
    medians = {size: pct(values, 0.5) for size, values in samples.items()}
    first, last = str(sizes.read_sizes[0]), str(sizes.read_sizes[-1])
    return {
        "median_ms": medians,
        "build_s": build_s,
        "ratio_largest_to_smallest": round(medians[last] / medians[first], 2),
    }


async def list_workload(system: System, sizes: Sizes) -> dict[str, Any]:
    """List ``sessions`` sessions (or keys): median of ``lists`` listings."""
    if system.listing is None:
        return {"na": "the framework has no listing"}
    _, built = await timed(system.make_sessions(sizes.sessions))
    await settle()
    samples = []
    for _ in range(sizes.lists):
        got, took = await timed(system.list_sessions())
        if got < sizes.sessions:
            raise AssertionError(f"{system.listing} gave {got} of {sizes.sessions}")
        samples.append(took)
    return {
        "call": system.listing,
        "sessions": sizes.sessions,
        "median_ms": pct(samples, 0.5),
        "build_s": round(built, 1),
    }


async def concurrent_workload(system: System, sizes: Sizes) -> dict[str, Any]:
    """``tasks`` tasks, each running ``task_turns`` turns one after another on one session.

    ``lost``, ``split``, ``reordered`` and ``duplicated`` count turns whose
    write returned; ``errors`` counts writes that raised.
    """
    session = "concurrent"
    errors: list[str] = []
    acknowledged: list[int] = []

    async def task(t: int) -> None:
        for k in range(sizes.task_turns):
            try:
                await system.turn(session, t * TASK_STRIDE + k, worker=t + 1)
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}"[:200])
            else:
                acknowledged.append(t * TASK_STRIDE + k)

    start = time.perf_counter()
    await asyncio.gather(*(task(t) for t in range(sizes.tasks)))
    elapsed = time.perf_counter() - start
    counts = audit(markers(await system.stored(session)), sorted(acknowledged))
    retries = getattr(system, "retries", 0)
    turns = sizes.tasks * sizes.task_turns
    return {
        "turns": turns,
        "turns_per_s": round(len(acknowledged) / elapsed, 1),
        **counts,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "stale_retries": retries,
    }


WORKLOADS: dict[str, Callable[[System, Sizes], Awaitable[dict[str, Any]]]] = {
    "turn": turn_workload,
    "read": read_workload,
    "list": list_workload,
    "concurrent": concurrent_workload,
}


async def run_child(factories: dict[str, Factory], argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description="one system, one workload")
    parser.add_argument("side", choices=sorted(factories))
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("place", help="a Place as JSON")
    parser.add_argument("sizes", help="Sizes as JSON")
    args = parser.parse_args(argv)
    place = Place(**json.loads(args.place))
    _settling[:] = [place]
    raw = json.loads(args.sizes)
    sizes = Sizes(**{**raw, "read_sizes": tuple(raw["read_sizes"])})
    system = await factories[args.side](place)
    started = time.perf_counter()
    try:
        result = await WORKLOADS[args.workload](system, sizes)
    finally:
        await system.close()
    return {"name": system.name, **result, "seconds": round(time.perf_counter() - started, 1)}


def child_main(factories: dict[str, Factory]) -> None:
    """Run one workload on one system and print its result as the last line of JSON."""
    result = asyncio.run(run_child(factories, sys.argv[1:]))
    print(json.dumps(result), flush=True)


def sizes_json(sizes: Sizes) -> str:
    return json.dumps(asdict(sizes))
