"""A child process that appends entries to one session and prints each new id.

Run as ``python -m tests.writer_process URL SESSION TAG COUNT``: it creates
COUNT entries with questions ``TAG:0``, ``TAG:1``, ... and prints every
``qa_id`` as soon as ``create_qa_entry`` has returned (one per line, flushed),
so a parent can kill it at any moment and know which writes were acknowledged.
``COUNT`` of 0 means "until killed".
"""

from __future__ import annotations

import asyncio
import itertools
import sys

from sessionstore import open_store


async def main(url: str, session_id: str, tag: str, count: int) -> None:
    async with open_store(url) as store:
        numbers = itertools.count() if count == 0 else range(count)
        for i in numbers:
            qa_id = await store.create_qa_entry(session_id, "writer", f"{tag}:{i}", "a" * 200)
            sys.stdout.write(qa_id + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
