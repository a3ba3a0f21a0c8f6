"""Improve locks shared by every process using the same storage.

- SQLite: lock rows with an expiry in ``<database>.locks`` beside the store's
  file; the store's own write lock is never touched. The file backend uses
  the same, in ``<root>.locks`` beside its directory.
- Redis / Valkey: ``SET key token NX PX lease``, renewed while held, released
  by a compare-and-delete script, so a holder whose lease ran out can never
  delete the next holder's lock.
- PostgreSQL: ``pg_try_advisory_lock`` on a connection held for as long as
  the lock (the server releases it if that connection dies). MySQL/MariaDB:
  ``GET_LOCK(name, 0)`` the same way.

Each is built from a store's public attributes by the factories at the end,
which :func:`sessionstore.locks.lock_backend_for` finds by the store's class.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sessionstore.errors import StoreError, StoreUnavailableError
from sessionstore.locks import HeldLock, LeasedLock, LockBackend
from sessionstore.urls import require

if TYPE_CHECKING:
    from sessionstore.store import SessionStore

__all__ = [
    "RedisLockBackend",
    "SQLLockBackend",
    "SQLiteLockBackend",
    "file_locks",
    "lock_digest",
    "redis_locks",
    "sql_locks",
    "sqlite_locks",
]

_T = TypeVar("_T")
_SQL_DIALECTS = {"postgresql", "mysql", "mariadb"}


def lock_digest(namespace: str, name: str) -> bytes:
    """Return a digest naming lock ``name`` among the locks of ``namespace``."""
    return hashlib.sha256(json.dumps([namespace, name]).encode("utf-8")).digest()


class SQLiteLockBackend:
    """Lock rows with an expiry in ``<database>.locks``, beside a SQLite store.

    Every process using the same database file sees the same locks. The lock
    file is separate so lock traffic never waits on the store's write lock.

    Args:
        database: the store's database file.
        busy_timeout: seconds to wait for another process's write.

    """

    def __init__(self, database: str | Path, *, busy_timeout: float = 5.0) -> None:
        self.path = Path(f"{database}.locks")
        self._busy_timeout = busy_timeout

    def __repr__(self) -> str:
        return f"<SQLiteLockBackend {self.path}>"

    async def try_acquire(self, name: str, lease: float) -> HeldLock | None:
        """Insert the lock row unless a live one exists; expired rows are dropped."""
        token = uuid.uuid4().hex
        if not await self._run(self._insert, name, token, lease):
            return None
        return LeasedLock(
            lambda: self._run(self._renew, name, token, lease),
            lambda: self._run(self._delete, name, token),
            lease,
        )

    async def _run(self, step: Callable[..., _T], *args: object) -> _T:
        try:
            return await asyncio.to_thread(step, *args)
        except sqlite3.OperationalError as exc:
            raise StoreUnavailableError(f"improve lock file {self.path} is busy: {exc}") from exc
        except sqlite3.Error as exc:
            raise StoreError(f"improve lock file {self.path} failed: {exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None)
        conn.execute(
            "CREATE TABLE IF NOT EXISTS improve_locks ("
            "name TEXT PRIMARY KEY, token TEXT NOT NULL, expires_at REAL NOT NULL)"
        )
        return conn

    def _insert(self, name: str, token: str, lease: float) -> bool:
        conn = self._connect()
        try:
            now = time.time()
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("DELETE FROM improve_locks WHERE expires_at <= ?", (now,))
                inserted = conn.execute(
                    "INSERT OR IGNORE INTO improve_locks VALUES (?, ?, ?)",
                    (name, token, now + lease),
                ).rowcount
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return inserted == 1
        finally:
            conn.close()

    def _renew(self, name: str, token: str, lease: float) -> bool:
        conn = self._connect()
        try:
            updated = conn.execute(
                "UPDATE improve_locks SET expires_at = ? WHERE name = ? AND token = ?",
                (time.time() + lease, name, token),
            ).rowcount
            return updated == 1
        finally:
            conn.close()

    def _delete(self, name: str, token: str) -> None:
        conn = self._connect()
        try:
            conn.execute("DELETE FROM improve_locks WHERE name = ? AND token = ?", (name, token))
        finally:
            conn.close()


# Compare-and-extend / compare-and-delete: only the token's owner may touch the key.
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class RedisLockBackend:
    """Token locks with an expiry on Redis, Valkey or a Redis Cluster.

    Args:
        client: a ``redis.asyncio`` client (standalone or cluster); not closed.
        namespace: keeps the locks of different stores apart.
    """

    def __init__(self, client: Any, namespace: str) -> None:
        self._client = client
        self._namespace = namespace

    def __repr__(self) -> str:
        return f"<RedisLockBackend {self._namespace}>"

    def key(self, name: str) -> str:
        """Return the Redis key of lock ``name`` (outside the store's prefix)."""
        return "sessionstore-improve-lock:" + lock_digest(self._namespace, name).hex()

    async def try_acquire(self, name: str, lease: float) -> HeldLock | None:
        """``SET NX PX``: take the lock unless another token holds it."""
        key, token, millis = self.key(name), uuid.uuid4().hex, max(1, round(lease * 1000))
        if not await self._call(self._client.set, key, token, nx=True, px=millis):
            return None

        async def renew() -> bool:
            return bool(await self._call(self._client.eval, _RENEW, 1, key, token, millis))

        async def delete() -> None:
            await self._call(self._client.eval, _RELEASE, 1, key, token)

        return LeasedLock(renew, delete, lease)

    @staticmethod
    async def _call(method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        exceptions = require("redis.exceptions", "redis")
        try:
            return await method(*args, **kwargs)
        except (exceptions.ConnectionError, exceptions.TimeoutError) as exc:
            raise StoreUnavailableError(f"improve lock: cannot reach Redis: {exc}") from exc
        except exceptions.RedisError as exc:
            raise StoreError(f"improve lock: Redis failed: {exc}") from exc


def _sqlalchemy() -> tuple[Any, Any]:
    """Return SQLAlchemy's ``exc`` module and ``text``, imported on first use."""
    return require("sqlalchemy.exc", "postgres"), require("sqlalchemy", "postgres").text


class _SQLHeld:
    def __init__(self, conn: Any, unlock: str, params: dict[str, Any]) -> None:
        self._conn: Any = conn
        self._unlock = unlock
        self._params = params

    async def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        exc, text = _sqlalchemy()
        try:
            try:
                await conn.execute(text(self._unlock), self._params)
                await conn.rollback()
            except exc.SQLAlchemyError:
                # Dropping the connection releases the server-side lock.
                await conn.invalidate()
            await conn.close()
        except exc.SQLAlchemyError as error:
            raise StoreError(f"improve lock: releasing failed: {error}") from error


class SQLLockBackend:
    """Server session locks on PostgreSQL (advisory) or MySQL/MariaDB (``GET_LOCK``).

    Each held lock keeps one connection of ``engine`` checked out; the server
    drops the lock with the connection, so a crashed holder frees it at once.

    Args:
        engine: a SQLAlchemy ``AsyncEngine``; not disposed.
        namespace: keeps the locks of different stores apart.
    """

    def __init__(self, engine: Any, namespace: str) -> None:
        self._engine = engine
        self._namespace = namespace
        if engine.dialect.name == "postgresql":
            self._lock = "SELECT pg_try_advisory_lock(:key)"
            self._unlock = "SELECT pg_advisory_unlock(:key)"
        else:
            self._lock = "SELECT GET_LOCK(:key, 0)"
            self._unlock = "SELECT RELEASE_LOCK(:key)"

    def __repr__(self) -> str:
        return f"<SQLLockBackend {self._engine.dialect.name} {self._namespace}>"

    def key(self, name: str) -> int | str:
        """Return the server's name for lock ``name``: a bigint or a short string."""
        digest = lock_digest(self._namespace, name)
        if self._engine.dialect.name == "postgresql":
            return int.from_bytes(digest[:8], "big", signed=True)
        return "sessionstore:" + digest[:24].hex()  # GET_LOCK names: at most 64 chars

    async def try_acquire(self, name: str, lease: float) -> HeldLock | None:
        """Take the server lock on a connection of its own, or return ``None``."""
        exc, text = _sqlalchemy()
        params = {"key": self.key(name)}
        try:
            conn = await self._engine.connect()
        except exc.SQLAlchemyError as error:
            raise StoreUnavailableError(f"improve lock: cannot connect: {error}") from error
        try:
            got = (await conn.execute(text(self._lock), params)).scalar()
        except BaseException as error:
            await conn.close()
            if isinstance(error, exc.SQLAlchemyError):
                raise StoreError(f"improve lock: taking the lock failed: {error}") from error
            raise
        if got not in (True, 1):
            await conn.close()
            return None
        return _SQLHeld(conn, self._unlock, params)


# -- factories for the built-in stores ------------------------------------------


def sqlite_locks(store: SessionStore) -> LockBackend | None:
    """Return locks beside a SQLite store's file; ``None`` for an in-memory database."""
    path = getattr(store, "path", None)
    if not isinstance(path, Path) or str(path) in {"", ":memory:"}:
        return None
    return SQLiteLockBackend(path)


def file_locks(store: SessionStore) -> LockBackend | None:
    """Return SQLite lock rows in ``<root>.locks``, beside a file store's directory."""
    root = getattr(store, "root", None)
    return SQLiteLockBackend(root) if isinstance(root, Path) else None


def _first_attribute(store: SessionStore, *names: str) -> Any:
    for name in names:
        value = getattr(store, name, None)
        if value is not None:
            return value
    return None


def redis_locks(store: SessionStore) -> LockBackend | None:
    """Return token locks on a Redis store's own client."""
    client = _first_attribute(store, "client", "_client")
    if not callable(getattr(client, "eval", None)):
        return None
    return RedisLockBackend(client, store.describe())


def sql_locks(store: SessionStore) -> LockBackend | None:
    """Return server locks on a PostgreSQL/MySQL store's own engine."""
    engine = _first_attribute(store, "engine", "_engine")
    if getattr(getattr(engine, "dialect", None), "name", None) not in _SQL_DIALECTS:
        return None
    return SQLLockBackend(engine, store.describe())
