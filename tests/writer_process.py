"""A child process that appends entries to one session, and the parent's handle on it.

The child: ``python -m tests.writer_process URL SESSION TAG COUNT [--size N]
[--barrier]`` creates COUNT entries for user ``writer`` with questions
``TAG:0``, ``TAG:1``, ... and prints every ``qa_id`` as soon as
``create_qa_entry`` has returned (one per line, flushed), so a parent can kill
it at any moment and know which writes were acknowledged. ``COUNT`` of 0 means
"until killed". ``--size`` is the answer's length; ``--barrier`` prints
``ready`` and waits for a line on stdin before it opens the store, so that
several children start at the same moment. With ``--items`` it appends item
groups instead: COUNT calls of ``append_items`` with the three items
``{"tag": TAG, "i": i, "k": 0..2}``, printing each call's ids joined by commas.

The parent: :class:`Writer` starts one child and reads what it prints.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import signal
import sys
from pathlib import Path

from sessionstore import open_store

ROOT = Path(__file__).resolve().parents[1]
USER = "writer"
WAIT = 60.0  # seconds a child may take to print its next line before the test fails


async def main(
    url: str, session_id: str, tag: str, count: int, size: int, barrier: bool, items: bool
) -> None:
    store = open_store(url)
    if barrier:
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
    async with store:
        numbers = itertools.count() if count == 0 else range(count)
        for i in numbers:
            if items:
                group = [{"tag": tag, "i": i, "k": k} for k in range(3)]
                written = ",".join(await store.append_items(session_id, USER, group))
            else:
                written = await store.create_qa_entry(session_id, USER, f"{tag}:{i}", "a" * size)
            sys.stdout.write(written + "\n")
            sys.stdout.flush()


class Writer:
    """One child process writing to ``session_id``, seen from the parent."""

    def __init__(self, proc: asyncio.subprocess.Process, tag: str) -> None:
        self.proc = proc
        self.tag = tag

    @classmethod
    async def start(
        cls,
        url: str,
        session_id: str,
        tag: str,
        count: int,
        *,
        size: int = 200,
        barrier: bool = False,
        items: bool = False,
    ) -> Writer:
        """Start a child; with ``barrier`` it waits for :meth:`go` before it opens the store."""
        path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.writer_process",
            url,
            session_id,
            tag,
            str(count),
            f"--size={size}",
            *(["--barrier"] if barrier else []),
            *(["--items"] if items else []),
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": path},
            stdin=asyncio.subprocess.PIPE if barrier else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(proc, tag)

    async def line(self) -> str:
        """Return the next line the child prints; fail if it stops or takes too long."""
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), WAIT)
        except TimeoutError:
            line = b""
        if not line:
            await self._fail("stopped printing")
        return line.decode().strip()

    async def go(self) -> None:
        """Release a child started with ``barrier`` (after it printed ``ready``)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        await self.proc.stdin.drain()

    async def finish(self) -> list[str]:
        """Wait for the child to exit by itself; return every id it acknowledged."""
        out, err = await asyncio.wait_for(self.proc.communicate(), WAIT)
        assert self.proc.returncode == 0, f"writer {self.tag} failed:\n{err.decode()}"
        return out.decode().split()

    async def kill(self) -> list[str]:
        """SIGKILL the child; return the ids it printed that were not read yet."""
        self.proc.send_signal(signal.SIGKILL)
        out, err = await asyncio.wait_for(self.proc.communicate(), WAIT)
        assert self.proc.returncode == -signal.SIGKILL, f"writer {self.tag}:\n{err.decode()}"
        return out.decode().split()

    async def _fail(self, what: str) -> None:
        self.proc.kill()
        _, err = await self.proc.communicate()
        raise AssertionError(f"writer {self.tag} {what}:\n{err.decode()}")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.writer_process")
    parser.add_argument("url")
    parser.add_argument("session_id")
    parser.add_argument("tag")
    parser.add_argument("count", type=int)
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--barrier", action="store_true")
    parser.add_argument("--items", action="store_true")
    return parser.parse_args()


if __name__ == "__main__":
    args = _arguments()
    asyncio.run(
        main(args.url, args.session_id, args.tag, args.count, args.size, args.barrier, args.items)
    )
