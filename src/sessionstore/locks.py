"""The try-locks behind ``SessionManager.improve_lock`` (SPEC §6).

A lock backend hands out at most one holder per lock name. Where the store's
storage is shared, so is the lock (see :mod:`sessionstore.lock_backends`:
SQLite, Redis, PostgreSQL); everything else gets a process-local lock. A store
names its lock backend by overriding ``SessionStore._lock_backend``, or a
factory is registered for its class with :func:`register_lock_backend`.

Leased locks (SQLite, Redis) expire ``lease`` seconds after their last renewal,
so a crashed holder blocks nobody for longer than that; a live holder renews
its lease every third of it while it holds the lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol, cast

from sessionstore.errors import StoreError

if TYPE_CHECKING:
    from sessionstore.store import SessionStore

__all__ = [
    "DEFAULT_LEASE",
    "HeldLock",
    "LeasedLock",
    "LocalLockBackend",
    "LockBackend",
    "lock_backend_for",
    "lock_name",
    "register_lock_backend",
]

logger = logging.getLogger(__name__)

DEFAULT_LEASE = 30.0
"""Seconds a crashed holder's lock outlives it (SQLite and Redis)."""


class HeldLock(Protocol):
    """A lock this caller holds."""

    async def release(self) -> None:
        """Give the lock up; calling it again does nothing."""
        ...


class LockBackend(Protocol):
    """Hands out try-locks by name."""

    async def try_acquire(self, name: str, lease: float) -> HeldLock | None:
        """Take the lock ``name`` now, or return ``None`` if someone holds it.

        Args:
            name: the lock's name (see :func:`lock_name`).
            lease: seconds the lock survives a holder that died without
                releasing it, for backends that can expire locks.

        """
        ...


def lock_name(session_id: str, user_id: str | None) -> str:
    """Return the lock name of a session: one name per ``(session_id, user_id)``.

    The JSON form keeps ``None`` apart from every string and no pair of ids
    can spell another pair.
    """
    return json.dumps([user_id, session_id], ensure_ascii=False)


# -- process-local --------------------------------------------------------


class _LocalHeld:
    def __init__(self, held: set[str], name: str) -> None:
        self._held = held
        self._name = name

    async def release(self) -> None:
        self._held.discard(self._name)


class LocalLockBackend:
    """Locks that only this process sees."""

    def __init__(self) -> None:
        self._held: set[str] = set()

    def __repr__(self) -> str:
        return "<LocalLockBackend>"

    async def try_acquire(self, name: str, lease: float) -> HeldLock | None:
        """Take ``name`` unless this process already holds it."""
        if name in self._held:
            return None
        self._held.add(name)
        return _LocalHeld(self._held, name)


# -- leased locks -----------------------------------------------------------


class LeasedLock:
    """A held lock that renews its lease in the background until released.

    Args:
        renew: extends the lease; returns ``False`` if the lock was lost.
        delete: removes the lock if this holder still owns it.
        lease: the lease in seconds; renewed every third of it.

    """

    def __init__(
        self,
        renew: Callable[[], Awaitable[bool]],
        delete: Callable[[], Awaitable[None]],
        lease: float,
    ) -> None:
        self._delete: Callable[[], Awaitable[None]] | None = delete
        self._renewer = asyncio.create_task(self._keep_alive(renew, lease / 3))

    @staticmethod
    async def _keep_alive(renew: Callable[[], Awaitable[bool]], every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                still_held = await renew()
            except StoreError:
                logger.warning("could not renew an improve lock; retrying", exc_info=True)
                continue
            if not still_held:
                logger.warning("an improve lock expired while held; it is no longer exclusive")
                return

    async def release(self) -> None:
        """Stop renewing and delete the lock if this holder still owns it."""
        if self._delete is None:
            return
        delete, self._delete = self._delete, None
        self._renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._renewer
        await delete()


# -- choosing a backend -------------------------------------------------------

LockBackendFactory = Callable[["SessionStore"], "LockBackend | None"]

# Store class -> "module:function" building its lock backend, imported on first use
# so that no driver is imported before a store of that kind exists.
_FACTORIES: dict[str, str | LockBackendFactory] = {
    "sessionstore.backends.sqlite.SQLiteStore": "sessionstore.lock_backends:sqlite_locks",
    "sessionstore.backends.files.FileStore": "sessionstore.lock_backends:file_locks",
    "sessionstore.backends.redis.RedisStore": "sessionstore.lock_backends:redis_locks",
    "sessionstore.backends.sql.SQLStore": "sessionstore.lock_backends:sql_locks",
}
_CHOSEN: weakref.WeakKeyDictionary[SessionStore, LockBackend] = weakref.WeakKeyDictionary()


def register_lock_backend(store_class: type[SessionStore], factory: LockBackendFactory) -> None:
    """Share ``improve_lock`` for stores of ``store_class`` through ``factory``.

    Args:
        store_class: the store's class (subclasses are not included).
        factory: returns the store's lock backend, or ``None`` when this
            store cannot share locks (its lock is then process-local).

    """
    _FACTORIES[f"{store_class.__module__}.{store_class.__qualname__}"] = factory


def _factory_for(store: SessionStore) -> LockBackendFactory | None:
    cls = type(store)
    target = _FACTORIES.get(f"{cls.__module__}.{cls.__qualname__}")
    if isinstance(target, str):
        module_name, function = target.split(":")
        target = cast("LockBackendFactory", getattr(importlib.import_module(module_name), function))
    return target


async def lock_backend_for(store: SessionStore) -> LockBackend:
    """Return the lock backend ``store``'s managers share, chosen once per store.

    Opens the store first. The store's own ``_lock_backend()`` wins; then a
    factory registered for its class; else a process-local backend.

    Raises:
        StoreError: the store is closed or cannot be opened.

    """
    await store.open()
    chosen = _CHOSEN.get(store)
    if chosen is None:
        chosen = store._lock_backend()
        if chosen is None:
            factory = _factory_for(store)
            chosen = None if factory is None else factory(store)
        if chosen is None:
            chosen = LocalLockBackend()
        _CHOSEN[store] = chosen
    return chosen
