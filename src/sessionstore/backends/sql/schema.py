"""The SQL backend's tables, and the migration logic both dialects share.

Each dialect holds its own DDL (``Dialect.migrations[i]`` takes a namespace
from schema version ``i`` to ``i + 1``) and its own migration lock.
:meth:`Schema.migrate` runs the missing steps while holding that lock, so two
processes opening an empty database at once migrate it exactly once and both
end up working.

Key columns are bounded and compare exactly (``varchar(256) COLLATE "C"`` on
PostgreSQL, ``VARBINARY(1024)`` holding UTF-8 on MySQL/MariaDB: no case,
accent or PAD SPACE folding). Times are microseconds since the Unix epoch,
so they round-trip exactly whatever the server's time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import text

from sessionstore.errors import StoreError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from sessionstore.backends.sql.connection import SQLConnection
    from sessionstore.backends.sql.dialect import Dialect

__all__ = ["SCHEMA_VERSION", "Schema", "TableNames"]

SCHEMA_VERSION = 1
"""The version this code reads and writes; ``len(dialect.migrations)`` for every dialect."""


@dataclass(frozen=True, slots=True)
class TableNames:
    """The names of one namespace's tables: ``<table_prefix><table>``."""

    prefix: str

    @property
    def sessions(self) -> str:
        """Sessions: sequence counters, counts, times, expiry."""
        return f"{self.prefix}sessions"

    @property
    def entries(self) -> str:
        """Question/answer entries keyed by (user, session, seq)."""
        return f"{self.prefix}entries"

    @property
    def graph(self) -> str:
        """One graph context per session."""
        return f"{self.prefix}graph_contexts"

    @property
    def traces(self) -> str:
        """Agent trace steps keyed by (user, session, seq)."""
        return f"{self.prefix}trace_steps"

    @property
    def version(self) -> str:
        """The schema version of this namespace."""
        return f"{self.prefix}schema_version"

    @property
    def children(self) -> tuple[str, str, str]:
        """The tables whose rows belong to a session row."""
        return (self.entries, self.graph, self.traces)


def _check_not_newer(version: int, where: str) -> None:
    """Refuse a database migrated by a newer sessionstore.

    Raises:
        StoreError: ``version`` is above :data:`SCHEMA_VERSION`.

    """
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{where} is at schema version {version}, newer than this sessionstore "
            f"understands (version {SCHEMA_VERSION}); upgrade sessionstore to use it"
        )


class Schema:
    """Reads, migrates and drops one namespace's tables through the store's connection.

    Args:
        connection: the store's connection (engine, retries, errors).
        dialect: the store's dialect (its DDL and its migration lock).
        lock_timeout: seconds to wait for another process's migration.

    """

    def __init__(self, connection: SQLConnection, dialect: Dialect, lock_timeout: float) -> None:
        self._connection = connection
        self._dialect = dialect
        self._lock_timeout = lock_timeout

    @property
    def tables(self) -> TableNames:
        """The namespace's table names."""
        return self._dialect.tables

    async def prepare(self, *, auto_migrate: bool) -> str:
        """Check the namespace's version, migrating it if allowed; return the database's name.

        Raises:
            StoreError: the database is newer than this code, older and
                ``auto_migrate`` is off, or it failed.

        """
        current, database = await self._inspect()
        where = self._connection.where
        _check_not_newer(current, where)
        if current < SCHEMA_VERSION:
            if not auto_migrate:
                raise StoreError(
                    f"{where} is at schema version {current}, this sessionstore needs "
                    f"{SCHEMA_VERSION}; run `await store.migrate()` or open the store "
                    "with auto_migrate=True"
                )
            await self.migrate()
        return database

    async def _inspect(self) -> tuple[int, str]:
        """Return the namespace's schema version (0: no tables yet) and the database's name."""

        async def op() -> tuple[int, str]:
            async with self._connection.engine.connect() as conn:
                version = await self._read_version(conn)
                database = await conn.scalar(text(self._dialect.current_database))
            return version, str(database)

        return await self._connection.run(op)

    async def _read_version(self, conn: AsyncConnection) -> int:
        name = self.tables.version
        if not await conn.scalar(text(self._dialect.table_exists), {"name": name}):
            return 0
        version = await conn.scalar(text(f"SELECT version FROM {name} WHERE id = 1"))
        return int(version or 0)

    async def migrate(self) -> None:
        """Bring the namespace to :data:`SCHEMA_VERSION`, once, under the dialect's lock.

        Raises:
            StoreError: the database is newer than this code, the lock was
                not granted within ``lock_timeout`` seconds, or it failed.

        """

        async def op() -> None:
            where = self._connection.where
            lock = self._dialect.migration_lock(self._connection.engine, self._lock_timeout, where)
            async with lock as conn:
                await self._apply(conn, where)

        await self._connection.run(op)

    async def _apply(self, conn: AsyncConnection, where: str) -> None:
        """Run the missing steps; the caller holds the migration lock."""
        tables = self.tables
        await conn.execute(
            text(
                f"CREATE TABLE IF NOT EXISTS {tables.version} "
                "(id INT PRIMARY KEY, version INT NOT NULL)"
            )
        )
        version = await self._read_version(conn)
        _check_not_newer(version, where)
        for step in self._dialect.migrations[version:]:
            for statement in step.format(t=tables).split(";"):
                if statement.strip():
                    await conn.execute(text(statement.strip()))
            version += 1
            await conn.execute(text(f"DELETE FROM {tables.version}"))
            await conn.execute(
                text(f"INSERT INTO {tables.version} (id, version) VALUES (1, :v)"), {"v": version}
            )

    async def drop(self) -> None:
        """Drop every table of the namespace (children first); missing ones are fine.

        Raises:
            StoreError: the database failed.

        """

        async def op() -> None:
            async with self._connection.engine.begin() as conn:
                for name in (*self.tables.children, self.tables.sessions, self.tables.version):
                    await conn.execute(text(f"DROP TABLE IF EXISTS {name}"))

        await self._connection.run(op)
