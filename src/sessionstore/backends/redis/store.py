"""``RedisStore``: the contract's steps on Redis or Valkey, standalone or Cluster.

The keys are in :mod:`.layout`, what they hold in :mod:`.codec`, the client
in :mod:`.client`. Every write that touches more than one key, or reads
before it writes, is one Lua script (:mod:`.scripts`). On a standalone server
the user's ``list_sessions`` index is updated inside the same script; on a
Cluster it lives in its own slot and is updated right after, by a script that
only ever moves it forward in time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any, Final, Self
from urllib.parse import parse_qsl, urlsplit

from sessionstore.backends.redis.client import ClientSettings, RedisConnection, driver_url
from sessionstore.backends.redis.codec import (
    as_text,
    decode_entry,
    decode_session,
    decode_trace,
    encode_changes,
    encode_entry,
    encode_item,
    encode_state_changes,
    encode_trace,
)
from sessionstore.backends.redis.item_steps import RedisItemSteps
from sessionstore.backends.redis.layout import (
    DEFAULT_PREFIX,
    SessionKeys,
    check_prefix,
    is_own_key,
    parse_session_key,
    prune_patterns,
    session_base,
    session_keys,
    session_meta_pattern,
    user_index_key,
)
from sessionstore.backends.redis.lock import RedisLockBackend
from sessionstore.backends.redis.options import (
    DRIVER_OPTIONS,
    OPTIONS,
    check_driver_options,
    refuse_breaking_options,
)
from sessionstore.clock import from_micros, now_utc, to_micros
from sessionstore.errors import InvalidParameterError
from sessionstore.models import SessionInfo, SessionQAEntry, SessionTraceStep
from sessionstore.records import SessionData
from sessionstore.store import AllUsers, PageCursor, SessionKey
from sessionstore.urls import split_options
from sessionstore.validation import DEFAULT_MAX_FIELD_BYTES

__all__ = ["RedisStore"]

_SCAN_COUNT: Final = 1000
_UNLINK_BATCH: Final = 500
_TIES_MARGIN: Final = 16
"""Index members asked for beyond a page, for the cursor's ties listed already."""


