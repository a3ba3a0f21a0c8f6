"""The benchmark's workloads, written once against a small adapter.

This module imports only the standard library: the peer scripts run it in
their own virtualenvs (without sessionstore installed), so every system is
measured by exactly the same loop. An adapter stores "turns" (one question
and its answer); what a system cannot do is declared in ``supports`` and the
workload reports ``n/a`` for it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

QUESTION = "What did the quarterly report say about revenue in the EMEA region? (turn {i})"
ANSWER = (
    "Revenue in EMEA grew 12% quarter over quarter, driven by the enterprise segment. "
    "The report attributes most of the growth to three new contracts in Germany and the "
    "Nordics, while consumer revenue stayed flat. Margins improved by 1.5 points because "
    "of lower cloud costs. The outlook for the next quarter is cautious. " * 2
)


LATEST_BUDGET_S = 3.0
TIMEOUT_S = 600.0  # a workload still running after this is reported as an error


def question(i: int) -> str:
    return QUESTION.format(i=i)


ITEMS_PER_TURN = 4


def turn_items(i: int) -> list[dict[str, Any]]:
    """One agent turn as Responses-style items: a message, a tool call, its output, a reply."""
    call_id = f"call_{i}"
    return [
        {"role": "user", "content": question(i)},
        {
            "type": "function_call",
            "call_id": call_id,
            "name": "search_reports",
            "arguments": json.dumps({"region": "EMEA", "turn": i}),
        },
        {"type": "function_call_output", "call_id": call_id, "output": ANSWER[:200]},
        {"role": "assistant", "content": [{"type": "output_text", "text": ANSWER}]},
    ]


class Adapter(Protocol):
    """One system under test, storing turns in sessions."""

    name: str
    # Operations beyond append/latest/count: "update", "delete", "fill".
    supports: frozenset[str]

    async def append(self, session: str, i: int) -> str | None:
        """Store turn ``i`` (question + answer); return its id if the system gives one."""

    async def latest(self, session: str, n: int) -> int:
        """Read the newest ``n`` turns; return how many came back."""

    async def count(self, session: str) -> int:
        """Return how many turns the session holds."""

    async def fill(self, session: str, n: int) -> list[str]:
        """Build a session of ``n`` turns the fastest way the system offers."""

    async def update(self, session: str, turn_id: str, score: int) -> bool:
        """Set feedback on one turn."""

    async def delete(self, session: str, turn_id: str) -> bool:
        """Delete one turn."""

    # With "items" in ``supports``: an ordered item log, a turn being ITEMS_PER_TURN items.

    async def append_items(self, session: str, i: int) -> None:
        """Append turn ``i`` as ``ITEMS_PER_TURN`` items in one call."""

    async def get_items(self, session: str, n: int) -> int:
        """Read the newest ``n`` items; return how many came back."""

    async def fill_items(self, session: str, n: int) -> None:
        """Build an item log of ``n`` items the fastest way the system offers."""


async def analyze_postgres(url: str) -> None:
    """``ANALYZE`` the whole PostgreSQL database at ``url`` (any driver-qualified scheme).

    The benchmark's server runs with autovacuum off, so a table filled by a
    workload would keep no statistics; a cached generic plan may then pick
    the wrong index of two that tie on cost (seen: a 7 ms item read taking
    the listing index instead of the key). Production servers analyze on
    their own. Every system gets the same ANALYZE, after its builds.
    """
    import asyncpg  # noqa: PLC0415  (PostgreSQL runs only; other venvs may lack it)

    dsn = re.sub(r"^postgresql\+\w+://", "postgresql://", url.split("?", maxsplit=1)[0])
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def settle(adapter: Adapter) -> None:
    """After a build, run the adapter's ``settle`` hook if the runner gave it one."""
    hook = getattr(adapter, "settle", None)
    if hook is not None:
        await hook()


