"""The ``file://`` backend shared by several processes, and killed mid-write."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

from sessionstore import open_store

# A child process: append entries to one session, printing each id once the
# call has returned (acknowledged).
APPENDER = """
import asyncio, sys
from sessionstore import open_store

async def main(url, tag, count, size):
    async with open_store(url) as store:
        for i in range(count):
            qa_id = await store.create_qa_entry("shared", "u", f"{tag}:{i}", "x" * size)
            print(qa_id, flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
"""


async def _spawn(url: str, tag: str, count: int, size: int) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        APPENDER,
        url,
        tag,
        str(count),
        str(size),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_four_processes_append_to_one_session(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'root'}"
    children = [await _spawn(url, f"p{p}", 60, 100) for p in range(4)]
    outputs = await asyncio.gather(*(child.communicate() for child in children))
    for child, (_, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err.decode()
    acknowledged = {line for out, _ in outputs for line in out.decode().split()}
    async with open_store(url) as store:
        entries = await store.get_all_qa_entries("shared", "u")
        assert await store.count_qa_entries("shared", "u") == 240
    assert len(entries) == 240
    assert {e.id for e in entries} == acknowledged
    for p in range(4):
        mine = [int(e.question.split(":")[1]) for e in entries if e.question.startswith(f"p{p}:")]
        assert mine == list(range(60))
    numbers = [
        json.loads(line)["n"]
        for line in (tmp_path / "root/u-u/s-shared/entries.jsonl").read_text().splitlines()
    ]
    assert numbers == sorted(set(numbers))  # distinct, strictly increasing


async def test_sigkill_during_writes_loses_no_acknowledged_entry(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'root'}"
    acknowledged: list[str] = []
    # Kill at different moments: right after an acknowledgement, and a few
    # milliseconds later, when the child is likely inside its next write.
    for round_, delay in enumerate([0.0, 0.002, 0.005, 0.011]):
        # Large entries make it likely that the kill lands inside a write.
        child = await _spawn(url, f"r{round_}", 100_000, 300_000)
        assert child.stdout is not None
        for _ in range(20 + 7 * round_):
            acknowledged.append((await child.stdout.readline()).decode().strip())
        await asyncio.sleep(delay)
        child.send_signal(signal.SIGKILL)
        rest, _ = await child.communicate()
        acknowledged.extend(rest.decode().split())  # printed before the kill landed
        assert child.returncode == -signal.SIGKILL

        async with open_store(url) as store:
            present = {e.id for e in await store.get_all_qa_entries("shared", "u")}
            assert set(acknowledged) <= present
            latest = await store.get_latest_qa_entries("shared", "u", 3)
            assert len(latest) == 3
            after = await store.create_qa_entry("shared", "u", "after the kill", "a")
            assert await store.latest_qa_id("shared", "u") == after
            assert await store.count_qa_entries("shared", "u") == len(present) + 1
    entries_file = tmp_path / "root/u-u/s-shared/entries.jsonl"
    for line in entries_file.read_bytes().splitlines():
        json.loads(line)  # every line is whole again after the repairs
