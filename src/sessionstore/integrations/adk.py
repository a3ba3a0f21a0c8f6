"""Google ADK sessions on any sessionstore backend: a ``BaseSessionService``.

``SessionstoreSessionService(store)`` keeps ADK's sessions, events and its
three state scopes in a :class:`~sessionstore.SessionStore` (or a URL,
opened and owned by the service). Where ADK and sessionstore differ, ADK's
semantics win; how each ADK concept is stored:

- **Keys.** ADK names a session by ``(app_name, user_id, session_id)``. Its
  sessions live under the sessionstore user ``<app>/<user>`` with their own
  session id, where ``<app>`` is the app name with ``%`` written ``%25`` and
  ``/`` written ``%2F`` (so two different pairs never share a key; the user id
  is kept as it is). That user's state holds ADK's ``user:`` keys; the app
  state named ``<app>`` holds the ``app:`` keys. Each of an app's users has a
  session named ``<app>/<user>`` under the sessionstore user ``<app>``: the
  app's index of users, which ``list_sessions`` without a user pages through.
- **Events** are the session's items, one per event, as ADK's
  ``DatabaseSessionService`` writes them (``model_dump(mode="json",
  exclude_none=True)``).
- **State.** A session's state stores each ADK key ``k`` as ``s:k`` and the
  time of its last update as ``m:update_time``; every value is wrapped in a
  one-element list, so ``None`` (a value in ADK, a deletion in sessionstore)
  survives. App and user states wrap their values the same way. ``temp:``
  keys are never stored.
- **Stale sessions.** ``append_event`` writes the event and the session's
  state delta in one ``append_turn`` with the state revision the caller's
  copy of the session was read at; a copy that is behind is refused with
  ADK's ``StaleSessionError`` and its message, as ``DatabaseSessionService``
  refuses it. The ``app:`` and ``user:`` parts of the delta are written just
  after, each as its own atomic merge.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

from sessionstore.errors import ConflictError
from sessionstore.extras import require
from sessionstore.integrations import take_store
from sessionstore.loop_lock import AnyLoopLock
from sessionstore.models import SessionInfo, SessionState
from sessionstore.store import SessionStore

require("google.adk.sessions", "adk")

from google.adk.errors import StaleSessionError  # noqa: E402
from google.adk.errors.already_exists_error import AlreadyExistsError  # noqa: E402
from google.adk.errors.session_not_found_error import SessionNotFoundError  # noqa: E402
from google.adk.platform import time as adk_time  # noqa: E402
from google.adk.platform import uuid as adk_uuid  # noqa: E402
from google.adk.sessions.base_session_service import (  # noqa: E402
    BaseSessionService,
    GetSessionConfig,
    ListSessionsResponse,
)
from google.adk.sessions.session import Session  # noqa: E402

from sessionstore.integrations import adk_layout as layout  # noqa: E402

if TYPE_CHECKING:
    from google.adk.events.event import Event

__all__ = ["STALE_SESSION_MESSAGE", "SessionstoreSessionService"]

STALE_SESSION_MESSAGE: Final = (
    "The session has been modified in storage since it was loaded. "
    "Please reload the session before appending more events."
)
"""The message of ``DatabaseSessionService``'s ``StaleSessionError``, word for word."""

_PAGE: Final = 1000  # list_sessions page size, the most one call returns
_FIRST_TAIL: Final = 64  # events read first when only after_timestamp limits them


