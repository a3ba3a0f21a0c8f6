"""What crashes, attackers and unlucky operators do to a ``file://`` root.

- **Crashes.** A child process runs one write and is killed (``os._exit``)
  before each change it makes to the file system, and in the middle of each
  ``write``: every crash point of every kind of write that changes several
  files. Every read must then agree with the state before the write or the
  state after it, and the next write must carry on from that one.
- **Symbolic links** planted inside the root, at every level the backend
  opens, are never followed: the calls that need them raise ``StoreError``
  naming the link, and nothing outside the root changes, prune included.

The crash children are forked by one helper process (this module run as
``python -m tests.backends.test_files_hostile``), which imports the library
once, so a crash point costs milliseconds rather than an interpreter start.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import select
import shutil
import subprocess
import sys
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from sessionstore import (
    InvalidParameterError,
    SessionQAUpdate,
    SessionStore,
    SessionTraceStep,
    StoreError,
    open_store,
)
from sessionstore.clock import set_clock

ROOT = Path(__file__).resolve().parents[2]
S, U = "s", "u"
SESSION = Path("u-u") / "s-s"  # where (S, U) lives under a root
APP = "app"
SCOPE = Path("scoped") / "u-u"  # where U's user state lives under a root

# -- the sessions the crash tests start from and write -----------------------------

T_SETUP = datetime(2024, 1, 1, tzinfo=UTC)
T_WRITE = datetime(2024, 6, 1, tzinfo=UTC)  # the clock of the crashing child


def _id(n: int) -> str:
    return str(uuid.UUID(int=n))


def _dump(entries: range, traces: list[str], graph: str | None, when: datetime) -> dict[str, Any]:
    stamp = when.isoformat()
    return {
        "format": "sessionstore.session/1",
        "session_id": S,
        "user_id": U,
        "created_at": stamp,
        "updated_at": stamp,
        "graph_context": graph,
        "entries": [
            {
                "id": _id(n),
                "session_id": S,
                "user_id": U,
                "question": f"q{n}",
                "answer": f"a{n}",
                "context": None,
                "created_at": stamp,
                "feedback_text": None,
                "feedback_score": None,
                "used_graph_element_ids": None,
                "memify_metadata": None,
                "metadata": None,
            }
            for n in entries
        ],
        "trace_steps": [
            {"trace_id": t, "origin_function": "f", "status": "ok", "created_at": stamp}
            for t in traces
        ],
    }


# 40 entries, 15 of them deleted: the 16th delete is the one that compacts
# (32 dead lines outnumbering the 24 live ones), leaving 24 where there were 25.
# The session's user has a user state too (``prepare``).
OLD_DUMP = _dump(range(1, 41), ["t1", "t2"], "old graph", T_SETUP)
# It holds OLD_ITEMS items and a state at revision 1 as well.
OLD_ITEMS = 40
OLD_DUMP.update(
    format="sessionstore.session/2",
    items=[
        {
            "id": _id(1000 + n),
            "data": {"n": n, "text": f"item {n}"},
            "created_at": T_SETUP.isoformat(),
        }
        for n in range(OLD_ITEMS)
    ],
    state={"data": {"mode": "old", "gone": 1}, "revision": 1},
)
DELETED_BEFORE = [_id(n) for n in range(1, 16)]
DOOMED = _id(16)
NEW_DUMP = _dump(range(101, 104), ["t9"], None, T_WRITE)
SOME_IDS = [_id(n) for n in (1, 16, 17, 40, 101, 103)]  # deleted, doomed, live, imported


async def _append_turn(store: SessionStore) -> None:
    # The same item ids in every child, so that every crash compares with one new state.
    numbers = itertools.count(5000)
    with mock.patch.object(uuid, "uuid4", side_effect=lambda: uuid.UUID(int=next(numbers))):
        await store.append_turn(
            S,
            U,
            [{"role": "user", "content": "hi"}, [1.0, -0.0]],
            state={"mode": "new", "gone": None},
        )


COMPACTING = "compacting delete"
FIRST_INDEXED = "save trace step, the first since the trace id index"
# The writes that crash: each changes several files, or (the trace step) is
# the plain append-then-commit the others start with.
WRITES: dict[str, Callable[[SessionStore], Awaitable[object]]] = {
    COMPACTING: lambda store: store.delete_qa_entry(S, U, DOOMED),
    # items appended and the state's values.json replaced, in one commit
    "append a turn": _append_turn,
    "update state": lambda store: store.update_state(S, U, {"mode": "new"}, expected_revision=1),
    "pop item": lambda store: store.pop_item(S, U),
    # a clear record, then items.jsonl compacted (its dead lines dominate)
    "clear items": lambda store: store.clear_items(S, U),
    "update user state": lambda store: store.update_user_state(U, {"theme": "new"}),
    "set graph context": lambda store: store.set_graph_context(S, U, "new graph"),
    "import over the session": lambda store: store.import_sessions([NEW_DUMP]),
    "delete session": lambda store: store.delete_session(S, U),
    "save trace step": lambda store: store.save_trace_step(
        S, U, SessionTraceStep(trace_id="t3", origin_function="g", status="ok")
    ),
    # In a session written before trace_ids.jsonl existed: the index is made.
    FIRST_INDEXED: lambda store: store.save_trace_step(
        S, U, SessionTraceStep(trace_id="t3", origin_function="g", status="ok")
    ),
}


# -- the crashing child ---------------------------------------------------------------

CRASHED = 86  # the exit status of a child that reached its crash point
_CHANGES = ("open", "write", "ftruncate", "truncate", "replace", "rename", "unlink", "remove")
_CHANGES += ("mkdir", "rmdir", "link", "symlink")
_WRITING = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


@contextmanager
def crash_at(point: int | None) -> Iterator[None]:
    """Exit the process at crash point ``point`` (0, 1, ...) of what runs inside.

    The crash points are: before every call of ``os`` that changes the file
    system (an ``open`` that may write, ``write``, ``replace``, ``unlink``,
    ...), and half-way through every ``write`` of more than one byte.
    """
    if point is None:
        yield
        return
    counter = itertools.count()
    real = {name: getattr(os, name) for name in _CHANGES}

    def reached() -> bool:
        return next(counter) == point

    def crash_in_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & _WRITING and reached():
            os._exit(CRASHED)
        return int(real["open"](path, flags, *args, **kwargs))

    def crash_in_write(fd: int, data: Any) -> int:
        if reached():
            os._exit(CRASHED)
        if len(data) > 1 and reached():
            real["write"](fd, bytes(data)[: len(data) // 2])
            os._exit(CRASHED)
        return int(real["write"](fd, data))

    def before(name: str) -> Callable[..., Any]:
        def crash_before(*args: Any, **kwargs: Any) -> Any:
            if reached():
                os._exit(CRASHED)
            return real[name](*args, **kwargs)

        return crash_before

    for name in _CHANGES:
        setattr(os, name, before(name))
    os.open = crash_in_open
    os.write = crash_in_write
    try:
        yield
    finally:
        for name, function in real.items():
            setattr(os, name, function)


async def _write_and_crash(root: str, write: str, point: int | None) -> None:
    store = open_store(f"file://{root}")
    await store.open()
    with crash_at(point):
        await WRITES[write](store)
    await store.close()


def _serve() -> None:
    """Fork a child per request line (root, write, crash point); print its exit status."""
    with set_clock(lambda: T_WRITE):  # import what the children use, once
        asyncio.run(_write_and_crash(**json.loads(sys.stdin.readline())))
    print(json.dumps(0), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                with set_clock(lambda: T_WRITE):
                    asyncio.run(_write_and_crash(**request))
                status = 0
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(status)
        _, wait_status = os.waitpid(pid, 0)
        print(json.dumps(os.waitstatus_to_exitcode(wait_status)), flush=True)


class Crasher:
    """The parent's handle on the helper process that forks the crashing children."""

    def __init__(self, log: Path) -> None:
        self.log = log
        path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        with log.open("wb") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.backends.test_files_hostile"],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": path},
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
            )

    def run(self, root: Path, write: str, point: int | None) -> int:
        """Run ``write`` on ``root`` in a child that exits at ``point``; return its status."""
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        request = {"root": str(root), "write": write, "point": point}
        self.proc.stdin.write(json.dumps(request).encode() + b"\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        if not ready:
            pytest.fail(f"the crash child for {request} did not finish within 60 s")
        line = self.proc.stdout.readline()
        status = json.loads(line) if line else "the helper process died"
        if status not in (0, CRASHED):
            pytest.fail(f"the crash child failed ({status}):\n{self.log.read_text()}")
        return int(status)

    def stop(self) -> None:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
        self.proc.stdout.close()


@pytest.fixture(scope="module")
def crasher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Crasher]:
    scratch = tmp_path_factory.mktemp("crasher")
    helper = Crasher(scratch / "stderr.log")
    helper.run(scratch / "warm-up", "save trace step", None)  # the first request runs unforked
    yield helper
    helper.stop()


