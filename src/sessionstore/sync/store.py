"""The blocking store: every method of ``SessionStore``, run in the store's own loop."""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterable, AsyncIterator, Coroutine, Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar

from sessionstore.backend_steps import SESSIONS_AT_ONCE
from sessionstore.errors import InvalidParameterError
from sessionstore.keys import ALL_USERS, AllUsers
from sessionstore.models import (
    SessionPage,
    SessionQAEntry,
    SessionQAUpdate,
    SessionTraceStep,
    UsedGraphElementIds,
    UserInfo,
)
from sessionstore.records import SessionData
from sessionstore.store import SessionStore as AsyncSessionStore
from sessionstore.sync.item_methods import BlockingItemMethods
from sessionstore.sync.loop import LoopThread
from sessionstore.urls import open_store as open_async_store

__all__ = ["SessionStore", "open_store"]

T = TypeVar("T")


def open_store(url: str | None = None, **options: Any) -> SessionStore:
    """Return a blocking store for ``url``; like :func:`sessionstore.open_store`.

    It starts the store's event-loop thread but does no I/O: the first call
    (or :meth:`SessionStore.open`) connects. Use it as a context manager, or
    call :meth:`SessionStore.close`.

    Raises:
        InvalidParameterError: unknown scheme or option, or a bad value.
        MissingDependencyError: the backend's extra is not installed.

    """
    return SessionStore(open_async_store(url, **options))


