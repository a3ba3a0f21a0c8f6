"""What only the memory backend has: its sessions are kept by user."""

from __future__ import annotations

from typing import ClassVar

from sessionstore import open_store


class _CountedId(str):
    """A user id that counts how often it is compared with another id."""

    __slots__ = ()
    comparisons: ClassVar[int] = 0

    def __eq__(self, other: object) -> bool:
        type(self).comparisons += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


async def test_list_sessions_reads_only_that_users_sessions() -> None:
    """Listing one user's sessions never looks at another user's (an index, not a scan)."""
    async with open_store("memory://") as store:
        other = _CountedId("bob")
        for n in range(200):
            await store.set_graph_context(f"s{n}", other, "x")
        await store.set_graph_context("mine", "alice", "x")
        _CountedId.comparisons = 0
        page = await store.list_sessions("alice")
        assert [info.session_id for info in page.items] == ["mine"]
        assert _CountedId.comparisons == 0
        assert len((await store.list_sessions(other, limit=1000)).items) == 200
