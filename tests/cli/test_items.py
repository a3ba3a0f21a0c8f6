"""The command line carries and shows the item log and the session state."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from sessionstore import SessionStore
from tests.cli.conftest import InvokeCli, on_store
from tests.contract.cases import BackendCase, CaseContext
from tests.sample_sessions import fill_items, snapshot


def _exact(sessions: dict[Any, dict[str, Any]]) -> str:
    """The sessions as one text that tells 1.0 from 1, -0.0 from 0.0, and keeps key order."""
    return json.dumps([sessions[key] for key in sorted(sessions, key=repr)])


@pytest.mark.shared  # each memory:// store is private, so not on memory
def test_export_import_and_copy_carry_items_and_state(
    cli: InvokeCli,
    store_url: str,
    case: BackendCase,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    on_store(store_url, fill_items)
    before = on_store(store_url, snapshot)
    assert len(before) == 9
    dump = tmp_path / "items.jsonl"
    assert cli("--store", store_url, "export", "-o", str(dump)).exit_code == 0
    lines = [json.loads(line) for line in dump.read_text(encoding="utf-8").splitlines()]
    assert {line["format"] for line in lines} == {"sessionstore.session/2"}
    assert sum(len(line["items"]) for line in lines) == 3 * (8 + 3)

    on_store(store_url, lambda store: store.prune())
    result = cli("--store", store_url, "import", str(dump))
    assert result.exit_code == 0, result.stderr
    assert _exact(on_store(store_url, snapshot)) == _exact(before)

    other = case.url(
        CaseContext(request=request, tmp_path=tmp_path / "copy", token="c" + uuid.uuid4().hex[:12])
    )
    (tmp_path / "copy").mkdir()
    try:
        result = cli("copy", "--from", store_url, "--to", other)
        assert result.exit_code == 0, result.stderr
        assert "Copied 9 sessions" in result.stderr
        assert _exact(on_store(other, snapshot)) == _exact(before)
        state = on_store(other, lambda store: store.get_state("items", "bob"))
        assert state.revision == 2
    finally:
        on_store(other, lambda store: store.prune())


async def _write(store: SessionStore) -> None:
    await store.append_items("items", "u", [{"role": "user", "content": "hi"}, 1.0])
    await store.update_state("items", "u", {"step": 2})
    await store.update_state("state", "u", {})
    await store.create_qa_entry("entries", "u", "q", "a")


def test_ls_show_and_stats_count_items(cli: InvokeCli, db_url: str) -> None:
    on_store(db_url, _write)
    listed = json.loads(cli("--store", db_url, "ls", "-u", "u", "--json").stdout)
    counts = {s["session_id"]: (s["qa_count"], s["item_count"]) for s in listed["sessions"]}
    assert counts == {"items": (0, 2), "state": (0, 0), "entries": (1, 0)}
    table = cli("--store", db_url, "ls", "-u", "u").stdout
    assert "items" in table

    shown = json.loads(cli("--store", db_url, "show", "items", "-u", "u", "--json").stdout)
    assert (shown["qa_count"], shown["item_count"], shown["state_revision"]) == (0, 2, 1)
    assert "items" not in shown
    full = json.loads(
        cli("--store", db_url, "show", "items", "-u", "u", "--items", "--json").stdout
    )
    assert [i["data"] for i in full["items"]] == [{"role": "user", "content": "hi"}, 1.0]
    assert full["state"] == {"data": {"step": 2}, "revision": 1}
    text = cli("--store", db_url, "show", "items", "-u", "u", "--items").stdout
    assert "0 entries; 2 items, state revision 1" in text
    assert "item #1" in text
    assert '{"step": 2}' in text
    state_only = cli("--store", db_url, "show", "state", "-u", "u")
    assert state_only.exit_code == 0
    assert "0 items, state revision 1" in state_only.stdout

    counted = json.loads(cli("--store", db_url, "stats", "--json").stdout)
    assert (counted["sessions"], counted["items"], counted["states"]) == (3, 2, 2)
