"""How :mod:`sessionstore.integrations.adk` keeps ADK's sessions in a sessionstore.

One place for the layout its module docstring describes: the sessionstore
user and app names of an ADK ``(app, user)``, the stored form of state keys
and values, the event record, and the revision a ``Session`` carries.
Importing it imports ADK (``pip install 'sessionstore[adk]'``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from sessionstore.extras import require
from sessionstore.models import SessionItem, SessionState

require("google.adk.sessions", "adk")

from google.adk.events.event import Event  # noqa: E402
from google.adk.sessions.state import State  # noqa: E402
from pydantic_core import to_jsonable_python  # noqa: E402

if TYPE_CHECKING:
    from google.adk.sessions.session import Session

__all__ = [
    "ScopedDelta",
    "app_key",
    "event_of",
    "event_record",
    "event_time",
    "merged_state",
    "revision_of",
    "session_changes",
    "session_values",
    "set_revision",
    "split_delta",
    "unwrapped",
    "update_time",
    "user_key",
    "wrapped",
]

_VALUE: Final = "s:"  # prefix of an ADK key in a stored session state
_UPDATE_TIME: Final = "m:update_time"  # the session's last_update_time
_MARKER: Final = "sessionstore-revision:"  # Session._storage_update_marker
_ESCAPED: Final = re.compile(r"[%/]")


# -- names ---------------------------------------------------------------------------


def app_key(app_name: str) -> str:
    """The app's name with ``%`` and ``/`` escaped: it never holds a bare ``/``.

    It names the app state of ADK's ``app:`` keys, and the sessionstore user
    whose sessions list the app's users.
    """
    return _ESCAPED.sub(lambda match: "%25" if match[0] == "%" else "%2F", app_name)


def user_key(app_name: str, user_id: str) -> str:
    """The sessionstore user of an ADK ``(app, user)``: ``<app>/<user>``.

    Two different pairs never share it: the first bare ``/`` ends the app.
    """
    return f"{app_key(app_name)}/{user_id}"


# -- states --------------------------------------------------------------------------


class ScopedDelta(NamedTuple):
    """An ADK state delta split by scope, JSON-safe, without its ``temp:`` keys."""

    app: dict[str, Any]
    user: dict[str, Any]
    session: dict[str, Any]


def split_delta(delta: Mapping[str, Any]) -> ScopedDelta:
    """Split an ADK delta; what JSON cannot hold becomes its text, as ADK's database does."""
    scoped = ScopedDelta({}, {}, {})
    safe: dict[str, Any] = to_jsonable_python(dict(delta), serialize_unknown=True)
    for key, value in safe.items():
        if key.startswith(State.APP_PREFIX):
            scoped.app[key.removeprefix(State.APP_PREFIX)] = value
        elif key.startswith(State.USER_PREFIX):
            scoped.user[key.removeprefix(State.USER_PREFIX)] = value
        elif not key.startswith(State.TEMP_PREFIX):
            scoped.session[key] = value
    return scoped


def wrapped(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Each value in a one-element list, so that ``None`` is stored, not a deletion."""
    return {prefix + key: [value] for key, value in values.items()}


def unwrapped(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """The ADK values of a stored state: its ``prefix`` keys, unwrapped."""
    return {
        key.removeprefix(prefix): value[0]
        for key, value in data.items()
        if key.startswith(prefix) and isinstance(value, list) and len(value) == 1
    }


def session_changes(session_delta: Mapping[str, Any], when: float) -> dict[str, Any]:
    """The stored form of a session-scoped delta written at ``when`` (ADK seconds)."""
    return {**wrapped(session_delta, _VALUE), _UPDATE_TIME: when}


def session_values(state: SessionState) -> dict[str, Any]:
    """The ADK keys and values of a stored session state."""
    return unwrapped(state.data, _VALUE)


def update_time(state: SessionState, fallback: float = 0.0) -> float:
    """The session's ``last_update_time`` kept in its stored state."""
    value = state.data.get(_UPDATE_TIME)
    return float(value) if isinstance(value, int | float) else fallback


def merged_state(
    session_state: Mapping[str, Any], app_state: SessionState, user_state: SessionState
) -> dict[str, Any]:
    """The state ADK hands out: the session's keys, then ``app:`` and ``user:`` keys."""
    merged = dict(session_state)
    merged.update({State.APP_PREFIX + k: v for k, v in unwrapped(app_state.data).items()})
    merged.update({State.USER_PREFIX + k: v for k, v in unwrapped(user_state.data).items()})
    return merged


# -- events and revisions --------------------------------------------------------------


def event_record(event: Event) -> dict[str, Any]:
    """An event as one item, in the JSON ``DatabaseSessionService`` stores."""
    return event.model_dump(mode="json", exclude_none=True)


def event_of(item: SessionItem) -> Event:
    """The event an item holds."""
    return Event.model_validate(item.data)


def event_time(item: SessionItem) -> float:
    """The ``timestamp`` of the event an item holds, without building the event."""
    data = item.data
    value = data.get("timestamp") if isinstance(data, dict) else None
    return float(value) if isinstance(value, int | float) else 0.0


def set_revision(session: Session, revision: int) -> None:
    """Remember on the session the state revision it matches (ADK's marker slot)."""
    session._storage_update_marker = f"{_MARKER}{revision}"


def revision_of(session: Session) -> int | None:
    """The revision :func:`set_revision` put on the session, or ``None`` (made elsewhere)."""
    marker = session._storage_update_marker
    if marker is None or not marker.startswith(_MARKER):
        return None
    digits = marker.removeprefix(_MARKER)
    return int(digits) if digits.isdigit() else None
