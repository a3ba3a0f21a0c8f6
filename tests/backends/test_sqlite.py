"""What only the SQLite backend has: processes, crashes, its file and schema."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from sessionstore import InvalidParameterError, StoreError, open_store
from sessionstore.backends.sqlite import SQLiteStore
from sessionstore.backends.sqlite_schema import SCHEMA_VERSION

ROOT = Path(__file__).resolve().parents[2]


def _writer(url: str, tag: str, count: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.writer_process", url, "shared", tag, str(count)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )


async def test_four_processes_appending_lose_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'multi.db'}"
    writers = [_writer(url, f"p{n}", 150) for n in range(4)]
    outputs = [w.communicate(timeout=120)[0].split() for w in writers]
    assert [w.returncode for w in writers] == [0, 0, 0, 0]
    async with open_store(url) as store:
        entries = await store.get_all_qa_entries("shared", "writer")
        assert len(entries) == 600
        assert await store.count_qa_entries("shared", "writer") == 600
        assert {e.id for e in entries} == {qa_id for out in outputs for qa_id in out}
        for n in range(4):
            mine = [
                int(e.question.split(":")[1]) for e in entries if e.question.startswith(f"p{n}:")
            ]
            assert mine == list(range(150))


async def test_sigkill_loses_no_acknowledged_write(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    writer = _writer(url, "w", 0)
    assert writer.stdout is not None
    acknowledged = []
    while len(acknowledged) < 300:
        line = await asyncio.to_thread(writer.stdout.readline)
        assert line, "the writer stopped before it was killed"
        acknowledged.append(line.strip())
    writer.send_signal(signal.SIGKILL)
    rest = writer.communicate(timeout=30)[0].split()
    acknowledged += rest
    assert writer.returncode == -signal.SIGKILL
    async with open_store(url) as store:
        stored = {e.id for e in await store.get_all_qa_entries("shared", "writer")}
        assert set(acknowledged) <= stored
        assert await store.count_qa_entries("shared", "writer") == len(stored)
        new_id = await store.create_qa_entry("shared", "writer", "after crash", "a")
        assert await store.latest_qa_id("shared", "writer") == new_id
    with sqlite3.connect(tmp_path / "crash.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


async def test_wal_and_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    async with open_store(f"sqlite:///{path}") as store:
        await store.create_qa_entry("s", None, "q", "a")
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("SELECT version FROM sessionstore_schema").fetchall() == [
            (SCHEMA_VERSION,)
        ]


async def test_newer_schema_is_refused_with_an_explanation(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    async with open_store(f"sqlite:///{path}"):
        pass
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE sessionstore_schema SET version = ?", (SCHEMA_VERSION + 1,))
    store = open_store(f"sqlite:///{path}")
    with pytest.raises(StoreError, match="upgrade sessionstore"):
        await store.open()
    await store.close()


async def test_reopening_migrates_nothing_twice(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'twice.db'}"
    async with open_store(url) as store:
        qa_id = await store.create_qa_entry("s", "u", "q", "a")
    async with open_store(url) as store:
        assert await store.get_qa_entry("s", "u", qa_id) is not None


async def test_concurrent_first_opens_migrate_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'race.db'}"
    stores = [open_store(url) for _ in range(6)]
    await asyncio.gather(*(s.create_qa_entry("s", "u", f"q{i}", "a") for i, s in enumerate(stores)))
    for store in stores:
        await store.close()
    async with open_store(url) as store:
        assert await store.count_qa_entries("s", "u") == 6


async def test_corrupt_file_raises_store_error_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not a database, just text " * 100)
    store = open_store(f"sqlite:///{path}")
    with pytest.raises(StoreError, match=r"garbage\.db"):
        await store.count_qa_entries("s", "u")
    await store.close()
    assert path.read_bytes().startswith(b"this is not a database")


async def test_unwritable_location_raises_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    store = open_store(f"sqlite:///{blocker / 'sub' / 'db.sqlite'}")
    with pytest.raises(StoreError, match="sub"):
        await store.open()
    await store.close()


def test_query_plans_use_indexes(tmp_path: Path) -> None:
    path = tmp_path / "plan.db"
    asyncio.run(_create(path))
    now = 0
    queries = {
        "latest": (
            "SELECT id FROM entries WHERE user_key = ? AND session_id = ?"
            " ORDER BY seq DESC LIMIT 10",
            ("u", "s"),
        ),
        "by id": (
            "SELECT 1 FROM entries WHERE user_key = ? AND session_id = ? AND id = ?",
            ("u", "s", "x"),
        ),
        "count": (
            "SELECT qa_count FROM sessions WHERE user_key = ? AND session_id = ?",
            ("u", "s"),
        ),
        "list": (
            "SELECT session_id FROM sessions WHERE user_key = ?"
            " AND (expires_us IS NULL OR expires_us > ?)"
            " ORDER BY updated_us DESC, session_id ASC LIMIT 50",
            ("u", now),
        ),
        "expired": ("SELECT user_key FROM sessions WHERE expires_us <= ? LIMIT 100", (now,)),
    }
    with sqlite3.connect(path) as conn:
        for name, (sql, args) in queries.items():
            plan = " ".join(row[-1] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, args))
            assert "SCAN" not in plan.replace("SCAN CONSTANT", ""), (name, plan)
            assert "TEMP B-TREE" not in plan, (name, plan)


async def _create(path: Path) -> None:
    async with open_store(f"sqlite:///{path}") as store:
        await store.create_qa_entry("s", "u", "q", "a")


def test_url_forms(tmp_path: Path) -> None:
    relative = open_store("sqlite:///data/x.db")
    assert isinstance(relative, SQLiteStore)
    assert relative.path == Path("data/x.db")
    absolute = open_store("sqlite:////tmp/abs.db?busy_timeout=1.5&synchronous=FULL&ttl=60")
    assert isinstance(absolute, SQLiteStore)
    assert absolute.path == Path("/tmp/abs.db")
    assert absolute.ttl == 60
    with pytest.raises(InvalidParameterError, match=r"sqlite:///"):
        open_store("sqlite://")
    with pytest.raises(InvalidParameterError, match="synchronous"):
        open_store("sqlite:///x.db?synchronous=sometimes")
    with pytest.raises(InvalidParameterError, match="busy_timeout"):
        open_store("sqlite:///x.db?busy_timeout=soon")


async def test_default_store_is_created_in_the_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SESSIONSTORE_URL", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    store = open_store()
    assert isinstance(store, SQLiteStore)
    async with store:
        await store.create_qa_entry("s", None, "q", "a")
    expected = tmp_path / "xdg" / "sessionstore" / "sessions.db"
    if sys.platform.startswith("linux"):
        assert store.path == expected
        assert expected.exists()


async def test_sessionstore_url_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSIONSTORE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    store = open_store()
    assert isinstance(store, SQLiteStore)
    assert store.path == tmp_path / "env.db"
    monkeypatch.setenv("SESSIONSTORE_URL", "memory://")
    assert not isinstance(open_store(), SQLiteStore)


def test_event_loop_stays_free_while_sqlite_waits(tmp_path: Path) -> None:
    """A writer blocked on another process's lock must not block other tasks."""
    path = tmp_path / "locked.db"
    asyncio.run(_create(path))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")

    async def scenario() -> int:
        ticks = 0
        store = open_store(f"sqlite:///{path}?busy_timeout=1")
        await store.open()
        blocked = asyncio.create_task(store.create_qa_entry("s", "u", "q", "a"))
        while not blocked.done():
            ticks += 1
            await asyncio.sleep(0.01)
        with pytest.raises(StoreError, match="locked"):
            blocked.result()
        await store.close()
        return ticks

    try:
        ticks = asyncio.run(scenario())
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert ticks > 20
    assert path.exists()
