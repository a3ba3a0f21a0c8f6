"""``postgresql://``, ``mysql://``, ``mariadb://``: SQLAlchemy 2 asyncio Core.

PostgreSQL goes through ``asyncpg`` (extra ``postgres``), MySQL and MariaDB
through ``asyncmy`` (extra ``mysql``). The tables, their exact-comparison key
columns and the migrations are in :mod:`~sessionstore.backends.sql_schema`,
the statements in :mod:`~sessionstore.backends.sql_statements`, the engine,
retries and sweeping in :mod:`~sessionstore.backends.sql_connection`.

Every hot call is one round trip. On PostgreSQL a create is one statement
(an upsert of the session row taking the next sequence number under its row
lock, then the entry insert, in one ``WITH ... INSERT ... RETURNING``), and
so are an update and an entry delete. On MySQL/MariaDB each write is one
short transaction sent as one multi-statement batch.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from sessionstore.backends.sql_connection import SQLConnection
from sessionstore.errors import StoreError
from sessionstore.models import SessionInfo, SessionQAEntry, SessionTraceStep
from sessionstore.records import SessionData, from_micros, to_micros
from sessionstore.store import AllUsers, PageCursor, SessionKey

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["SQLStore"]

_KEYS_PAGE = 500


class SQLStore(SQLConnection):
    """Sessions in PostgreSQL, MySQL or MariaDB tables named ``<table_prefix>*``.

    Build it with :func:`sessionstore.open_store` (``postgresql://user:pw@host/db``,
    ``mysql://...``, ``mariadb://...``), or ``SQLStore(engine=my_async_engine)``
    to share an application's engine; see
    :class:`~sessionstore.backends.sql_connection.SQLConnection` for the options.
    """

    # -- writes ----------------------------------------------------------------

    async def _write(self, kind: str, params: dict[str, Any]) -> None:
        """Append an entry or trace step, or set the graph context, with its session row."""
        if self.dialect == "postgresql":
            statement = {
                "entry": self._sql.pg_append_entry,
                "trace": self._sql.pg_append_trace,
                "graph": self._sql.pg_set_graph,
            }[kind]

            async def op() -> None:
                for _ in range(3):
                    if await self._value(statement, params) is not None:
                        return
                    # The session has expired: remove it, then start it afresh.
                    await self._rowcount(self._sql.delete_expired, params)
                raise StoreError(f"{self.describe()}: the session kept expiring during a write")

            await self._run(op)
        else:
            await self._run(lambda: self._batch(self._sql.my_write[kind], params))
        self._wrote()

    async def _append(self, key: SessionKey, entry: SessionQAEntry) -> None:
        await self._write("entry", {**self._params(key), **self._codec.entry_row(entry)})

    async def _save_trace(self, key: SessionKey, step: SessionTraceStep) -> None:
        await self._write("trace", {**self._params(key), "step": self._codec.step_in(step)})

    async def _set_graph_context(self, key: SessionKey, context: str) -> None:
        await self._write("graph", {**self._params(key), "context": self._codec.text_in(context)})

    async def _update(self, key: SessionKey, qa_id: str, changes: dict[str, Any]) -> bool:
        params = {**self._params(key), "id": qa_id}
        params.update((name, self._codec.field(name, value)) for name, value in changes.items())
        if self.dialect == "postgresql":
            statement = self._sql.pg_update(changes)
            found = await self._run(lambda: self._value(statement, params))
        else:
            rows = await self._run(lambda: self._batch(self._sql.my_update(changes), params))
            found = rows[0][0]
        self._wrote()
        return bool(found)

    async def _delete_entry(self, key: SessionKey, qa_id: str) -> bool:
        params = {**self._params(key), "id": qa_id}
        if self.dialect == "postgresql":
            statement = self._sql.pg_delete_entry
            return bool(await self._run(lambda: self._value(statement, params)))
        return bool(await self._run(lambda: self._batch(self._sql.my_delete_entry, params)))

    async def _delete_session(self, key: SessionKey) -> bool:
        params = self._params(key)
        return await self._run(lambda: self._rowcount(self._sql.delete_live, params)) > 0

    async def _prune(self) -> None:
        async def work(conn: AsyncConnection) -> None:
            for statement in self._sql.prune:
                await conn.execute(statement)

        await self._transaction(work)

    async def _write_session(self, data: SessionData) -> None:
        params = self._params(SessionKey(data.session_id, data.user_id))
        session_row = {
            **params,
            "created": to_micros(data.created_at),
            "updated": to_micros(data.updated_at),
            "next_seq": len(data.entries),
            "qa_count": len(data.entries),
            "trace_seq": len(data.traces),
            "trace_count": len(data.traces),
            "has_graph": data.graph_context is not None,
        }
        entries = [
            {**params, **self._codec.entry_row(entry), "seq": seq}
            for seq, entry in enumerate(data.entries, 1)
        ]
        traces = [
            {**params, "seq": seq, "step": self._codec.step_in(step)}
            for seq, step in enumerate(data.traces, 1)
        ]

        async def work(conn: AsyncConnection) -> None:
            await conn.execute(self._sql.delete_any, params)
            if not entries and not traces and data.graph_context is None:
                return
            await conn.execute(self._sql.insert_session, session_row)
            if entries:
                await conn.execute(self._sql.insert_entry, entries)
            if traces:
                await conn.execute(self._sql.insert_trace, traces)
            if data.graph_context is not None:
                context = self._codec.text_in(data.graph_context)
                await conn.execute(self._sql.insert_graph, {**params, "context": context})

        await self._transaction(work)
        self._wrote()

    # -- reads -------------------------------------------------------------------

    async def _latest(self, key: SessionKey, last_n: int) -> list[SessionQAEntry]:
        rows = await self._rows(self._sql.latest, {**self._params(key), "n": last_n})
        return [self._codec.entry(row, key.session_id, key.user_id) for row in reversed(rows)]

    async def _all(self, key: SessionKey) -> list[SessionQAEntry]:
        rows = await self._rows(self._sql.all, self._params(key))
        return [self._codec.entry(row, key.session_id, key.user_id) for row in rows]

    async def _get(self, key: SessionKey, qa_id: str) -> SessionQAEntry | None:
        rows = await self._rows(self._sql.get, {**self._params(key), "id": qa_id})
        return self._codec.entry(rows[0], key.session_id, key.user_id) if rows else None

    async def _count(self, key: SessionKey) -> int:
        rows = await self._rows(self._sql.count, self._params(key))
        return int(rows[0][0]) if rows else 0

    async def _latest_id(self, key: SessionKey) -> str | None:
        rows = await self._rows(self._sql.latest_id, self._params(key))
        return str(rows[0][0]) if rows else None

    async def _list_sessions(
        self, user_id: str | None, limit: int, after: PageCursor | None
    ) -> list[SessionInfo]:
        params: dict[str, Any] = {"u": self._codec.key(user_id), "now": self._now(), "n": limit}
        statement = self._sql.list_first
        if after is not None:
            statement = self._sql.list_after
            params["cu"] = to_micros(after.updated_at)
            params["cs"] = self._codec.key(after.session_id)
        return [
            SessionInfo.model_construct(
                session_id=self._codec.unkey(session),
                user_id=user_id,
                created_at=from_micros(created),
                updated_at=from_micros(updated),
                qa_count=int(count),
            )
            for session, created, updated, count in await self._rows(statement, params)
        ]

    async def _get_graph_context(self, key: SessionKey) -> str | None:
        rows = await self._rows(self._sql.graph, self._params(key))
        return self._codec.text_out(rows[0][0]) if rows else None

    async def _read_traces(self, key: SessionKey, last_n: int | None) -> list[SessionTraceStep]:
        if last_n is None:
            rows = await self._rows(self._sql.traces_all, self._params(key))
        else:
            newest = await self._rows(self._sql.traces_latest, {**self._params(key), "n": last_n})
            rows = newest[::-1]
        return [self._codec.step_out(row[0]) for row in rows]

    async def _session_keys(self, user_filter: str | AllUsers | None) -> AsyncIterator[SessionKey]:
        codec = self._codec
        statement = (
            self._sql.keys_all if isinstance(user_filter, AllUsers) else self._sql.keys_of_user
        )
        user = None if isinstance(user_filter, AllUsers) else codec.key(user_filter)
        after_user, after_session = user if user is not None else codec.key(None), codec.key(None)
        while True:
            params = {"u": user, "au": after_user, "as_": after_session, "now": self._now()}
            rows = await self._rows(statement, {**params, "n": _KEYS_PAGE})
            for raw_user, raw_session in rows:
                yield SessionKey(codec.unkey(raw_session), codec.user(raw_user))
            if len(rows) < _KEYS_PAGE:
                return
            after_user, after_session = rows[-1]

    async def _read_session(self, key: SessionKey) -> SessionData | None:
        params = self._params(key)

        async def op() -> SessionData | None:
            async with self._get_engine().connect() as plain:
                conn = await plain.execution_options(isolation_level="REPEATABLE READ")
                async with conn.begin():
                    row = (await conn.execute(self._sql.session_row, params)).first()
                    if row is None:
                        return None
                    entries = (await conn.execute(self._sql.all, params)).all()
                    graph = (await conn.execute(self._sql.graph, params)).first()
                    traces = (await conn.execute(self._sql.traces_all, params)).all()
            codec = self._codec
            return SessionData(
                session_id=key.session_id,
                user_id=key.user_id,
                created_at=from_micros(row[0]),
                updated_at=from_micros(row[1]),
                graph_context=None if graph is None else codec.text_out(graph[0]),
                entries=[codec.entry(r, key.session_id, key.user_id) for r in entries],
                traces=[codec.step_out(r[0]) for r in traces],
            )

        return await self._run(op)
