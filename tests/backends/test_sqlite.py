"""What only the SQLite backend has: processes, crashes, its file and schema."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sessionstore import (
    InvalidParameterError,
    SessionState,
    SessionTraceStep,
    StoreError,
    open_store,
)
from sessionstore.backends.sqlite import SQLiteStore, schema
from sessionstore.backends.sqlite import statements as sql
from sessionstore.backends.sqlite.schema import MIGRATIONS, SCHEMA_VERSION
from sessionstore.clock import to_micros
from sessionstore.stored import trace_to_json
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
        "item_id": "x",
        "trace_id": "t",
        "seq": 1,
        "key": "k",
        "kind": "user",
        "name": "u",
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
        "trace id taken": sql.TRACE_ID_TAKEN,
        "graph": sql.LIVE_GRAPH_CONTEXT,
        "session row": sql.SESSION_FOR_WRITE,
        "next seq": sql.NEXT_SEQ,
        "delete entry": sql.DELETE_ENTRY,
        "expired": sql.EXPIRED_SESSIONS,
        "latest items": sql.LATEST_ITEMS,
        "count items": sql.COUNT_ITEMS,
        "newest item": sql.NEWEST_ITEM,
        "delete item at": sql.DELETE_ITEM_AT,
        "delete item": sql.DELETE_ITEM,
        "clear items": sql.CLEAR_ITEMS,
        "snapshot items": sql.SNAPSHOT_ITEMS,
        "state": sql.LIVE_STATE,
        "scoped state": sql.SCOPED_STATE,
        "scoped row": sql.SCOPED_FOR_WRITE,
        **{
            f"{owner} {name}": statement
            for owner, statements in (
                ("state", sql.SESSION_STATE_VALUES),
                ("scoped", sql.SCOPED_STATE_VALUES),
            )
            for name, statement in (
                ("value", statements.value),
                ("delete value", statements.delete_value),
                ("all values", statements.all_values),
            )
        },
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
        await store.append_items("s", "u", [{"role": "user"}], state={"k": 1})
        await store.update_user_state("u", {"k": 1})


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


# -- the item log and state ---------------------------------------------------------


def _database_before_items(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``path`` at the schema version before the item log, with one session in it."""
    previous = schema.MIGRATIONS.index(schema.ITEMS_AND_STATE)
    with monkeypatch.context() as patch:
        patch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:previous])
        patch.setattr(schema, "SCHEMA_VERSION", previous)
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            schema.migrate(conn, str(path))
            conn.execute("BEGIN")
            conn.execute(
                "INSERT INTO sessions (user_key, session_id, created_us, updated_us,"
                " expires_us, next_seq, qa_count, trace_count, has_graph)"
                " VALUES ('u', 's', 1000, 2000, NULL, 3, 1, 1, 1)"
            )
            conn.execute(
                "INSERT INTO entries (user_key, session_id, seq, id, created_us, question, answer)"
                " VALUES ('u', 's', 1, ?, 1000, 'old question', 'old answer')",
                (OLD_ENTRY,),
            )
            conn.execute(
                "INSERT INTO trace_steps (user_key, session_id, seq, body) VALUES ('u', 's', 2, ?)",
                (
                    '{"trace_id":"t1","origin_function":"f","status":"ok",'
                    '"created_at":"1970-01-01T00:00:00.002000+00:00"}',
                ),
            )
            conn.execute("INSERT INTO graph_contexts VALUES ('u', 's', 'old graph')")
            conn.execute("COMMIT")
            assert conn.execute("SELECT version FROM sessionstore_schema").fetchall() == [
                (previous,)
            ]
        finally:
            conn.close()


OLD_ENTRY = "00000000-0000-4000-8000-000000000001"


