"""What only the SQLite backend has: processes, crashes, its file and schema."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from pathlib import Path

import pytest

from sessionstore import InvalidParameterError, StoreError, open_store
from sessionstore.backends.sqlite import SQLiteStore
from sessionstore.backends.sqlite import statements as sql
from sessionstore.backends.sqlite.schema import SCHEMA_VERSION
from tests.writer_process import USER, Writer


async def test_file_passes_integrity_check_after_sigkill(tmp_path: Path) -> None:
    # Nothing lost is a contract test (tests/contract/test_processes.py); here
    # the SQLite file itself must stay sound when a writer dies mid-transaction.
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    writer = await Writer.start(url, "shared", "w", 0, size=64 * 1024)
    acknowledged = [await writer.line() for _ in range(50)]
    acknowledged += await writer.kill()
    async with open_store(url) as store:
        stored = {e.id for e in await store.get_all_qa_entries("shared", USER)}
        assert set(acknowledged) <= stored
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
    """The statements every call sends (as the backend sends them) walk an index."""
    path = tmp_path / "plan.db"
    asyncio.run(_create(path))
    params = {
        "user_key": "u",
        "session_id": "s",
        "now": 0,
        "qa_id": "x",
        "limit": 10,
        "after_us": 0,
        "after_id": "s",
        "after_user_key": "",
        "after_session_id": "",
        "qa": 1,
        "traces": 0,
        "expires_us": None,
    }
    queries = {
        "latest": sql.LATEST_ENTRIES,
        "by id": sql.ONE_ENTRY,
        "exists": sql.ENTRY_EXISTS,
        "latest id": sql.LATEST_ENTRY_ID,
        "count": sql.COUNT_ENTRIES,
        "list": sql.LIST_SESSIONS,
        "list after": sql.LIST_SESSIONS_AFTER,
        "keys": sql.SESSION_KEYS,
        "keys of user": sql.SESSION_KEYS_OF_USER,
        "traces": sql.LATEST_TRACES,
        "graph": sql.LIVE_GRAPH_CONTEXT,
        "session row": sql.SESSION_FOR_WRITE,
        "next seq": sql.NEXT_SEQ,
        "delete entry": sql.DELETE_ENTRY,
        "expired": sql.EXPIRED_SESSIONS,
    }
    with sqlite3.connect(path) as conn:
        for name, statement in queries.items():
            plan = " ".join(
                row[-1] for row in conn.execute("EXPLAIN QUERY PLAN " + statement, params)
            )
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
