"""``list_sessions`` pages across runs of sessions written at the same instant."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sessionstore import SessionStore
from sessionstore.records import IMPORT_FORMATS

U = "u"


def _dump(session_id: str, when: datetime) -> dict[str, Any]:
    return {
        "format": IMPORT_FORMATS[0],
        "session_id": session_id,
        "user_id": U,
        "created_at": when.isoformat(),
        "updated_at": when.isoformat(),
        "graph_context": None,
        "entries": [
            {
                "id": str(uuid.uuid4()),
                "question": "q",
                "answer": "a",
                "context": None,
                "created_at": when.isoformat(),
                "feedback_text": None,
                "feedback_score": None,
                "used_graph_element_ids": None,
                "memify_metadata": None,
                "metadata": None,
            }
        ],
        "trace_steps": [],
    }


@pytest.mark.parametrize("limit", [1, 5, 7, 50])
async def test_pages_cross_long_runs_of_equal_times(store: SessionStore, limit: int) -> None:
    # 40 sessions share one time (longer than any read-ahead for ties), then
    # runs of 3 and singles: every page boundary falls inside or next to a tie.
    start = datetime(2030, 1, 1, tzinfo=UTC)
    times = [start] * 40 + [start - timedelta(seconds=1 + i // 3) for i in range(20)]
    dumps = [_dump(f"s{i:03d}", when) for i, when in enumerate(times)]
    assert await store.import_sessions(dumps) == len(dumps)
    expected = [
        d["session_id"]
        for d in sorted(
            dumps, key=lambda d: (-times[int(d["session_id"][1:])].timestamp(), d["session_id"])
        )
    ]
    seen: list[str] = []
    cursor = None
    while True:
        page = await store.list_sessions(U, limit=limit, cursor=cursor)
        assert len(page.items) <= limit
        seen.extend(i.session_id for i in page.items)
        if page.next_cursor is None:
            break
        assert len(page.items) == limit
        cursor = page.next_cursor
    assert seen == expected