async def test_a_database_from_before_the_item_log_upgrades_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.db"
    _database_before_items(path, monkeypatch)
    async with open_store(f"sqlite:///{path}") as store:
        assert [e.id for e in await store.get_all_qa_entries("s", "u")] == [OLD_ENTRY]
        assert [t.trace_id for t in await store.read_trace_steps("s", "u")] == ["t1"]
        assert await store.get_graph_context("s", "u") == "old graph"
        [info] = (await store.list_sessions("u")).items
        assert (info.qa_count, info.item_count) == (1, 0)
        assert await store.get_items("s", "u") == []
        assert (await store.get_state("s", "u")).revision == 0

        ids = await store.append_items("s", "u", [{"role": "user"}, [1.0, -0.0]], state={"a": 1})
        assert [i.data for i in await store.get_items("s", "u")] == [{"role": "user"}, [1.0, -0.0]]
        assert [i.id for i in await store.get_items("s", "u")] == ids
        assert await store.get_state("s", "u") == SessionState(data={"a": 1}, revision=1)
        assert (await store.list_sessions("u")).items[0].item_count == 2
        new_entry = await store.create_qa_entry("s", "u", "new", "a")
        assert [e.id for e in await store.get_all_qa_entries("s", "u")] == [OLD_ENTRY, new_entry]
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM sessionstore_schema").fetchall() == [
            (SCHEMA_VERSION,)
        ]
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


async def test_items_and_state_are_rows_a_person_can_read(tmp_path: Path) -> None:
    path = tmp_path / "rows.db"
    async with open_store(f"sqlite:///{path}") as store:
        first, second = await store.append_items(
            "s", None, [{"b": 1, "a": [2**64 + 1, "\x00😀"]}, "text"], state={"mode": "chat"}
        )
        await store.update_app_state("my-app", {"flag": True})
        await store.update_user_state(None, {"theme": "dark"})
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT id, data FROM items WHERE user_key = '' AND session_id = 's' ORDER BY seq"
        ).fetchall()
        assert rows == [
            (first, '{"b":1,"a":[18446744073709551617,"\\u0000😀"]}'),
            (second, '"text"'),
        ]
        assert json.loads(rows[0][1]) == {"b": 1, "a": [2**64 + 1, "\x00😀"]}
        assert conn.execute("SELECT key, value FROM state_values").fetchall() == [
            ("mode", '"chat"')
        ]
        assert conn.execute(
            "SELECT item_count, state_revision FROM sessions WHERE user_key = ''"
        ).fetchall() == [(2, 1)]
        assert sorted(conn.execute("SELECT kind, name, key, value FROM scoped_values")) == [
            ("app", "my-app", "flag", "true"),
            ("user", "", "theme", '"dark"'),
        ]


async def test_the_state_size_kept_in_the_session_row_stays_exact(tmp_path: Path) -> None:
    """An update reads only the keys it changes; the size of the rest is in the session row."""
    path = tmp_path / "size.db"
    async with open_store(f"sqlite:///{path}", max_field_bytes=1000) as store:
        await store.update_state("s", "u", {f"k{i}": "x" * 90 for i in range(10)})
        with pytest.raises(InvalidParameterError, match="max_field_bytes"):
            await store.append_items("s", "u", [1], state={"k10": "x" * 90})
        await store.append_items("s", "u", [1], state={"k0": None, "k10": "x" * 90})
        state = await store.get_state("s", "u")
        assert sorted(state.data) == sorted(f"k{i}" for i in range(1, 11))
        assert state.revision == 2
    with sqlite3.connect(path) as conn:
        stored = conn.execute("SELECT state_bytes FROM sessions").fetchone()[0]
        assert stored == sum(
            len(k) + len(v) for k, v in conn.execute("SELECT key, value FROM state_values")
        )


# -- trace ids, unique within their session since schema version 2 -------------------

# Written before trace ids were unique: "dup" and "t1" twice, ids with NUL and
# with what ends an id in a stored step.
LEGACY_TRACE_IDS = ["t1", "dup", "a\x00b", "a\x00c", "dup", 'x","origin_function":"y', "t1"]
LEGACY_TIME = datetime(2024, 1, 1, tzinfo=UTC)


def legacy_steps() -> list[SessionTraceStep]:
    """The trace steps of session ("s", "u") in a database made at schema version 1."""
    return [
        SessionTraceStep(
            trace_id=trace_id, origin_function=f"f{n}", status="ok", created_at=LEGACY_TIME
        )
        for n, trace_id in enumerate(LEGACY_TRACE_IDS)
    ]