class SessionStore(BlockingItemMethods):
    """A blocking :class:`sessionstore.SessionStore`, safe to share between threads.

    Every method of the async store is here under the same name and
    arguments, blocks the calling thread until done and raises what the async
    method raises, unchanged. The calls run in an event loop of this store's
    own, in a daemon thread; so a call works from any thread, even one
    running an event loop of its own (it blocks that loop meanwhile: in
    async code, await the async store instead).

    ``close()`` (or leaving the ``with`` block) lets running calls finish,
    closes the async store and stops the loop. A store not closed is closed
    when it is garbage collected or at interpreter exit, waiting at most
    ``CLOSE_TIMEOUT`` seconds.

    Args:
        store: the async store to run, not opened yet; from now on it
            belongs to this facade, which closes it.

    Raises:
        InvalidParameterError: ``store`` is not an async store, or was
            already opened (its connections belong to another loop).

    """

    def __init__(self, store: AsyncSessionStore) -> None:
        if not isinstance(store, AsyncSessionStore):
            raise InvalidParameterError(f"store must be a SessionStore, got {type(store).__name__}")
        if store._state != "new":
            # Its connections, if any, belong to the loop that opened it.
            raise InvalidParameterError(
                f"{store!r} was already opened; wrap a store nobody has used yet, "
                "or use sessionstore.sync.open_store(url)"
            )
        self._store = store
        self._loop = LoopThread(repr(store), store.close)
        # Garbage collection closes a forgotten store; the loop closes it at exit.
        self._finalizer = weakref.finalize(self, self._loop.shutdown)
        self._finalizer.atexit = False

    def __repr__(self) -> str:
        return f"<blocking {self._store!r}>"

    @property
    def async_store(self) -> AsyncSessionStore:
        """The async store underneath; await it only inside :meth:`run`."""
        return self._store

    @property
    def ttl(self) -> float | None:
        """Seconds after its last write that a session expires; ``None``: never."""
        return self._store.ttl

    @property
    def max_field_bytes(self) -> int:
        """The largest text field accepted, in UTF-8 bytes."""
        return self._store.max_field_bytes

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine in this store's event loop and return its result.

        For what only one backend has, e.g. ``store.run(sql_store.migrate())``
        where ``sql_store`` is the ``SQLStore`` this store was built on.

        Raises:
            StoreError: this store is closed.
            RuntimeError: called from a coroutine already running in this
                store's loop.

        """
        return self._loop.run(coro)

    # -- lifecycle -------------------------------------------------------

    def describe(self) -> str:
        """Return where this store keeps its data, without credentials."""
        return self._store.describe()

    def open(self) -> None:
        """Connect or create storage now rather than on the first call.

        Raises:
            StoreError: the store is closed or the backend failed.

        """
        self._loop.run(self._store.open())

    def close(self) -> None:
        """Close the async store and stop this store's loop; again does nothing.

        Raises:
            StoreError: the backend failed to close, or did not within
                ``CLOSE_TIMEOUT`` seconds; the loop is stopped anyway.

        """
        self._finalizer.detach()
        self._loop.shutdown()

    def __enter__(self) -> Self:
        try:
            self.open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- entries ---------------------------------------------------------

    def create_qa_entry(
        self,
        session_id: str,
        user_id: str | None,
        question: str,
        answer: str,
        context: str | None = None,
        *,
        feedback_text: str | None = None,
        feedback_score: int | None = None,
        used_graph_element_ids: UsedGraphElementIds | Mapping[str, Any] | None = None,
        memify_metadata: dict[str, bool] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        """Append a question/answer entry and return its new ``qa_id``.

        Raises:
            InvalidParameterError: a bad id, text, score or field type.
            StoreError: the backend failed.

        """
        return self._loop.run(
            self._store.create_qa_entry(
                session_id,
                user_id,
                question,
                answer,
                context,
                feedback_text=feedback_text,
                feedback_score=feedback_score,
                used_graph_element_ids=used_graph_element_ids,
                memify_metadata=memify_metadata,
                metadata=metadata,
            )
        )

    def get_latest_qa_entries(
        self, session_id: str, user_id: str | None, last_n: int
    ) -> list[SessionQAEntry]:
        """Return the newest ``last_n`` entries, oldest first."""
        return self._loop.run(self._store.get_latest_qa_entries(session_id, user_id, last_n))

    def get_all_qa_entries(self, session_id: str, user_id: str | None) -> list[SessionQAEntry]:
        """Return every entry of the session, oldest first."""
        return self._loop.run(self._store.get_all_qa_entries(session_id, user_id))

    def get_qa_entry(
        self, session_id: str, user_id: str | None, qa_id: str
    ) -> SessionQAEntry | None:
        """Return one entry, or ``None`` if the session holds no such id."""
        return self._loop.run(self._store.get_qa_entry(session_id, user_id, qa_id))

    def count_qa_entries(self, session_id: str, user_id: str | None) -> int:
        """Return how many entries the session holds."""
        return self._loop.run(self._store.count_qa_entries(session_id, user_id))

    def update_qa_entry(
        self, session_id: str, user_id: str | None, qa_id: str, updates: SessionQAUpdate
    ) -> bool:
        """Apply a tri-state update atomically; ``False`` if the entry is unknown.

        Raises:
            InvalidParameterError: ``updates`` is not a SessionQAUpdate or a
                field is over ``max_field_bytes``.

        """
        return self._loop.run(self._store.update_qa_entry(session_id, user_id, qa_id, updates))

    def delete_qa_entry(self, session_id: str, user_id: str | None, qa_id: str) -> bool:
        """Delete one entry; ``True`` only if it existed."""
        return self._loop.run(self._store.delete_qa_entry(session_id, user_id, qa_id))

    def latest_qa_id(self, session_id: str, user_id: str | None) -> str | None:
        """Return the id of the newest entry, or ``None`` for an empty session."""
        return self._loop.run(self._store.latest_qa_id(session_id, user_id))

    # -- sessions --------------------------------------------------------

    def delete_session(self, session_id: str, user_id: str | None) -> bool:
        """Delete the session's entries, graph context, traces, items and state; ``True`` if any."""
        return self._loop.run(self._store.delete_session(session_id, user_id))

    def prune(self) -> None:
        """Delete every session, user state and app state in this store's namespace only."""
        self._loop.run(self._store.prune())

    def list_sessions(
        self, user_id: str | None, *, limit: int = 50, cursor: str | None = None
    ) -> SessionPage:
        """Return one page of the user's sessions, most recently written first.

        Raises:
            InvalidParameterError: bad user id, limit or cursor.

        """
        return self._loop.run(self._store.list_sessions(user_id, limit=limit, cursor=cursor))

    def list_users(self) -> list[UserInfo]:
        """Return every user that has a live session, with how many sessions each has.

        The anonymous user (``user_id=None``) comes first, then the others by id.
        """
        return self._loop.run(self._store.list_users())

    # -- graph context and traces ---------------------------------------

    def get_graph_context(self, session_id: str, user_id: str | None) -> str | None:
        """Return the session's graph context; ``""`` is a value, unlike ``None``."""
        return self._loop.run(self._store.get_graph_context(session_id, user_id))

    def set_graph_context(self, session_id: str, user_id: str | None, context: str) -> None:
        """Store the session's graph context, replacing any previous one."""
        self._loop.run(self._store.set_graph_context(session_id, user_id, context))

    def save_trace_step(self, session_id: str, user_id: str | None, step: SessionTraceStep) -> str:
        """Append a trace step (its ``created_at`` set to now); return its trace id."""
        return self._loop.run(self._store.save_trace_step(session_id, user_id, step))

    def read_trace_steps(
        self, session_id: str, user_id: str | None, last_n: int | None = None
    ) -> list[SessionTraceStep]:
        """Return the session's trace steps (the newest ``last_n``), oldest first."""
        return self._loop.run(self._store.read_trace_steps(session_id, user_id, last_n))

    # -- export and import -------------------------------------------------

    def export_sessions(
        self, *, user_id: str | AllUsers | None = ALL_USERS
    ) -> Iterator[dict[str, Any]]:
        """Yield one plain JSON-compatible dict per session, read one at a time.

        Args:
            user_id: omit for every user; ``None`` for the anonymous user only.

        Raises:
            InvalidParameterError: a bad ``user_id``, at once.

        """
        return self._iterate(self._store.export_sessions(user_id=user_id))

    def _iterate(self, items: AsyncIterator[T]) -> Iterator[T]:
        # A generator of the facade's own, so that an iterator still in use
        # keeps the facade, and with it the store, from being collected.
        yield from self._loop.iterate(items)

    def import_sessions(self, dumps: Iterable[Mapping[str, Any]]) -> int:
        """Import sessions made by ``export_sessions``; return how many.

        ``dumps`` is iterated in the calling thread; each imported session
        replaces one with the same ids, all or nothing.

        Raises:
            InvalidParameterError: ``dumps`` is an async iterable, an unknown
                format or an invalid session; the sessions before it are
                already imported.

        """
        if isinstance(dumps, AsyncIterable):
            raise InvalidParameterError(
                "a blocking store imports plain iterables; "
                "await the async store's import_sessions for an async one"
            )
        self.open()
        imported = 0
        chunk: list[Mapping[str, Any]] = []
        try:
            for dump in dumps:  # in this thread; the store writes a chunk's sessions together
                chunk.append(dump)
                if len(chunk) == SESSIONS_AT_ONCE:
                    taken, chunk = chunk, []
                    imported += self._loop.run(self._store.import_sessions(taken))
        except Exception:
            if chunk:  # ``dumps`` failed: the sessions before that point are imported
                self._loop.run(self._store.import_sessions(chunk))
            raise
        if chunk:
            imported += self._loop.run(self._store.import_sessions(chunk))
        return imported

    def check_dump(self, dump: Mapping[str, Any]) -> SessionData:
        """Check one session dump as :meth:`import_sessions` would, writing nothing.

        Raises:
            InvalidParameterError: the dump could not be imported into this store.
            StoreError: the store could not be opened.

        """
        return self._loop.run(self._store.check_dump(dump))
