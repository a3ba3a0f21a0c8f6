"""The SQL backend's tables, and the migration logic both dialects share.

Each dialect holds its own DDL (``Dialect.migrations[i]`` takes a namespace
from schema version ``i`` to ``i + 1``) and its own migration lock.
:meth:`Schema.migrate` runs the missing steps while holding that lock, so two
processes opening an empty database at once migrate it exactly once and both
end up working.

A store never writes to, deletes from or drops a table it did not create.
Its tables are recognised by their shape: ``<prefix>schema_version`` with
exactly the columns ``id`` and ``version`` and the row ``id = 1``, and each
other table with the columns every version of it has (:data:`IDENTITY`). A
namespace holding any table of ours by name that fails this (an
application's own ``entries`` table, say) is refused with a
:class:`~sessionstore.errors.StoreError` before anything is written, by
:meth:`Schema.prepare`, :meth:`Schema.migrate` and :meth:`Schema.drop` alike.

Key columns are bounded and compare exactly (``varchar(256) COLLATE "C"`` on
PostgreSQL, ``VARBINARY(1024)`` holding UTF-8 on MySQL/MariaDB: no case,
accent or PAD SPACE folding). Times are microseconds since the Unix epoch,
so they round-trip exactly whatever the server's time zone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from sqlalchemy import text

from sessionstore.errors import StoreError
from sessionstore.observe import logger_for

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from sessionstore.backends.sql.connection import SQLConnection
    from sessionstore.backends.sql.dialect import Dialect

__all__ = [
    "IDENTITY",
    "ITEMS_VERSION",
    "SCHEMA_VERSION",
    "SINCE",
    "VERSION_COLUMNS",
    "Found",
    "Schema",
    "TableNames",
]

_log = logger_for(__name__)

SCHEMA_VERSION = 3
"""The version this code reads and writes; ``len(dialect.migrations)`` for every dialect.

