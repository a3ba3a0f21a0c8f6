"""The item log and the states through the blocking facade, on every backend."""

from __future__ import annotations

import json
import threading

import pytest

from sessionstore import ConflictError, InvalidParameterError, SessionState, TurnResult, sync
from tests.sync.conftest import OpenSync

S, U = "chat", "alice"


def test_items_round_trip_and_remove(sync_store: sync.SessionStore) -> None:
    values = [{"role": "user", "content": "hi 😀\x00"}, 1.0, -0.0, 2**64 + 1, ["x", None]]
    ids = sync_store.append_items(S, U, values)
    items = sync_store.get_items(S, U)
    assert [i.id for i in items] == ids
    assert json.dumps([i.data for i in items]) == json.dumps(values)
    assert [i.id for i in sync_store.get_items(S, U, 2)] == ids[-2:]
    assert sync_store.count_items(S, U) == 5
    popped = sync_store.pop_item(S, U)
    assert popped is not None
    assert popped.id == ids[-1]
    assert sync_store.delete_item(S, U, ids[0].upper()) is True
    assert sync_store.clear_items(S, U) is True
    assert sync_store.pop_item(S, U) is None
    assert sync_store.list_sessions(U).items == []


def test_turns_and_states_with_revisions(sync_store: sync.SessionStore) -> None:
    turn = sync_store.append_turn(S, U, [{"role": "user"}], state={"step": 1})
    assert isinstance(turn, TurnResult)
    assert turn.revision == 1
    with pytest.raises(ConflictError):
        sync_store.append_turn(S, U, [{"stale": True}], state={"step": 9}, expected_revision=0)
    assert sync_store.update_state(S, U, {"step": None, "done": True}, expected_revision=1) == (
        SessionState(data={"done": True}, revision=2)
    )
    assert sync_store.get_state(S, U).revision == 2
    assert sync_store.count_items(S, U) == 1
    assert sync_store.update_user_state(U, {"theme": "dark"}).revision == 1
    assert sync_store.get_user_state(U).data == {"theme": "dark"}
    assert sync_store.update_app_state("app", {"v": 1}, expected_revision=0).revision == 1
    assert sync_store.get_app_state("app").data == {"v": 1}
    with pytest.raises(InvalidParameterError, match="items"):
        sync_store.append_items(S, U, "not a list")  # type: ignore[arg-type]
    (dump,) = list(sync_store.export_sessions(user_id=U))
    assert (dump["state"]["revision"], len(dump["items"])) == (2, 1)


def test_threads_appending_groups_keep_them_whole(open_sync: OpenSync) -> None:
    store = open_sync()
    groups: list[list[str]] = []
    lock = threading.Lock()

    def work(t: int) -> None:
        for g in range(5):
            ids = store.append_items(S, U, [{"t": t, "g": g, "k": k} for k in range(3)])
            with lock:
                groups.append(ids)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    position = {item.id: n for n, item in enumerate(store.get_items(S, U))}
    assert len(position) == 8 * 5 * 3
    for ids in groups:
        start = position[ids[0]]
        assert [position[i] for i in ids] == [start, start + 1, start + 2]


def test_blocking_manager_builds_history_from_items(sync_store: sync.SessionStore) -> None:
    sync_store.append_items(S, U, [{"role": "user", "content": "hi"}, {"type": "function_call"}])
    manager = sync.SessionManager(sync_store)
    assert manager.load_item_messages(S, U) == [{"role": "user", "content": "hi"}]
    context = manager.build_context(S, U, source="items")
    assert context.formatted_history == "Previous conversation:\n\nUSER: hi\n\n"
    items = sync_store.get_items(S, U)
    assert manager.messages_from_items(items) == context.history
