"""The commands' details through Typer's runner, in process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from sessionstore import SessionStore, SessionTraceStep
from sessionstore.backends.memory import MemoryStore
from sessionstore.cli.app import app
from tests.cli.conftest import ALL_COMMANDS, InvokeCli, on_store
from tests.sample_sessions import fill, snapshot

COMMANDS = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def test_every_command_is_registered() -> None:
    assert sorted(ALL_COMMANDS) == COMMANDS


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(cli: InvokeCli, command: str) -> None:
    result = cli(command, "--help")
    assert result.exit_code == 0
    example = " ".join(result.stdout.split("Example:", 1)[1].split())
    assert example.startswith("sessionstore ")
    assert f" {command} " in f"{example} "


def test_show_prints_stored_text_inert(cli: InvokeCli, db_url: str) -> None:
    async def write(store: SessionStore) -> None:
        await store.create_qa_entry("s", "u", "[red]x[/red] \x1b[2J", "line1\nline2", "c\x00")
        await store.set_graph_context("s", "u", "g [b]")

    on_store(db_url, write)
    result = cli("--store", db_url, "show", "s", "-u", "u")
    assert result.exit_code == 0
    assert "[red]x[/red] \\x1b[2J" in result.stdout
    assert "\x1b" not in result.stdout
    assert "line1\nline2" in result.stdout
    assert "context: c\\x00" in result.stdout
    assert "graph context: g [b]" in result.stdout


def test_show_last_numbers_entries_and_traces_table(cli: InvokeCli, db_url: str) -> None:
    async def write(store: SessionStore) -> None:
        for n in range(1, 5):
            await store.create_qa_entry("s", None, f"question {n}", f"answer {n}")
        await store.save_trace_step(
            "s", None, SessionTraceStep(origin_function="fetch", status="ok", session_feedback="f")
        )

    on_store(db_url, write)
    result = cli("--store", db_url, "show", "s", "--last", "2", "--traces")
    assert result.exit_code == 0
    assert "4 entries, showing the last 2" in result.stdout
    assert "#3 " in result.stdout
    assert "#4 " in result.stdout
    assert "question 2" not in result.stdout
    assert "Trace steps" in result.stdout
    assert "fetch" in result.stdout
    shown = json.loads(cli("--store", db_url, "show", "s", "--last", "1", "--json").stdout)
    assert [e["question"] for e in shown["entries"]] == ["question 4"]
    assert "trace_steps" not in shown


def test_show_finds_sessions_with_only_traces_or_graph_context(cli: InvokeCli, db_url: str) -> None:
    async def write(store: SessionStore) -> None:
        await store.save_trace_step("t", None, SessionTraceStep(origin_function="f", status="ok"))
        await store.set_graph_context("g", None, "")

    on_store(db_url, write)
    assert cli("--store", db_url, "show", "t").exit_code == 0
    graph_only = json.loads(cli("--store", db_url, "show", "g", "--json").stdout)
    assert graph_only["graph_context"] == ""
    assert graph_only["entries"] == []


def test_show_of_another_users_session_is_missing(cli: InvokeCli, db_url: str) -> None:
    on_store(db_url, lambda s: s.create_qa_entry("s", "alice", "q", "a"))
    result = cli("--store", db_url, "show", "s", "-u", "bob")
    assert result.exit_code == 1
    assert "no session 's' of user 'bob'" in result.stderr
    assert "Traceback" not in result.stderr


def test_ls_limit_truncates_and_says_so(cli: InvokeCli, db_url: str) -> None:
    async def write(store: SessionStore) -> None:
        for n in range(5):
            await store.create_qa_entry(f"s{n}", None, "q", "a")

    on_store(db_url, write)
    listed = json.loads(cli("--store", db_url, "ls", "--limit", "2", "--json").stdout)
    assert [s["session_id"] for s in listed["sessions"]] == ["s4", "s3"]
    assert listed["truncated"] is True
    assert "raise --limit" in cli("--store", db_url, "ls", "-n", "2").stdout
    everything = json.loads(cli("--store", db_url, "ls", "--json").stdout)
    assert len(everything["sessions"]) == 5
    assert everything["truncated"] is False
    assert "No sessions for user 'x'" in cli("--store", db_url, "ls", "-u", "x").stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ls", "--limit", "0"], "--limit"),
        (["show", "s", "--last", "-1"], "--last"),
        (["add", "s", "-q", "q"], "--answer"),
        (["add", "x" * 300, "-q", "q", "-a", "a"], "session_id"),
        (["feedback", "s", "00000000-0000-4000-8000-000000000000", "--score", "9"], "1 and 5"),
        (["export", "--user", "a", "--anonymous"], "not both"),
        (["copy", "--from", "memory://", "--to", "memory://"], "same store"),
        (["import", "/no/such/file.jsonl"], "No such file"),
        (["nosuchcommand"], "No such command"),
    ],
)
def test_bad_arguments_exit_1_with_one_line(
    cli: InvokeCli, db_url: str, args: list[str], message: str
) -> None:
    result = cli("--store", db_url, *args)
    assert result.exit_code == 1, result.stdout
    assert result.stderr.startswith("sessionstore: error: ")
    assert result.stderr.count("\n") == 1
    assert message in result.stderr


def test_feedback_on_unknown_entry_exits_1(cli: InvokeCli, db_url: str) -> None:
    on_store(db_url, lambda s: s.create_qa_entry("s", None, "q", "a"))
    result = cli("--store", db_url, "feedback", "s", "not-a-uuid", "--score", "3")
    assert result.exit_code == 1
    assert "no entry 'not-a-uuid'" in result.stderr


def test_feedback_without_text_clears_the_text(cli: InvokeCli, db_url: str) -> None:
    qa_id = cli("--store", db_url, "add", "s", "-q", "q", "-a", "a").stdout.strip()
    assert cli("--store", db_url, "feedback", "s", qa_id, "-s", "2", "-t", "meh").exit_code == 0
    assert cli("--store", db_url, "feedback", "s", qa_id, "-s", "3").exit_code == 0
    entry = json.loads(cli("--store", db_url, "show", "s", "--json").stdout)["entries"][0]
    assert (entry["feedback_score"], entry["feedback_text"]) == (3, None)
    assert entry["memify_metadata"] == {"feedback_weights_applied": False}


def test_export_filters_users(cli: InvokeCli, db_url: str) -> None:
    on_store(db_url, fill)
    everyone = cli("--store", db_url, "export").stdout.splitlines()
    assert len(everyone) == 7
    anonymous = cli("--store", db_url, "export", "--anonymous").stdout.splitlines()
    assert {json.loads(line)["user_id"] for line in anonymous} == {None}
    assert len(anonymous) == 2
    bob = cli("--store", db_url, "export", "-u", "bob").stdout.splitlines()
    assert {json.loads(line)["user_id"] for line in bob} == {"bob"}


def test_export_to_a_missing_directory_leaves_nothing(
    cli: InvokeCli, db_url: str, tmp_path: Path
) -> None:
    on_store(db_url, fill)
    result = cli("--store", db_url, "export", "-o", str(tmp_path / "no" / "x.jsonl"))
    assert result.exit_code == 1
    assert not (tmp_path / "no").exists()


def test_failed_export_leaves_no_partial_file(cli: InvokeCli, tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    result = cli("--store", f"sqlite:///{tmp_path / 'dir.db'}", "export", "-o", "out.jsonl")
    assert result.exit_code == 2
    assert not Path("out.jsonl").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_import_twice_replaces_instead_of_duplicating(
    cli: InvokeCli, db_url: str, tmp_path: Path
) -> None:
    on_store(db_url, fill)
    dump = tmp_path / "dump.jsonl"
    assert cli("--store", db_url, "export", "-o", str(dump)).exit_code == 0
    target = f"sqlite:///{tmp_path / 'target.db'}"
    for _ in range(2):
        result = cli("--store", target, "import", str(dump))
        assert result.exit_code == 0
        assert "Imported 7 sessions" in result.stderr
    assert on_store(target, snapshot) == on_store(db_url, snapshot)


def _export_lines(cli: InvokeCli, db_url: str) -> list[str]:
    """Export ``fill``'s sessions, a session with entries and feedback on line 3."""
    on_store(db_url, fill)
    lines = cli("--store", db_url, "export").stdout.splitlines()
    lines.sort(key=lambda line: '"feedback_score": 5' in line)
    lines[2], lines[-1] = lines[-1], lines[2]
    return lines


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda line: line[:-5], "line 3: not valid JSON"),
        (lambda line: "[1, 2]", "line 3: expected one session as a JSON object, got list"),
        (lambda line: line.replace('"sessionstore.session/2"', '"v9"'), "line 3: unknown"),
        (lambda line: line.replace('"feedback_score": 5', '"feedback_score": 7'), "line 3: "),
        (lambda line: line.replace('"session_id": "', '"session_id": 1, "x": "'), "line 3: "),
    ],
)
def test_malformed_line_imports_nothing(
    cli: InvokeCli, db_url: str, tmp_path: Path, breakage: object, message: str
) -> None:
    lines = _export_lines(cli, db_url)
    assert callable(breakage)
    lines[2] = breakage(lines[2])
    target = f"sqlite:///{tmp_path / 'target.db'}"
    result = cli("--store", target, "import", "-", input="\n".join(lines) + "\n")
    assert result.exit_code == 1
    assert message in result.stderr
    assert result.stderr.rstrip().endswith("nothing imported")
    assert on_store(target, snapshot) == {}


