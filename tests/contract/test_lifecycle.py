"""Opening, closing, persistence and what the store shows of itself."""

from __future__ import annotations

import logging
import traceback
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from sessionstore import InvalidParameterError, SessionStore, StoreError, open_store


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


def test_url_and_keyword_options_reach_the_store(store_url: str) -> None:
    separator = "&" if "?" in store_url else "?"
    from_url = open_store(f"{store_url}{separator}ttl=2.5&max_field_bytes=10")
    assert (from_url.ttl, from_url.max_field_bytes) == (2.5, 10)
    from_keywords = open_store(store_url, ttl=7, max_field_bytes=11)
    assert (from_keywords.ttl, from_keywords.max_field_bytes) == (7, 11)
    with pytest.raises(InvalidParameterError, match="ttl"):
        open_store(f"{store_url}{separator}ttl=-3")


def _with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", maxsplit=1)[-1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:{password}@{host}"))


def _error_text(error: BaseException) -> str:
    return "".join(traceback.format_exception(error))


@pytest.mark.credentials
async def test_repr_errors_and_logs_hide_the_password(
    store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    password = "pw-" + uuid.uuid4().hex
    url = _with_password(store_url, password)
    assert password in url
    caplog.set_level(logging.DEBUG)
    shown: list[str] = []
    store = open_store(url)
    shown += [repr(store), store.describe()]
    try:
        # The server may ignore the password or refuse it; neither may show it.
        await store.create_qa_entry("s", "u", "q", "a")
        await store.prune()
    except StoreError as error:
        shown.append(_error_text(error))
    finally:
        shown += [repr(store), store.describe()]
        await store.close()
    separator = "&" if "?" in url else "?"
    with pytest.raises(InvalidParameterError) as bad_option:
        open_store(f"{url}{separator}no_such_option=1")
    shown += [_error_text(bad_option.value), caplog.text]
    for text in shown:
        assert password not in text
