"""What differs between PostgreSQL and MySQL/MariaDB: one object, chosen once per store.

:func:`load_dialect` picks the dialect from a URL scheme or an engine's
dialect name, checks that its extra is installed, and builds it for the
store's tables. Everything that differs lives on that object (in
``postgres.py`` or ``mysql.py``): its statements and how they are sent, its
DDL, its locks, its engine settings and its codec. The store, its connection,
its schema and its lock only ask it; nothing else tests which database it is.

This module imports no driver and no SQLAlchemy, so the store can be imported
(and a missing extra reported) without them.
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, NamedTuple

from sessionstore.errors import InvalidParameterError
from sessionstore.extras import EXTRAS, require

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from sqlalchemy import TextClause
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

    from sessionstore.backends.sql.codec import Codec, Row
    from sessionstore.backends.sql.item_statements import ItemStatements, ItemWrites
    from sessionstore.backends.sql.options import EngineOptions
    from sessionstore.backends.sql.schema import TableNames
    from sessionstore.backends.sql.statements import Statements

__all__ = [
    "FAMILIES",
    "Dialect",
    "Family",
    "TraceIdTakenError",
    "WriteKind",
    "family_of",
    "load_dialect",
]

WriteKind = Literal["entry", "trace", "graph"]
"""What a write adds to a session: an entry, a trace step, or its graph context."""


class TraceIdTakenError(InvalidParameterError):
    """A trace write found its id in the session (the UNIQUE index refused it); nothing written.

    ``SQLStore._save_trace`` turns it into ``False``; it is an
    InvalidParameterError so that the connection passes it on untranslated.
    """


class Family(NamedTuple):
    """A database family: where its dialect lives and what it needs installed."""

    name: str
    """The dialect's name, also ``SQLStore.dialect``."""
    module: str
    """The module of this package holding the dialect."""
    extra: str
    """The extra that installs SQLAlchemy and its driver."""
    url_scheme: str
    """SQLAlchemy's name for the database and driver."""


_POSTGRES = Family("postgresql", "postgres", "postgres", "postgresql+asyncpg")
_MYSQL = Family("mysql", "mysql", "mysql", "mysql+asyncmy")
FAMILIES: Final = {
    "postgresql": _POSTGRES,
    "postgres": _POSTGRES,
    "mysql": _MYSQL,
    "mariadb": _MYSQL,
}
"""URL schemes and SQLAlchemy dialect names -> their family."""


def family_of(name: str) -> Family:
    """Return the family of a URL scheme or SQLAlchemy dialect name.

    A scheme may name the driver as SQLAlchemy does (``postgresql+asyncpg``,
    ``mysql+asyncmy``), only the one the family ships.

    Raises:
        InvalidParameterError: not PostgreSQL, MySQL or MariaDB, or another driver.

    """
    base, plus, driver = name.lower().partition("+")
    family = FAMILIES.get(base)
    if family is None:
        raise InvalidParameterError(
            f"expected a postgresql://, postgres://, mysql:// or mariadb:// URL, got {name!r}"
        )
    ours = family.url_scheme.partition("+")[2]
    if plus and driver != ours:
        raise InvalidParameterError(
            f"sessionstore reaches {base} through the {ours} driver only (the "
            f"'{family.extra}' extra); use {base}:// or {base}+{ours}://, not {name}://"
        )
    return family


def load_dialect(name: str, table_prefix: str) -> Dialect:
    """Return the dialect of ``name`` (a URL scheme or dialect name) for one namespace.

    Raises:
        InvalidParameterError: not PostgreSQL, MySQL or MariaDB.
        MissingDependencyError: SQLAlchemy or the driver is not installed.

    """
    family = family_of(name)
    for package in EXTRAS[family.extra]:
        require(package, family.extra)
    module = importlib.import_module(f"sessionstore.backends.sql.{family.module}")
    dialect: Dialect = module.DIALECT(table_prefix)
    return dialect


