"""``postgresql://``, ``mysql://``, ``mariadb://``: SQLAlchemy 2 asyncio Core.

PostgreSQL goes through ``asyncpg`` (extra ``postgres``), MySQL and MariaDB
through ``asyncmy`` (extra ``mysql``). A store has three parts, chosen or
built once: its dialect (``postgres.py`` or ``mysql.py``: the statements and
how they are sent, the DDL, the locks, the codec), its connection
(``connection.py``: the engine, retries, error translation) and its schema
(``schema.py``: the tables and migrations); it sweeps expired sessions with
``sweep.py`` and shares ``improve_lock`` through ``lock.py``. This module
holds the options and the contract's steps.

Every hot call is one round trip: one statement on PostgreSQL, one
multi-statement batch on MySQL/MariaDB.
"""

from __future__ import annotations

import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Self, TypeVar

from sessionstore.backend_steps import SESSIONS_AT_ONCE
from sessionstore.backends.sql.dialect import (
    TraceIdTakenError,
    WriteKind,
    family_of,
    load_dialect,
)
from sessionstore.backends.sql.item_steps import SQLItemSteps
from sessionstore.backends.sql.options import (
    DRIVER_OPTIONS,
    OPTIONS,
    EngineOptions,
    StoreOptions,
    check_driver_options,
)
from sessionstore.backends.sql.sweep import Sweeper
from sessionstore.clock import now_utc, to_micros
from sessionstore.errors import InvalidParameterError, StoreError
from sessionstore.keys import AllUsers, PageCursor, SessionKey
from sessionstore.models import SessionInfo, SessionQAEntry, SessionTraceStep
from sessionstore.records import SessionData, SessionRows
from sessionstore.store import SessionStore
from sessionstore.stored import compact_json, trace_from_json
from sessionstore.urls import redact_url, split_options

if TYPE_CHECKING:
    import asyncio

    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

    from sessionstore.backends.sql.codec import Row
    from sessionstore.locks import LockBackend

__all__ = ["SQLStore"]

T = TypeVar("T")
_KEYS_PAGE = 500
_PREFIX = re.compile(r"[a-z][a-z0-9_]{0,31}")


def _dialect_name(engine: object) -> str:
    """Return the dialect name of a SQLAlchemy ``AsyncEngine``.

    Raises:
        InvalidParameterError: ``engine`` is anything else.

    """
    # An AsyncEngine exists only once its module is imported: looking there imports nothing.
    module = sys.modules.get("sqlalchemy.ext.asyncio")
    engine_type = getattr(module, "AsyncEngine", None)
    if engine_type is None or not isinstance(engine, engine_type):
        raise InvalidParameterError(
            f"engine must be a SQLAlchemy AsyncEngine, got {type(engine).__name__}"
        )
    name: str = engine.dialect.name
    return name


