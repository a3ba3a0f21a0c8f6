"""Run in a child process: take an improve lock and hold it until told to stop.

Usage: ``python -m tests.manager.lock_holder URL SESSION LEASE``. Prints
``held`` or ``busy``, then waits for a line on stdin (or to be killed), then
releases the lock and prints ``released``.
"""

from __future__ import annotations

import asyncio
import sys

from sessionstore import SessionManager, open_store


async def main(url: str, session_id: str, lease: float) -> None:
    async with open_store(url) as store:
        manager = SessionManager(store, lock_lease=lease)
        async with manager.improve_lock(session_id, "u") as held:
            print("held" if held else "busy", flush=True)
            await asyncio.to_thread(sys.stdin.readline)
        print("released", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
