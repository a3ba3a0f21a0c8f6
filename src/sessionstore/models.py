"""The values sessionstore stores and returns (their limits: README.md, Backends).

Every model is a frozen pydantic v2 model that validates strictly when it is
built: no coercion, and a bad value raises
:class:`~sessionstore.errors.InvalidParameterError` rather than a bare
pydantic error.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from sessionstore.errors import InvalidParameterError
from sessionstore.validation import (
    check_json,
    check_score,
    check_session_id,
    check_text,
    check_user_id,
)

__all__ = [
    "JsonValue",
    "SessionContext",
    "SessionInfo",
    "SessionItem",
    "SessionPage",
    "SessionQAEntry",
    "SessionQAUpdate",
    "SessionState",
    "SessionTraceStep",
    "TurnResult",
    "UsedGraphElementIds",
    "UserInfo",
]

JsonValue = Any
"""A JSON-compatible value: None, bool, int, float, str, list or dict."""

Score = Annotated[int, AfterValidator(check_score)]
_UNLIMITED = 2**62


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(p) for p in error["loc"]) or "value"
        parts.append(f"{where}: {error['msg']}")
    return f"invalid {exc.title}: " + "; ".join(parts)


def _aware_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must be a timezone-aware datetime")
    try:
        return value.astimezone(UTC)
    except OverflowError:  # year 1 east of UTC, or year 9999 west of it
        raise ValueError("must be a datetime that exists in UTC") from None


# The slots of a BaseModel, set through their descriptors as pydantic's own
# model_construct sets them (a frozen model refuses attribute assignment), which
# saves object.__setattr__'s lookup of each name: reads build a model per row.
_new = object.__new__
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


class _StrictModel(BaseModel):
    model_config = ConfigDict(frozen=True, strict=True, extra="forbid")

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise InvalidParameterError(_describe(exc)) from exc

    @classmethod
    # The pydantic mypy plugin types model_construct per model; this keeps pydantic's signature.
    def model_construct(  # type: ignore[override]
        cls, _fields_set: set[str] | None = None, **values: Any
    ) -> Self:
        """Build a model from trusted, already validated data, without validating.

        Backends rebuild every entry they read with it, so the common case (a
        value for every field) skips pydantic's per-field loop; anything else
        takes pydantic's own path, defaults included.
        """
        if _fields_set is not None or values.keys() != cls.__pydantic_fields__.keys():
            return super().model_construct(_fields_set, **values)
        model = _new(cls)
        _set_dict(model, values)
        _set_fields_set(model, set(values))
        _set_extra(model, None)
        _set_private(model, None)
        return model

    @classmethod
    def model_validate(
        cls,
        obj: Any,
        *,
        strict: bool | None = None,
        extra: Any = None,
        from_attributes: bool | None = None,
        context: Any | None = None,
        by_alias: bool | None = None,
        by_name: bool | None = None,
    ) -> Self:
        """Validate ``obj``; a bad value raises InvalidParameterError."""
        if not isinstance(obj, dict):
            raise InvalidParameterError(f"{cls.__name__} needs a dict, got {type(obj).__name__}")
        return cls(**obj)


class UsedGraphElementIds(_StrictModel):
    """The knowledge-graph nodes and edges an answer used."""

    node_ids: list[str] = Field(default_factory=list)
    edge_ids: list[str] = Field(default_factory=list)

    @field_validator("node_ids", "edge_ids")
    @classmethod
    def _encodable(cls, value: list[str]) -> list[str]:
        for item in value:
            check_text(item, "graph element id", _UNLIMITED)
        return value


class SessionQAEntry(_StrictModel):
    """One question/answer turn of a session."""

    id: str
    session_id: str
    user_id: str | None
    question: str
    answer: str
    context: str | None = None
    created_at: datetime
    feedback_text: str | None = None
    feedback_score: Score | None = None
    used_graph_element_ids: UsedGraphElementIds | None = None
    memify_metadata: dict[str, bool] | None = None
    metadata: dict[str, Any] | None = None

    @field_validator("session_id")
    @classmethod
    def _session_id(cls, value: str) -> str:
        return check_session_id(value)

    @field_validator("user_id")
    @classmethod
    def _user_id(cls, value: str | None) -> str | None:
        return check_user_id(value)

    @field_validator("question", "answer", "context", "feedback_text")
    @classmethod
    def _text(cls, value: str | None) -> str | None:
        return None if value is None else check_text(value, "text", _UNLIMITED)

    @field_validator("created_at")
    @classmethod
    def _created_at(cls, value: datetime) -> datetime:
        return _aware_utc(value)

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        check_json(value, "metadata", _UNLIMITED)
        return value


class SessionQAUpdate(_StrictModel):
    """A tri-state change to an entry.

    A field not passed is left alone, ``None`` clears it and a value sets it.
    ``question`` and ``answer`` can be set but never cleared; the graph ids and
    both metadata fields are replaced whole.
    """

    question: str | None = None
    answer: str | None = None
    context: str | None = None
    feedback_text: str | None = None
    feedback_score: Score | None = None
    used_graph_element_ids: UsedGraphElementIds | None = None
    memify_metadata: dict[str, bool] | None = None
    metadata: dict[str, Any] | None = None

    @field_validator("question", "answer")
    @classmethod
    def _not_cleared(cls, value: str | None) -> str | None:
        if value is None:
            raise ValueError("can be set to a str but never cleared with None")
        return check_text(value, "text", _UNLIMITED)

    @field_validator("context", "feedback_text")
    @classmethod
    def _text(cls, value: str | None) -> str | None:
        return None if value is None else check_text(value, "text", _UNLIMITED)

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        check_json(value, "metadata", _UNLIMITED)
        return value

    def changes(self) -> dict[str, Any]:
        """Return the fields that were passed, with their new values."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class SessionTraceStep(_StrictModel):
    """One step of an agent's trace: which function ran and how it went."""

    trace_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    origin_function: str
    status: str
    memory_query: str = ""
    memory_context: str = ""
    method_params: dict[str, Any] = Field(default_factory=dict)
    method_return_value: Any = None
    error_message: str = ""
    session_feedback: str = ""
    created_at: datetime | None = None

    @field_validator("trace_id", "origin_function", "status")
    @classmethod
    def _non_blank(cls, value: str) -> str:
        check_text(value, "text", _UNLIMITED)
        if not value.strip():
            raise ValueError("must not be empty or only whitespace")
        return value

    @field_validator("memory_query", "memory_context", "error_message", "session_feedback")
    @classmethod
    def _text(cls, value: str) -> str:
        return check_text(value, "text", _UNLIMITED)

    @field_validator("method_params", "method_return_value")
    @classmethod
    def _json(cls, value: Any) -> Any:
        check_json(value, "value", _UNLIMITED)
        return value

    @field_validator("created_at")
    @classmethod
    def _created_at(cls, value: datetime | None) -> datetime | None:
        return None if value is None else _aware_utc(value)