def test_import_reports_bytes_that_are_not_utf8(cli: InvokeCli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"\n\n\xff{}\n")
    result = cli("--store", f"sqlite:///{tmp_path / 't.db'}", "import", str(bad))
    assert result.exit_code == 1
    assert "line 3: not UTF-8" in result.stderr


def test_import_skips_blank_lines(cli: InvokeCli, db_url: str, tmp_path: Path) -> None:
    lines = _export_lines(cli, db_url)
    target = f"sqlite:///{tmp_path / 'target.db'}"
    result = cli("--store", target, "import", "-", input="\n\n".join(lines) + "\n\n")
    assert result.exit_code == 0
    assert len(on_store(target, snapshot)) == 7


def test_import_refused_by_the_store_names_the_line(cli: InvokeCli, tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'source.db'}"
    on_store(source, lambda s: s.create_qa_entry("small", None, "q", "a"))
    on_store(source, lambda s: s.create_qa_entry("large", None, "q" * 200, "a"))
    lines = cli("--store", source, "export").stdout.splitlines()
    target = f"sqlite:///{tmp_path / 'target.db'}?max_field_bytes=100"
    result = cli("--store", target, "import", "-", input="\n".join(lines) + "\n")
    assert result.exit_code == 1
    large_line = 1 + next(i for i, line in enumerate(lines) if '"large"' in line)
    assert f"line {large_line}: " in result.stderr
    imported = on_store(target, snapshot)
    assert list(imported) == ([("small", None)] if large_line == 2 else [])


