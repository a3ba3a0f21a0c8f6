"""improve_lock: a non-blocking, non-reentrant try-lock per session (SPEC §6)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from sessionstore import SessionManager, SessionStore, StoreError
from sessionstore.locks import LocalLockBackend, lock_backend_for
from tests.contract.cases import BackendCase, MakeStore


async def test_second_attempt_fails_even_from_the_same_task(manager: SessionManager) -> None:
    async with manager.improve_lock("s", "u") as first:
        assert first is True
        async with manager.improve_lock("s", "u") as second:
            assert second is False
        # The failed attempt released nothing.
        async with manager.improve_lock("s", "u") as third:
            assert third is False
    async with manager.improve_lock("s", "u") as again:
        assert again is True


async def test_released_on_error(manager: SessionManager) -> None:
    seen: list[bool] = []

    async def fail_while_holding() -> None:
        async with manager.improve_lock("s") as held:
            seen.append(held)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await fail_while_holding()
    assert seen == [True]
    async with manager.improve_lock("s") as held:
        assert held is True


async def test_released_on_cancellation(manager: SessionManager) -> None:
    entered = asyncio.Event()

    async def hold() -> None:
        async with manager.improve_lock("s") as held:
            assert held
            entered.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(hold())
    await entered.wait()
    async with manager.improve_lock("s") as held:
        assert held is False
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with manager.improve_lock("s") as held:
        assert held is True


async def test_locks_are_per_session_and_user(manager: SessionManager) -> None:
    async with contextlib.AsyncExitStack() as stack:
        held = [
            await stack.enter_async_context(manager.improve_lock(session_id, user_id))
            for session_id, user_id in [("s", "u"), ("s", None), ("s2", "u"), ("u", "s")]
        ]
        assert held == [True, True, True, True]
        assert await stack.enter_async_context(manager.improve_lock("s", None)) is False


async def test_default_session_and_shared_between_managers(store: SessionStore) -> None:
    one = SessionManager(store, default_session_id="chat")
    other = SessionManager(store)
    async with one.improve_lock() as held:
        assert held is True
        async with other.improve_lock("chat") as also:
            assert also is False
        async with other.improve_lock() as free:
            assert free is True  # "default_session" is another session


async def test_concurrent_attempts_have_one_winner(manager: SessionManager) -> None:
    gate = asyncio.Event()
    all_in = asyncio.Event()
    results: list[bool] = []

    async def attempt() -> None:
        async with manager.improve_lock("race") as held:
            results.append(held)
            if len(results) == 8:
                all_in.set()
            await gate.wait()

    tasks = [asyncio.create_task(attempt()) for _ in range(8)]
    await all_in.wait()
    gate.set()
    await asyncio.gather(*tasks)
    assert sorted(results) == [False] * 7 + [True]


async def test_shared_stores_share_the_lock(case: BackendCase, make_store: MakeStore) -> None:
    first, second = await make_store(), await make_store()
    backend = await lock_backend_for(first)
    async with SessionManager(first).improve_lock("s", "u") as held:
        assert held is True
        async with SessionManager(second).improve_lock("s", "u") as other:
            if isinstance(backend, LocalLockBackend):
                # Process-local: each store object has its own locks.
                assert other is True
            else:
                assert case.shared
                assert other is False


async def test_lock_on_closed_store_fails(store: SessionStore) -> None:
    manager = SessionManager(store)
    await store.close()
    with pytest.raises(StoreError):
        async with manager.improve_lock("s"):
            pass
