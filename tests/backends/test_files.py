"""What only the ``file://`` backend has: its layout, names, repair and compaction."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sessionstore import (
    ConflictError,
    InvalidParameterError,
    SessionQAUpdate,
    SessionStore,
    SessionTraceStep,
    StoreError,
    open_store,
)
from sessionstore.backends.files import FileStore
from sessionstore.backends.files.layout import (
    decode_name,
    scope_dir_name,
    session_dir_name,
    user_dir_name,
)
from tests.writer_process import USER, Writer


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "root"


@pytest.fixture
async def store(root: Path) -> AsyncIterator[SessionStore]:
    async with open_store(f"file://{root}") as opened:
        yield opened


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def subdirectories(path: Path) -> list[str]:
    return [child.name for child in path.iterdir() if child.is_dir()]


def write_file(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# -- layout -------------------------------------------------------------------


async def test_layout_is_plain_json_a_person_can_read(store: SessionStore, root: Path) -> None:
    qa_id = await store.create_qa_entry("chat-1", "alice", "What is 2+2?", "4", "ctx")
    await store.create_qa_entry("chat-1", "alice", "And 3+3?", "6")
    await store.save_trace_step(
        "chat-1", "alice", SessionTraceStep(origin_function="search", status="ok")
    )
    await store.set_graph_context("chat-1", "alice", "A -> B")
    await store.create_qa_entry("chat-1", None, "anonymous?", "yes")

    session = root / "u-alice" / "s-chat-1"
    entries = lines(session / "entries.jsonl")
    assert [(e["op"], e["entry"]["question"]) for e in entries] == [
        ("add", "What is 2+2?"),
        ("add", "And 3+3?"),
    ]
    assert entries[0]["entry"]["id"] == qa_id
    assert entries[0]["n"] < entries[1]["n"]
    assert [t["origin_function"] for t in lines(session / "traces.jsonl")] == ["search"]
    assert json.loads((session / "graph.json").read_text()) == {"graph_context": "A -> B"}
    state = json.loads((session / "state.json").read_text())
    assert (state["session_id"], state["user_id"], state["qa_count"]) == ("chat-1", "alice", 2)
    anonymous = lines(root / "anonymous" / "s-chat-1" / "entries.jsonl")
    assert anonymous[0]["entry"]["question"] == "anonymous?"
    assert json.loads((root / "sessionstore.json").read_text())["layout"]


async def test_updates_and_deletes_are_appended_records(store: SessionStore, root: Path) -> None:
    first = await store.create_qa_entry("s", "u", "q1", "a1")
    second = await store.create_qa_entry("s", "u", "q2", "a2")
    path = root / "u-u" / "s-s" / "entries.jsonl"
    before = path.read_bytes()
    assert await store.update_qa_entry("s", "u", first, SessionQAUpdate(feedback_score=4))
    assert await store.delete_qa_entry("s", "u", second)
    after = path.read_bytes()
    assert after.startswith(before)
    ops = [(r["op"], r.get("id") or r["entry"]["id"]) for r in lines(path)]
    assert ops == [("add", first), ("add", second), ("update", first), ("delete", second)]
    assert lines(path)[2]["entry"]["feedback_score"] == 4
    assert [e.id for e in await store.get_all_qa_entries("s", "u")] == [first]


# -- names ----------------------------------------------------------------------


TRICKY = ["A", "a", "CON", "con", "..", ".", "a/b", "x.traces", "é", "e\u0301", "x.", "%41", "-"]


def test_names_are_safe_reversible_and_case_proof() -> None:
    names = [session_dir_name(i) for i in TRICKY]
    assert len({n.lower() for n in names}) == len(TRICKY)  # apart even ignoring case
    for original, name in zip(TRICKY, names, strict=True):
        assert name == name.lower()
        assert "/" not in name
        assert "\\" not in name
        assert name not in {".", ".."}
        assert not name.endswith((".", " "))
        assert name.lower() not in {"con", "prn", "aux", "nul"}
        assert decode_name(name) == original
    assert session_dir_name("CON") == "s-%43%4f%4e"
    assert user_dir_name(None) == "anonymous"
    assert user_dir_name("anonymous") != "anonymous"


def test_long_ids_get_hashed_names_within_255_bytes() -> None:
    emoji = "😀" * 256
    name = session_dir_name(emoji)
    assert name.startswith("sh-")
    assert len(name.encode()) <= 255
    assert session_dir_name("😀" * 255 + "😃") != name
    assert decode_name(name) is None  # the original id is kept in state.json
    assert len(user_dir_name("x" * 256).encode()) <= 255


async def test_tricky_ids_round_trip_through_the_store(store: SessionStore, root: Path) -> None:
    emoji = "😀" * 256
    for sid in [*TRICKY, emoji]:
        await store.create_qa_entry(sid, emoji, sid, "a")
    page = await store.list_sessions(emoji, limit=100)
    assert sorted(i.session_id for i in page.items) == sorted([*TRICKY, emoji])
    assert {i.user_id for i in page.items} == {emoji}
    for sid in ["A", "a", emoji]:
        assert [e.question for e in await store.get_all_qa_entries(sid, emoji)] == [sid]
    user_dirs = subdirectories(root)
    assert len(user_dirs) == 1
    assert user_dirs[0].startswith("uh-")
    state = json.loads((root / user_dirs[0] / session_dir_name(emoji) / "state.json").read_text())
    assert (state["session_id"], state["user_id"]) == (emoji, emoji)


# -- crashes and damage ----------------------------------------------------------


async def test_torn_tail_is_ignored_then_repaired(store: SessionStore, root: Path) -> None:
    ids = [await store.create_qa_entry("s", "u", f"q{i}", "a") for i in range(3)]
    await store.save_trace_step("s", "u", SessionTraceStep(origin_function="f", status="ok"))
    session = root / "u-u" / "s-s"
    torn = b'{"n":9,"op":"add","entry":{"id":"0000'
    with (session / "entries.jsonl").open("ab") as f:
        f.write(torn)
    with (session / "traces.jsonl").open("ab") as f:
        f.write(b'{"trace_id":"x","orig')

    assert [e.id for e in await store.get_all_qa_entries("s", "u")] == ids
    assert [e.id for e in await store.get_latest_qa_entries("s", "u", 2)] == ids[1:]
    assert await store.latest_qa_id("s", "u") == ids[-1]
    assert len(await store.read_trace_steps("s", "u", 5)) == 1

    new = await store.create_qa_entry("s", "u", "after the crash", "a")
    await store.save_trace_step("s", "u", SessionTraceStep(origin_function="g", status="ok"))
    assert [e.id for e in await store.get_all_qa_entries("s", "u")] == [*ids, new]
    assert [s.origin_function for s in await store.read_trace_steps("s", "u")] == ["f", "g"]
    assert len(lines(session / "entries.jsonl")) == 4  # every line is JSON again
    assert (session / "entries.jsonl.torn").read_bytes() == torn  # kept, not deleted


async def test_uncommitted_complete_line_is_invisible(store: SessionStore, root: Path) -> None:
    qa_id = await store.create_qa_entry("s", "u", "q", "a")
    ghost = {"n": 50, "op": "delete", "id": qa_id}
    with (root / "u-u" / "s-s" / "entries.jsonl").open("a") as f:
        f.write(json.dumps(ghost) + "\n")  # appended, then "crashed" before the commit
    assert await store.count_qa_entries("s", "u") == 1
    assert [e.id for e in await store.get_all_qa_entries("s", "u")] == [qa_id]
    await store.create_qa_entry("s", "u", "q2", "a")
    assert await store.count_qa_entries("s", "u") == 2
    assert await store.get_qa_entry("s", "u", qa_id) is not None


async def test_a_copied_store_reads_what_state_json_committed(
    store: SessionStore, root: Path, tmp_path: Path
) -> None:
    ids = [await store.create_qa_entry("s", "u", f"q{i}", "a") for i in range(2)]
    ghost = {"n": 9, "op": "delete", "id": ids[0]}
    with (root / "u-u" / "s-s" / "entries.jsonl").open("a") as f:
        f.write(json.dumps(ghost) + "\n")  # appended, then "crashed" before the commit
    copy = tmp_path / "restored"
    shutil.copytree(root, copy)  # a backup restored: the same bytes in files of other inodes
    async with open_store(f"file://{copy}") as restored:
        assert await restored.count_qa_entries("s", "u") == 2
        assert [e.id for e in await restored.get_all_qa_entries("s", "u")] == ids
        assert await restored.latest_qa_id("s", "u") == ids[-1]
        new = await restored.create_qa_entry("s", "u", "after the restore", "a")
        assert [e.id for e in await restored.get_all_qa_entries("s", "u")] == [*ids, new]
    torn = copy / "u-u" / "s-s" / "entries.jsonl.torn"
    assert json.loads(torn.read_text()) == ghost


async def test_corrupt_line_raises_and_is_never_changed(store: SessionStore, root: Path) -> None:
    for i in range(3):
        await store.create_qa_entry("s", "u", f"q{i}", "a")
    path = root / "u-u" / "s-s" / "entries.jsonl"
    data = path.read_bytes().split(b"\n")
    data[1] = b"this is not json" + b" " * (len(data[1]) - 16)  # same size: still committed
    damaged = b"\n".join(data)
    path.write_bytes(damaged)
    with pytest.raises(StoreError, match=r"entries\.jsonl is corrupt.*byte"):
        await store.get_all_qa_entries("s", "u")
    with pytest.raises(StoreError, match=r"entries\.jsonl"):
        await store.get_latest_qa_entries("s", "u", 3)
    assert path.read_bytes() == damaged


async def test_corrupt_state_names_the_file(store: SessionStore, root: Path) -> None:
    await store.create_qa_entry("s", "u", "q", "a")
    state = root / "u-u" / "s-s" / "state.json"
    state.write_text("{oops")
    for call in (
        store.count_qa_entries("s", "u"),
        store.create_qa_entry("s", "u", "q", "a"),
        store.list_sessions("u"),
    ):
        with pytest.raises(StoreError, match=r"state\.json"):
            await call
    assert state.read_text() == "{oops"
    assert (root / "u-u" / "s-s" / "entries.jsonl").exists()


# -- the trace id index ------------------------------------------------------------


def _step(trace_id: str, origin: str = "f") -> SessionTraceStep:
    return SessionTraceStep(trace_id=trace_id, origin_function=origin, status="ok")


async def test_trace_ids_are_indexed_line_for_line(store: SessionStore, root: Path) -> None:
    for trace_id in ("a", 'b\n"c"', "d\x00"):
        await store.save_trace_step("s", "u", _step(trace_id))
    session = root / "u-u" / "s-s"
    index = (session / "trace_ids.jsonl").read_text("utf-8").splitlines()
    assert [json.loads(line) for line in index] == ["a", 'b\n"c"', "d\x00"]
    state = json.loads((session / "state.json").read_text())
    assert state["trace_ids"]["lines"] == state["traces"]["lines"] == 3


async def test_an_index_a_version_without_it_left_behind_is_made_again(
    store: SessionStore, root: Path
) -> None:
    await store.save_trace_step("s", "u", _step("t1"))
    await store.save_trace_step("s", "u", _step("t2"))
    # A version without the index appends "t3": it keeps traces.jsonl and its
    # committed size, and drops the key it does not know from state.json.
    session = root / "u-u" / "s-s"
    with (session / "traces.jsonl").open("ab") as f:
        f.write(json.dumps({"trace_id": "t3", "origin_function": "old", "status": "ok"}).encode())
        f.write(b"\n")
    state = json.loads((session / "state.json").read_text())
    size = (session / "traces.jsonl").stat().st_size
    state["traces"].update(size=size, lines=3)
    del state["trace_ids"]
    (session / "state.json").write_text(json.dumps(state))

    for trace_id in ("t1", "t3"):
        with pytest.raises(InvalidParameterError):
            await store.save_trace_step("s", "u", _step(trace_id, "again"))
    await store.save_trace_step("s", "u", _step("t4"))
    index = (session / "trace_ids.jsonl").read_text("utf-8").splitlines()
    assert [json.loads(line) for line in index] == ["t1", "t2", "t3", "t4"]
    assert not (session / "trace_ids.jsonl.torn").exists()  # an index is remade, not kept
    steps = await store.read_trace_steps("s", "u")
    assert [(s.trace_id, s.origin_function) for s in steps] == [
        ("t1", "f"),
        ("t2", "f"),
        ("t3", "old"),
        ("t4", "f"),
    ]


async def test_an_import_writes_the_index_of_its_steps(store: SessionStore, root: Path) -> None:
    await store.save_trace_step("s", "u", _step("before"))
    (dump,) = [d async for d in store.export_sessions()]
    dump["trace_steps"] = [dict(dump["trace_steps"][0], trace_id=t) for t in ("x", "y")]
    await store.import_sessions([dump])
    index = (root / "u-u" / "s-s" / "trace_ids.jsonl").read_text("utf-8").splitlines()
    assert [json.loads(line) for line in index] == ["x", "y"]
    await store.save_trace_step("s", "u", _step("before"))
    with pytest.raises(InvalidParameterError):
        await store.save_trace_step("s", "u", _step("y"))


# -- compaction ----------------------------------------------------------------


async def test_compaction_keeps_live_entries_only(store: SessionStore, root: Path) -> None:
    ids = [await store.create_qa_entry("s", "u", f"q{i}", "a") for i in range(100)]
    for qa_id in ids[:80]:
        assert await store.delete_qa_entry("s", "u", qa_id)
    for qa_id in ids[80:]:
        assert await store.update_qa_entry("s", "u", qa_id, SessionQAUpdate(answer="new"))
    path = root / "u-u" / "s-s" / "entries.jsonl"
    records = lines(path)
    assert len(records) < 100  # the dead lines were dropped
    entries = await store.get_all_qa_entries("s", "u")
    assert [e.id for e in entries] == ids[80:]
    assert {e.answer for e in entries} == {"new"}
    adds = [r["n"] for r in records if r["op"] == "add"]
    assert adds == sorted(adds)
    assert not (path.parent / "entries.jsonl.tmp").exists()
    assert not (path.parent / "entries.jsonl.next").exists()
    newest = await store.create_qa_entry("s", "u", "later", "a")
    assert await store.latest_qa_id("s", "u") == newest
    assert await store.count_qa_entries("s", "u") == 21


async def test_compaction_under_concurrent_readers(root: Path) -> None:
    writer = open_store(f"file://{root}")
    reader = open_store(f"file://{root}")
    async with writer, reader:
        keep = [await writer.create_qa_entry("s", "u", f"keep{i}", "a") for i in range(5)]
        doomed = [await writer.create_qa_entry("s", "u", f"x{i}", "a") for i in range(150)]
        done = asyncio.Event()
        seen: list[int] = []

        async def read() -> None:
            while not done.is_set():
                entries = await reader.get_all_qa_entries("s", "u")
                ids = [e.id for e in entries]
                assert ids[:5] == keep
                assert ids[5:] == [i for i in doomed if i in set(ids[5:])]  # order kept
                latest = await reader.get_latest_qa_entries("s", "u", 3)
                assert len(latest) == 3
                seen.append(len(ids))

        async def delete() -> None:
            for qa_id in doomed:
                assert await writer.delete_qa_entry("s", "u", qa_id)
            done.set()

        await asyncio.gather(delete(), read(), read())
        assert [e.id for e in await reader.get_all_qa_entries("s", "u")] == keep
    assert len(seen) > 2
    assert len(lines(root / "u-u" / "s-s" / "entries.jsonl")) < 100


# -- reading the tail only --------------------------------------------------------


async def test_latest_reads_only_the_tail(
    store: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer = "x" * 1000
    for i in range(2000):
        await store.create_qa_entry("long", "u", f"q{i}", answer)
    real_pread = os.pread
    read: list[int] = []

    def counting(fd: int, size: int, offset: int) -> bytes:
        data = real_pread(fd, size, offset)
        read.append(len(data))
        return data

    monkeypatch.setattr(os, "pread", counting)
    latest = await store.get_latest_qa_entries("long", "u", 10)
    assert [e.question for e in latest] == [f"q{i}" for i in range(1990, 2000)]
    assert await store.latest_qa_id("long", "u") == latest[-1].id
    assert sum(read) <= 2 * 64 * 1024  # of a file over 2 MB


# -- options, errors, prune, expiry -------------------------------------------------


def test_url_forms_and_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = open_store("file://data/sessions?durability=fsync&ttl=5")
    assert isinstance(relative, FileStore)
    assert relative.root == tmp_path / "data" / "sessions"
    assert (relative.durability, relative.ttl) == ("fsync", 5.0)
    absolute = open_store(f"file://{tmp_path}/abs%20dir")
    assert isinstance(absolute, FileStore)
    assert absolute.root == tmp_path / "abs dir"
    assert absolute.durability == "flush"
    assert absolute.describe() == f"file://{tmp_path}/abs dir"
    with pytest.raises(InvalidParameterError, match="durability"):
        open_store("file:///tmp/x", durability="sometimes")
    with pytest.raises(InvalidParameterError, match="directory"):
        open_store("file://")
    with pytest.raises(InvalidParameterError, match="valid options"):
        open_store("file:///tmp/x?colour=blue")


async def test_fsync_durability_round_trips(root: Path) -> None:
    async with open_store(f"file://{root}", durability="fsync") as store:
        qa_id = await store.create_qa_entry("s", "u", "q", "a")
        await store.set_graph_context("s", "u", "g")
        assert await store.update_qa_entry("s", "u", qa_id, SessionQAUpdate(answer="b"))
        assert (await store.get_qa_entry("s", "u", qa_id)).answer == "b"  # type: ignore[union-attr]


async def test_root_that_cannot_be_written_names_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    under_a_file = blocker / "root"
    if os.geteuid() == 0:
        read_only = Path("/sys/sessionstore-test-root")  # even root cannot write sysfs
    else:
        read_only = tmp_path / "read-only"
        read_only.mkdir(mode=0o555)
    for path in (under_a_file, read_only):
        store = open_store(f"file://{path}")
        with pytest.raises(StoreError, match=re.escape(str(path))):
            await store.create_qa_entry("s", "u", "q", "a")
        await store.close()


async def test_other_layout_marker_is_refused(root: Path) -> None:
    write_file(root / "sessionstore.json", '{"layout": "something-else/9"}')
    store = open_store(f"file://{root}")
    with pytest.raises(StoreError, match=r"sessionstore\.json"):
        await store.open()
    await store.close()


async def test_prune_removes_only_what_the_store_made(store: SessionStore, root: Path) -> None:
    await store.create_qa_entry("s", "alice", "q", "a")
    await store.create_qa_entry("s", None, "q", "a")
    await store.create_qa_entry("t", "bob", "q", "a")
    (root / "notes.txt").write_text("mine")
    (root / "my-data").mkdir()
    (root / "u-bob" / "README").write_text("mine too")
    (root / "u-bob" / "s-t" / "scratch.txt").write_text("and this")
    await store.prune()
    assert (root / "notes.txt").read_text() == "mine"
    assert (root / "my-data").is_dir()
    assert (root / "u-bob" / "README").exists()
    assert sorted(p.name for p in (root / "u-bob" / "s-t").iterdir()) == ["scratch.txt"]
    assert not (root / "u-alice").exists()
    assert not (root / "anonymous").exists()
    assert (await store.list_sessions("bob")).items == []
    await store.create_qa_entry("t", "bob", "again", "a")
    assert await store.count_qa_entries("t", "bob") == 1


async def test_expired_sessions_are_removed_lazily(root: Path) -> None:
    async with open_store(f"file://{root}", ttl=0.3) as store:
        await store.create_qa_entry("read-later", "u", "q", "a")
        await store.create_qa_entry("never-read", "v", "q", "a")
        await asyncio.sleep(0.5)
        assert await store.count_qa_entries("read-later", "u") == 0
        assert not (root / "u-u" / "s-read-later").exists()  # removed by the read
        assert (root / "u-v" / "s-never-read").exists()
        for i in range(10):  # writes elsewhere sweep a few directories each
            await store.create_qa_entry(f"busy{i}", "w", "q", "a")
        assert not (root / "u-v" / "s-never-read").exists()


async def test_lines_stay_whole_and_numbered_after_sigkill(root: Path) -> None:
    # Nothing lost is a contract test (tests/contract/test_processes.py); here
    # the log itself: after writers die mid-append and the next writer repairs
    # the tail, every line parses and the record numbers only increase.
    url = f"file://{root}"
    for round_ in range(3):
        writer = await Writer.start(url, "shared", f"r{round_}", 0, size=300_000)
        for _ in range(5 + 3 * round_):
            await writer.line()
        await writer.kill()
        async with open_store(url) as store:
            await store.create_qa_entry("shared", USER, "after the kill", "a")
    entries_file = root / user_dir_name(USER) / session_dir_name("shared") / "entries.jsonl"
    numbers = [json.loads(line)["n"] for line in entries_file.read_bytes().splitlines()]
    assert numbers == sorted(set(numbers))
    assert len(numbers) >= 3 * 6


# -- the item log and state -----------------------------------------------------------


async def test_items_and_state_are_files_a_person_can_read(store: SessionStore, root: Path) -> None:
    first, second = await store.append_items(
        "chat-1", "alice", [{"role": "user", "content": "hi"}, [1.0, -0.0, 2**64 + 1]]
    )
    await store.update_state("chat-1", "alice", {"mode": "chat", "n": 1})
    assert await store.delete_item("chat-1", "alice", first)
    session = root / "u-alice" / "s-chat-1"
    records = lines(session / "items.jsonl")
    assert [(r["op"], r["id"]) for r in records] == [
        ("add", first),
        ("add", second),
        ("delete", first),
    ]
    assert records[0]["data"] == {"role": "user", "content": "hi"}
    assert records[1]["n"] > records[0]["n"]
    # The item's JSON text is in the line as the store made it.
    assert '"data":[1.0,-0.0,18446744073709551617]}' in (session / "items.jsonl").read_text()
    assert json.loads((session / "values.json").read_text()) == {"mode": "chat", "n": 1}
    state = json.loads((session / "state.json").read_text())
    assert state["format"] == "sessionstore.files.session/2"
    assert (state["item_count"], state["state_revision"]) == (1, 1)

    await store.update_user_state("alice", {"theme": "dark"})
    await store.update_app_state("my-app", {"flag": True})
    user_scope = json.loads((root / "scoped" / "u-alice" / "scope.json").read_text())
    assert user_scope == {
        "format": "sessionstore.files.scope/1",
        "kind": "user",
        "name": "alice",
        "revision": 1,
        "values": {"theme": "dark"},
    }
    app_scope = json.loads((root / "scoped" / "a-my-app" / "scope.json").read_text())
    assert (app_scope["kind"], app_scope["name"], app_scope["values"]) == (
        "app",
        "my-app",
        {"flag": True},
    )


async def test_a_session_without_items_keeps_the_older_state_format(
    store: SessionStore, root: Path
) -> None:
    # Versions before the item log read it; a session that uses items they would not.
    await store.create_qa_entry("s", "u", "q", "a")
    state = json.loads((root / "u-u" / "s-s" / "state.json").read_text())
    assert state["format"] == "sessionstore.files.session/1"
    assert "item_count" not in state
    await store.append_items("s", "u", [1])
    state = json.loads((root / "u-u" / "s-s" / "state.json").read_text())
    assert state["format"] == "sessionstore.files.session/2"


async def test_the_item_log_is_compacted_like_entries(store: SessionStore, root: Path) -> None:
    ids = await store.append_items("s", "u", [{"i": i} for i in range(100)])
    for item_id in ids[:60]:
        assert await store.delete_item("s", "u", item_id)
    popped = [await store.pop_item("s", "u") for _ in range(20)]
    assert [p.id for p in popped if p is not None] == ids[80:][::-1]
    path = root / "u-u" / "s-s" / "items.jsonl"
    records = lines(path)
    assert len(records) < 100  # dead lines were dropped
    assert [i.id for i in await store.get_items("s", "u")] == ids[60:80]
    adds = [r["n"] for r in records if r["op"] == "add"]
    assert adds == sorted(adds)
    assert not (path.parent / "items.jsonl.next").exists()
    assert await store.clear_items("s", "u")
    assert await store.count_items("s", "u") == 0
    assert not (root / "u-u" / "s-s").exists()  # the session held nothing else
    assert await store.append_items("s", "u", ["again"])
    assert [i.data for i in await store.get_items("s", "u")] == ["again"]


async def test_a_clear_is_a_record_until_compaction(store: SessionStore, root: Path) -> None:
    await store.create_qa_entry("s", "u", "q", "a")
    old = await store.append_items("s", "u", [1, 2])
    assert await store.clear_items("s", "u")
    new = await store.append_items("s", "u", [3])
    ops = [r["op"] for r in lines(root / "u-u" / "s-s" / "items.jsonl")]
    assert ops == ["add", "add", "clear", "add"]
    assert [i.id for i in await store.get_items("s", "u")] == new
    assert [i.id for i in await store.get_items("s", "u", 5)] == new
    assert not await store.delete_item("s", "u", old[0])  # found before the clear: gone
    assert await store.count_items("s", "u") == 1


async def test_latest_items_read_only_the_tail(
    store: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = "x" * 1000
    for i in range(20):
        await store.append_items(
            "long", "u", [{"i": 100 * i + j, "text": text} for j in range(100)]
        )
    real_pread = os.pread
    read: list[int] = []

    def counting(fd: int, size: int, offset: int) -> bytes:
        data = real_pread(fd, size, offset)
        read.append(len(data))
        return data

    monkeypatch.setattr(os, "pread", counting)
    latest = await store.get_items("long", "u", 20)
    assert [i.data["i"] for i in latest] == list(range(1980, 2000))
    popped = await store.pop_item("long", "u")
    assert popped is not None
    assert popped.data["i"] == 1999
    assert sum(read) <= 3 * 64 * 1024  # of a file over 2 MB


async def test_a_torn_item_line_is_set_aside(store: SessionStore, root: Path) -> None:
    ids = await store.append_items("s", "u", [1, 2])
    session = root / "u-u" / "s-s"
    torn = b'{"n":9,"op":"add","id":"0000'
    with (session / "items.jsonl").open("ab") as f:
        f.write(torn)
    assert [i.id for i in await store.get_items("s", "u")] == ids
    new = await store.append_items("s", "u", [3])
    assert [i.id for i in await store.get_items("s", "u")] == [*ids, *new]
    assert len(lines(session / "items.jsonl")) == 3
    assert (session / "items.jsonl.torn").read_bytes() == torn


async def test_a_refused_first_write_leaves_no_directory(store: SessionStore, root: Path) -> None:
    with pytest.raises(ConflictError):
        await store.append_items("s", "u", [1], expected_revision=3)
    with pytest.raises(ConflictError):
        await store.update_user_state("u", {"k": 1}, expected_revision=3)
    assert not (root / "u-u" / "s-s").exists()
    assert not (root / "scoped" / "u-u").exists()
    assert (await store.list_sessions("u")).items == []


async def test_long_app_names_get_hashed_scope_directories(store: SessionStore, root: Path) -> None:
    long_name = "😀" * 256
    await store.update_app_state(long_name, {"k": 1})
    await store.update_app_state("😀" * 255 + "😃", {"k": 2})
    [first, second] = sorted((root / "scoped").iterdir())
    assert first.name.startswith("ah-")
    assert second.name.startswith("ah-")
    assert (await store.get_app_state(long_name)).data == {"k": 1}
    # A scope file that names another scope (moved by hand) is refused, not read.
    scope = root / "scoped" / scope_dir_name("app", long_name) / "scope.json"
    other = root / "scoped" / scope_dir_name("app", "😀" * 255 + "😃") / "scope.json"
    scope.write_bytes(other.read_bytes())
    with pytest.raises(StoreError, match="not the app state"):
        await store.get_app_state(long_name)


async def test_prune_removes_user_and_app_states(store: SessionStore, root: Path) -> None:
    await store.update_user_state("alice", {"k": 1})
    await store.update_user_state(None, {"k": 1})
    await store.update_app_state("my-app", {"k": 1})
    (root / "scoped" / "notes.txt").write_text("mine")
    await store.prune()
    assert sorted(p.name for p in (root / "scoped").iterdir()) == ["notes.txt"]
    assert (await store.get_user_state("alice")).revision == 0
    assert (await store.get_app_state("my-app")).revision == 0


async def test_item_groups_stay_whole_after_sigkill(root: Path) -> None:
    url = f"file://{root}"
    writer = await Writer.start(url, "shared", "w", 0, items=True)
    acknowledged = [(await writer.line()).split(",") for _ in range(20)]
    acknowledged += [line.split(",") for line in await writer.kill()]
    async with open_store(url) as store:
        after = await store.append_items("shared", USER, ["after the kill"])
        items = await store.get_items("shared", USER)
    ids = [i.id for i in items]
    assert ids[-1:] == after
    position = {item_id: n for n, item_id in enumerate(ids)}
    for group in acknowledged:  # every acknowledged group is there, whole
        start = position[group[0]]
        assert [position[item_id] for item_id in group] == [start, start + 1, start + 2]
    assert len(ids) % 3 == 1  # groups whole: no torn group was adopted
    log = root / user_dir_name(USER) / session_dir_name("shared") / "items.jsonl"
    numbers = [json.loads(line)["n"] for line in log.read_bytes().splitlines()]
    assert numbers == sorted(set(numbers))
