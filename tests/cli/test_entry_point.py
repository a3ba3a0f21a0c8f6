"""Every command through the real entry point, in a subprocess."""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from sessionstore import SessionStore
from sessionstore import __version__ as sessionstore_version
from tests.cli.conftest import ALL_COMMANDS, InvokeCli, RunCli, on_store
from tests.sample_sessions import fill, snapshot


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, proc.stderr
    return proc


def test_installed_script_runs_and_lists_every_command() -> None:
    script = Path(sys.executable).with_name("sessionstore")
    proc = ok(subprocess.run([script, "--help"], capture_output=True, text=True, check=False))
    for command in ALL_COMMANDS:
        assert f" {command} " in proc.stdout
    assert "Example:" in proc.stdout


def test_import_sessionstore_loads_no_cli_library(sessionstore: RunCli) -> None:
    code = (
        "import sys, sessionstore; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'typer', 'rich', 'click'}))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


def test_where_says_which_store_and_why(sessionstore: RunCli, tmp_path: Path) -> None:
    default = ok(sessionstore("where", "--json"))
    shown = json.loads(default.stdout)
    assert shown["url"] == f"sqlite:///{tmp_path / 'xdg' / 'sessionstore' / 'sessions.db'}"
    assert "default" in shown["reason"]
    assert shown["backend"] == "SQLiteStore"
    from_env = ok(sessionstore("where", SESSIONSTORE_URL="memory://"))
    assert from_env.stdout.startswith("memory://")
    assert "SESSIONSTORE_URL" in from_env.stdout
    given = ok(sessionstore("--store", "redis://:hunter2@127.0.0.1:6379/0", "where"))
    assert "hunter2" not in given.stdout + given.stderr
    assert "redis://:***@127.0.0.1:6379/0" in given.stdout
    assert "--store" in given.stdout
    assert not (tmp_path / "xdg").exists(), "where must not create the store"


def test_demo_records_a_conversation_and_prints_the_prompt(sessionstore: RunCli) -> None:
    first = ok(sessionstore("demo"))
    assert "Previous conversation:" in first.stdout
    assert "Background knowledge from the knowledge graph:" in first.stdout
    assert "send_summary_email failed. Reason: SMTP server timed out." in first.stdout
    ok(sessionstore("demo"))  # running again replaces the demo session
    shown = json.loads(
        ok(
            sessionstore("show", "sessionstore-demo", "--user", "demo-user", "--traces", "--json")
        ).stdout
    )
    assert shown["qa_count"] == 3
    assert [e["feedback_score"] for e in shown["entries"]] == [None, 5, None]
    assert shown["entries"][2]["used_graph_element_ids"]["node_ids"] == ["redis", "postgresql"]
    assert shown["graph_context"].startswith("SQLite --is_default_backend_of-->")
    assert [s["status"] for s in shown["trace_steps"]] == ["success", "error"]


def test_add_prints_the_new_id_and_show_reads_it(sessionstore: RunCli, db_url: str) -> None:
    added = ok(
        sessionstore("--store", db_url, "add", "chat-1", "-u", "al", "-q", "Hi?", "-a", "Yo")
    )
    qa_id = added.stdout.strip()
    assert str(uuid.UUID(qa_id)) == qa_id
    shown = ok(sessionstore("--store", db_url, "show", "chat-1", "--user", "al"))
    assert "Q: Hi?" in shown.stdout
    assert "A: Yo" in shown.stdout
    assert qa_id in shown.stdout


def test_ls_lists_sessions_newest_first(sessionstore: RunCli, db_url: str) -> None:
    for sid in ("old", "new"):
        ok(sessionstore("--store", db_url, "add", sid, "-u", "al", "-q", "q", "-a", "a"))
    listed = json.loads(ok(sessionstore("--store", db_url, "ls", "-u", "al", "--json")).stdout)
    assert [s["session_id"] for s in listed["sessions"]] == ["new", "old"]
    assert [s["qa_count"] for s in listed["sessions"]] == [1, 1]
    table = ok(sessionstore("--store", db_url, "ls", "-u", "al")).stdout
    assert table.index("new") < table.index("old")
    assert "last activity" in table


def test_feedback_sets_score_and_text(sessionstore: RunCli, db_url: str) -> None:
    qa_id = ok(sessionstore("--store", db_url, "add", "s", "-q", "q", "-a", "a")).stdout.strip()
    ok(sessionstore("--store", db_url, "feedback", "s", qa_id, "--score", "4", "--text", "ok"))

    async def read(store: SessionStore) -> tuple[int | None, str | None]:
        entry = await store.get_qa_entry("s", None, qa_id)
        assert entry is not None
        return entry.feedback_score, entry.feedback_text

    assert on_store(db_url, read) == (4, "ok")


def test_rm_deletes_and_then_reports_missing(sessionstore: RunCli, db_url: str) -> None:
    ok(sessionstore("--store", db_url, "add", "s", "-u", "al", "-q", "q", "-a", "a"))
    ok(sessionstore("--store", db_url, "rm", "s", "-u", "al"))
    again = sessionstore("--store", db_url, "rm", "s", "-u", "al")
    assert again.returncode == 1
    assert again.stderr == "sessionstore: error: no session 's' of user 'al'\n"


def test_prune_asks_first(sessionstore: RunCli, db_url: str) -> None:
    ok(sessionstore("--store", db_url, "add", "s", "-q", "q", "-a", "a"))
    refused = sessionstore("--store", db_url, "prune", input="n\n")
    assert refused.returncode == 1
    assert "nothing deleted" in refused.stderr
    assert on_store(db_url, lambda s: s.count_qa_entries("s", None)) == 1
    ok(sessionstore("--store", db_url, "prune", input="y\n"))
    assert on_store(db_url, lambda s: s.count_qa_entries("s", None)) == 0
    ok(sessionstore("--store", db_url, "add", "s", "-q", "q", "-a", "a"))
    ok(sessionstore("--store", db_url, "prune", "--yes"))
    assert on_store(db_url, lambda s: s.count_qa_entries("s", None)) == 0


def test_export_to_stdout_and_import_from_stdin(
    sessionstore: RunCli, db_url: str, tmp_path: Path
) -> None:
    on_store(db_url, fill)
    exported = ok(sessionstore("--store", db_url, "export"))
    lines = exported.stdout.splitlines()
    assert len(lines) == 7
    assert all(json.loads(line)["format"] for line in lines)
    target = f"sqlite:///{tmp_path / 'target.db'}"
    imported = ok(sessionstore("--store", target, "import", "-", input=exported.stdout))
    assert "Imported 7 sessions" in imported.stderr
    assert on_store(target, snapshot) == on_store(db_url, snapshot)


def test_export_to_file_and_import_it(sessionstore: RunCli, db_url: str, tmp_path: Path) -> None:
    on_store(db_url, fill)
    dump = tmp_path / "all.jsonl"
    ok(sessionstore("--store", db_url, "export", "-o", str(dump), "--user", "alice"))
    assert len(dump.read_bytes().splitlines()) == 3
    target = f"sqlite:///{tmp_path / 'target.db'}"
    ok(sessionstore("--store", target, "import", str(dump)))
    source = {k: v for k, v in on_store(db_url, snapshot).items() if k[1] == "alice"}
    assert on_store(target, snapshot) == source


def test_copy_between_backends(sessionstore: RunCli, db_url: str, tmp_path: Path) -> None:
    on_store(db_url, fill)
    target = f"file://{tmp_path / 'files'}"
    copied = ok(sessionstore("copy", "--from", db_url, "--to", target))
    assert "Copied 7 sessions" in copied.stderr
    assert on_store(target, snapshot) == on_store(db_url, snapshot)


def test_stats_counts_the_store(sessionstore: RunCli, db_url: str) -> None:
    on_store(db_url, fill)
    counted = json.loads(ok(sessionstore("--store", db_url, "stats", "--json")).stdout)
    assert counted["sessions"] == 7
    assert counted["users"] == 3
    assert counted["entries"] == 12
    assert counted["trace_steps"] == 6
    assert counted["graph_contexts"] == 1
    assert counted["entries_with_feedback"] == 6
    assert counted["size_bytes"] > 0
    assert "size on disk" in ok(sessionstore("--store", db_url, "stats")).stdout


def test_migrate_without_a_migration_step(sessionstore: RunCli, db_url: str) -> None:
    proc = ok(sessionstore("--store", db_url, "migrate"))
    assert "Nothing to migrate" in proc.stderr


def test_exit_codes_and_one_line_errors(sessionstore: RunCli, db_url: str, tmp_path: Path) -> None:
    on_store(db_url, lambda store: store.create_qa_entry("s", None, "q", "a"))
    missing = sessionstore("--store", db_url, "show", "nope")
    assert missing.returncode == 1
    assert missing.stderr.startswith("sessionstore: error: no session 'nope'")
    bad_option = sessionstore("ls", "--no-such-option")
    assert bad_option.returncode == 1
    assert bad_option.stderr.count("\n") == 1
    unknown = sessionstore("--store", "nosuch://x", "ls")
    assert unknown.returncode == 1
    assert "unknown store scheme 'nosuch'" in unknown.stderr
    (tmp_path / "a-directory.db").mkdir()
    broken = f"sqlite:///{tmp_path / 'a-directory.db'}"
    failed = sessionstore("--store", broken, "ls")
    assert failed.returncode == 2
    assert failed.stderr.startswith("sessionstore: error: store failed:")
    assert failed.stderr.count("\n") == 1
    assert "Traceback" not in failed.stderr
    debug = sessionstore("--debug", "--store", broken, "ls")
    assert debug.returncode == 2
    assert "Traceback" in debug.stderr


def test_version_and_short_help_on_the_top_level_and_every_command(
    sessionstore: RunCli, cli: InvokeCli
) -> None:
    top = ok(sessionstore("--version"))
    assert top.stdout == f"sessionstore {sessionstore_version}\n"
    assert "Usage: sessionstore [OPTIONS] COMMAND" in ok(sessionstore("-h")).stdout
    for command in ALL_COMMANDS:
        version = cli(command, "--version")
        assert (version.exit_code, version.stdout) == (0, top.stdout), command
        short = cli(command, "-h")
        assert short.exit_code == 0, command
        assert f" {command} [OPTIONS]" in short.stdout, command
        assert short.stdout == cli(command, "--help").stdout, command
    # Before anything else runs: no store is opened, none created.
    assert ok(sessionstore("--store", "sqlite:///nowhere/x.db", "ls", "--version")).stdout == (
        top.stdout
    )
    assert not Path("nowhere").exists()


@pytest.mark.parametrize("columns", ["40", "200"])
def test_show_keeps_the_entry_id_whole_at_any_width(
    sessionstore: RunCli, db_url: str, columns: str
) -> None:
    qa_id = on_store(db_url, lambda store: store.create_qa_entry("s", None, "q " * 50, "a"))
    shown = ok(sessionstore("--store", db_url, "show", "s", COLUMNS=columns)).stdout
    lines = shown.splitlines()
    assert [line.split()[-1] for line in lines if line.startswith("#1 ")] == [qa_id]
    assert all(len(line) <= int(columns) for line in lines if qa_id not in line)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o027])
