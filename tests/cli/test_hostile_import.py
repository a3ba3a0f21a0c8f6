"""``import`` of hostile lines (issue #12): bad input, exit 1, the line named, nothing imported."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sessionstore import SessionStore
from sessionstore.validation import MAX_JSON_DEPTH
from tests.cli.conftest import InvokeCli, RunCli, on_store
from tests.sample_sessions import snapshot


def _tower(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth - 1):
        value = [value]
    return {"deep": value}


def _entry(dump: dict[str, Any], **changes: Any) -> dict[str, Any]:
    dump["entries"][0].update(changes)
    return dump


def _duplicate_entry(dump: dict[str, Any]) -> dict[str, Any]:
    dump["entries"].append(dict(dump["entries"][0]))
    return dump


def _duplicate_trace(dump: dict[str, Any]) -> dict[str, Any]:
    step = {"trace_id": "t1", "origin_function": "f", "status": "ok"}
    dump["trace_steps"] = [step, {**step, "status": "again"}]
    return dump


# Each turns a valid session dump into a bad one, as text: (dump) -> the line.
LINES: dict[str, Callable[[dict[str, Any]], str]] = {
    "metadata one level too deep": lambda d: json.dumps(
        _entry(d, metadata=_tower(MAX_JSON_DEPTH + 1))
    ),
    "metadata 900 deep": lambda d: json.dumps(_entry(d, metadata=_tower(900))),
    "a bare array 100000 deep": lambda d: "[" * 100_000 + "]" * 100_000,
    "an entry 50000 deep": lambda d: json.dumps(_entry(d, metadata="@")).replace(
        '"metadata": "@"', '"metadata": ' + "[" * 50_000 + "]" * 50_000
    ),
    "created in year 1 east of UTC": lambda d: json.dumps(
        {**d, "created_at": "0001-01-01T00:00:00+01:00"}
    ),
    "updated in year 9999 west of UTC": lambda d: json.dumps(
        {**d, "updated_at": "9999-12-31T23:59:59-01:00"}
    ),
    "entry before 1970": lambda d: json.dumps(_entry(d, created_at="1969-07-20T20:17:00+00:00")),
    "entry id twice": lambda d: json.dumps(_duplicate_entry(d)),
    "trace id twice": lambda d: json.dumps(_duplicate_trace(d)),
    "graph context with a lone surrogate": lambda d: json.dumps(
        {**d, "graph_context": "bad \ud800"}
    ),
}


async def _two_sessions(store: SessionStore) -> None:
    await store.create_qa_entry("first", "u", "q", "a")
    await store.create_qa_entry("second", "u", "q", "a", metadata={"k": 1})


@pytest.fixture
def good_lines(cli: InvokeCli, tmp_path: Path) -> list[str]:
    """Two valid export lines, "first" then "second"."""
    source = f"sqlite:///{tmp_path / 'source.db'}"
    on_store(source, _two_sessions)
    lines = cli("--store", source, "export").stdout.splitlines()
    return sorted(lines, key=lambda line: json.loads(line)["session_id"])


@pytest.fixture
def target(tmp_path: Path) -> str:
    """A store that already holds one session, which a refused import must leave alone."""
    url = f"sqlite:///{tmp_path / 'target.db'}"
    on_store(url, lambda store: store.create_qa_entry("already", "u", "kept", "a"))
    return url


@pytest.mark.parametrize("breakage", list(LINES), ids=list(LINES))
def test_hostile_line_is_bad_input_and_nothing_is_imported(
    cli: InvokeCli, good_lines: list[str], target: str, tmp_path: Path, breakage: str
) -> None:
    before = on_store(target, snapshot)
    bad = LINES[breakage](json.loads(good_lines[1]))
    file = tmp_path / "hostile.jsonl"
    file.write_text(f"{good_lines[0]}\n{bad}\n", encoding="utf-8")
    result = cli("--store", target, "import", str(file))
    assert result.exit_code == 1, result.stderr
    assert result.stderr.startswith("sessionstore: error: line 2: ")
    assert result.stderr.rstrip().endswith("; nothing imported")
    assert "unexpected" not in result.stderr
    assert on_store(target, snapshot) == before


def test_deep_line_through_the_real_entry_point(
    sessionstore: RunCli, good_lines: list[str], target: str
) -> None:
    before = on_store(target, snapshot)
    bad = "[" * 100_000 + "]" * 100_000
    proc = sessionstore("--store", target, "import", "-", input=f"{good_lines[0]}\n\n{bad}\n")
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == (
        "sessionstore: error: line 3: JSON nested too deeply (a value may nest lists and "
        f"dicts at most {MAX_JSON_DEPTH} levels deep); nothing imported\n"
    )
    assert on_store(target, snapshot) == before


def test_deepest_accepted_values_export_show_and_import(
    cli: InvokeCli, target: str, tmp_path: Path
) -> None:
    deepest = _tower(MAX_JSON_DEPTH)
    on_store(target, lambda store: store.create_qa_entry("s", "u", "q", "a", metadata=deepest))
    exported = cli("--store", target, "export", "--user", "u")
    assert exported.exit_code == 0, exported.stderr
    shown = cli("--store", target, "show", "s", "--user", "u", "--json")
    assert shown.exit_code == 0, shown.stderr
    assert json.loads(shown.stdout)["entries"][0]["metadata"] == deepest
    for command in (["show", "s", "--user", "u"], ["stats"], ["ls", "--user", "u"]):
        result = cli("--store", target, *command)
        assert result.exit_code == 0, (command, result.stderr)
    again = f"sqlite:///{tmp_path / 'again.db'}"
    imported = cli("--store", again, "import", "-", input=exported.stdout)
    assert imported.exit_code == 0, imported.stderr
    assert on_store(again, snapshot) == on_store(target, snapshot)


@pytest.mark.parametrize("last", [2**31, 2**63, 10**30], ids=repr)
def test_show_last_any_number_shows_every_entry(cli: InvokeCli, target: str, last: int) -> None:
    result = cli("--store", target, "show", "already", "--user", "u", "--last", str(last))
    assert result.exit_code == 0, result.stderr
    assert "kept" in result.stdout


def test_a_line_over_the_target_stores_field_limit_imports_nothing(
    cli: InvokeCli, good_lines: list[str], target: str, tmp_path: Path
) -> None:
    # The first pass checks each line against the store it imports into, not
    # only against the dump format.
    before = on_store(target, snapshot)
    big = json.dumps({**json.loads(good_lines[1]), "graph_context": "g" * 200})
    file = tmp_path / "big.jsonl"
    file.write_text(f"{good_lines[0]}\n{big}\n", encoding="utf-8")
    result = cli("--store", f"{target}?max_field_bytes=100", "import", str(file))
    assert result.exit_code == 1, result.stderr
    assert result.stderr.startswith("sessionstore: error: line 2: graph_context is 200 bytes")
    assert result.stderr.rstrip().endswith("; nothing imported")
    assert on_store(target, snapshot) == before