class RedisStore(RedisItemSteps):
    """Sessions in Redis or Valkey, standalone or Cluster.

    The item log and state steps are in :class:`.item_steps.RedisItemSteps`.

    Args:
        url: ``redis://[user:password@]host:port/db``, ``rediss://`` (TLS),
            ``valkey://``, ``valkeys://``, or ``redis+cluster://host:port``
            / ``rediss+cluster://`` (any node of the Cluster). Not needed
            when ``client`` is given. The store builds one client per event
            loop that uses it (see ``docs/backends/redis.md``).
        client: a ready ``redis.asyncio.Redis`` or ``RedisCluster``; the store
            uses it and never closes it. It belongs to its owner's event loop:
            use the store only from that loop.
        prefix: the first part of every key; stores with different prefixes
            never see each other's data.
        socket_timeout: seconds to wait for a reply before raising
            :class:`StoreUnavailableError`.
        connect_timeout: seconds to wait for a connection.
        max_connections: the pool's size limit (``None``: the driver's).
        ttl: see :class:`SessionStore`.
        max_field_bytes: see :class:`SessionStore`.
        **more: ``slow_call_ms`` and ``otel_ids`` (see :class:`SessionStore`),
            and redis-py's own options passed to the clients the store builds
            (:data:`.options.DRIVER_OPTIONS`: ``db``, ``username``,
            ``password``, ``client_name``, ``ssl_ca_certs``, ...).

    Raises:
        InvalidParameterError: a bad URL or option, or driver options with
            a given ``client``.
        MissingDependencyError: ``redis`` is not installed.

    """

    _db_system_name = "redis"  # OpenTelemetry's db.system.name

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        prefix: str = DEFAULT_PREFIX,
        socket_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        max_connections: int | None = None,
        ttl: float | None = None,
        max_field_bytes: int = DEFAULT_MAX_FIELD_BYTES,
        **more: Any,
    ) -> None:
        driver = {name: value for name, value in more.items() if name in DRIVER_OPTIONS}
        observing = {name: value for name, value in more.items() if name not in DRIVER_OPTIONS}
        super().__init__(ttl=ttl, max_field_bytes=max_field_bytes, **observing)
        if driver and client is not None:
            raise InvalidParameterError(
                f"driver options ({', '.join(sorted(driver))}) apply to the clients the store "
                "builds from a URL; give them to your own client instead"
            )
        cluster = isinstance(url, str) and driver_url(url)[1]
        settings = ClientSettings(
            socket_timeout,
            connect_timeout,
            max_connections,
            check_driver_options(driver, cluster=cluster),
        )
        self._conn = RedisConnection(url, client, settings)
        self._prefix = check_prefix(prefix)
        self._ttl_ms = "" if self.ttl is None else str(max(1, round(self.ttl * 1000)))

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Self:
        """Build a store from a Redis URL; options may also be query parameters.

        Raises:
            InvalidParameterError: an unknown option, a bad value, or one of
                redis-py's options that would break the store.

        """
        refuse_breaking_options([*_query_names(url), *options])
        passed = {name: option.parse for name, option in DRIVER_OPTIONS.items()}
        base, merged = split_options(url, options, OPTIONS, driver=passed)
        return cls(base, **merged)

    @property
    def client(self) -> Any:
        """The redis-py client calls in the running loop use (``None``: none yet, or closed)."""
        return self._conn.client

    def describe(self) -> str:
        """Return the URL (password hidden) and the key prefix."""
        return f"{self._conn.where} prefix={self._prefix}"

    def _lock_backend(self) -> RedisLockBackend:
        """Return leased locks on this store's server, named within its key prefix."""
        return RedisLockBackend(self._conn, self._prefix)

    # -- connections and scripts ------------------------------------------------

    async def _open(self) -> None:
        await self._conn.open()

    async def _close(self) -> None:
        await self._conn.close()

    async def _ready(self) -> None:
        await super()._ready()
        if self._conn.cluster:
            # A Cluster client new to this loop learns the slot map before calls share it.
            await self._conn.ready()

    def _keys(self, key: SessionKey) -> SessionKeys:
        return session_keys(self._prefix, key)

    async def _write(
        self, name: str, key: SessionKey, *args: Any, now: datetime | None = None
    ) -> Any:
        """Run a write script; on a standalone server it also updates the index."""
        return await self._conn.run(name, *self._write_call(key, args, now or now_utc()))

    def _write_call(
        self, key: SessionKey, args: Sequence[Any], now: datetime
    ) -> tuple[list[str], list[Any]]:
        """Return a write script's keys and arguments for the session ``key``."""
        keys = self._keys(key)
        script_keys = keys.session if self._conn.cluster else [*keys.session, keys.index]
        return script_keys, [self._ttl_ms, str(to_micros(now)), key.session_id, *args]

    async def _index_written(self, key: SessionKey, updated: bytes | str, mode: str = "LT") -> None:
        """Cluster only: move the session to its new place in the user's index."""
        if self._conn.cluster:
            index = user_index_key(self._prefix, key.user_id)
            args = [self._ttl_ms, key.session_id, f"-{as_text(updated)}", mode]
            await self._conn.run("index_add", [index], args)

    async def _index_ended(self, key: SessionKey, updated: bytes | str) -> None:
        """Cluster only: drop an ended session from the index unless written since."""
        if self._conn.cluster:
            index = user_index_key(self._prefix, key.user_id)
            await self._conn.run("index_remove", [index], [key.session_id, f"-{as_text(updated)}"])

    # -- entries -------------------------------------------------------------

    async def _append(self, key: SessionKey, entry: SessionQAEntry) -> None:
        updated = await self._write(
            "append", key, entry.id, encode_entry(entry), now=entry.created_at
        )
        await self._index_written(key, updated)

    async def _read_entries(self, key: SessionKey, last_n: int) -> list[SessionQAEntry]:
        keys = self._keys(key)
        stored = await self._conn.run("read_ordered", [keys.order, keys.entries], [last_n, "0"])
        return [decode_entry(item) for item in stored if item is not None]

    async def _latest(self, key: SessionKey, last_n: int) -> list[SessionQAEntry]:
        return await self._read_entries(key, last_n)

    async def _all(self, key: SessionKey) -> list[SessionQAEntry]:
        return await self._read_entries(key, -1)

    async def _get(self, key: SessionKey, qa_id: str) -> SessionQAEntry | None:
        with self._conn.errors():
            stored = await self._conn.live_client().hget(self._keys(key).entries, qa_id)
        return None if stored is None else decode_entry(stored)

    async def _count(self, key: SessionKey) -> int:
        with self._conn.errors():
            count: int = await self._conn.live_client().zcard(self._keys(key).order)
        return count

    async def _update(self, key: SessionKey, qa_id: str, changes: dict[str, Any]) -> bool:
        updated = await self._write("update", key, qa_id, encode_changes(changes))
        if updated is None:
            return False
        await self._index_written(key, updated)
        return True

    async def _delete_entry(self, key: SessionKey, qa_id: str) -> bool:
        result = await self._write("delete_entry", key, qa_id)
        if result is None:
            return False
        alive, updated = result
        if alive:
            await self._index_written(key, updated)
        else:
            await self._index_ended(key, updated)
        return True

    async def _latest_id(self, key: SessionKey) -> str | None:
        with self._conn.errors():
            newest = await self._conn.live_client().zrange(self._keys(key).order, -1, -1)
        return as_text(newest[0]) if newest else None

    # -- sessions --------------------------------------------------------------

    async def _delete_session(self, key: SessionKey) -> bool:
        updated = await self._write("delete_session", key)
        if updated is None:
            return False
        await self._index_ended(key, updated)
        return True

    async def _prune(self) -> None:
        with self._conn.errors():
            for pattern in prune_patterns(self._prefix):
                batch: list[str] = []
                scan = self._conn.live_client().scan_iter(match=pattern, count=_SCAN_COUNT)
                async for raw in scan:
                    name = as_text(raw)
                    if is_own_key(self._prefix, name):
                        batch.append(name)
                    if len(batch) >= _UNLINK_BATCH:
                        # Asked again per batch: a close() meanwhile is a StoreError.
                        await self._conn.live_client().unlink(*batch)
                        batch = []
                if batch:
                    await self._conn.live_client().unlink(*batch)

    async def _list_sessions(
        self, user_id: str | None, limit: int, after: PageCursor | None
    ) -> list[SessionInfo]:
        # The index scores each session by -updated, so ascending order is
        # newest first with ties by session id ascending (UTF-8 byte order is
        # code point order): exactly the order of the contract.
        index = user_index_key(self._prefix, user_id)
        low = None if after is None else (-to_micros(after.updated_at), after.session_id)
        found: list[SessionInfo] = []
        want = limit
        while len(found) < limit:
            # A page after the first starts at the cursor's score, so the ties
            # already listed come back too: ask for a few more than the page,
            # so one window (and one pipeline of descriptions) usually suffices.
            num = want + _TIES_MARGIN
            with self._conn.errors():
                raw = await self._conn.live_client().zrange(
                    index,
                    "-inf" if low is None else low[0],
                    "+inf",
                    byscore=True,
                    offset=0,
                    num=num,
                    withscores=True,
                )
            candidates = [(as_text(m), int(s)) for m, s in raw]
            if low is not None:
                candidates = [
                    (sid, score)
                    for sid, score in candidates
                    if score > low[0] or (score == low[0] and sid > low[1])
                ]
            exhausted = len(raw) < num
            if not candidates:
                if exhausted:
                    break
                want *= 2  # a run of ties longer than the window: widen it
                continue
            taken = candidates[: limit - len(found)]
            found.extend(await self._describe_sessions(index, user_id, taken))
            low = taken[-1][1], taken[-1][0]
            if exhausted and len(taken) == len(candidates):
                break
            want = limit
        return found[:limit]

    async def _describe_sessions(
        self, index: str, user_id: str | None, candidates: list[tuple[str, int]]
    ) -> list[SessionInfo]:
        """Return the live ones among index members; drop the expired ones."""
        replies: list[Any]
        if self._conn.cluster:  # the sessions' keys span slots: one pipeline
            with self._conn.errors():
                pipe = self._conn.live_client().pipeline(transaction=False)
                for session_id, _ in candidates:
                    keys = self._keys(SessionKey(session_id, user_id))
                    pipe.hget(keys.meta, "created")
                    pipe.zcard(keys.order)
                    pipe.hlen(keys.items)
                replies = await pipe.execute()
        else:  # one script, one flat reply: far less to send and parse than 3 commands each
            bases = [session_base(self._prefix, SessionKey(sid, user_id)) for sid, _ in candidates]
            replies = await self._conn.run("describe_sessions", [], bases)
        infos: list[SessionInfo] = []
        for i, (session_id, score) in enumerate(candidates):
            created, count, items = replies[3 * i : 3 * i + 3]
            if created is None:
                await self._conn.run("index_remove", [index], [session_id, str(score)])
                continue
            infos.append(
                SessionInfo.model_construct(
                    session_id=session_id,
                    user_id=user_id,
                    created_at=from_micros(int(created)),
                    updated_at=from_micros(-score),
                    qa_count=count,
                    item_count=items,
                )
            )
        return infos

    # -- graph context and traces ---------------------------------------------

    async def _get_graph_context(self, key: SessionKey) -> str | None:
        with self._conn.errors():
            stored = await self._conn.live_client().hget(self._keys(key).meta, "gc")
        return None if stored is None else as_text(stored)

    async def _set_graph_context(self, key: SessionKey, context: str) -> None:
        await self._index_written(key, await self._write("set_graph_context", key, context))

    async def _save_trace(self, key: SessionKey, step: SessionTraceStep) -> bool:
        updated = await self._write("save_trace", key, step.trace_id, encode_trace(step))
        if updated is None:
            return False
        await self._index_written(key, updated)
        return True

    async def _read_traces(self, key: SessionKey, last_n: int | None) -> list[SessionTraceStep]:
        with self._conn.errors():
            stored = await self._conn.live_client().lrange(
                self._keys(key).traces, -(last_n or 0), -1
            )
        return [decode_trace(item) for item in stored]

    # -- export and import -------------------------------------------------------

    async def _session_keys(self, user_filter: str | AllUsers | None) -> AsyncIterator[SessionKey]:
        everyone = isinstance(user_filter, AllUsers)
        user_id = None if isinstance(user_filter, AllUsers) else user_filter
        pattern = session_meta_pattern(self._prefix, user_id, every_user=everyone)
        seen: set[SessionKey] = set()
        with self._conn.errors():
            async for raw in self._conn.live_client().scan_iter(match=pattern, count=_SCAN_COUNT):
                key = parse_session_key(self._prefix, as_text(raw))
                if key is not None and key not in seen and (everyone or key.user_id == user_filter):
                    seen.add(key)
                    yield key

    async def _read_sessions(self, keys: list[SessionKey]) -> list[SessionData | None]:
        # One pipeline of the same script: each session its own atomic snapshot.
        calls: list[tuple[list[str], list[Any]]] = [(self._keys(key).session, []) for key in keys]
        replies = await self._conn.run_many("read_session", calls)
        return [
            None if found is None else decode_session(key, found)
            for key, found in zip(keys, replies, strict=True)
        ]

    async def _write_session(self, data: SessionData) -> None:
        key = SessionKey(data.session_id, data.user_id)
        updated = await self._write("write_session", key, *_session_args(data))
        if updated is None:  # the dump held nothing: the session no longer exists
            await self._index_ended(key, str(2**62))  # later than any write
        else:
            await self._index_written(key, updated, mode="")

    async def _write_sessions(self, batch: list[SessionData]) -> None:
        if self._conn.cluster:  # each session's index is a second step: one at a time
            await super()._write_sessions(batch)
            return
        # One pipeline of the same script, each replacing its session (and its place
        # in the user's index) atomically.
        now = now_utc()
        calls = [
            self._write_call(SessionKey(data.session_id, data.user_id), _session_args(data), now)
            for data in batch
        ]
        await self._conn.run_many("write_session", calls)


def _session_args(data: SessionData) -> list[Any]:
    """Return the ``write_session`` script's arguments after the common ones, for ``data``."""
    args: list[Any] = [
        str(to_micros(data.created_at)),
        str(to_micros(data.updated_at)),
        "0" if data.graph_context is None else "1",
        data.graph_context or "",
        len(data.entries),
    ]
    for entry in data.entries:
        args += [entry.id, encode_entry(entry)]
    args.append(len(data.items))
    for item in data.items:
        args += [item.id, encode_item(item)]
    args += [str(data.state.revision), len(data.state.values)]
    args += encode_state_changes(data.state.values)
    for step in data.traces:
        args += [step.trace_id, encode_trace(step)]
    return args


def _query_names(url: object) -> list[str]:
    """Return the option names in ``url``'s query, to refuse breaking ones by name."""
    if not isinstance(url, str):
        return []
    try:
        query = urlsplit(url).query
    except ValueError:  # split_options says what is wrong with it
        return []
    return [name for name, _ in parse_qsl(query, keep_blank_values=True)]