def test_export_to_a_file_gets_the_mode_of_a_new_file(
    db_url: str, tmp_path: Path, umask: int
) -> None:
    on_store(db_url, fill)
    output = tmp_path / "all.jsonl"
    command = shlex.join([sys.executable, "-m", "sessionstore.cli", "--store", db_url, "export"])
    done = subprocess.run(
        f"umask {umask:03o} && {command} -o {shlex.quote(str(output))}",
        shell=True,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(output.stat().st_mode) == 0o666 & ~umask
    output.chmod(0o604)  # a file that exists keeps its mode
    ok_again = subprocess.run(f"{command} -o {shlex.quote(str(output))}", shell=True, check=False)
    assert ok_again.returncode == 0
    assert stat.S_IMODE(output.stat().st_mode) == 0o604
    assert len(output.read_text(encoding="utf-8").splitlines()) == 7


def test_export_into_a_missing_directory_names_it(
    sessionstore: RunCli, db_url: str, tmp_path: Path
) -> None:
    on_store(db_url, fill)
    output = tmp_path / "no" / "such" / "all.jsonl"
    failed = sessionstore("--store", db_url, "export", "-o", str(output))
    assert failed.returncode == 1
    assert failed.stderr == (
        f"sessionstore: error: cannot write {output}: no directory {output.parent}\n"
    )
    assert not (tmp_path / "no").exists()


def _hint(stdout: str) -> list[str]:
    (line,) = [line for line in stdout.splitlines() if line.startswith("Look closer: ")]
    return shlex.split(line.removeprefix("Look closer: "))


def _shows_the_demo(command: list[str], **env: str) -> None:
    shown = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, **env}, check=False
    )
    assert shown.returncode == 0, (command, shown.stderr)
    assert "Session 'sessionstore-demo' of user 'demo-user': 3 entries" in shown.stdout
    assert "send_summary_email" in shown.stdout  # --traces


def test_the_demo_hint_runs_as_printed(sessionstore: RunCli, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo store.db'}"
    as_module = _hint(ok(sessionstore("--store", url, "demo")).stdout)
    assert as_module[1:5] == ["-m", "sessionstore.cli", "--store", url]
    _shows_the_demo(as_module)

    script = str(Path(sys.executable).with_name("sessionstore"))
    paths = os.environ["PATH"].split(os.pathsep)
    elsewhere = os.pathsep.join(p for p in paths if Path(p).absolute() != Path(script).parent)
    by_path = subprocess.run(
        [script, "--store", url, "demo"],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": elsewhere},
        check=True,
    )
    hint = _hint(by_path.stdout)
    assert hint[0] == script  # not on PATH: the path it was run by
    _shows_the_demo(hint, PATH=elsewhere)

    on_path = os.pathsep.join([str(Path(script).parent), elsewhere])
    by_name = subprocess.run(
        ["sessionstore", "demo"],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": on_path},
        check=True,
    )
    hint = _hint(by_name.stdout)
    assert hint[0] == "sessionstore"
    assert "--store" not in hint  # the default store, as in the demo
    _shows_the_demo(hint, PATH=on_path)