class SessionInfo(_StrictModel):
    """One session as ``list_sessions`` reports it."""

    session_id: str
    user_id: str | None
    created_at: datetime
    updated_at: datetime
    qa_count: int
    item_count: int = 0


class SessionPage(_StrictModel):
    """One page of ``list_sessions``; ``next_cursor`` is ``None`` on the last."""

    items: list[SessionInfo]
    next_cursor: str | None = None


class UserInfo(_StrictModel):
    """One user as ``list_users`` reports it: ``user_id=None`` is the anonymous user."""

    user_id: str | None
    session_count: int


class SessionContext(_StrictModel):
    """What a prompt needs from a session (see ``SessionManager.build_context``)."""

    session_id: str
    history: list[dict[str, str]]
    formatted_history: str
    graph_context: str | None = None


class SessionItem(_StrictModel):
    """One item of a session's item log (``append_items``): any JSON value, kept exactly.

    ``data`` comes back as it was given: a list stays a list, ``1.0`` stays a
    float, ``-0.0`` keeps its sign, big ints stay exact, and dict keys keep
    their order at every level.
    """

    id: str
    data: JsonValue
    created_at: datetime


class SessionState(_StrictModel):
    """A state (of a session, a user or an app) and its revision.

    ``revision`` counts the updates since the state began (``0``: none yet);
    ``data`` holds the keys in sorted order.
    """

    data: dict[str, JsonValue]
    revision: int


class TurnResult(_StrictModel):
    """What ``append_turn`` wrote: the new item ids and the session state's revision after it."""

    item_ids: list[str]
    revision: int
