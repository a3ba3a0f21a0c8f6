"""Contract-suite URLs for the SQL backend: one table prefix per test, dropped after it."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

from sessionstore.backends.sql import SQLStore
from tests.servers import server_url

if TYPE_CHECKING:
    from tests.contract.cases import CaseContext

SERVERS = ("mariadb", "postgresql")


async def drop_namespace(url: str) -> None:
    """Drop every table of the store at ``url`` (its ``table_prefix``)."""
    store = SQLStore.from_url(url)
    try:
        await store.drop_tables()
    finally:
        await store.close()


def _drop_in_thread(url: str) -> None:
    # The test's event loop is closing; a private loop in a thread leaves it alone.
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(drop_namespace(url))
        except BaseException as exc:  # re-raised in the test's thread below
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def sql_case_url(ctx: CaseContext, server: str) -> str:
    """Return a URL with a fresh table prefix whose tables are dropped after the test."""
    url = f"{server_url(server)}?table_prefix={ctx.token}_"
    ctx.request.addfinalizer(lambda: _drop_in_thread(url))
    return url