def _version_1_database(path: Path) -> None:
    """Make a database at schema version 1 (its one step) holding ``legacy_steps()``."""
    steps = legacy_steps()
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(MIGRATIONS[0])
        conn.execute("CREATE TABLE sessionstore_schema (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO sessionstore_schema VALUES (1)")
        now = to_micros(LEGACY_TIME)
        conn.execute(
            "INSERT INTO sessions VALUES ('u', 's', ?, ?, NULL, ?, 0, ?, 0)",
            (now, now, len(steps) + 1, len(steps)),
        )
        conn.executemany(
            "INSERT INTO trace_steps (user_key, session_id, seq, body) VALUES ('u', 's', ?, ?)",
            [(seq, trace_to_json(step)) for seq, step in enumerate(steps, start=1)],
        )
        conn.commit()


async def test_a_version_1_database_gets_unique_trace_ids_and_keeps_every_step(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v1.db"
    _version_1_database(path)
    async with open_store(f"sqlite:///{path}") as store:
        assert await store.read_trace_steps("s", "u") == legacy_steps()
        for trace_id in set(LEGACY_TRACE_IDS):
            step = SessionTraceStep(trace_id=trace_id, origin_function="g", status="ok")
            with pytest.raises(InvalidParameterError):
                await store.save_trace_step("s", "u", step)
        await store.save_trace_step(
            "s", "u", SessionTraceStep(trace_id="new", origin_function="g", status="ok")
        )
        (dump,) = [d async for d in store.export_sessions()]
        assert [t["trace_id"] for t in dump["trace_steps"]] == [*LEGACY_TRACE_IDS, "new"]
        # Such a session exports as it is; its dump repeats ids, so import refuses it.
        with pytest.raises(InvalidParameterError, match="appears twice"):
            await store.import_sessions([dump])
        # The item log and state of later versions work on the upgraded session.
        ids = await store.append_items("s", "u", [{"role": "user"}, 1.0], state={"a": 1})
        assert [(i.id, i.data) for i in await store.get_items("s", "u")] == list(
            zip(ids, [{"role": "user"}, 1.0], strict=True)
        )
        assert await store.get_state("s", "u") == SessionState(data={"a": 1}, revision=1)
        [info] = (await store.list_sessions("u")).items
        assert (info.qa_count, info.item_count) == (0, 2)
        assert len(await store.read_trace_steps("s", "u")) == len(LEGACY_TRACE_IDS) + 1
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT version FROM sessionstore_schema").fetchall() == [
            (SCHEMA_VERSION,)
        ]
        column = [row[0] for row in conn.execute("SELECT trace_id FROM trace_steps ORDER BY seq")]
    # The later copies of a repeated id keep no id of their own in the index.
    assert column == ["t1", "dup", "a\x00b", "a\x00c", None, 'x","origin_function":"y', None, "new"]


async def test_a_repeated_trace_id_is_refused_by_the_index_itself(tmp_path: Path) -> None:
    # The store checks first; the UNIQUE index is what no writer can get past.
    path = tmp_path / "index.db"
    async with open_store(f"sqlite:///{path}") as store:
        await store.save_trace_step(
            "s", "u", SessionTraceStep(trace_id="t", origin_function="f", status="ok")
        )
    with closing(sqlite3.connect(path)) as conn, pytest.raises(sqlite3.IntegrityError):
        conn.execute(
            "INSERT INTO trace_steps (user_key, session_id, seq, trace_id, body)"
            " VALUES ('u', 's', 99, 't', '{}')"
        )


async def test_file_passes_integrity_check_after_sigkill_during_item_writes(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'items.db'}"
    writer = await Writer.start(url, "shared", "w", 0, items=True)
    acknowledged = [(await writer.line()).split(",") for _ in range(30)]
    acknowledged += [line.split(",") for line in await writer.kill()]
    async with open_store(url) as store:
        ids = [i.id for i in await store.get_items("shared", USER)]
        assert len(ids) == await store.count_items("shared", USER)
    assert len(ids) % 3 == 0  # whole groups only
    assert {i for group in acknowledged for i in group} <= set(ids)
    with sqlite3.connect(tmp_path / "items.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