class Dialect(abc.ABC):
    """One database family's SQL, locks, engine settings and codec, for one namespace.

    Subclasses set the class attributes, build :attr:`sql` and implement the
    steps. Each step sends its statements in one round trip on a connection
    of ``engine`` and lets driver errors through: the caller (the store's
    connection) retries and translates them.
    """

    name: ClassVar[str]
    """``"postgresql"`` or ``"mysql"`` (MariaDB included)."""
    codec: ClassVar[Codec]
    """How this database's columns hold keys, texts and entries."""
    migrations: ClassVar[tuple[str, ...]]
    """DDL taking a namespace from version ``i`` to ``i + 1``; ``{t}`` is its TableNames."""
    table_columns: ClassVar[str]
    """SQL returning ``(table_name, column_name)`` of each existing table of ``{names}``.

    ``{names}`` is replaced by the tables' names as quoted SQL literals; the
    tables are the ones the store's unqualified names resolve to.
    """
    current_database: ClassVar[str]
    """SQL returning the name of the connection's database."""
    improve_lock: ClassVar[str]
    """SQL taking the server lock ``:key`` now on this connection; true when taken."""
    improve_unlock: ClassVar[str]
    """SQL releasing the server lock ``:key`` this connection holds."""
    clears_by_pairs: ClassVar[bool]
    """An import batch clears its sessions' rows with one statement per table
    naming every session (``Statements.batch_clear``), rather than one
    execution per session (``clear_children``, which the driver may pipeline).
    """

    tables: TableNames
    sql: Statements
    item_sql: ItemStatements
    """The item and state reads (``item_statements.py``)."""
    items: ItemWrites
    """The item and state writes (``postgres_items.py``, ``mysql_items.py``)."""

    @abc.abstractmethod
    def engine_arguments(self, options: EngineOptions) -> dict[str, Any]:
        """Return the ``create_async_engine`` arguments this database needs."""

    @abc.abstractmethod
    def watch(self, engine: AsyncEngine) -> None:
        """Add this database's pool listeners to an engine the store built."""

    def unwatch(self, engine: AsyncEngine) -> None:  # noqa: B027 - most dialects add none
        """Remove what :meth:`field_limit` added to ``engine`` (one the store borrowed)."""

    @abc.abstractmethod
    async def field_limit(self, engine: AsyncEngine) -> int | None:
        """Read the server's limits when the store opens, and watch ``engine`` for them.

        Any engine, built or borrowed, gets the listeners that enforce them.

        Returns:
            The largest text field one write can always carry, when the
            server allows less than ``max_field_bytes``'s default; ``None``
            when it has no such limit.

        """

    @abc.abstractmethod
    def migration_lock(
        self, engine: AsyncEngine, lock_timeout: float, where: str
    ) -> AbstractAsyncContextManager[AsyncConnection]:
        """Hold the namespace's migration lock; yield the connection to migrate on.

        Raises:
            StoreError: the lock was not granted within ``lock_timeout`` seconds.

        """

    @abc.abstractmethod
    def improve_lock_key(self, digest: bytes) -> int | str:
        """Return the server's name for the improve lock of ``digest`` (``:key``)."""

    @abc.abstractmethod
    async def rows(
        self, engine: AsyncEngine, statement: TextClause, params: Mapping[str, Any]
    ) -> list[Row]:
        """Run one read of :attr:`sql`; return its rows, read by column name."""

    @abc.abstractmethod
    async def rowcount(
        self, engine: AsyncEngine, statement: TextClause, params: Mapping[str, Any]
    ) -> int:
        """Run one write of :attr:`sql` in its own transaction; return the rows it changed."""

    @abc.abstractmethod
    async def write(self, engine: AsyncEngine, kind: WriteKind, params: Mapping[str, Any]) -> bool:
        """Add to a session (upserting its row and sliding its expiry).

        ``params`` holds the key, ``now`` and ``exp``, and the entry's columns,
        the trace step's ``step`` and ``trace_digest`` or the graph's ``context``.

        Returns:
            ``False`` when the session had expired and nothing was written;
            the expired session is gone then, and the caller tries again.

        Raises:
            TraceIdTakenError: the live session holds the trace step's id; nothing
                was written.

        """

    @abc.abstractmethod
    async def update(
        self, engine: AsyncEngine, columns: Iterable[str], params: Mapping[str, Any]
    ) -> bool:
        """Change ``columns`` of entry ``:id`` of a live session; ``False`` if not found."""

    @abc.abstractmethod
    async def delete_entry(self, engine: AsyncEngine, params: Mapping[str, Any]) -> bool:
        """Delete entry ``:id`` of a live session (and the session if it was all it held)."""
