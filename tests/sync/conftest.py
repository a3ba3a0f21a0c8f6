"""The blocking facade on the backend matrix of tests/conftest.py.

``open_sync`` opens blocking stores on the test's fresh namespace; after the
test, one more blocking store prunes the namespace and every store is closed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sessionstore import sync

OpenSync = Callable[..., sync.SessionStore]


@pytest.fixture
def open_sync(store_url: str) -> Iterator[OpenSync]:
    opened: list[sync.SessionStore] = []

    def make(**options: Any) -> sync.SessionStore:
        store = sync.open_store(store_url, **options)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()
    if opened:
        with sync.open_store(store_url) as cleaner:
            cleaner.prune()


@pytest.fixture
def sync_store(open_sync: OpenSync) -> sync.SessionStore:
    return open_sync()


@pytest.fixture(autouse=True)
def _no_loop_thread_outlives_its_test() -> Iterator[None]:
    """Every blocking store a test opened has stopped its loop's thread by its end."""
    before = set(_loop_threads())
    yield
    for thread in set(_loop_threads()) - before:
        thread.join(10)
        assert not thread.is_alive(), "a blocking store's loop thread outlived its test"


def _loop_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "sessionstore-sync"]