@dataclass
class Sizes:
    """The workloads' parameters (the runner's flags)."""

    appends: int = 2000
    latest_sizes: Sequence[int] = (100, 1000, 10000, 50000)
    latest_reads: int = 50
    sessions: int = 500
    turns: int = 4
    updates: int = 200
    update_size: int = 1000
    tasks: int = 16
    task_appends: int = 40
    processes: int = 4
    process_appends: int = 250
    agents: int = 64
    agent_seconds: float = 5.0


def add_size_flags(parser: argparse.ArgumentParser) -> None:
    """Add the workloads' size flags (shared by the runner and the peer scripts)."""
    add = parser.add_argument
    add("--appends", type=int, default=2000, help="append: sequential creates")
    add("--latest-sizes", default="100,1000,10000,50000", help="latest: session sizes")
    add("--latest-reads", type=int, default=50, help="latest: reads per size (median)")
    add("--sessions", type=int, default=500, help="many: sessions")
    add("--turns", type=int, default=4, help="many: turns per session")
    add("--updates", type=int, default=200, help="update: feedback updates")
    add("--update-size", type=int, default=1000, help="update: entries in the session")
    add("--tasks", type=int, default=16, help="concurrent: appending tasks")
    add("--task-appends", type=int, default=40, help="concurrent: appends per task")
    add("--processes", type=int, default=4, help="processes: appending processes")
    add("--process-appends", type=int, default=250, help="processes: appends per process")
    add("--agents", type=int, default=64, help="agents: concurrent conversations")
    add("--agent-seconds", type=float, default=5.0, help="agents: seconds of each run")
    add("--quick", action="store_true", help="tiny sizes, to check that everything runs")


def sizes_from(args: argparse.Namespace) -> Sizes:
    """Return the sizes the flags ask for (``--quick``: tiny ones)."""
    if args.quick:
        return Sizes(
            appends=200, latest_sizes=(100, 1000, 5000), latest_reads=10, sessions=50,
            updates=50, update_size=200, task_appends=10, process_appends=50,
            agents=8, agent_seconds=1.0,
        )  # fmt: skip
    return Sizes(
        appends=args.appends,
        latest_sizes=[int(s) for s in args.latest_sizes.split(",")],
        latest_reads=args.latest_reads,
        sessions=args.sessions,
        turns=args.turns,
        updates=args.updates,
        update_size=args.update_size,
        tasks=args.tasks,
        task_appends=args.task_appends,
        processes=args.processes,
        process_appends=args.process_appends,
        agents=args.agents,
        agent_seconds=args.agent_seconds,
    )


@dataclass
class Timer:
    """Latencies of one operation, in seconds."""

    samples: list[float] = field(default_factory=list)

    async def time(self, call: Awaitable[Any]) -> Any:
        start = time.perf_counter()
        result = await call
        self.samples.append(time.perf_counter() - start)
        return result


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def pct(samples: Sequence[float], q: float) -> float:
    """Return the ``q`` quantile (0..1) of ``samples`` in ms (nearest rank)."""
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ms(ordered[index])


def session_name(tag: str) -> str:
    return f"bench-{tag}-{uuid.uuid4().hex[:8]}"


