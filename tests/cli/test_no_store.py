"""A command that only reads (or deletes) never creates a store at a mistyped path.

It exits 1 with "no store at <path>", and the path, its directory included,
still does not exist afterwards. Commands that write create the store.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import InvokeCli, RunCli, on_store
from tests.sample_sessions import fill, snapshot

# Every command that reads a store (or deletes from one) but never adds to it.
READING = {
    "ls": ["ls"],
    "ls --user": ["ls", "--user", "alice"],
    "show": ["show", "s1"],
    "stats": ["stats", "--json"],
    "users": ["users"],
    "export": ["export"],
    "export -o": ["export", "-o", "{tmp}/out.jsonl"],
    "copy --from": ["copy", "--to", "sqlite:///{tmp}/target/copy.db"],
    "rm": ["rm", "s1"],
    "prune": ["prune", "--yes"],
}


@pytest.fixture(params=["sqlite", "files"])
def mistyped(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Path]:
    """A store URL under a directory that does not exist, and that directory."""
    missing = tmp_path / "typo"
    if request.param == "sqlite":
        return f"sqlite:///{missing / 'app.db'}", missing / "app.db"
    return f"file://{missing / 'root'}", missing / "root"


@pytest.mark.parametrize("args", READING.values(), ids=READING.keys())
def test_reading_a_missing_store_creates_nothing(
    cli: InvokeCli, tmp_path: Path, mistyped: tuple[str, Path], args: list[str]
) -> None:
    url, path = mistyped
    result = cli("--store", url, *(arg.format(tmp=tmp_path) for arg in args))
    assert result.exit_code == 1, result.stdout
    assert result.stderr.startswith(f"sessionstore: error: no store at {path}")
    assert result.stderr.count("\n") == 1
    assert result.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_the_real_entry_point_creates_nothing_either(sessionstore: RunCli, tmp_path: Path) -> None:
    path = tmp_path / "typo" / "app.db"
    for args in (["ls"], ["show", "s"], ["stats"], ["users", "--json"], ["export"]):
        proc = sessionstore("--store", f"sqlite:///{path}", *args)
        assert proc.returncode == 1, args
        assert proc.stderr.startswith(f"sessionstore: error: no store at {path}"), args
    assert not (tmp_path / "typo").exists()


def test_the_default_store_is_not_created_by_reading(sessionstore: RunCli, tmp_path: Path) -> None:
    default = tmp_path / "xdg" / "sessionstore" / "sessions.db"
    proc = sessionstore("ls")
    assert proc.returncode == 1
    assert f"no store at {default}" in proc.stderr
    assert not (tmp_path / "xdg").exists()
    assert sessionstore("add", "s", "-q", "q", "-a", "a").returncode == 0
    assert default.exists()
    assert sessionstore("ls").returncode == 0


def test_a_file_root_without_the_marker_is_no_store(cli: InvokeCli, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = cli("--store", f"file://{tmp_path / 'empty'}", "ls")
    assert result.exit_code == 1
    assert f"no store at {tmp_path / 'empty'}" in result.stderr
    assert list((tmp_path / "empty").iterdir()) == []


def test_existing_stores_are_read_and_writing_commands_create(
    cli: InvokeCli, tmp_path: Path, mistyped: tuple[str, Path]
) -> None:
    url, path = mistyped
    assert cli("--store", url, "add", "s1", "-u", "alice", "-q", "q", "-a", "a").exit_code == 0
    assert path.exists()
    listed = json.loads(cli("--store", url, "ls", "-u", "alice", "--json").stdout)
    assert [s["session_id"] for s in listed["sessions"]] == ["s1"]
    assert cli("--store", url, "rm", "s1", "-u", "alice").exit_code == 0


def test_import_and_copy_create_their_target(cli: InvokeCli, tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'source.db'}"
    on_store(source, fill)
    export = tmp_path / "all.jsonl"
    assert cli("--store", source, "export", "-o", str(export)).exit_code == 0
    imported = f"sqlite:///{tmp_path / 'new' / 'imported.db'}"
    assert cli("--store", imported, "import", str(export)).exit_code == 0
    copied = f"file://{tmp_path / 'new' / 'copied'}"
    assert cli("copy", "--from", source, "--to", copied).exit_code == 0
    assert on_store(imported, snapshot) == on_store(source, snapshot) == on_store(copied, snapshot)