class _KeyedLocks:
    """A lock per key while someone holds or waits for it, usable from any loop and thread."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._held: dict[tuple[str, str], tuple[AnyLoopLock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: tuple[str, str]) -> AsyncIterator[None]:
        with self._guard:
            lock, users = self._held.get(key, (AnyLoopLock(), 0))
            self._held[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._held[key]
                if users == 1:
                    del self._held[key]
                else:
                    self._held[key] = (lock, users - 1)


class SessionstoreSessionService(BaseSessionService):
    """ADK's ``BaseSessionService`` on a sessionstore store (any backend).

    Args:
        store: a :class:`~sessionstore.SessionStore`, or a URL the service
            opens with :func:`~sessionstore.open_store` and closes in
            :meth:`close`.

    Ids follow sessionstore's rules: the session id, and ``<app>/<user>``
    (the app name escaped), are 1 to 256 characters without NUL; a longer or
    empty one raises ``InvalidParameterError`` (a ``ValueError``). A session id
    is stripped of surrounding blanks, as ADK's in-memory service does.
    """

    def __init__(self, store: SessionStore | str) -> None:
        self._store, self._owns_store = take_store(store)
        self._appending = _KeyedLocks()

    @property
    def store(self) -> SessionStore:
        """The store the sessions are kept in."""
        return self._store

    async def close(self) -> None:
        """Close the store if this service opened it from a URL; otherwise leave it open."""
        if self._owns_store:
            await self._store.close()

    async def __aenter__(self) -> SessionstoreSessionService:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # -- sessions ------------------------------------------------------------------------

    async def create_session(
        self,
        *,
        app_name: str,
        user_id: str,
        state: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> Session:
        """Create a session; its ``app:`` and ``user:`` keys go to the app's and user's state.

        Raises:
            AlreadyExistsError: the session exists.
            InvalidParameterError: an id breaks sessionstore's rules.

        """
        session_id = session_id.strip() if session_id else None
        session_id = session_id or adk_uuid.new_uuid()
        delta = layout.split_delta(state or {})
        user_key = layout.user_key(app_name, user_id)
        now = adk_time.get_time()
        changes = layout.session_changes(delta.session, now)
        try:
            turn = await self._store.append_turn(
                session_id, user_key, state=changes, expected_revision=0
            )
        except ConflictError as exc:
            raise AlreadyExistsError(f"Session with id {session_id} already exists.") from exc
        await self._store.update_state(user_key, layout.app_key(app_name), {})  # the app's users
        app_state, user_state = await self._scoped(app_name, user_key, delta.app, delta.user)
        session = Session(
            id=session_id,
            app_name=app_name,
            user_id=user_id,
            state=layout.merged_state(delta.session, app_state, user_state),
            last_update_time=now,
        )
        layout.set_revision(session, turn.revision)
        return session

    async def get_session(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        config: GetSessionConfig | None = None,
    ) -> Session | None:
        """Return the session with its events (as ``config`` limits them), or ``None``."""
        session_id = session_id.strip() if session_id else session_id
        user_key = layout.user_key(app_name, user_id)
        # The state first: events read after it can only be newer, so a copy
        # built from both is never ahead of the revision it carries.
        stored = await self._store.get_state(session_id, user_key)
        if stored.revision == 0:
            return None
        events = await self._events(session_id, user_key, config)
        app_state, user_state = await self._scoped(app_name, user_key)
        session = Session(
            id=session_id,
            app_name=app_name,
            user_id=user_id,
            state=layout.merged_state(layout.session_values(stored), app_state, user_state),
            events=events,
            last_update_time=layout.update_time(stored),
        )
        layout.set_revision(session, stored.revision)
        return session

    async def list_sessions(
        self, *, app_name: str, user_id: str | None = None
    ) -> ListSessionsResponse:
        """List the sessions of a user (``None``: of every user), oldest update first.

        Each session has its merged state and no events. It pages through
        sessionstore's ``list_sessions`` (an index) and reads each session's
        state, never its events.
        """
        if user_id is None:
            index = await self._infos(layout.app_key(app_name))
            prefix = layout.user_key(app_name, "")
            users = [info.session_id.removeprefix(prefix) for info in index]
        else:
            users = [user_id]
        app_state = await self._store.get_app_state(layout.app_key(app_name))
        sessions: list[Session] = []
        for user in users:
            sessions.extend(await self._user_sessions(app_name, user, app_state))
        sessions.sort(key=lambda s: (s.last_update_time, s.user_id, s.id))
        return ListSessionsResponse(sessions=sessions)

    async def delete_session(self, *, app_name: str, user_id: str, session_id: str) -> None:
        """Delete the session and its events; the app's and user's states stay."""
        session_id = session_id.strip() if session_id else session_id
        await self._store.delete_session(session_id, layout.user_key(app_name, user_id))

    async def get_user_state(self, *, app_name: str, user_id: str) -> dict[str, Any]:
        """Return the user's state, keys without the ``user:`` prefix."""
        stored = await self._store.get_user_state(layout.user_key(app_name, user_id))
        return layout.unwrapped(stored.data)

    # -- events --------------------------------------------------------------------------

    async def append_event(self, session: Session, event: Event) -> Event:
        """Store the event and its state delta, then apply both to ``session``.

        The event and the session-scoped delta are one atomic write, made only
        if the stored session is still at the revision ``session`` was read at.
        Appends to one session through this service wait for each other (as
        ``DatabaseSessionService`` makes them), so tasks sharing one
        ``Session`` object are not refused as stale.

        Raises:
            StaleSessionError: the stored session changed since ``session``
                was read (reload it and run the turn again).
            SessionNotFoundError: the session does not exist.

        """
        if event.partial:
            return event
        self._apply_temp_state(session, event)
        event = self._trim_temp_delta_state(event)
        delta = layout.split_delta(event.actions.state_delta or {})
        user_key = layout.user_key(session.app_name, session.user_id)
        async with self._appending.hold((user_key, session.id)):
            expected = await self._expected_revision(session, user_key)
            changes = layout.session_changes(delta.session, event.timestamp)
            try:
                turn = await self._store.append_turn(
                    session.id,
                    user_key,
                    [layout.event_record(event)],
                    state=changes,
                    expected_revision=expected,
                )
            except ConflictError as exc:
                if exc.actual == 0:
                    raise SessionNotFoundError(f"Session {session.id} not found.") from exc
                raise StaleSessionError(STALE_SESSION_MESSAGE) from exc
            if delta.app or delta.user:
                await self._scoped(session.app_name, user_key, delta.app, delta.user)
            if self._store.ttl is not None:  # keep the user in the app's list while it is active
                await self._store.update_state(user_key, layout.app_key(session.app_name), {})
            session.last_update_time = event.timestamp
            layout.set_revision(session, turn.revision)
        return self._commit_event_to_session(session, event)

    async def _expected_revision(self, session: Session, user_key: str) -> int:
        """The revision ``session`` was read at, or for a session made elsewhere, a check.

        A session without this service's marker is judged as
        ``DatabaseSessionService`` judges one without its marker: stale if the
        stored session was updated after it and its last event is not the
        stored one.
        """
        revision = layout.revision_of(session)
        if revision is not None:
            return revision
        stored = await self._store.get_state(session.id, user_key)
        if stored.revision == 0:
            raise SessionNotFoundError(f"Session {session.id} not found.")
        if layout.update_time(stored) > session.last_update_time:
            last = await self._store.get_items(session.id, user_key, last_n=1)
            last_id = last[0].data.get("id") if last and isinstance(last[0].data, dict) else None
            mine = session.events[-1].id if session.events else None
            if last_id != mine:
                raise StaleSessionError(STALE_SESSION_MESSAGE)
        return stored.revision

    async def _events(
        self, session_id: str, user_key: str, config: GetSessionConfig | None
    ) -> list[Event]:
        """The newest ``num_recent_events`` events, of those at or after ``after_timestamp``."""
        last_n = config.num_recent_events if config else None
        after = config.after_timestamp if config else None
        if last_n == 0:
            return []
        if after is None or last_n is not None:
            items = await self._store.get_items(session_id, user_key, last_n=last_n)
        else:  # read a growing tail until it reaches an event older than ``after``
            size = _FIRST_TAIL
            while True:
                items = await self._store.get_items(session_id, user_key, last_n=size)
                if len(items) < size or layout.event_time(items[0]) < after:
                    break
                size *= 4
        if after is not None:
            start = len(items)
            while start > 0 and layout.event_time(items[start - 1]) >= after:
                start -= 1
            items = items[start:]
        return [layout.event_of(item) for item in items]

    # -- states and listing ----------------------------------------------------------------

    async def _scoped(
        self,
        app_name: str,
        user_key: str,
        app_delta: Mapping[str, Any] | None = None,
        user_delta: Mapping[str, Any] | None = None,
    ) -> tuple[SessionState, SessionState]:
        """Apply the deltas given to the app's and the user's states; return both states."""
        app_key = layout.app_key(app_name)
        if app_delta:
            app_state = await self._store.update_app_state(app_key, layout.wrapped(app_delta))
        else:
            app_state = await self._store.get_app_state(app_key)
        if user_delta:
            user_state = await self._store.update_user_state(user_key, layout.wrapped(user_delta))
        else:
            user_state = await self._store.get_user_state(user_key)
        return app_state, user_state

    async def _infos(self, store_user: str) -> list[SessionInfo]:
        """Every session of a sessionstore user, a page of ``_PAGE`` at a time."""
        infos: list[SessionInfo] = []
        cursor: str | None = None
        while True:
            page = await self._store.list_sessions(store_user, limit=_PAGE, cursor=cursor)
            infos.extend(page.items)
            if page.next_cursor is None:
                return infos
            cursor = page.next_cursor

    async def _user_sessions(
        self, app_name: str, user_id: str, app_state: SessionState
    ) -> list[Session]:
        user_key = layout.user_key(app_name, user_id)
        infos = await self._infos(user_key)
        if not infos:
            return []
        user_state = await self._store.get_user_state(user_key)
        states: list[SessionState] = []
        for start in range(0, len(infos), _PAGE):  # one read of the store per page
            page = infos[start : start + _PAGE]
            states += await self._store.get_states([info.session_id for info in page], user_key)
        sessions = []
        for info, stored in zip(infos, states, strict=True):
            if stored.revision == 0:  # items only, or expired between the two reads
                continue
            session = Session(
                id=info.session_id,
                app_name=app_name,
                user_id=user_id,
                state=layout.merged_state(layout.session_values(stored), app_state, user_state),
                last_update_time=layout.update_time(stored, info.updated_at.timestamp()),
            )
            layout.set_revision(session, stored.revision)
            sessions.append(session)
        return sessions