async def append(adapter: Adapter, sizes: Sizes) -> dict[str, Any]:
    """Sequential creates on one growing session."""
    session = session_name("append")
    timer = Timer()
    start = time.perf_counter()
    for i in range(sizes.appends):
        await timer.time(adapter.append(session, i))
    elapsed = time.perf_counter() - start
    tenth = max(1, sizes.appends // 10)
    first, last = timer.samples[:tenth], timer.samples[-tenth:]
    return {
        "creates": sizes.appends,
        "creates_per_s": round(sizes.appends / elapsed, 1),
        "p50_ms": pct(timer.samples, 0.5),
        "first_p50_ms": pct(first, 0.5),
        "first_p95_ms": pct(first, 0.95),
        "last_p50_ms": pct(last, 0.5),
        "last_p95_ms": pct(last, 0.95),
        "stored": await adapter.count(session),
    }


async def latest_vs_size(adapter: Adapter, sizes: Sizes) -> dict[str, Any]:
    """Median latest-10 on sessions of growing size (all of them kept).

    Every session is built first; the reads then go round the sizes in turn,
    so a slow moment of the machine hits every size alike rather than one.
    A size whose reads pass ``LATEST_BUDGET_S`` stops after 3 samples (for
    systems whose read grows with the session).
    """
    build_s: dict[str, float] = {}
    sessions: dict[str, str] = {}
    for size in sizes.latest_sizes:
        session = sessions[str(size)] = session_name(f"size{size}")
        start = time.perf_counter()
        await adapter.fill(session, size)
        build_s[str(size)] = round(time.perf_counter() - start, 2)
        got = await adapter.latest(session, 10)
        if got != min(10, size):
            raise AssertionError(f"latest-10 of a {size}-turn session returned {got} turns")
    await settle(adapter)
    timers = {size: Timer() for size in sessions}
    spent = dict.fromkeys(sessions, 0.0)
    for _ in range(sizes.latest_reads):
        for size, session in sessions.items():
            timer = timers[size]
            if len(timer.samples) >= 3 and spent[size] > LATEST_BUDGET_S:
                continue
            await timer.time(adapter.latest(session, 10))
            spent[size] += timer.samples[-1]
    medians = {size: pct(timer.samples, 0.5) for size, timer in timers.items()}
    smallest, largest = str(sizes.latest_sizes[0]), str(sizes.latest_sizes[-1])
    return {
        "median_ms": medians,
        "build_s": build_s,
        "reads": {size: len(timer.samples) for size, timer in timers.items()},
        "ratio_largest_to_smallest": round(medians[largest] / medians[smallest], 2),
    }


async def many_sessions(adapter: Adapter, sizes: Sizes) -> dict[str, Any]:
    """Many short sessions: ``turns`` creates each, then latest-``turns`` of each."""
    sessions = [session_name(f"many{i}") for i in range(sizes.sessions)]
    start = time.perf_counter()
    for session in sessions:
        for i in range(sizes.turns):
            await adapter.append(session, i)
    wrote = time.perf_counter() - start
    start = time.perf_counter()
    for session in sessions:
        got = await adapter.latest(session, sizes.turns)
        if got != sizes.turns:
            raise AssertionError(f"latest-{sizes.turns} returned {got} turns")
    read = time.perf_counter() - start
    writes, reads = sizes.sessions * sizes.turns, sizes.sessions
    return {
        "ops_per_s": round((writes + reads) / (wrote + read), 1),
        "creates_per_s": round(writes / wrote, 1),
        "reads_per_s": round(reads / read, 1),
    }


async def update(adapter: Adapter, sizes: Sizes) -> dict[str, Any]:
    """Feedback updates on random entries of one session."""
    if "update" not in adapter.supports:
        return {"na": "no update of a stored turn"}
    session = session_name("update")
    ids = await adapter.fill(session, sizes.update_size)
    await settle(adapter)
    rng = random.Random(8)
    timer = Timer()
    for i in range(sizes.updates):
        found = await timer.time(adapter.update(session, rng.choice(ids), 1 + i % 5))
        if not found:
            raise AssertionError("an update did not find its entry")
    return {"p50_ms": pct(timer.samples, 0.5), "p95_ms": pct(timer.samples, 0.95)}


async def concurrent(adapter: Adapter, sizes: Sizes) -> dict[str, Any]:
    """``tasks`` appenders on one session while updaters and deleters work on it."""
    session = session_name("concurrent")
    mutate = {"update", "delete", "fill"} <= adapter.supports
    seeded = await adapter.fill(session, 200) if mutate else []
    errors: list[str] = []
    appended = deleted = ops = 0

    async def guarded(call: Callable[[], Awaitable[Any]]) -> tuple[bool, Any]:
        nonlocal ops
        try:
            result = await call()
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}"[:200])
            return False, None
        ops += 1
        return True, result

    async def appender(t: int) -> None:
        nonlocal appended
        for i in range(sizes.task_appends):
            ok, _ = await guarded(lambda i=i: adapter.append(session, t * 100_000 + i))
            appended += ok

    async def updater(seed: int) -> None:
        rng = random.Random(seed)
        for i in range(sizes.task_appends):
            await guarded(lambda i=i: adapter.update(session, rng.choice(seeded), 1 + i % 5))

    async def deleter(ids: list[str]) -> None:
        nonlocal deleted
        for turn_id in ids:
            _, existed = await guarded(lambda turn_id=turn_id: adapter.delete(session, turn_id))
            deleted += bool(existed)

    jobs = [appender(t) for t in range(sizes.tasks)]
    if mutate:
        jobs += [updater(seed) for seed in range(4)]
        victims = seeded[: sizes.task_appends * 2]
        jobs += [deleter(victims[0::2]), deleter(victims[1::2])]
    start = time.perf_counter()
    await asyncio.gather(*jobs)
    elapsed = time.perf_counter() - start
    stored = await adapter.count(session)
    return {
        "tasks": f"{sizes.tasks} appenders" + (" + 4 updaters + 2 deleters" if mutate else ""),
        "ops": ops,
        "ops_per_s": round(ops / elapsed, 1),
        "lost_writes": len(seeded) - deleted + appended - stored,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
    }


