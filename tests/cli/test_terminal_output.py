"""Stored text never acts on the terminal: controls and bidi overrides are shown escaped.

A stored string may hold ESC sequences, C1 controls (U+009B is a CSI on some
terminals), DEL, line separators and bidirectional overrides that reorder the
rest of a line. JSON output (``--json``, ``export``) carries them as
``\\uNNNN`` escapes and still reads back to the same values; human output
(``show``, ``ls``) shows them as visible ``\\xNN`` / ``\\uNNNN`` text.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from sessionstore import SessionStore, SessionTraceStep
from tests.cli.conftest import InvokeCli, RunCli, on_store

# Everything that acts on a terminal; "\n" and "\t" only where JSON or layout put them.
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")
SESSION = "chat\u202egnp.exe"
USER = "mallory\x9b"
QUESTION = "red \x1b[31mtext\x9b2J\x07 and \u202eright-to-left\u202c, \u2066isolated\u2069"
ANSWER = "del\x7f nel\x85 line\u2028paragraph\u2029 mark\u200f arabic\u061c"
METADATA = {"model\u202e": "x\x9b[0m", "tokens": 3}
ORIGIN = "tool\x1b]8;;http://evil\x07"


async def _write(store: SessionStore) -> None:
    await store.create_qa_entry(
        SESSION, USER, QUESTION, ANSWER, "ctx\x9b", metadata=METADATA, feedback_text="ok\u202e"
    )
    await store.set_graph_context(SESSION, USER, "graph\x9b[2J")
    step = SessionTraceStep(trace_id="t1", origin_function=ORIGIN, status="ok\u202e")
    await store.save_trace_step(SESSION, USER, step)


def _no_raw_controls(text: str) -> None:
    found = RAW.findall(text)
    assert not found, f"raw {[hex(ord(c)) for c in found]} in output"


def test_json_output_escapes_controls_and_reads_back(cli: InvokeCli, db_url: str) -> None:
    on_store(db_url, _write)
    shown = cli("--store", db_url, "show", SESSION, "-u", USER, "--traces", "--json")
    listed = cli("--store", db_url, "ls", "-u", USER, "--json")
    for result in (shown, listed):
        assert result.exit_code == 0, result.stderr
        _no_raw_controls(result.stdout)
        assert "\\u202e" in result.stdout
    session = json.loads(shown.stdout)
    entry = session["entries"][0]
    assert (session["session_id"], session["user_id"]) == (SESSION, USER)
    assert (entry["question"], entry["answer"], entry["metadata"]) == (QUESTION, ANSWER, METADATA)
    assert session["trace_steps"][0]["origin_function"] == ORIGIN
    assert json.loads(listed.stdout)["sessions"][0]["session_id"] == SESSION


def test_export_escapes_controls_and_imports_back(
    cli: InvokeCli, db_url: str, tmp_path: Path
) -> None:
    on_store(db_url, _write)
    exported = cli("--store", db_url, "export")
    assert exported.exit_code == 0, exported.stderr
    _no_raw_controls(exported.stdout)
    assert "\\u009b" in exported.stdout
    (line,) = exported.stdout.splitlines()
    dump = json.loads(line)
    assert dump["session_id"] == SESSION
    assert dump["entries"][0]["question"] == QUESTION
    copy = f"sqlite:///{tmp_path}/copy.db"
    assert cli("--store", copy, "import", "-", input=exported.stdout).exit_code == 0
    again = cli("--store", copy, "show", SESSION, "-u", USER, "--json")
    assert json.loads(again.stdout)["entries"][0]["answer"] == ANSWER


def test_show_and_ls_print_controls_visibly(cli: InvokeCli, db_url: str) -> None:
    on_store(db_url, _write)
    shown = cli("--store", db_url, "show", SESSION, "-u", USER, "--traces")
    listed = cli("--store", db_url, "ls", "-u", USER)
    for result in (shown, listed):
        assert result.exit_code == 0, result.stderr
        _no_raw_controls(result.stdout)
    assert "\\u202eright-to-left\\u202c" in shown.stdout
    assert "\\x1b[31mtext\\x9b2J\\x07" in shown.stdout
    assert "line\\u2028paragraph\\u2029" in shown.stdout
    assert "del\\x7f nel\\x85" in shown.stdout
    assert "chat\\u202egnp.exe" in listed.stdout


def test_the_entry_point_escapes_what_it_prints(sessionstore: RunCli, db_url: str) -> None:
    on_store(db_url, _write)
    for args in (
        ["show", SESSION, "-u", USER, "--traces"],
        ["show", SESSION, "-u", USER, "--json"],
    ):
        proc = sessionstore("--store", db_url, *args)
        assert proc.returncode == 0, proc.stderr
        _no_raw_controls(proc.stdout)
    missing = sessionstore("--store", db_url, "rm", "x\u202e\x9b", "-u", USER)
    assert missing.returncode == 1
    _no_raw_controls(missing.stderr)
