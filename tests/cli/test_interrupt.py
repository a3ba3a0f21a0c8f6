"""``export``, ``import`` and ``copy``: a progress bar on a terminal, and a clean stop on Ctrl-C.

The command runs in a subprocess whose stderr is a pseudo-terminal, so it
draws its bar as it would for a person. The test waits until the bar shows
sessions done, sends SIGINT, and then checks the message, the exit code 130,
that every session written is whole, and that the same command run again
finishes the job.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sessionstore import SessionStore
from sessionstore.backend_steps import SESSIONS_AT_ONCE
from tests.cli.conftest import RunCli, on_store
from tests.sample_sessions import snapshot

COUNT = 3000  # enough that a run lasts seconds, well past the bar's first refresh
USERS = (None, "alice", "bob")
# Cursor moves, colours and the like that a terminal acts on; what is left is the text.
ESCAPES = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\r")


class Terminal:
    """A command line running with its stderr on a pseudo-terminal."""

    def __init__(self, *args: str) -> None:
        controller, terminal = pty.openpty()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sessionstore.cli", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=terminal,
            env={**os.environ, "COLUMNS": "120", "TERM": "xterm", "PYTHONIOENCODING": "utf-8"},
        )
        os.close(terminal)
        self._controller = controller
        self._raw = b""

    @property
    def text(self) -> str:
        """What the terminal shows so far, without its control sequences."""
        return ESCAPES.sub("", self._raw.decode("utf-8", "replace"))

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self._controller], [], [], timeout)
        if not ready:
            return False
        try:
            chunk = os.read(self._controller, 65536)
        except OSError:  # EIO: the command closed its end
            return False
        self._raw += chunk
        return bool(chunk)

    def wait_for(self, pattern: str, timeout: float = 120) -> re.Match[str]:
        """Read until the text matches ``pattern``; fail if the command ends first."""
        deadline = time.monotonic() + timeout
        while (found := re.search(pattern, self.text)) is None:
            left = deadline - time.monotonic()
            assert left > 0, f"no {pattern!r} in {self.text!r}"
            assert self._read(left), f"ended without {pattern!r}: {self.text!r}"
        return found

    def finish(self) -> tuple[int, str]:
        """Read to the end; return the exit code and everything shown."""
        while self._read(120):
            pass
        code = self.proc.wait(timeout=120)
        os.close(self._controller)
        return code, self.text

    def interrupt_once_done(self, verb: str) -> tuple[int, str]:
        """Send SIGINT once the bar shows sessions done; return how the command ended."""
        self.wait_for(rf"{verb} sessions.*\b[1-9][0-9]*/{COUNT}\b")
        self.proc.send_signal(signal.SIGINT)
        return self.finish()


def _dumps() -> list[dict[str, Any]]:
    async def one(store: SessionStore) -> dict[str, Any]:
        await store.create_qa_entry("base", None, "question " * 20, "answer " * 50, "context")
        await store.create_qa_entry("base", None, "q2", "a2")
        (dump,) = [dump async for dump in store.export_sessions()]
        return dump

    base = on_store("memory://", one)
    return [
        {**base, "session_id": f"s{n:05d}", "user_id": USERS[n % len(USERS)]} for n in range(COUNT)
    ]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """An export of COUNT sessions, and a SQLite store holding them."""
    where = tmp_path_factory.mktemp("source")
    dumps = _dumps()
    export = where / "sessions.jsonl"
    export.write_text("".join(json.dumps(dump) + "\n" for dump in dumps), encoding="utf-8")
    url = f"sqlite:///{where / 'source.db'}"
    assert on_store(url, lambda store: store.import_sessions(dumps)) == COUNT
    return export, url


def _done(message: str, verb: str) -> int:
    found = re.search(rf"interrupted: {verb} (\d+) of {COUNT} sessions", message)
    assert found, message
    return int(found.group(1))


def _assert_clean_stop(code: int, shown: str) -> None:
    assert code == 130, shown
    assert "Traceback" not in shown
    assert "run the same command again" in " ".join(shown.split())


def _assert_whole(target: str, source: str, done: int) -> None:
    """Each session in ``target`` is exactly the source's; the batch in flight may be there too."""
    copied = on_store(target, snapshot)
    assert done <= len(copied) <= done + SESSIONS_AT_ONCE
    expected = on_store(source, snapshot)
    for key, dump in copied.items():
        assert dump == expected[key], key


def test_ctrl_c_stops_an_import_which_the_same_command_finishes(
    source: tuple[Path, str], tmp_path: Path, sessionstore: RunCli
) -> None:
    export, source_url = source
    target = f"sqlite:///{tmp_path / 'target.db'}"
    code, shown = Terminal("--store", target, "import", str(export)).interrupt_once_done(
        "importing"
    )
    _assert_clean_stop(code, shown)
    done = _done(shown, "imported")
    assert done < COUNT
    assert "never half written" in shown
    _assert_whole(target, source_url, done)

    again = sessionstore("--store", target, "import", str(export))
    assert again.returncode == 0, again.stderr
    assert again.stderr == f"Imported {COUNT} sessions.\n"  # no bar: stderr is a pipe
    assert on_store(target, snapshot) == on_store(source_url, snapshot)


def test_ctrl_c_stops_a_copy_which_the_same_command_finishes(
    source: tuple[Path, str], tmp_path: Path, sessionstore: RunCli
) -> None:
    _, source_url = source
    target = f"file://{tmp_path / 'files'}"
    code, shown = Terminal("copy", "--from", source_url, "--to", target).interrupt_once_done(
        "copying"
    )
    _assert_clean_stop(code, shown)
    done = _done(shown, "copied")
    assert done < COUNT
    _assert_whole(target, source_url, done)

    again = sessionstore("copy", "--from", source_url, "--to", target)
    assert again.returncode == 0, again.stderr
    assert f"Copied {COUNT} sessions" in again.stderr
    assert on_store(target, snapshot) == on_store(source_url, snapshot)


def test_ctrl_c_stops_an_export_which_leaves_no_file(
    source: tuple[Path, str], tmp_path: Path, sessionstore: RunCli
) -> None:
    _, source_url = source
    output = tmp_path / "out" / "all.jsonl"
    output.parent.mkdir()
    export = ("--store", source_url, "export", "-o", str(output))
    code, shown = Terminal(*export).interrupt_once_done("exporting")
    _assert_clean_stop(code, shown)
    assert _done(shown, "exported") < COUNT
    assert f"{output} is left as it was" in " ".join(shown.split())
    assert list(output.parent.iterdir()) == []

    again = sessionstore(*export)
    assert again.returncode == 0, again.stderr
    lines = output.read_text(encoding="utf-8").splitlines()
    assert sorted(json.loads(line)["session_id"] for line in lines) == [
        f"s{n:05d}" for n in range(COUNT)
    ]


def test_the_bar_shows_the_total_the_rate_and_the_time_left(
    source: tuple[Path, str], tmp_path: Path
) -> None:
    _, source_url = source
    output = tmp_path / "all.jsonl"
    code, shown = Terminal("--store", source_url, "export", "-o", str(output)).finish()
    assert code == 0, shown
    assert re.search(rf"exporting sessions.*\b{COUNT}/{COUNT}\b.*[0-9,]+/s.*0:00:00", shown), shown
    assert f"Exported {COUNT} sessions to {output}." in shown