1: the tables. 2: ``trace_steps.trace_digest`` and its UNIQUE index (a trace
id is unique within its session). 3: the item log and the states
(:data:`ITEMS_VERSION`).
"""

ITEMS_VERSION: Final = 3
"""The version whose step adds the item log and the states (issue #14)."""

VERSION_COLUMNS: Final = frozenset({"id", "version"})
"""The columns of ``<prefix>schema_version``, exactly."""
_ADD_COLUMN: Final = re.compile(r"ALTER TABLE (\w+) ADD COLUMN (\w+) ", re.IGNORECASE)

IDENTITY: Final[Mapping[str, frozenset[str]]] = {
    "sessions": frozenset(
        {"user_key", "session_key", "expires_at", "next_seq", "qa_count", "trace_seq"}
    ),
    "entries": frozenset({"user_key", "session_key", "seq", "entry_id", "created_at"}),
    "graph_contexts": frozenset({"user_key", "session_key", "context"}),
    "trace_steps": frozenset({"user_key", "session_key", "seq", "step"}),
    "items": frozenset({"user_key", "session_key", "seq", "item_id", "created_at", "data"}),
    "scoped_states": frozenset({"kind", "name", "state", "revision"}),
}
"""Per table (without its prefix), columns every version of it has: how it is known as ours."""

SINCE: Final[Mapping[str, int]] = {"items": ITEMS_VERSION, "scoped_states": ITEMS_VERSION}
"""Tables a later step created (without their prefix): the version from which they exist."""


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
    def items(self) -> str:
        """Item log entries keyed by (user, session, seq)."""
        return f"{self.prefix}items"

    @property
    def scoped(self) -> str:
        """The states of users and apps, keyed by (kind, name)."""
        return f"{self.prefix}scoped_states"

    @property
    def version(self) -> str:
        """The schema version of this namespace."""
        return f"{self.prefix}schema_version"

    @property
    def children(self) -> tuple[str, ...]:
        """The tables whose rows belong to a session row."""
        return (self.entries, self.graph, self.traces, self.items)

    @property
    def every(self) -> tuple[str, ...]:
        """Every table of the namespace, in the order they can be dropped."""
        return (*self.children, self.sessions, self.scoped, self.version)


@dataclass(frozen=True, slots=True)
class Found:
    """What a namespace holds now."""

    columns: Mapping[str, frozenset[str]]
    """The namespace's table names that exist, each with its columns."""
    version: int | None
    """The version row of ``<prefix>schema_version``; ``None`` when there is none."""


def _made_already(statement: str, found: Found) -> bool:
    """Return whether ``statement`` adds a column ``found`` shows (a step that stopped halfway).

    MySQL's DDL is not transactional: a step interrupted after one of its
    ``ALTER TABLE ... ADD COLUMN`` statements runs again from its start on
    the next open, and MySQL has no ``ADD COLUMN IF NOT EXISTS``.
    """
    added = _ADD_COLUMN.match(statement.strip())
    return added is not None and added.group(2).lower() in found.columns.get(added.group(1), ())


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
        """Check the namespace's tables and version, migrating if allowed; return the database.

        Raises:
            StoreError: tables of the namespace's names that sessionstore did
                not create; a database newer than this code, or older and
                ``auto_migrate`` off; or it failed.

        """

        async def op() -> tuple[Found, str]:
            async with self._connection.engine.connect() as conn:
                found = await self._inspect(conn)
                database = await conn.scalar(text(self._dialect.current_database))
            return found, str(database)

        found, database = await self._connection.run(op, idempotent=True)
        if self._not_ours(found) is None and found.version == SCHEMA_VERSION:
            return database
        # Anything else is decided under the migration lock: another process
        # may be halfway through creating the tables right now.
        await self._under_lock(migrate=auto_migrate)
        return database

    async def migrate(self) -> None:
        """Bring the namespace to :data:`SCHEMA_VERSION`, once, under the dialect's lock.

        Raises:
            StoreError: tables of the namespace's names that sessionstore did
                not create; a database newer than this code; the lock was
                not granted within ``lock_timeout`` seconds; or it failed.

        """
        await self._under_lock(migrate=True)

    async def _under_lock(self, *, migrate: bool) -> None:
        where = self._connection.where

        async def op() -> None:
            lock = self._dialect.migration_lock(self._connection.engine, self._lock_timeout, where)
            async with lock as conn:
                found = await self._inspect(conn)
                self._refuse_if_not_ours(found)
                version = found.version or 0
                _check_not_newer(version, where)
                if version == SCHEMA_VERSION:
                    return
                if not migrate:
                    raise StoreError(
                        f"{where} is at schema version {version}, this sessionstore needs "
                        f"{SCHEMA_VERSION}; run `await store.migrate()` or open the store "
                        "with auto_migrate=True"
                    )
                await self._apply(conn, found, version)

        # Waiting for the lock is part of it: lock_timeout on top of the usual deadline.
        await self._connection.run(op, limit=self._lock_timeout + self._connection.command_timeout)

    async def _inspect(self, conn: AsyncConnection) -> Found:
        """Return which of the namespace's tables exist, their columns, and its version."""
        every = self.tables.every
        # The names are ours (validated prefix, fixed suffixes): safe to inline as literals.
        names = ", ".join(f"'{name}'" for name in every)
        listed = await conn.execute(text(self._dialect.table_columns.format(names=names)))
        columns: dict[str, set[str]] = {}
        for table, column in listed.all():
            if str(table) in every:  # exactly: MySQL matches names ignoring case
                columns.setdefault(str(table), set()).add(str(column).lower())
        found = {name: frozenset(its) for name, its in columns.items()}
        version = None
        if found.get(self.tables.version) == VERSION_COLUMNS:
            row = await conn.scalar(text(f"SELECT version FROM {self.tables.version} WHERE id = 1"))
            version = None if row is None else int(row)
        return Found(found, version)

    def _not_ours(self, found: Found) -> str | None:
        """Return why the namespace's existing tables are not all sessionstore's, or ``None``."""
        t = self.tables
        if not found.columns:
            return None
        version_columns = found.columns.get(t.version)
        if version_columns is None:
            return f"there is no {t.version} table to say sessionstore created them"
        if version_columns != VERSION_COLUMNS:
            return f"{t.version} has the columns {', '.join(sorted(version_columns))}"
        if found.version is None:
            return f"{t.version} holds no version row"
        if found.version > SCHEMA_VERSION:
            return None  # a newer sessionstore's tables: refused as such, never as foreign
        for suffix, identity in IDENTITY.items():
            name = t.prefix + suffix
            columns = found.columns.get(name)
            if columns is None:
                if found.version < SINCE.get(suffix, 1):
                    continue  # not made yet, or a migration stopped halfway (MySQL's DDL)
                return f"{name} is missing"
            if not identity <= columns:
                return f"{name} lacks the columns {', '.join(sorted(identity - columns))}"
        return None

    def _refuse_if_not_ours(self, found: Found) -> None:
        """Refuse a namespace whose existing tables sessionstore did not create.

        Raises:
            StoreError: a table of the namespace's names is not sessionstore's.

        """
        why = self._not_ours(found)
        if why is not None:
            raise StoreError(
                f"{self._connection.where}: the database already holds the tables "
                f"{', '.join(sorted(found.columns))}, which sessionstore did not create ({why}); "
                "it never writes to, deletes from or drops a table it did not create. Open the "
                "store with another table_prefix (or, if an interrupted sessionstore migration "
                "left them, drop them by hand)"
            )

    async def _apply(self, conn: AsyncConnection, found: Found, version: int) -> None:
        """Run the steps after ``version``; the caller holds the lock and checked ``found``."""
        tables = self.tables
        if tables.version not in found.columns:
            # The version row first: from now on the namespace says it is ours.
            await conn.execute(
                text(f"CREATE TABLE {tables.version} (id INT PRIMARY KEY, version INT NOT NULL)")
            )
            await conn.execute(text(f"INSERT INTO {tables.version} (id, version) VALUES (1, 0)"))
        for step in self._dialect.migrations[version:]:
            _log.info(
                "migrating %s from schema version %d to %d",
                self._connection.where,
                version,
                version + 1,
            )
            for statement in step.format(t=tables).split(";"):
                if statement.strip() and not _made_already(statement, found):
                    await conn.execute(text(statement.strip()))
            version += 1
            await conn.execute(
                text(f"UPDATE {tables.version} SET version = :v WHERE id = 1"), {"v": version}
            )

    async def drop(self) -> None:
        """Drop every table of the namespace (children first); missing ones are fine.

        Raises:
            StoreError: a table of the namespace's names is not sessionstore's
                (then nothing is dropped), or the database failed.

        """

        async def op() -> None:
            async with self._connection.engine.begin() as conn:
                found = await self._inspect(conn)
                self._refuse_if_not_ours(found)
                for name in self.tables.every:
                    if name in found.columns:
                        await conn.execute(text(f"DROP TABLE IF EXISTS {name}"))

        await self._connection.run(op)
