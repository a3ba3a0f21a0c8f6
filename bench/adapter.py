"""sessionstore as a benchmark adapter (see ``bench/workloads.py``)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.workloads import ANSWER, question, turn_items
from sessionstore import SessionQAUpdate, SessionStore

USER = "bench-user"
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def session_dump(session: str, n: int) -> tuple[dict[str, Any], list[str]]:
    """Return an export-format dump of a session with ``n`` entries, and their ids."""
    ids = [str(uuid.uuid4()) for _ in range(n)]
    entries = [
        {
            "id": qa_id,
            "question": question(i),
            "answer": ANSWER,
            "context": None,
            "created_at": (_EPOCH + timedelta(milliseconds=i)).isoformat(),
            "feedback_text": None,
            "feedback_score": None,
            "used_graph_element_ids": None,
            "memify_metadata": None,
            "metadata": None,
        }
        for i, qa_id in enumerate(ids)
    ]
    now = (_EPOCH + timedelta(milliseconds=n)).isoformat()
    dump = {
        "format": "sessionstore.session/1",
        "session_id": session,
        "user_id": USER,
        "created_at": _EPOCH.isoformat(),
        "updated_at": now,
        "graph_context": None,
        "entries": entries,
        "trace_steps": [],
    }
    return dump, ids


class StoreAdapter:
    """Runs the workloads on a :class:`SessionStore`; a turn is one QA entry."""

    supports = frozenset({"update", "delete", "fill", "items"})

    def __init__(self, name: str, store: SessionStore) -> None:
        self.name = name
        self.store = store
        self.fill_method = "import_sessions"

    async def append(self, session: str, i: int) -> str | None:
        return await self.store.create_qa_entry(session, USER, question(i), ANSWER)

    async def latest(self, session: str, n: int) -> int:
        return len(await self.store.get_latest_qa_entries(session, USER, n))

    async def count(self, session: str) -> int:
        return await self.store.count_qa_entries(session, USER)

    async def fill(self, session: str, n: int) -> list[str]:
        """Build the session with one ``import_sessions`` call (creates if that fails)."""
        dump, ids = session_dump(session, n)
        try:
            await self.store.import_sessions([dump])
        except Exception:
            self.fill_method = "concurrent creates (import_sessions failed)"
            return await self._fill_by_creates(session, n)
        return ids

    async def _fill_by_creates(self, session: str, n: int) -> list[str]:
        ids: list[str] = []
        for start in range(0, n, 32):
            batch = range(start, min(n, start + 32))
            made = await asyncio.gather(*(self.append(session, i) for i in batch))
            ids.extend(m for m in made if m is not None)
        return ids

    async def update(self, session: str, turn_id: str, score: int) -> bool:
        change = SessionQAUpdate(feedback_text="helpful", feedback_score=score)
        return await self.store.update_qa_entry(session, USER, turn_id, change)

    async def delete(self, session: str, turn_id: str) -> bool:
        return await self.store.delete_qa_entry(session, USER, turn_id)

    async def append_items(self, session: str, i: int) -> None:
        await self.store.append_items(session, USER, turn_items(i))

    async def get_items(self, session: str, n: int) -> int:
        return len(await self.store.get_items(session, USER, n))

    async def fill_items(self, session: str, n: int) -> None:
        """Append the log in calls of up to 10,000 items (the most one call takes)."""
        log = [item for i in range(n // 4 + 1) for item in turn_items(i)][:n]
        for start in range(0, n, 10_000):
            await self.store.append_items(session, USER, log[start : start + 10_000])
