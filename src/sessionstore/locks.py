"""The try-locks behind ``SessionManager.improve_lock`` (docs/manager.md).

A lock backend hands out at most one holder per lock name. Where the store's
storage is shared, so is the lock: each backend supplies its own through the
``SessionStore._lock_backend`` hook (``backends/<name>/lock.py``: SQLite lock
rows, Redis tokens, PostgreSQL advisory locks, MySQL ``GET_LOCK``); a store
that supplies none gets a process-local lock.

Leased locks (SQLite, files, Redis) expire ``lease`` seconds after their last renewal,
so a crashed holder blocks nobody for longer than that; a live holder renews
its lease every third of it while it holds the lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

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
    "lock_digest",
    "lock_name",
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


def lock_digest(namespace: str, name: str) -> bytes:
    """Return a digest naming lock ``name`` among the locks of ``namespace``.

    A backend's namespace is the identity of its data (a resolved file path,
    a key prefix, a database and table prefix), never the spelling of a URL.
    """
    return hashlib.sha256(json.dumps([namespace, name]).encode("utf-8")).digest()


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

_CHOSEN: weakref.WeakKeyDictionary[SessionStore, LockBackend] = weakref.WeakKeyDictionary()


async def lock_backend_for(store: SessionStore) -> LockBackend:
    """Return the lock backend ``store``'s managers share, chosen once per store.

    Opens the store first, then asks its ``_lock_backend()`` hook; a store
    that returns ``None`` gets a process-local backend.

    Raises:
        StoreError: the store is closed or cannot be opened.

    """
    await store.open()
    chosen = _CHOSEN.get(store)
    if chosen is None:
        chosen = store._lock_backend() or LocalLockBackend()
        _CHOSEN[store] = chosen
    return chosen