# -- reading everything back -------------------------------------------------------------


async def prepare(root: Path, write: str) -> None:
    """Write the starting session: 40 entries, traces, a graph context.

    Before the compacting delete, 15 of the entries are deleted.
    """
    with set_clock(lambda: T_SETUP):
        async with open_store(f"file://{root}") as store:
            await store.import_sessions([OLD_DUMP])
            for qa_id in DELETED_BEFORE if write == COMPACTING else ():
                assert await store.delete_qa_entry(S, U, qa_id)
            await store.update_user_state(U, {"theme": "old"})
    if write == FIRST_INDEXED:  # as a version without the index left the session
        state = root / SESSION / "state.json"
        older = json.loads(state.read_bytes())
        del older["trace_ids"]
        state.write_text(json.dumps(older))
        (root / SESSION / "trace_ids.jsonl").unlink()


def _plain(value: Any) -> Any:
    return None if value is None else value.model_dump(mode="json")


async def observe(root: Path) -> dict[str, Any]:
    """Everything every read says about the session (one store, one read after another)."""
    async with open_store(f"file://{root}") as store:
        return {
            "count": await store.count_qa_entries(S, U),
            "all": [_plain(e) for e in await store.get_all_qa_entries(S, U)],
            "latest": [_plain(e) for e in await store.get_latest_qa_entries(S, U, 3)],
            "latest_id": await store.latest_qa_id(S, U),
            "each": [_plain(await store.get_qa_entry(S, U, qa_id)) for qa_id in SOME_IDS],
            "graph": await store.get_graph_context(S, U),
            "traces": [_plain(t) for t in await store.read_trace_steps(S, U)],
            "traces_last": [_plain(t) for t in await store.read_trace_steps(S, U, 1)],
            "listed": [_plain(i) for i in (await store.list_sessions(U)).items],
            "exported": [d async for d in store.export_sessions()],
            "items": [_plain(i) for i in await store.get_items(S, U)],
            "items_last": [_plain(i) for i in await store.get_items(S, U, 3)],
            "item_count": await store.count_items(S, U),
            "state": _plain(await store.get_state(S, U)),
            "user_state": _plain(await store.get_user_state(U)),
        }


