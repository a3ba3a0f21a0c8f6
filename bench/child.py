"""One process of the ``processes`` workload on a sessionstore URL.

Usage: ``python -m bench.child URL SESSION APPENDS START_AT INDEX``.
"""

from __future__ import annotations

import asyncio
import sys

from bench.adapter import StoreAdapter
from bench.workloads import child_append
from sessionstore import open_store


async def main(url: str, session: str, appends: int, start_at: float, index: int) -> None:
    async with open_store(url) as store:
        await child_append(StoreAdapter("child", store), session, appends, start_at, index)


if __name__ == "__main__":
    url, session, appends, start_at, index = sys.argv[1:6]
    asyncio.run(main(url, session, int(appends), float(start_at), int(index)))
