"""``improve_lock`` on the store's own Redis: token locks with a lease.

``SET <key> <token> NX PX <lease>`` takes a lock; ``lock_renew.lua`` extends
it and ``lock_release.lua`` deletes it, each only while the key still holds
the holder's token, so a holder whose lease ran out never touches the next
holder's lock. A holder that dies frees the lock when its lease runs out.
"""

from __future__ import annotations

import uuid
from typing import Final

from sessionstore.backends.redis.client import RedisConnection
from sessionstore.locks import HeldLock, LeasedLock, lock_digest

__all__ = ["RedisLockBackend"]

KEY_PREFIX: Final = "sessionstore-improve-lock:"
"""The first part of every lock key; outside every store's prefix, so ``prune`` leaves locks."""


class RedisLockBackend:
    """Leased token locks kept on a Redis store's server (standalone or Cluster).

    A lock's key is named by the store's key prefix and the lock's name, so
    every store on the same server and prefix shares its locks, however its
    URL was spelled, and stores on different prefixes never do.

    Args:
        connection: the store's connection: its client, and its error
            translation (:class:`StoreError`, :class:`StoreUnavailableError`).
        prefix: the store's key prefix, the identity of its data.

    """

    def __init__(self, connection: RedisConnection, prefix: str) -> None:
        self._connection = connection
        self._prefix = prefix

    def __repr__(self) -> str:
        return f"<RedisLockBackend {self._connection.where} prefix={self._prefix}>"

    def key(self, name: str) -> str:
        """Return the Redis key of lock ``name``."""
        return KEY_PREFIX + lock_digest(self._prefix, name).hex()

    async def try_acquire(self, name: str, lease: float) -> HeldLock | None:
        """Take the lock unless another token holds it (``SET NX PX``).

        Raises:
            StoreUnavailableError: the server cannot be reached or timed out.
            StoreError: the store is closed, or Redis failed.

        """
        key, token, millis = self.key(name), uuid.uuid4().hex, max(1, round(lease * 1000))
        client = self._connection.live_client()
        with self._connection.errors():
            taken = await client.set(key, token, nx=True, px=millis)
        if not taken:
            return None

        async def renew() -> bool:
            return bool(await self._connection.run("lock_renew", [key], [token, millis]))

        async def delete() -> None:
            await self._connection.run("lock_release", [key], [token])

        return LeasedLock(renew, delete, lease)