class SQLStore(SQLItemSteps, SessionStore):
    """Sessions in PostgreSQL, MySQL or MariaDB tables named ``<table_prefix>*``.

    Build it with :func:`sessionstore.open_store` (``postgresql://user:pw@host/db``,
    ``mysql://...``, ``mariadb://...``), or ``SQLStore(engine=my_async_engine)``
    to share an application's engine. Every option is checked here, before
    any I/O.

    Args:
        url: ``postgresql://user:pw@host/db``, ``mysql://...`` or
            ``mariadb://...``; ignored when ``engine`` is given.
        engine: an ``AsyncEngine`` to use instead of building one; the store
            never disposes it. It belongs to the application's event loop: the
            store uses it as it is, from whatever loop calls. A store that builds
            its own builds one per event loop, so it works from any loop and
            thread (``loops.py``).
        table_prefix: namespace of this store's tables (lowercase letters,
            digits, ``_``; up to 32 characters).
        auto_migrate: create or upgrade the schema on first use; with
            ``False`` an old schema raises :class:`StoreError` until
            :meth:`migrate` is called.
        pool_size, max_overflow, pool_timeout, pool_recycle: the pool of the
            engine the store builds (timeouts in seconds).
        connect_timeout: seconds a new connection may take, handshake and
            login included.
        command_timeout: seconds one call may take in all (waiting for a
            connection, connecting, its statements, its retries); past it
            the call raises StoreUnavailableError and the connection it was
            using is closed, not returned to the pool.
        pre_ping: ping a pooled connection before use when it sat idle for
            more than ``engine.PING_IDLE`` (5) seconds, so a server restart
            or a silently dropped connection costs no failed call. A busy
            connection is not pinged (no extra round trip); one the server
            closed is replaced at checkout either way. Reads on a connection
            that died anyway are retried once; writes fail with
            StoreUnavailableError.
        lock_timeout: seconds to wait for another process's migration.
        retries: how often a deadlock or serialization failure is retried.
        sweep_interval: seconds between background sweeps of expired sessions.
        sweep_batch: sessions deleted per sweep statement.
        connect_args: extra keyword arguments for the driver's ``connect``,
            passed as they are after every other; keyword only, not in URLs.
        **driver: the driver's connection options (TLS, charset, timeouts,
            names: ``options.DRIVER_OPTIONS`` lists each family's, and
            ``docs/backends/sql.md`` says what each does), for an engine the
            store builds; in the URL or as keywords.
        ttl, max_field_bytes: see :class:`SessionStore`. On MySQL/MariaDB,
            ``max_field_bytes`` left unset is lowered at open to what the
            server's ``max_allowed_packet`` always carries.
        slow_call_ms, otel_ids: see :class:`SessionStore`.

    Raises:
        InvalidParameterError: a bad option (see ``options.py`` for each rule).
        MissingDependencyError: the ``postgres`` or ``mysql`` extra is missing.

    """

    def __init__(
        self,
        url: str | None = None,
        *,
        engine: AsyncEngine | None = None,
        table_prefix: str = "",
        auto_migrate: bool = True,
        pool_size: int = 5,
        max_overflow: int = 10,
        pool_timeout: float = 10.0,
        pool_recycle: float = 1800.0,
        connect_timeout: float = 5.0,
        command_timeout: float = 30.0,
        pre_ping: bool = True,
        lock_timeout: float = 60.0,
        retries: int = 5,
        sweep_interval: float = 60.0,
        sweep_batch: int = 500,
        connect_args: dict[str, Any] | None = None,
        **more: Any,
    ) -> None:
        if engine is not None:
            family = family_of(_dialect_name(engine))
        elif isinstance(url, str):
            family = family_of(url.partition("://")[0] if "://" in url else "")
        else:
            raise InvalidParameterError("SQLStore needs a url (a str) or an engine")
        passed = DRIVER_OPTIONS[family.name]
        driver = {name: value for name, value in more.items() if name in passed}
        base = {name: value for name, value in more.items() if name not in passed}
        if driver and engine is not None:
            raise InvalidParameterError(
                f"driver options ({', '.join(sorted(driver))}) apply to an engine the store "
                "builds; give them to your own engine (create_async_engine's connect_args)"
            )
        super().__init__(**base)
        self._field_limit_given = "max_field_bytes" in base
        if not isinstance(table_prefix, str) or (
            table_prefix and not _PREFIX.fullmatch(table_prefix)
        ):
            raise InvalidParameterError(
                "table_prefix must be lowercase letters, digits and '_', starting with a "
                f"letter, at most 32 characters; got {table_prefix!r}"
            )
        options = StoreOptions(
            auto_migrate, command_timeout, lock_timeout, retries, sweep_interval, sweep_batch
        )
        self._engine_options = EngineOptions(
            pool_size,
            max_overflow,
            pool_timeout,
            pool_recycle,
            connect_timeout,
            pre_ping,
            {} if connect_args is None else connect_args,
            check_driver_options(family.name, driver),
        )
        if engine is not None:
            dialect = load_dialect(_dialect_name(engine), table_prefix)
            shown = redact_url(engine.url.render_as_string(hide_password=True))
        else:
            dialect = load_dialect(family.name, table_prefix)
            shown = redact_url(url)
        # These import SQLAlchemy: only now that load_dialect found the extra installed.
        from sessionstore.backends.sql.connection import SQLConnection  # noqa: PLC0415
        from sessionstore.backends.sql.schema import Schema  # noqa: PLC0415

        self.dialect: str = dialect.name
        """``"postgresql"`` or ``"mysql"`` (MariaDB included)."""
        # OpenTelemetry's db.system.name: MariaDB when its URL scheme says so.
        self._db_system_name = "mariadb" if shown.startswith("mariadb") else dialect.name
        self.tables = dialect.tables
        self.auto_migrate = options.auto_migrate
        self._dialect = dialect
        self._codec = dialect.codec
        self._sql = dialect.sql
        self._db = SQLConnection(
            dialect,
            f"{shown} table_prefix={table_prefix!r}",
            url=None if engine is not None else url,
            engine=engine,
            options=self._engine_options,
            retries=options.retries,
            command_timeout=options.command_timeout,
        )
        self._schema = Schema(self._db, dialect, options.lock_timeout)
        self._sweeping = Sweeper(
            self._db,
            dialect.sql.sweep,
            interval=options.sweep_interval,
            batch=options.sweep_batch,
            background=self.ttl is not None,
        )
        self._database = ""  # the database's own name, read on open: the locks' namespace

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Self:
        """Build a store from a URL; options may also be URL query parameters.

        Raises:
            InvalidParameterError: an unknown or bad option.
            MissingDependencyError: the ``postgres`` or ``mysql`` extra is missing.

        """
        scheme, sep, _ = url.partition("://") if isinstance(url, str) else ("", "", "")
        family = family_of(scheme if sep else "")  # no "://": nothing of it shown
        passed = {name: option.parse for name, option in DRIVER_OPTIONS[family.name].items()}
        base_url, merged = split_options(url, options, OPTIONS, driver=passed)
        return cls(base_url, **merged)

    def describe(self) -> str:
        """Return the database URL without its password, and the table prefix."""
        return self._db.where

    def _lock_backend(self) -> LockBackend | None:
        """Return server locks named by this store's database and table prefix."""
        from sessionstore.backends.sql.lock import SQLLockBackend  # noqa: PLC0415 - see __init__

        namespace = compact_json([self._database, self.tables.prefix])
        return SQLLockBackend(self._db, self._dialect, namespace)

    # -- lifecycle and maintenance ------------------------------------------

    async def _open(self) -> None:
        self._database = await self._schema.prepare(auto_migrate=self.auto_migrate)
        largest = await self._db.run(
            lambda: self._dialect.field_limit(self._db.engine), idempotent=True
        )
        if largest is not None and not self._field_limit_given:
            self.max_field_bytes = min(self.max_field_bytes, largest)
        if getattr(self._db.engine.dialect, "is_mariadb", False):  # known once connected
            self._db_system_name = "mariadb"
        self._sweeping.start()

    async def migrate(self) -> None:
        """Create or upgrade this namespace's tables now (safe from many processes).

        Raises:
            StoreError: the database is newer than this code, or it failed.

        """
        if self._state == "closed":
            raise StoreError(f"{self!r} is closed; open a new store")
        await self._schema.migrate()

    async def drop_tables(self) -> None:
        """Drop this namespace's tables, schema version included (tests, uninstall).

        Raises:
            StoreError: the database failed.

        """
        if self._state == "closed":
            raise StoreError(f"{self!r} is closed; open a new store")
        await self._schema.drop()

    async def close(self) -> None:
        """Release the pool (only if the store built the engine); idempotent."""
        await super().close()
        # migrate() and drop_tables() may have built the engine without opening.
        await self._close()

    async def _close(self) -> None:
        await self._sweeping.close()
        await self._db.dispose()

    async def sweep_expired(self, max_batches: int | None = None) -> int:
        """Delete expired sessions in bounded, indexed batches; return how many.

        Args:
            max_batches: stop after this many ``sweep_batch``-sized deletes.

        Raises:
            StoreError: the database failed.

        """
        await self._ready()
        return await self._sweeping.sweep(max_batches)

    # The parts of the connection and the sweeper that the backend's tests reach.

    def _get_engine(self) -> AsyncEngine:
        return self._db.engine

    async def _run(self, op: Callable[[], Awaitable[T]], *, idempotent: bool = False) -> T:
        return await self._db.run(op, idempotent=idempotent)

    @property
    def _sweeper(self) -> asyncio.Task[int] | None:
        return self._sweeping.task

    # -- parameters --------------------------------------------------------------

    @staticmethod
    def _now() -> int:
        return to_micros(now_utc())

    def _params(self, key: SessionKey) -> dict[str, Any]:
        """Return the session's key, the time now, and when a write now makes it expire."""
        now = self._now()
        exp = None if self.ttl is None else now + int(self.ttl * 1_000_000)
        return {
            "u": self._codec.key(key.user_id),
            "s": self._codec.key(key.session_id),
            "now": now,
            "exp": exp,
        }

    # -- writes ----------------------------------------------------------------

    async def _write(self, kind: WriteKind, params: dict[str, Any]) -> None:
        """Add an entry, a trace step or the graph context, with its session row."""

        async def op() -> None:
            for _ in range(3):
                if await self._dialect.write(self._db.engine, kind, params):
                    return
            raise StoreError(f"{self.describe()}: the session kept expiring during a write")

        await self._db.run(op)
        self._sweeping.wrote()

    async def _append(self, key: SessionKey, entry: SessionQAEntry) -> None:
        await self._write("entry", {**self._params(key), **self._codec.entry_row(entry)})

    async def _save_trace(self, key: SessionKey, step: SessionTraceStep) -> bool:
        try:
            await self._write("trace", {**self._params(key), **self._codec.trace_row(step)})
        except TraceIdTakenError:
            return False
        return True

    async def _set_graph_context(self, key: SessionKey, context: str) -> None:
        await self._write("graph", {**self._params(key), "context": self._codec.text_in(context)})

    async def _update(self, key: SessionKey, qa_id: str, changes: dict[str, Any]) -> bool:
        columns = self._codec.changes(changes)
        params = {**self._params(key), "id": qa_id, **columns}
        found = await self._db.run(lambda: self._dialect.update(self._db.engine, columns, params))
        self._sweeping.wrote()
        return found

    async def _delete_entry(self, key: SessionKey, qa_id: str) -> bool:
        params = {**self._params(key), "id": qa_id}
        return await self._db.run(lambda: self._dialect.delete_entry(self._db.engine, params))

    async def _delete_session(self, key: SessionKey) -> bool:
        return await self._db.rowcount(self._sql.delete_live, self._params(key)) > 0

    async def _prune(self) -> None:
        async def work(conn: AsyncConnection) -> None:
            for statement in self._sql.prune:
                await conn.execute(statement)

        await self._db.transaction(work)

    async def _write_session(self, data: SessionData) -> None:
        await self._write_batch([data])

    async def _write_sessions(self, batch: list[SessionData]) -> None:
        try:
            await self._write_batch(batch)
        except InvalidParameterError:
            if len(batch) == 1:
                raise
            # One session over MySQL's packet: write them one by one, so the ones
            # before it land and the error names the one that cannot.
            for data in batch:
                await self._write_batch([data])

    async def _write_batch(self, batch: list[SessionData]) -> None:
        """Replace the sessions of ``batch`` in one transaction."""
        # Sorted by key: two imports of the same sessions take their rows in one order.
        ordered = sorted(batch, key=lambda data: (data.user_id or "", data.session_id))
        writes = [self._session_write(data) for data in ordered]
        sql = self._sql
        kept = [write for write in writes if not write.empty]
        ended = [write for write in writes if write.empty]
        by_pairs = self._dialect.clears_by_pairs

        async def work(conn: AsyncConnection) -> None:
            # The session rows first, as every write takes them: a write racing the
            # import waits for it, and the import waits for a write under way.
            if kept:
                await conn.execute(sql.replace_session, [w.rows.session for w in kept])
                if by_pairs:
                    keys = self._batch_keys([w.params for w in kept])
                    for statement in sql.batch_clear:
                        await conn.execute(statement, keys)
                else:
                    for statement in sql.clear_children:
                        await conn.execute(statement, [w.params for w in kept])
                entries = [row for w in kept for row in w.rows.entries]
                traces = [row for w in kept for row in w.rows.traces]
                graphs = [w.rows.graph for w in kept if w.rows.graph is not None]
                items = [row for w in kept for row in w.items]
                if entries:
                    await conn.execute(sql.insert_entry, entries)
                if traces:
                    await conn.execute(sql.insert_trace, traces)
                if graphs:
                    await conn.execute(sql.insert_graph, graphs)
                if items:
                    await conn.execute(self._dialect.item_sql.insert, items)
            if ended and by_pairs:
                await conn.execute(sql.batch_delete, self._batch_keys([w.params for w in ended]))
            elif ended:
                await conn.execute(sql.delete_any, [w.params for w in ended])

        await self._db.transaction(work)
        self._sweeping.wrote()

    def _session_write(self, data: SessionData) -> _SessionWrite:
        params = self._params(SessionKey(data.session_id, data.user_id))
        rows = self._codec.session_rows(data, params)
        items = self._codec.item_rows(data, params)
        return _SessionWrite(params, rows, items, data.holds_nothing())

    @staticmethod
    def _batch_keys(params: list[dict[str, Any]]) -> dict[str, Any]:
        """Name up to ``SESSIONS_AT_ONCE`` sessions as the batch statements do (padded)."""
        padded = params + params[:1] * (SESSIONS_AT_ONCE - len(params))
        named: dict[str, Any] = {"now": padded[0]["now"]}
        for i, one in enumerate(padded):
            named[f"u{i}"], named[f"s{i}"] = one["u"], one["s"]
        return named

    # -- reads -------------------------------------------------------------------

    async def _latest(self, key: SessionKey, last_n: int) -> list[SessionQAEntry]:
        rows = await self._db.rows(self._sql.latest, {**self._params(key), "n": last_n})
        return [self._codec.entry(row, key.session_id, key.user_id) for row in reversed(rows)]

    async def _all(self, key: SessionKey) -> list[SessionQAEntry]:
        rows = await self._db.rows(self._sql.all, self._params(key))
        return [self._codec.entry(row, key.session_id, key.user_id) for row in rows]

    async def _get(self, key: SessionKey, qa_id: str) -> SessionQAEntry | None:
        rows = await self._db.rows(self._sql.get, {**self._params(key), "id": qa_id})
        return self._codec.entry(rows[0], key.session_id, key.user_id) if rows else None

    async def _count(self, key: SessionKey) -> int:
        rows = await self._db.rows(self._sql.count, self._params(key))
        return int(rows[0]["qa_count"]) if rows else 0

    async def _latest_id(self, key: SessionKey) -> str | None:
        rows = await self._db.rows(self._sql.latest_id, self._params(key))
        return str(rows[0]["entry_id"]) if rows else None

    async def _list_sessions(
        self, user_id: str | None, limit: int, after: PageCursor | None
    ) -> list[SessionInfo]:
        codec = self._codec
        params: dict[str, Any] = {"u": codec.key(user_id), "now": self._now(), "n": limit}
        statement = self._sql.list_first
        if after is not None:
            statement = self._sql.list_after
            params["cu"] = to_micros(after.updated_at)
            params["cs"] = codec.key(after.session_id)
        rows = await self._db.rows(statement, params)
        return [codec.session_info(row, user_id) for row in rows]

    async def _get_graph_context(self, key: SessionKey) -> str | None:
        rows = await self._db.rows(self._sql.graph, self._params(key))
        return self._codec.text_out(rows[0]["context"]) if rows else None

    async def _read_traces(self, key: SessionKey, last_n: int | None) -> list[SessionTraceStep]:
        if last_n is None:
            rows = await self._db.rows(self._sql.traces_all, self._params(key))
        else:
            newest = await self._db.rows(
                self._sql.traces_latest, {**self._params(key), "n": last_n}
            )
            rows = newest[::-1]
        return [trace_from_json(row["step"]) for row in rows]

    async def _session_keys(self, user_filter: str | AllUsers | None) -> AsyncIterator[SessionKey]:
        codec = self._codec
        every_user = isinstance(user_filter, AllUsers)
        statement = self._sql.keys_all if every_user else self._sql.keys_of_user
        user = None if isinstance(user_filter, AllUsers) else codec.key(user_filter)
        after_user, after_session = user if user is not None else codec.key(None), codec.key(None)
        while True:
            params = {"u": user, "au": after_user, "as_": after_session, "now": self._now()}
            rows = await self._db.rows(statement, {**params, "n": _KEYS_PAGE})
            for row in rows:
                yield SessionKey(codec.unkey(row["session_key"]), codec.user(row["user_key"]))
            if len(rows) < _KEYS_PAGE:
                return
            after_user, after_session = rows[-1]["user_key"], rows[-1]["session_key"]

    async def _read_sessions(self, keys: list[SessionKey]) -> list[SessionData | None]:
        params = [self._params(key) for key in keys]
        named = self._batch_keys(params)
        sql = self._sql
        ids = {(one["u"], one["s"]): key for one, key in zip(params, keys, strict=True)}

        def grouped(rows: Sequence[Row]) -> dict[SessionKey, list[Row]]:
            found: dict[SessionKey, list[Row]] = {}
            for row in rows:
                found.setdefault(ids[row["user_key"], row["session_key"]], []).append(row)
            return found

        async def work(conn: AsyncConnection) -> list[SessionData | None]:
            sessions = grouped((await conn.execute(sql.batch_sessions, named)).mappings().all())
            if not sessions:
                return [None] * len(keys)
            entries = grouped((await conn.execute(sql.batch_entries, named)).mappings().all())
            graphs = grouped((await conn.execute(sql.batch_graphs, named)).mappings().all())
            traces = grouped((await conn.execute(sql.batch_traces, named)).mappings().all())
            items = grouped((await conn.execute(sql.batch_items, named)).mappings().all())
            return [
                None
                if key not in sessions
                else self._codec.session(
                    key,
                    sessions[key][0],
                    entries.get(key, []),
                    graphs.get(key, [None])[0],
                    traces.get(key, []),
                    items=items.get(key, []),
                )
                for key in keys
            ]

        return await self._db.snapshot(work)


class _SessionWrite(NamedTuple):
    """What replaces one session: its key's parameters, its rows, and whether it is empty."""

    params: dict[str, Any]
    rows: SessionRows
    items: list[dict[str, Any]]
    empty: bool
