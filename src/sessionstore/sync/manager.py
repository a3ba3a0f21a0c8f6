"""The blocking manager: every method of ``SessionManager``, on a blocking store."""

from __future__ import annotations

from collections.abc import Coroutine, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal, TypeVar

from sessionstore.errors import InvalidParameterError
from sessionstore.llm import LLM
from sessionstore.locks import DEFAULT_LEASE
from sessionstore.manager import SessionManager as AsyncSessionManager
from sessionstore.models import (
    JsonValue,
    SessionContext,
    SessionItem,
    SessionQAEntry,
    SessionQAUpdate,
    SessionTraceStep,
    UsedGraphElementIds,
)
from sessionstore.sync.store import SessionStore

__all__ = ["SessionManager"]

T = TypeVar("T")


class SessionManager:
    """A blocking :class:`sessionstore.SessionManager` over a blocking store.

    Every method of the async manager is here under the same name and
    arguments and raises what it raises; each runs in the store's event loop,
    so the ``llm``'s ``generate`` runs there too. ``improve_lock`` is a plain
    context manager.

    Args:
        store: the blocking store where sessions live; the manager neither
            opens nor closes it.
        default_session_id: the session used when a call names none.
        history_limit: how many of the newest entries the history holds.
        llm: writes the one-sentence summaries of trace steps (async, like
            the async manager's); ``None`` stores the fixed sentences.
        lock_lease: seconds an ``improve_lock`` outlives a crashed holder, on
            backends whose locks expire (SQLite, files, Redis).

    Raises:
        InvalidParameterError: ``store`` is not a blocking store, a bad
            default id, limit, lease, or an ``llm`` without ``generate``.

    """

    def __init__(
        self,
        store: SessionStore,
        *,
        default_session_id: str = "default_session",
        history_limit: int = 10,
        llm: LLM | None = None,
        lock_lease: float = DEFAULT_LEASE,
    ) -> None:
        if not isinstance(store, SessionStore):
            raise InvalidParameterError(
                "store must be a blocking sessionstore.sync.SessionStore, "
                f"got {type(store).__name__}"
            )
        self.store = store
        self._manager = AsyncSessionManager(
            store.async_store,
            default_session_id=default_session_id,
            history_limit=history_limit,
            llm=llm,
            lock_lease=lock_lease,
        )

    def __repr__(self) -> str:
        return (
            f"<blocking SessionManager store={self.store!r} "
            f"default_session_id={self.default_session_id!r} history_limit={self.history_limit}>"
        )

    @property
    def default_session_id(self) -> str:
        """The session used when a call names none."""
        return self._manager.default_session_id

    @property
    def history_limit(self) -> int:
        """How many of the newest entries the history holds."""
        return self._manager.history_limit

    @property
    def llm(self) -> LLM | None:
        """What writes the summaries of trace steps."""
        return self._manager.llm

    @property
    def lock_lease(self) -> float:
        """Seconds an ``improve_lock`` outlives a crashed holder."""
        return self._manager.lock_lease

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.store.run(coro)

    # -- history ---------------------------------------------------------------

    def load_history_messages(
        self, session_id: str | None = None, user_id: str | None = None
    ) -> list[dict[str, str]]:
        """Return the last ``history_limit`` turns as OpenAI-style messages, oldest first."""
        return self._run(self._manager.load_history_messages(session_id, user_id))

    def format_entries(
        self, entries: Sequence[SessionQAEntry], include_context: bool = False
    ) -> str:
        """Return entries as prompt text; ``""`` for no entries."""
        return self._manager.format_entries(entries, include_context)

    def load_history_both(
        self, session_id: str | None = None, user_id: str | None = None
    ) -> tuple[list[dict[str, str]], str]:
        """Return ``(messages, text)`` for the last turns from one store read."""
        return self._run(self._manager.load_history_both(session_id, user_id))

    def load_item_messages(
        self, session_id: str | None = None, user_id: str | None = None
    ) -> list[dict[str, str]]:
        """Return the chat messages among the newest ``2 * history_limit`` items, oldest first."""
        return self._run(self._manager.load_item_messages(session_id, user_id))

    def messages_from_items(self, items: Sequence[SessionItem]) -> list[dict[str, str]]:
        """Return the chat messages among ``items`` as ``{"role", "content"}`` dicts, in order."""
        return self._manager.messages_from_items(items)

    def build_context(
        self,
        session_id: str | None = None,
        user_id: str | None = None,
        *,
        source: Literal["entries", "items"] = "entries",
    ) -> SessionContext:
        """Return the history (from entries or items) and graph context a prompt needs."""
        return self._run(self._manager.build_context(session_id, user_id, source=source))

    # -- entries and feedback -----------------------------------------------------

    def save_qa(
        self,
        question: str,
        answer: str,
        *,
        session_id: str | None = None,
        user_id: str | None = None,
        context: str | None = None,
        used_graph_element_ids: UsedGraphElementIds | Mapping[str, Any] | None = None,
    ) -> str:
        """Save one turn in one atomic write and return its ``qa_id``."""
        return self._run(
            self._manager.save_qa(
                question,
                answer,
                session_id=session_id,
                user_id=user_id,
                context=context,
                used_graph_element_ids=used_graph_element_ids,
            )
        )

    def add_feedback(
        self,
        qa_id: str,
        *,
        session_id: str | None = None,
        user_id: str | None = None,
        text: str | None = None,
        score: int | None = None,
    ) -> bool:
        """Set an entry's feedback text and score; ``False`` if the entry is unknown.

        Raises:
            InvalidParameterError: ``score`` is not ``None`` or an int from 1 to 5.

        """
        return self._run(
            self._manager.add_feedback(
                qa_id, session_id=session_id, user_id=user_id, text=text, score=score
            )
        )

    def delete_feedback(
        self, qa_id: str, *, session_id: str | None = None, user_id: str | None = None
    ) -> bool:
        """Clear an entry's feedback text and score; ``False`` if it is unknown."""
        return self._run(
            self._manager.delete_feedback(qa_id, session_id=session_id, user_id=user_id)
        )

    # -- pass-through ------------------------------------------------------------------

    def get_session(
        self, session_id: str | None = None, user_id: str | None = None, last_n: int | None = None
    ) -> list[SessionQAEntry]:
        """Return the session's entries (the newest ``last_n``), oldest first."""
        return self._run(self._manager.get_session(session_id, user_id, last_n))

    def delete_session(self, session_id: str | None = None, user_id: str | None = None) -> bool:
        """Delete the session's entries, graph context and traces; ``True`` if any existed."""
        return self._run(self._manager.delete_session(session_id, user_id))

    def update_qa(
        self,
        qa_id: str,
        updates: SessionQAUpdate,
        *,
        session_id: str | None = None,
        user_id: str | None = None,
    ) -> bool:
        """Apply a tri-state update to an entry; ``False`` if it is unknown."""
        return self._run(
            self._manager.update_qa(qa_id, updates, session_id=session_id, user_id=user_id)
        )

    def latest_qa_id(self, session_id: str | None = None, user_id: str | None = None) -> str | None:
        """Return the newest entry's id, or ``None`` for an empty session."""
        return self._run(self._manager.latest_qa_id(session_id, user_id))

    def get_graph_context(
        self, session_id: str | None = None, user_id: str | None = None
    ) -> str | None:
        """Return the session's graph context (``""`` is a value, unlike ``None``)."""
        return self._run(self._manager.get_graph_context(session_id, user_id))

    def set_graph_context(
        self, context: str, *, session_id: str | None = None, user_id: str | None = None
    ) -> None:
        """Store the session's graph context, replacing any previous one."""
        self._run(self._manager.set_graph_context(context, session_id=session_id, user_id=user_id))

    # -- agent traces -------------------------------------------------------------------

    def add_agent_trace_step(
        self,
        *,
        origin_function: str,
        status: str,
        session_id: str | None = None,
        user_id: str | None = None,
        memory_query: str = "",
        memory_context: str = "",
        method_params: dict[str, JsonValue] | None = None,
        method_return_value: JsonValue = None,
        error_message: str = "",
        generate_feedback: bool = True,
    ) -> str:
        """Record one step of an agent and return its new trace id (a UUID4).

        Raises:
            InvalidParameterError: bad ids, a blank ``origin_function`` or
                ``status``, or values that are not JSON.

        """
        return self._run(
            self._manager.add_agent_trace_step(
                origin_function=origin_function,
                status=status,
                session_id=session_id,
                user_id=user_id,
                memory_query=memory_query,
                memory_context=memory_context,
                method_params=method_params,
                method_return_value=method_return_value,
                error_message=error_message,
                generate_feedback=generate_feedback,
            )
        )

    def get_agent_trace_session(
        self, session_id: str | None = None, user_id: str | None = None, last_n: int | None = None
    ) -> list[SessionTraceStep]:
        """Return the session's trace steps (the newest ``last_n``), oldest first."""
        return self._run(self._manager.get_agent_trace_session(session_id, user_id, last_n))

    def get_agent_trace_feedback(
        self, session_id: str | None = None, user_id: str | None = None, last_n: int | None = None
    ) -> list[str]:
        """Return the ``session_feedback`` sentences of the session's steps, oldest first."""
        return self._run(self._manager.get_agent_trace_feedback(session_id, user_id, last_n))

    def get_agent_trace_count(
        self, session_id: str | None = None, user_id: str | None = None
    ) -> int:
        """Return how many trace steps the session holds."""
        return self._run(self._manager.get_agent_trace_count(session_id, user_id))

    # -- improve lock --------------------------------------------------------------------

    @contextmanager
    def improve_lock(
        self, session_id: str | None = None, user_id: str | None = None
    ) -> Iterator[bool]:
        """Try to take the session's improve lock; yield whether this caller holds it.

        Like the async manager's: it never waits, is not reentrant (a second
        attempt, even from the same thread, yields ``False``), and is
        released when the block exits, also on error.

        Raises:
            InvalidParameterError: bad ids.
            StoreError: the lock's storage failed.

        """
        lock = self._manager.improve_lock(session_id, user_id)
        held = self._run(lock.__aenter__())
        try:
            yield held
        finally:
            # The async lock only releases on exit, with or without an error,
            # so the caller's exception stays in the caller's thread.
            self._run(lock.__aexit__(None, None, None))
