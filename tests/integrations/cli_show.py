"""What an adapter stored, as the command line shows it through its real entry point."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any


async def shown_items(store_url: str, session_id: str, user_id: str | None = None) -> list[Any]:
    """Run ``sessionstore show SESSION --items --json`` and return the items' data."""
    user = [] if user_id is None else ["-u", user_id]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "sessionstore.cli", "--store", store_url, "show", session_id, *user),
        *("--items", "--json"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, err.decode()
    shown = json.loads(out)
    assert shown["session_id"] == session_id
    assert shown["item_count"] == len(shown["items"])
    return [item["data"] for item in shown["items"]]
