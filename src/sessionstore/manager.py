"""``SessionManager``: what an agent or RAG pipeline calls on every turn (docs/manager.md).

It sits on any :class:`~sessionstore.SessionStore` and adds the turn-level
conveniences: history as chat messages and as prompt text (from the
question/answer entries, or from the item log), saving a turn,
feedback, agent trace steps with a one-sentence LLM summary, and the
per-session improve lock.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal

from sessionstore.errors import InvalidParameterError
from sessionstore.item_messages import format_messages, messages_from_items
from sessionstore.llm import LLM, fallback_feedback, summarize_return_value
from sessionstore.locks import DEFAULT_LEASE, lock_backend_for, lock_name
from sessionstore.models import (
    JsonValue,
    SessionContext,
    SessionItem,
    SessionQAEntry,
    SessionQAUpdate,
    SessionTraceStep,
    UsedGraphElementIds,
)
from sessionstore.observe import ObservedManager
from sessionstore.store import SessionStore
from sessionstore.validation import check_score, check_seconds, check_session_id, check_user_id

__all__ = ["SessionManager"]

GRAPH_PREFIX = "Background knowledge from the knowledge graph:\n{}\n\n"
HISTORY_HEADER = "Previous conversation:\n\n"
FEEDBACK_PENDING = {"feedback_weights_applied": False}


class SessionManager(ObservedManager):
    """Turn-level helpers over a store: history, feedback, traces, locking.

    Every ``session_id`` argument is optional and falls back to
    ``default_session_id``. Calls raise what the store raises:
    :class:`~sessionstore.InvalidParameterError` for bad input before any I/O,
    :class:`~sessionstore.StoreError` when the backend fails.

    Args:
        store: where sessions live; the manager neither opens nor closes it.
        default_session_id: the session used when a call names none.
        history_limit: how many of the newest entries the history holds.
        llm: writes the one-sentence summaries of trace steps; ``None``
            stores the fixed fallback sentences.
        lock_lease: seconds an ``improve_lock`` outlives a crashed holder, on
            backends whose locks expire (SQLite, files, Redis).

    Raises:
        InvalidParameterError: a bad default id, limit, lease, or an ``llm``
            without ``generate``.

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
            raise InvalidParameterError(f"store must be a SessionStore, got {type(store).__name__}")
        if isinstance(history_limit, bool) or not isinstance(history_limit, int):
            raise InvalidParameterError(f"history_limit must be an int, got {history_limit!r}")
        if history_limit < 0:
            raise InvalidParameterError(f"history_limit must be >= 0, got {history_limit}")
        if llm is not None and not callable(getattr(llm, "generate", None)):
            raise InvalidParameterError(
                "llm must have 'async def generate(messages, *, temperature, max_tokens)'"
            )
        self.store = store
        self.default_session_id = check_session_id(default_session_id)
        self.history_limit = history_limit
        self.llm = llm
        self.lock_lease = check_seconds(lock_lease, "lock_lease")

    def __repr__(self) -> str:
        return (
            f"<SessionManager store={self.store!r} "
            f"default_session_id={self.default_session_id!r} history_limit={self.history_limit}>"
        )

    def _sid(self, session_id: str | None) -> str:
        return self.default_session_id if session_id is None else session_id

    # -- history ---------------------------------------------------------------

    async def _history_entries(
        self, session_id: str | None, user_id: str | None
    ) -> list[SessionQAEntry]:
        return await self.store.get_latest_qa_entries(
            self._sid(session_id), user_id, self.history_limit
        )

    @staticmethod
    def _messages(entries: Sequence[SessionQAEntry]) -> list[dict[str, str]]:
        messages: list[dict[str, str]] = []
        for entry in entries:
            messages.append({"role": "user", "content": entry.question})
            messages.append({"role": "assistant", "content": entry.answer})
        return messages

    async def load_history_messages(
        self, session_id: str | None = None, user_id: str | None = None
    ) -> list[dict[str, str]]:
        """Return the last ``history_limit`` turns as OpenAI-style messages, oldest first.

        Each entry gives ``{"role": "user", "content": question}`` followed by
        ``{"role": "assistant", "content": answer}``.
        """
        return self._messages(await self._history_entries(session_id, user_id))

    def format_entries(
        self, entries: Sequence[SessionQAEntry], include_context: bool = False
    ) -> str:
        r"""Return entries as prompt text; ``""`` for no entries.

        The text is ``"Previous conversation:\\n\\n"`` and, per entry,
        ``"[<created_at ISO>]\\nQUESTION: <q>\\n"``, then
        ``"CONTEXT: <c>\\n"`` when ``include_context`` and the entry has a
        context, then ``"ANSWER: <a>\\n\\n"``.
        """
        if not entries:
            return ""
        parts = [HISTORY_HEADER]
        for entry in entries:
            parts.append(f"[{entry.created_at.isoformat()}]\nQUESTION: {entry.question}\n")
            if include_context and entry.context is not None:
                parts.append(f"CONTEXT: {entry.context}\n")
            parts.append(f"ANSWER: {entry.answer}\n\n")
        return "".join(parts)

    async def load_history_both(
        self, session_id: str | None = None, user_id: str | None = None
    ) -> tuple[list[dict[str, str]], str]:
        """Return ``(messages, text)`` for the last turns from one store read.

        ``text`` is :meth:`format_entries` without contexts.
        """
        entries = await self._history_entries(session_id, user_id)
        return self._messages(entries), self.format_entries(entries)

    async def _history_items(
        self, session_id: str | None, user_id: str | None
    ) -> list[SessionItem]:
        return await self.store.get_items(self._sid(session_id), user_id, 2 * self.history_limit)

    async def load_item_messages(
        self, session_id: str | None = None, user_id: str | None = None
    ) -> list[dict[str, str]]:
        """Return the chat messages among the newest ``2 * history_limit`` items, oldest first.

        An entry history of ``history_limit`` turns holds that many messages;
        items that are no chat message (tool calls, ...) are read but
        skipped, so the history may hold fewer. See :meth:`messages_from_items`.
        """
        return messages_from_items(await self._history_items(session_id, user_id))

    def messages_from_items(self, items: Sequence[SessionItem]) -> list[dict[str, str]]:
        """Return the chat messages among ``items`` as ``{"role", "content"}`` dicts, in order.

        An item counts when it is a dict with a ``role`` of ``user``,
        ``assistant``, ``system``, ``developer`` or ``model`` (which becomes
        ``assistant``), no ``type`` other than ``"message"``, and a
        ``content`` that is a str or a list of parts (a str, or a dict with a
        str ``text``) whose texts are joined by newlines. Every other item is
        skipped (see :mod:`sessionstore.item_messages`).
        """
        return messages_from_items(items)

    async def build_context(
        self,
        session_id: str | None = None,
        user_id: str | None = None,
        *,
        source: Literal["entries", "items"] = "entries",
    ) -> SessionContext:
        r"""Return the history and graph context a prompt needs.

        With ``source="entries"`` (the default) the history is the last
        ``history_limit`` question/answer entries; with ``source="items"`` it
        is :meth:`load_item_messages`, and ``formatted_history`` holds each
        message as ``"<ROLE>: <content>\\n\\n"`` after the same header. When
        the session's graph context is non-empty, ``formatted_history``
        starts with ``"Background knowledge from the knowledge graph:\\n<gc>\\n\\n"``.

        Raises:
            InvalidParameterError: bad ids, or ``source`` is neither
                ``"entries"`` nor ``"items"``.

        """
        sid = self._sid(session_id)
        if source == "items":
            items, graph_context = await asyncio.gather(
                self._history_items(sid, user_id), self.store.get_graph_context(sid, user_id)
            )
            history = messages_from_items(items)
            text = format_messages(history)
        elif source == "entries":
            entries, graph_context = await asyncio.gather(
                self._history_entries(sid, user_id), self.store.get_graph_context(sid, user_id)
            )
            history = self._messages(entries)
            text = self.format_entries(entries)
        else:
            raise InvalidParameterError(f"source must be 'entries' or 'items', got {source!r}")
        if graph_context:
            text = GRAPH_PREFIX.format(graph_context) + text
        return SessionContext(
            session_id=sid,
            history=history,
            formatted_history=text,
            graph_context=graph_context,
        )

    # -- entries and feedback -----------------------------------------------------

    async def save_qa(
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
        return await self.store.create_qa_entry(
            self._sid(session_id),
            user_id,
            question,
            answer,
            context,
            used_graph_element_ids=used_graph_element_ids,
        )

    async def add_feedback(
        self,
        qa_id: str,
        *,
        session_id: str | None = None,
        user_id: str | None = None,
        text: str | None = None,
        score: int | None = None,
    ) -> bool:
        """Set an entry's feedback text and score (``None`` clears each).

        Also sets ``memify_metadata`` to ``{"feedback_weights_applied": False}``
        so a later pass can apply the new feedback.

        Returns:
            ``False`` if the entry is unknown.

        Raises:
            InvalidParameterError: ``score`` is not ``None`` or an int from 1
                to 5 (``"feedback_score must be between 1 and 5, got <n>"``),
                checked before the store is touched.

        """
        check_score(score)
        update = SessionQAUpdate(
            feedback_text=text, feedback_score=score, memify_metadata=dict(FEEDBACK_PENDING)
        )
        return await self.store.update_qa_entry(self._sid(session_id), user_id, qa_id, update)

    async def delete_feedback(
        self, qa_id: str, *, session_id: str | None = None, user_id: str | None = None
    ) -> bool:
        """Clear an entry's feedback text and score; ``False`` if it is unknown."""
        update = SessionQAUpdate(feedback_text=None, feedback_score=None)
        return await self.store.update_qa_entry(self._sid(session_id), user_id, qa_id, update)

    # -- pass-through ------------------------------------------------------------------

    async def get_session(
        self, session_id: str | None = None, user_id: str | None = None, last_n: int | None = None
    ) -> list[SessionQAEntry]:
        """Return the session's entries (the newest ``last_n``), oldest first."""
        sid = self._sid(session_id)
        if last_n is None:
            return await self.store.get_all_qa_entries(sid, user_id)
        return await self.store.get_latest_qa_entries(sid, user_id, last_n)

    async def delete_session(
        self, session_id: str | None = None, user_id: str | None = None
    ) -> bool:
        """Delete the session's entries, graph context and traces; ``True`` if any existed."""
        return await self.store.delete_session(self._sid(session_id), user_id)

    async def update_qa(
        self,
        qa_id: str,
        updates: SessionQAUpdate,
        *,
        session_id: str | None = None,
        user_id: str | None = None,
    ) -> bool:
        """Apply a tri-state update to an entry; ``False`` if it is unknown."""
        return await self.store.update_qa_entry(self._sid(session_id), user_id, qa_id, updates)

    async def latest_qa_id(
        self, session_id: str | None = None, user_id: str | None = None
    ) -> str | None:
        """Return the newest entry's id, or ``None`` for an empty session."""
        return await self.store.latest_qa_id(self._sid(session_id), user_id)

    async def get_graph_context(
        self, session_id: str | None = None, user_id: str | None = None
    ) -> str | None:
        """Return the session's graph context (``""`` is a value, unlike ``None``)."""
        return await self.store.get_graph_context(self._sid(session_id), user_id)

    async def set_graph_context(
        self, context: str, *, session_id: str | None = None, user_id: str | None = None
    ) -> None:
        """Store the session's graph context, replacing any previous one."""
        await self.store.set_graph_context(self._sid(session_id), user_id, context)

    # -- agent traces -------------------------------------------------------------------

    async def add_agent_trace_step(
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

        The step's ``session_feedback`` is a one-sentence LLM summary of
        ``method_return_value`` when an LLM is set, ``generate_feedback`` is
        true and the value is not ``None``. Otherwise, and whenever the LLM
        fails, times out or answers nothing usable, it is the fixed sentence
        ``"<origin> succeeded."``, ``"<origin> failed."`` or
        ``"<origin> failed. Reason: <error>."`` (see
        :func:`sessionstore.llm.fallback_feedback`).

        Raises:
            InvalidParameterError: bad ids, a blank ``origin_function`` or
                ``status``, or values that are not JSON; checked before the
                LLM or the store is called.

        """
        sid = self._sid(session_id)
        check_session_id(sid)
        check_user_id(user_id)
        step = SessionTraceStep(
            trace_id=str(uuid.uuid4()),
            origin_function=origin_function,
            status=status,
            memory_query=memory_query,
            memory_context=memory_context,
            method_params={} if method_params is None else method_params,
            method_return_value=method_return_value,
            error_message=error_message,
        )
        summary = None
        if self.llm is not None and generate_feedback and method_return_value is not None:
            summary = await summarize_return_value(self.llm, method_return_value)
        if summary is None:
            summary = fallback_feedback(origin_function, status, error_message)
        step = step.model_copy(update={"session_feedback": summary})
        return await self.store.save_trace_step(sid, user_id, step)

    async def get_agent_trace_session(
        self, session_id: str | None = None, user_id: str | None = None, last_n: int | None = None
    ) -> list[SessionTraceStep]:
        """Return the session's trace steps (the newest ``last_n``), oldest first."""
        return await self.store.read_trace_steps(self._sid(session_id), user_id, last_n)

    async def get_agent_trace_feedback(
        self, session_id: str | None = None, user_id: str | None = None, last_n: int | None = None
    ) -> list[str]:
        """Return the ``session_feedback`` sentences of the session's steps, oldest first."""
        steps = await self.get_agent_trace_session(session_id, user_id, last_n)
        return [step.session_feedback for step in steps]

    async def get_agent_trace_count(
        self, session_id: str | None = None, user_id: str | None = None
    ) -> int:
        """Return how many trace steps the session holds."""
        return len(await self.get_agent_trace_session(session_id, user_id))

    # -- improve lock --------------------------------------------------------------------

    @asynccontextmanager
    async def improve_lock(
        self, session_id: str | None = None, user_id: str | None = None
    ) -> AsyncIterator[bool]:
        """Try to take the session's improve lock; yield whether this caller holds it.

        The lock never waits and is not reentrant: while it is held, any
        other attempt, even from the same task, yields ``False``. It is
        released when the block exits, also on error. Where the store's data
        is shared (SQLite, files, Redis, PostgreSQL, MySQL/MariaDB) the lock is
        shared with every process reaching the same data; on the memory
        backend it is process-local.

        Raises:
            InvalidParameterError: bad ids.
            StoreError: the lock's storage failed.

        """
        sid = check_session_id(self._sid(session_id))
        user = check_user_id(user_id)
        backend = await lock_backend_for(self.store)
        held = await backend.try_acquire(lock_name(sid, user), self.lock_lease)
        try:
            yield held is not None
        finally:
            if held is not None:
                await held.release()
