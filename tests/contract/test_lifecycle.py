"""Opening, closing, persistence and what the store shows of itself."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from sessionstore import SessionStore, StoreError, open_store


async def test_close_is_idempotent_and_blocks_later_calls(make_store: Any) -> None:
    store: SessionStore = await make_store()
    await store.create_qa_entry("s", "u", "q", "a")
    await store.close()
    await store.close()
    with pytest.raises(StoreError, match="closed"):
        await store.count_qa_entries("s", "u")
    with pytest.raises(StoreError, match="closed"):
        await store.create_qa_entry("s", "u", "q", "a")
    with pytest.raises(StoreError, match="closed"):
        await store.open()


async def test_async_context_manager_opens_and_closes(store_url: str) -> None:
    store = open_store(store_url)
    async with store as opened:
        assert opened is store
        await store.create_qa_entry("s", "u", "q", "a")
        assert await store.count_qa_entries("s", "u") == 1
        await store.prune()
    with pytest.raises(StoreError):
        await store.get_all_qa_entries("s", "u")


async def test_first_call_opens_the_store(store_url: str) -> None:
    store = open_store(store_url)
    try:
        assert await store.count_qa_entries("s", "u") == 0
    finally:
        await store.close()


async def test_closing_an_unopened_store(store_url: str) -> None:
    store = open_store(store_url)
    await store.close()
    with pytest.raises(StoreError):
        await store.count_qa_entries("s", "u")


@pytest.mark.shared
async def test_data_outlives_the_store_object(make_store: Any) -> None:
    first: SessionStore = await make_store()
    qa_id = await first.create_qa_entry("s", "u", "q", "a")
    await first.close()
    second: SessionStore = await make_store()
    entry = await second.get_qa_entry("s", "u", qa_id)
    assert entry is not None
    assert entry.question == "q"


async def test_repr_and_logs_hide_credentials(
    store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    store = open_store(store_url)
    try:
        await store.open()
        await store.create_qa_entry("s", "u", "q", "a")
        await store.prune()
    finally:
        await store.close()
    text = repr(store) + store.describe() + caplog.text
    for secret in ("password=", ":secret@", "hunter2"):
        assert secret not in text
