"""What tracing and slow-call timing cost on create_qa_entry (not a test, not the full benchmark).

Times N creates to one session, awaited one after another, on memory (the
wrappers' own cost, with almost no storage), SQLite and Redis, in four
set-ups, each in a fresh process (whether OpenTelemetry is installed is
decided once, at import):

- ``slow``: ``opentelemetry`` not importable, as without the ``otel`` extra,
  and ``slow_call_ms`` set (high enough never to warn): the wrappers only time
  the calls. Without ``slow_call_ms`` no method is wrapped at all.
- ``api``: ``opentelemetry-api`` importable, no provider set: the wrappers are
  installed, and make no span while the API's would be no-ops.
- ``sdk``: the SDK's ``TracerProvider`` with a ``BatchSpanProcessor`` in front
  of an in-memory exporter: every call records and exports a span.
- ``sdk+slow``: the SDK set-up with ``slow_call_ms`` too.

In each process, rounds alternate N creates through the wrapper with N creates
through the method it wraps (``__wrapped__``: the store as it is without
OpenTelemetry and without ``slow_call_ms``), so machine noise hits both alike.
It prints the median time per create of each, and the median of the rounds'
differences: what the wrapper adds, in elapsed time and in this process's CPU
time (``time.process_time``, all its threads: the SDK exports in one). On a
busy machine the CPU time is the steadier measure of the wrapper's own cost.

Usage: python bench/measure_tracing.py [N] [ROUNDS]   (default 2,000 creates per round, 7 rounds)
"""

# ruff: noqa: PLC0415 - a child imports OpenTelemetry and sessionstore only once set up

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

MODES = ("slow", "api", "sdk", "sdk+slow")
ANSWER = "answer " * 20
NEVER = 60_000.0  # a slow_call_ms no create reaches: timing without warnings


def child(mode: str, url: str, n: int, rounds: int) -> None:
    """Time wrapped and bare creates in this process, set up as ``mode``; print JSON."""
    if mode == "slow":
        sys.modules["opentelemetry"] = None  # type: ignore[assignment]
    exporter = None
    if mode.startswith("sdk"):
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)

    from sessionstore import SessionStore, observe, open_store

    assert observe.TRACING is (mode != "slow")
    options = {"slow_call_ms": NEVER} if mode.endswith("slow") else {}

    async def run() -> dict[str, list[float]]:
        times: dict[str, list[float]] = {
            k: [] for k in ("bare", "wrapped", "bare_cpu", "wrapped_cpu")
        }
        async with open_store(url, **options) as store:
            # Wrapped by now, also without OpenTelemetry (slow_call_ms asked for it).
            bare = SessionStore.create_qa_entry.__wrapped__  # type: ignore[attr-defined]
            for i in range(50):  # warm up: connect, create the schema, fill caches
                await store.create_qa_entry("warm", "bench", f"q{i}", ANSWER)
            for r in range(rounds):
                for kind in ("bare", "wrapped") if r % 2 else ("wrapped", "bare"):
                    create = store.create_qa_entry if kind == "wrapped" else bare.__get__(store)
                    start, cpu = time.perf_counter(), time.process_time()
                    for i in range(n):
                        await create(kind, "bench", f"question {i}", ANSWER)
                    times[kind].append((time.perf_counter() - start) / n * 1e6)
                    times[f"{kind}_cpu"].append((time.process_time() - cpu) / n * 1e6)
                if exporter is not None:
                    exporter.clear()
            await store.prune()
        return times

    print(json.dumps(asyncio.run(run())))


def measure(name: str, url: str, n: int, rounds: int) -> None:
    for mode in MODES:
        done = subprocess.run(
            [sys.executable, __file__, "--child", mode, url, str(n), str(rounds)],
            capture_output=True,
            text=True,
            check=True,
        )
        times = json.loads(done.stdout.strip().splitlines()[-1])
        bare, wrapped = times["bare"], times["wrapped"]
        added = statistics.median(w - b for w, b in zip(wrapped, bare, strict=True))
        cpu = zip(times["wrapped_cpu"], times["bare_cpu"], strict=True)
        added_cpu = statistics.median(w - b for w, b in cpu)
        print(
            f"{name:<7} {mode:<9} bare {statistics.median(bare):7.1f} us"
            f"   wrapped {statistics.median(wrapped):7.1f} us   added {added:+6.1f} us"
            f"   added CPU {added_cpu:+6.1f} us"
        )


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
        return
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    print(f"time per create_qa_entry, {n:,} creates per round, {rounds} rounds (medians)")
    measure("memory", "memory://", n, rounds)
    with tempfile.TemporaryDirectory() as tmp:
        measure("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}", n, rounds)
    redis = os.environ.get("SESSIONSTORE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    measure("redis", f"{redis}?prefix=bench-otel-{uuid.uuid4().hex[:8]}", n, rounds)


if __name__ == "__main__":
    main()