def _differences(seen: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    return [key for key in expected if seen[key] != expected[key]]


# -- crashes -----------------------------------------------------------------------------


@pytest.mark.parametrize("write", sorted(WRITES))
async def test_a_crash_at_any_point_leaves_the_old_state_or_the_new(
    write: str, crasher: Crasher, tmp_path: Path
) -> None:
    await prepare(tmp_path / "whole", write)
    old = await observe(tmp_path / "whole")
    assert crasher.run(tmp_path / "whole", write, None) == 0
    new = await observe(tmp_path / "whole")
    assert new != old

    for point in range(200):
        root = tmp_path / f"crash-{point}"
        await prepare(root, write)
        if crasher.run(root, write, point) == 0:
            break  # the write finished: no crash point left
        seen = await observe(root)
        assert seen in (old, new), (
            f"after a crash at point {point} of {write!r}, reads disagree with the old "
            f"state on {_differences(seen, old)} and with the new on {_differences(seen, new)}"
        )
        # The next write carries on from what the reads saw, adopting nothing.
        async with open_store(f"file://{root}") as store:
            qa_id = await store.create_qa_entry(S, U, "after the crash", "a")
            assert await store.count_qa_entries(S, U) == seen["count"] + 1
            ids = [e.id for e in await store.get_all_qa_entries(S, U)]
            assert ids == [e["id"] for e in seen["all"]] + [qa_id]
            assert (await store.list_sessions(U)).items[0].qa_count == seen["count"] + 1
            assert await store.get_graph_context(S, U) == seen["graph"]
            traces = await store.read_trace_steps(S, U)
            assert [_plain(t) for t in traces] == seen["traces"]
            item_id = (await store.append_items(S, U, ["after the crash"]))[0]
            ids = [i.id for i in await store.get_items(S, U)]
            assert ids == [i["id"] for i in seen["items"]] + [item_id]
            assert _plain(await store.get_state(S, U)) == seen["state"]
            revision = seen["user_state"]["revision"]
            await store.update_user_state(U, {"after": True}, expected_revision=revision)
            # Each trace id the reads saw is taken, and no other.
            seen_ids = {t["trace_id"] for t in seen["traces"]}
            for trace_id in ("t1", "t3", "t9"):
                step = SessionTraceStep(trace_id=trace_id, origin_function="h", status="ok")
                if trace_id in seen_ids:
                    with pytest.raises(InvalidParameterError):
                        await store.save_trace_step(S, U, step)
                else:
                    await store.save_trace_step(S, U, step)
        leftovers = [p.name for p in (root / SESSION).iterdir() if p.name.endswith(".next")]
        assert leftovers == [], f"crash point {point} of {write!r} left {leftovers}"
    else:
        pytest.fail(f"{write!r} has more than 200 crash points")
    assert point > 3  # the child really ran the write under the crash points


# -- symbolic links planted inside the root -------------------------------------------------

FIRST = _id(1)
CALLS: dict[str, Callable[[SessionStore], Awaitable[object]]] = {
    # reads
    "count_qa_entries": lambda store: store.count_qa_entries(S, U),
    "get_latest_qa_entries": lambda store: store.get_latest_qa_entries(S, U, 2),
    "get_all_qa_entries": lambda store: store.get_all_qa_entries(S, U),
    "get_qa_entry": lambda store: store.get_qa_entry(S, U, FIRST),
    "latest_qa_id": lambda store: store.latest_qa_id(S, U),
    "get_graph_context": lambda store: store.get_graph_context(S, U),
    "read_trace_steps": lambda store: store.read_trace_steps(S, U),
    "list_sessions": lambda store: store.list_sessions(U),
    "export_sessions": lambda store: _collect(store.export_sessions()),
    "get_items": lambda store: store.get_items(S, U, 2),
    "count_items": lambda store: store.count_items(S, U),
    "get_state": lambda store: store.get_state(S, U),
    "get_user_state": lambda store: store.get_user_state(U),
    "get_app_state": lambda store: store.get_app_state(APP),
    # writes
    "create_qa_entry": lambda store: store.create_qa_entry(S, U, "q", "a"),
    "update_qa_entry": lambda store: store.update_qa_entry(
        S, U, FIRST, SessionQAUpdate(answer="changed")
    ),
    "delete_qa_entry": lambda store: store.delete_qa_entry(S, U, FIRST),
    "set_graph_context": lambda store: store.set_graph_context(S, U, "changed"),
    "save_trace_step": lambda store: store.save_trace_step(
        S, U, SessionTraceStep(origin_function="f", status="ok")
    ),
    "append_items": lambda store: store.append_items(S, U, ["new"], state={"k": 1}),
    "pop_item": lambda store: store.pop_item(S, U),
    "delete_item": lambda store: store.delete_item(S, U, _id(1000)),
    "clear_items": lambda store: store.clear_items(S, U),
    "update_state": lambda store: store.update_state(S, U, {"k": 2}),
    "update_user_state": lambda store: store.update_user_state(U, {"k": 1}),
    "update_app_state": lambda store: store.update_app_state(APP, {"k": 1}),
    "delete_session": lambda store: store.delete_session(S, U),
    "import_sessions": lambda store: store.import_sessions([NEW_DUMP]),  # replaces the files
}
EVERY_CALL = frozenset(CALLS)
USER_STATE_CALLS = frozenset({"get_user_state", "update_user_state"})
SCOPED_CALLS = USER_STATE_CALLS | {"get_app_state", "update_app_state"}
SESSION_CALLS = EVERY_CALL - SCOPED_CALLS  # the calls that open the session's directory
ENTRY_READS = {"get_latest_qa_entries", "get_all_qa_entries", "get_qa_entry", "latest_qa_id"}
# The writes that repair the session's files first (an import replaces them whole).
REPAIRING = {
    "create_qa_entry",
    "update_qa_entry",
    "delete_qa_entry",
    "set_graph_context",
    "save_trace_step",
    "append_items",
    "pop_item",
    "delete_item",
    "clear_items",
    "update_state",
    "delete_session",
}
# delete_session removes what it finds (links too, never their targets), so
# the import after it starts afresh.
COMMITTING = REPAIRING - {"delete_session"}

# Where a link is planted (relative to the root), what it points to (relative
# to another store's root, outside this one), and the calls that must refuse
# it; every other call may succeed, as long as it does not follow the link.
PLANTS: dict[str, tuple[Path, Path, frozenset[str]]] = {
    "user directory": (Path("u-u"), Path("u-u"), SESSION_CALLS),
    "session directory": (SESSION, SESSION, SESSION_CALLS),
    "state.json": (SESSION / "state.json", SESSION / "state.json", SESSION_CALLS),
    "lock file": (SESSION / ".lock", SESSION / ".lock", SESSION_CALLS - {"list_sessions"}),
    "entries.jsonl": (
        SESSION / "entries.jsonl",
        SESSION / "entries.jsonl",
        frozenset({*ENTRY_READS, "export_sessions", *REPAIRING}),
    ),
    "traces.jsonl": (
        SESSION / "traces.jsonl",
        SESSION / "traces.jsonl",
        frozenset({"read_trace_steps", "export_sessions", *REPAIRING}),
    ),
    "graph.json": (
        SESSION / "graph.json",
        SESSION / "graph.json",
        frozenset({"get_graph_context", "export_sessions", *REPAIRING}),
    ),
    "items.jsonl": (
        SESSION / "items.jsonl",
        SESSION / "items.jsonl",
        frozenset({"get_items", "export_sessions", *REPAIRING}),
    ),
    "values.json": (
        SESSION / "values.json",
        SESSION / "values.json",
        frozenset({"get_state", "export_sessions", *REPAIRING}),
    ),
    "scoped directory": (Path("scoped"), Path("scoped"), SCOPED_CALLS),
    "scope directory": (SCOPE, SCOPE, USER_STATE_CALLS),
    "scope.json": (SCOPE / "scope.json", SCOPE / "scope.json", USER_STATE_CALLS),
    # A temp file's name is known in advance: writing it must not truncate a target.
    "state.json.tmp": (SESSION / "state.json.tmp", SESSION / "state.json", frozenset(COMMITTING)),
    # Where a torn tail is moved (the root's entries.jsonl has one): never appended through.
    "entries.jsonl.torn": (
        SESSION / "entries.jsonl.torn",
        SESSION / "entries.jsonl",
        frozenset(REPAIRING),
    ),
    "scope.json.tmp": (
        SCOPE / "scope.json.tmp",
        SCOPE / "scope.json",
        frozenset({"update_user_state"}),
    ),
}


async def _collect(items: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in items]


def tree(path: Path) -> dict[str, object]:
    """Every name under ``path`` with its bytes and mtime (files) or target (links)."""
    found: dict[str, object] = {}
    for directory, dirs, files in os.walk(path):
        for name in dirs + files:
            full = Path(directory) / name
            info = full.lstat()
            if full.is_symlink():
                found[str(full)] = ("link", str(full.readlink()))
            elif full.is_dir():
                found[str(full)] = ("dir", info.st_mtime_ns)
            else:
                found[str(full)] = (full.read_bytes(), info.st_mtime_ns)
    return found


async def _fill(root: Path) -> None:
    async with open_store(f"file://{root}") as store:
        await store.import_sessions([OLD_DUMP])
        await store.create_qa_entry("other", U, "q", "a")  # a neighbour, for prune
        await store.update_user_state(U, {"theme": "old"})
        await store.update_app_state(APP, {"flag": True})


@pytest.mark.parametrize("plant", sorted(PLANTS))
async def test_links_inside_the_root_are_refused_never_followed(plant: str, tmp_path: Path) -> None:
    link, target, must_refuse = PLANTS[plant]
    root, outside = tmp_path / "root", tmp_path / "outside"
    await _fill(root)
    await _fill(outside)  # another store's data, which no call on `root` may touch
    with (root / SESSION / "entries.jsonl").open("ab") as log:
        log.write(b'{"n": 99, "op": "add", "entry"')  # a torn tail for repair to set aside
    planted = root / link
    if planted.is_dir():
        shutil.rmtree(planted)
    else:
        planted.unlink(missing_ok=True)
    planted.symlink_to(outside / target, target_is_directory=(outside / target).is_dir())
    before = tree(outside)

    refusals: dict[str, str] = {}  # call -> its StoreError
    async with open_store(f"file://{root}") as store:
        for name, call in [*CALLS.items(), ("prune", lambda store: store.prune())]:
            try:
                await call(store)
            except StoreError as exc:
                refusals[name] = str(exc)
            assert tree(outside) == before, f"{name} changed files outside the root"
    assert must_refuse <= set(refusals), f"not refused: {sorted(must_refuse - set(refusals))}"
    for name, message in refusals.items():
        assert str(planted) in message, f"{name}: {message}"
    if plant in {"user directory", "session directory", "scoped directory", "scope directory"}:
        assert "prune" in refusals  # it leaves the link, and says so
    async with open_store(f"file://{outside}") as other:
        assert await other.count_qa_entries(S, U) == 40
        assert await other.get_graph_context(S, U) == "old graph"


async def test_prune_never_deletes_through_a_link(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    await _fill(root)
    await _fill(outside)
    user_link, session_link = root / "u-v", root / "u-u" / "s-x"
    user_link.symlink_to(outside / "u-u", target_is_directory=True)
    session_link.symlink_to(outside / SESSION, target_is_directory=True)
    before = tree(outside)
    async with open_store(f"file://{root}") as store:
        with pytest.raises(StoreError) as refused:
            await store.prune()
    assert str(user_link) in str(refused.value)
    assert str(session_link) in str(refused.value)
    assert tree(outside) == before
    # Everything else is pruned; the links are left for a person to remove.
    assert sorted(p.name for p in root.iterdir()) == ["sessionstore.json", "u-u", "u-v"]
    assert [p.name for p in (root / "u-u").iterdir()] == ["s-x"]


async def test_a_marker_link_is_refused(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    await _fill(outside)
    root.mkdir()
    (root / "sessionstore.json").symlink_to(outside / "sessionstore.json")
    before = tree(outside)
    store = open_store(f"file://{root}")
    with pytest.raises(StoreError, match=str(root / "sessionstore.json")):
        await store.open()
    await store.close()
    assert tree(outside) == before


async def test_a_fifo_in_place_of_a_file_is_refused_not_waited_on(tmp_path: Path) -> None:
    root = tmp_path / "root"
    await _fill(root)
    state = root / SESSION / "state.json"
    state.unlink()
    os.mkfifo(state)
    async with open_store(f"file://{root}") as store:
        for call in (store.count_qa_entries(S, U), store.list_sessions(U)):
            with pytest.raises(StoreError, match=f"{state} is not a regular file"):
                await asyncio.wait_for(call, 10)


if __name__ == "__main__":
    _serve()