async def processes(
    argv_for: Callable[[int, float], list[str]],
    sizes: Sizes,
    count: Callable[[], Awaitable[int]],
) -> dict[str, Any]:
    """Run ``sizes.processes`` child processes that append to one session at once.

    ``argv_for(i, start_at)`` gives child ``i``'s command; each child connects,
    waits for the wall-clock ``start_at``, appends ``sizes.process_appends``
    turns and prints ``{"ok": n, "errors": [...], "end": time}`` last.
    ``count()`` then reads how many turns the session holds.
    """
    start_at = time.time() + 4.0
    children = [
        await asyncio.create_subprocess_exec(
            *argv_for(i, start_at), stdout=subprocess.PIPE, env=python_env()
        )
        for i in range(sizes.processes)
    ]
    reports = []
    for child in children:
        out, _ = await child.communicate()
        lines = out.decode().strip().splitlines()
        if child.returncode != 0 or not lines:
            reports.append({"ok": 0, "errors": [f"child exited {child.returncode}"], "end": 0})
        else:
            reports.append(json.loads(lines[-1]))
    ok = sum(r["ok"] for r in reports)
    errors = [e for r in reports for e in r["errors"]]
    elapsed = max(r["end"] for r in reports) - start_at
    stored = await count()
    return {
        "processes": sizes.processes,
        "creates_per_s": round(ok / elapsed, 1) if elapsed > 0 else None,
        "lost_writes": ok - stored,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
    }


async def child_append(
    adapter: Adapter, session: str, appends: int, start_at: float, child: int
) -> None:
    """The body of one process of :func:`run_processes`."""
    await adapter.count(session)  # connect before the start line
    await asyncio.sleep(max(0.0, start_at - time.time()))
    errors: list[str] = []
    ok = 0
    for i in range(appends):
        try:
            await adapter.append(session, child * 1_000_000 + i)
            ok += 1
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}"[:200])
    print(json.dumps({"ok": ok, "errors": errors, "end": time.time()}))
    sys.stdout.flush()