def test_copy_into_memory_in_process(cli: InvokeCli, db_url: str) -> None:
    on_store(db_url, fill)
    result = cli("copy", "--from", db_url, "--to", "memory://", "--user", "alice")
    assert result.exit_code == 0
    assert "Copied 3 sessions" in result.stderr


def test_copy_defaults_from_the_chosen_store(cli: InvokeCli, db_url: str, tmp_path: Path) -> None:
    on_store(db_url, fill)
    target = f"sqlite:///{tmp_path / 'target.db'}"
    assert cli("--store", db_url, "copy", "--to", target, "--anonymous").exit_code == 0
    assert set(on_store(target, snapshot)) == {("s1", None), ("s/2 😀", None)}


def test_where_with_the_environment(
    cli: InvokeCli, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SESSIONSTORE_URL", "postgresql://app:s3cret@db/app?pool_size=2")
    shown = json.loads(cli("where", "--json").stdout)
    assert shown["url"] == "postgresql://app:***@db/app?pool_size=2"
    assert "SESSIONSTORE_URL" in shown["reason"]
    assert json.loads(cli("--store", db_url, "where", "--json").stdout)["url"] == db_url
    broken = cli("--store", "redis://:s3cret@h/0?bogus=1", "where")
    assert broken.exit_code == 1
    assert "redis://:***@h/0?bogus=1" in broken.stdout
    assert "unknown option 'bogus'" in broken.stderr
    assert "s3cret" not in broken.stdout + broken.stderr


def test_migrate_calls_the_store_step_when_it_has_one(
    cli: InvokeCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    async def migrate(self: MemoryStore) -> None:
        calls.append("migrated")

    monkeypatch.setattr(MemoryStore, "migrate", migrate, raising=False)
    result = cli("--store", "memory://", "migrate")
    assert result.exit_code == 0
    assert calls == ["migrated"]
    assert "up to date" in result.stderr


def test_debug_prints_the_traceback(cli: InvokeCli, tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    url = f"sqlite:///{tmp_path / 'dir.db'}"
    plain = cli("--store", url, "ls")
    assert plain.exit_code == 2
    assert "Traceback" not in plain.stderr
    debug = cli("--debug", "--store", url, "ls")
    assert debug.exit_code == 2
    assert "Traceback" in debug.stderr
    assert debug.stderr.rstrip().splitlines()[-1].startswith("sessionstore: error: store failed")


def test_missing_extra_gives_the_open_store_message(
    cli: InvokeCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    result = cli("--store", "redis://127.0.0.1:6379/0", "ls")
    assert result.exit_code == 1
    assert "pip install 'sessionstore[redis]'" in result.stderr
    assert result.stderr.count("\n") == 1


def test_missing_cli_extra_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['typer'] = None; from sessionstore.cli import main; main(['ls'])"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert proc.stderr == (
        "sessionstore: error: the command line needs 'typer': pip install 'sessionstore[cli]'\n"
    )


def test_users_counts_sessions_per_user_and_names_the_anonymous_one(
    cli: InvokeCli, db_url: str
) -> None:
    on_store(db_url, fill)
    on_store(db_url, lambda store: store.create_qa_entry("s", "anonymous (no --user)", "q", "a"))
    listed = json.loads(cli("--store", db_url, "users", "--json").stdout)
    assert listed == {
        "users": [
            {"user_id": None, "session_count": 2},
            {"user_id": "alice", "session_count": 3},
            {"user_id": "anonymous (no --user)", "session_count": 1},
            {"user_id": "bob", "session_count": 2},
        ]
    }
    table = cli("--store", db_url, "users").stdout
    rows = [" ".join(line.strip("│ ").split()) for line in table.splitlines() if "│" in line]
    assert rows == [
        "anonymous (no --user) │ 2",
        "'alice' │ 3",
        "'anonymous (no --user)' │ 1",
        "'bob' │ 2",
    ]
    assert "4 users, 8 sessions" in table
    on_store(db_url, lambda store: store.prune())
    assert cli("--store", db_url, "users").stdout == "No sessions in this store.\n"
    assert json.loads(cli("--store", db_url, "users", "--json").stdout) == {"users": []}
