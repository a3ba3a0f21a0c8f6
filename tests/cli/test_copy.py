"""``copy`` from SQLite to every backend of the contract matrix and back, entry by entry.

``memory://`` is left out of the matrix: each memory store is private to the
store object, so nothing copied into one can be read back by another
(``test_commands.py`` copies into memory in process).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sessionstore import SessionStore
from tests.cli.conftest import InvokeCli, on_store
from tests.contract.cases import CASES, BackendCase, CaseContext
from tests.sample_sessions import fill, snapshot

TARGETS = [case for case in CASES if case.name != "memory"]


@pytest.fixture(params=TARGETS, ids=[case.name for case in TARGETS])
def target_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    case: BackendCase = request.param
    token = "c" + uuid.uuid4().hex[:12]
    url = case.url(CaseContext(request=request, tmp_path=tmp_path / "target", token=token))
    yield url
    on_store(url, lambda store: store.prune())


async def _fill_more(store: SessionStore) -> None:
    await fill(store)
    await store.set_graph_context("s1", "bob", "graph ✓\nline two")
    await store.create_qa_entry("big", "carol", "q" * (1 << 20), "", None, metadata={})


async def _read_back(store: SessionStore, keys: list[tuple[str, str | None]]) -> dict[Any, Any]:
    """Each session as the store's own reads return it (not through export)."""
    sessions = {}
    for session_id, user_id in keys:
        sessions[session_id, user_id] = (
            await store.get_all_qa_entries(session_id, user_id),
            await store.read_trace_steps(session_id, user_id),
            await store.get_graph_context(session_id, user_id),
        )
    return sessions


def _assert_same_entries(expected: dict[Any, Any], actual: dict[Any, Any]) -> None:
    assert actual.keys() == expected.keys()
    for key, (entries, steps, graph_context) in expected.items():
        got_entries, got_steps, got_graph_context = actual[key]
        assert len(got_entries) == len(entries), key
        for want, got in zip(entries, got_entries, strict=True):
            assert got == want, (key, want.id)
        assert got_steps == steps, key
        assert got_graph_context == graph_context, key


def test_copy_to_every_backend_and_back(cli: InvokeCli, tmp_path: Path, target_url: str) -> None:
    source = f"sqlite:///{tmp_path / 'source.db'}"
    on_store(source, _fill_more)
    before = on_store(source, snapshot)
    keys = sorted(before, key=repr)
    expected = on_store(source, lambda store: _read_back(store, keys))

    # An interrupted first run (only alice's sessions), then two full runs:
    # the copy resumes and never duplicates.
    assert cli("copy", "--from", source, "--to", target_url, "-u", "alice").exit_code == 0
    for _ in range(2):
        result = cli("copy", "--from", source, "--to", target_url)
        assert result.exit_code == 0, result.stderr
        assert f"Copied {len(before)} sessions" in result.stderr
    _assert_same_entries(expected, on_store(target_url, lambda store: _read_back(store, keys)))
    assert on_store(target_url, snapshot) == before

    back = f"sqlite:///{tmp_path / 'back.db'}"
    result = cli("copy", "--from", target_url, "--to", back)
    assert result.exit_code == 0, result.stderr
    _assert_same_entries(expected, on_store(back, lambda store: _read_back(store, keys)))
    assert on_store(back, snapshot) == before


def test_a_session_the_target_refuses_is_named(cli: InvokeCli, tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'source.db'}"
    target = f"sqlite:///{tmp_path / 'target.db'}?max_field_bytes=1000"

    async def write(store: SessionStore) -> None:
        await store.create_qa_entry("a-small", "alice", "q", "a")
        await store.create_qa_entry("b-large", "bob", "q" * 2000, "a")

    on_store(source, write)
    result = cli("copy", "--from", source, "--to", target)
    assert result.exit_code == 1
    assert "session 'b-large' of user 'bob' cannot be copied: " in result.stderr
    assert "Traceback" not in result.stderr

    async def held(store: SessionStore) -> list[str]:
        return [info.session_id for info in (await store.list_sessions("bob")).items]

    assert on_store(target, held) == []