async def items(adapter: Adapter, sizes: Sizes) -> dict[str, Any]:
    """An agent's item log: appends of one turn's items, paired with entry creates, and
    the newest 20 items of logs of growing size (read round the sizes in turn)."""
    if "items" not in adapter.supports:
        return {"na": "no item log"}
    session, entries = session_name("items"), session_name("entries")
    items_timer, entry_timer = Timer(), Timer()
    for i in range(sizes.appends):
        await items_timer.time(adapter.append_items(session, i))
        await entry_timer.time(adapter.append(entries, i))
    got = await adapter.get_items(session, 10**9)
    if got != sizes.appends * ITEMS_PER_TURN:
        raise AssertionError(f"{got} items stored of {sizes.appends * ITEMS_PER_TURN}")
    logs: dict[str, str] = {}
    for size in sizes.latest_sizes:
        logs[str(size)] = log = session_name(f"items{size}")
        await adapter.fill_items(log, size)
    await settle(adapter)
    timers = {size: Timer() for size in logs}
    for _ in range(sizes.latest_reads):
        for size, log in logs.items():
            got = await timers[size].time(adapter.get_items(log, 20))
            if got != min(20, int(size)):
                raise AssertionError(f"get_items(20) of {size} items returned {got}")
    medians = {size: pct(timer.samples, 0.5) for size, timer in timers.items()}
    smallest, largest = str(sizes.latest_sizes[0]), str(sizes.latest_sizes[-1])
    return {
        "append_p50_ms": pct(items_timer.samples, 0.5),
        "entry_p50_ms": pct(entry_timer.samples, 0.5),
        "append_to_entry": round(pct(items_timer.samples, 0.5) / pct(entry_timer.samples, 0.5), 2),
        "get20_median_ms": medians,
        "ratio_largest_to_smallest": round(medians[largest] / medians[smallest], 2),
    }


async def agents(adapter: Adapter, sizes: Sizes) -> dict[str, Any]:
    """How agents run: conversations at once, each its own session, each turn one create
    and one latest-10 read, for ``agent_seconds``; then one conversation alone as long.

    Reports turns per second and the p50/p99 of a turn for both, and how much the
    concurrent run raised the throughput over the single one.
    """

    async def run(conversations: int) -> dict[str, Any]:
        timer = Timer()
        deadline = time.perf_counter() + sizes.agent_seconds

        async def conversation(c: int) -> None:
            session, turn = session_name(f"agent{c}"), 0
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                await adapter.append(session, turn)
                got = await adapter.latest(session, 10)
                timer.samples.append(time.perf_counter() - started)
                turn += 1
                if got != min(10, turn):
                    raise AssertionError(f"latest-10 after {turn} turns returned {got}")

        started = time.perf_counter()
        await asyncio.gather(*(conversation(c) for c in range(conversations)))
        elapsed = time.perf_counter() - started
        return {
            "turns_per_s": round(len(timer.samples) / elapsed, 1),
            "p50_ms": pct(timer.samples, 0.5),
            "p99_ms": pct(timer.samples, 0.99),
        }

    together = await run(sizes.agents)
    alone = await run(1)
    return {
        "conversations": sizes.agents,
        "seconds": sizes.agent_seconds,
        "together": together,
        "alone": alone,
        "gain": round(together["turns_per_s"] / alone["turns_per_s"], 2),
    }


WORKLOADS: dict[str, Callable[[Adapter, Sizes], Awaitable[dict[str, Any]]]] = {
    "append": append,
    "latest": latest_vs_size,
    "many": many_sessions,
    "update": update,
    "concurrent": concurrent,
    "items": items,
    "agents": agents,
}


async def run_all(
    adapter: Adapter, sizes: Sizes, names: Sequence[str], log: Callable[[str], None]
) -> dict[str, Any]:
    """Run the named workloads on one adapter; a failing workload is reported, not raised."""
    results: dict[str, Any] = {}
    for name in names:
        if name not in WORKLOADS:
            continue
        start = time.perf_counter()
        try:
            results[name] = await asyncio.wait_for(WORKLOADS[name](adapter, sizes), TIMEOUT_S)
        except Exception as exc:
            results[name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        log(f"  {adapter.name} {name}: {results[name]} ({time.perf_counter() - start:.1f}s)")
    return results


ROOT = str(Path(__file__).resolve().parent.parent)


def python_env() -> dict[str, str]:
    """The environment for child processes: ``bench`` importable, unbuffered output."""
    path = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}
