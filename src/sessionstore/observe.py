"""Logging and OpenTelemetry tracing of every public call of stores and managers.

**Logging.** Records go to ``logging.getLogger("sessionstore")`` and its
children: ``sessionstore.<backend>`` (``memory``, ``sqlite``, ``files``,
``redis``, ``sql``) for a backend's records, ``sessionstore.manager`` for the
manager's, ``sessionstore.store`` for what the base class says of a
third-party store. As the logging HOWTO asks of a library, the only handler
added is a :class:`logging.NullHandler` on ``sessionstore``: the application
decides where records go. No record holds a credential, an id or a stored text.

**Tracing.** When ``opentelemetry-api`` can be imported (``pip install
'sessionstore[otel]'``), every public async method of
:class:`~sessionstore.SessionStore` and :class:`~sessionstore.SessionManager`,
of their subclasses too (methods added later included), runs in a span named
``sessionstore.<method>``. Found once per class, when it is created: coroutine
methods, methods returning an async iterator (the span covers the iteration)
and async context managers (the span covers the ``async with`` block).

**Slow calls.** A store made with ``slow_call_ms`` logs a WARNING for each of
those calls (on it, or on a manager over it) that took longer. Without
OpenTelemetry no method is wrapped until the first such store is made; from
then on, a call on a store without the option costs the wrapper's call and
two checks.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import logging
import math
import time
import traceback
import weakref
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, nullcontext
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Final

from sessionstore.errors import InvalidParameterError

if TYPE_CHECKING:
    from sessionstore.store import SessionStore

__all__ = [
    "TRACING",
    "ObservedManager",
    "ObservedStore",
    "check_otel_ids",
    "check_slow_call_ms",
    "logger_for",
]

logging.getLogger("sessionstore").addHandler(logging.NullHandler())


def _importable(module: str) -> bool:
    """Return whether ``module`` can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent missing, or set to None in sys.modules
        return False


TRACING: Final = _importable("opentelemetry.trace")
"""Whether OpenTelemetry is installed, decided once, when sessionstore is imported."""


class _OpenTelemetry:
    """The OpenTelemetry API, imported at the first traced call, not by ``import sessionstore``."""

    trace: Any = None
    context: Any = None
    tracer: Any = None  # the tracer of the provider the application set, once it has
    usable = TRACING


_otel = _OpenTelemetry()


def _tracer() -> Any:
    """Return the tracer to make spans with, or ``None`` while they would be no-ops.

    Until the application sets a tracer provider, the API's spans record
    nothing: making them would only cost time, so none are made.
    """
    if _otel.tracer is None and _otel.usable:
        if _otel.trace is None:
            try:
                _otel.trace = importlib.import_module("opentelemetry.trace")
                _otel.context = importlib.import_module("opentelemetry.context")
            except ImportError:  # a broken install: trace nothing rather than fail calls
                _otel.usable = False
                return None
        provider = _otel.trace.get_tracer_provider()
        idle = (_otel.trace.ProxyTracerProvider, _otel.trace.NoOpTracerProvider)
        if not isinstance(provider, idle):
            _otel.tracer = provider.get_tracer("sessionstore")
    return _otel.tracer


_ASYNC_ITERATORS: Final = ("AsyncIterator", "AsyncIterable", "AsyncGenerator")
_WRAPPED: Final = "__sessionstore_observed__"
_observed_classes: weakref.WeakSet[type[_Observed]] = weakref.WeakSet()
_wrapping = TRACING  # without OpenTelemetry, only once a store asks for slow_call_ms


def logger_for(module: str) -> logging.Logger:
    """Return the logger for code in ``module`` (pass ``__name__``).

    A backend's modules (``sessionstore.backends.<backend>...``) share
    ``sessionstore.<backend>``; other sessionstore modules log under their
    own name; code outside sessionstore under ``sessionstore.store``.
    """
    parts = module.split(".")
    if parts[0] != "sessionstore":
        return logging.getLogger("sessionstore.store")
    if parts[1:2] == ["backends"] and len(parts) > 2:
        return logging.getLogger(f"sessionstore.{parts[2]}")
    return logging.getLogger(module)


def check_slow_call_ms(value: object) -> float | None:
    """Return ``value`` as milliseconds (``None``: off), making sure calls are timed.

    Raises:
        InvalidParameterError: not ``None`` or a positive finite number (a
            bool is not one).

    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidParameterError(
            f"slow_call_ms must be a number of milliseconds or None, got {value!r}"
        )
    if not math.isfinite(value) or value <= 0:
        raise InvalidParameterError(
            f"slow_call_ms must be a positive number of milliseconds, got {value!r}"
        )
    _wrap_everywhere()
    return float(value)


def check_otel_ids(value: object) -> bool:
    """Return ``value`` if it is a bool.

    Raises:
        InvalidParameterError: any other value.

    """
    if not isinstance(value, bool):
        raise InvalidParameterError(f"otel_ids must be True or False, got {value!r}")
    return value


# -- wrapping ------------------------------------------------------------------------


def _wrap_everywhere() -> None:
    """Wrap every observed class now (the first store with ``slow_call_ms``)."""
    global _wrapping  # noqa: PLW0603 - one switch, flipped once
    if _wrapping:
        return
    _wrapping = True
    for cls in sorted(_observed_classes, key=lambda c: len(c.__mro__)):
        _wrap_class(cls)


def _wrap_class(cls: type[_Observed]) -> None:
    """Wrap the public async methods ``cls`` has, unless an observed base already does.

    Those it defines itself and those of its plain mixins (classes not
    observed themselves, like ``ItemMethods``); the wrapper is set on ``cls``.
    """
    observed_bases = [base for base in cls.__mro__[1:] if issubclass(base, _Observed)]
    covered = {name for base in observed_bases for name in vars(base)}
    for owner in cls.__mro__:
        if owner is not cls and issubclass(owner, _Observed):
            continue
        for name, member in list(vars(owner).items()):
            if name.startswith("_") or name in covered:
                continue
            covered.add(name)  # the first in the MRO is the one calls reach
            if getattr(member, _WRAPPED, False):
                continue
            wrapper = _wrapper(cls, name, member)
            if wrapper is not None:
                setattr(wrapper, _WRAPPED, True)
                setattr(cls, name, wrapper)


def _wrapper(cls: type[_Observed], name: str, member: object) -> Callable[..., Any] | None:
    """Return the observing wrapper of one method, or ``None`` if it is not async."""
    if not inspect.isfunction(member):
        return None
    call = _Call(cls, name, inspect.signature(member))
    if inspect.iscoroutinefunction(member):
        return _wrap_coroutine(member, call)
    if inspect.isasyncgenfunction(getattr(member, "__wrapped__", None)):
        return _wrap_context(member, call)  # an @asynccontextmanager
    if inspect.isasyncgenfunction(member) or _returns_async_iterator(member):
        return _wrap_iterator(member, call)
    return None


def _returns_async_iterator(function: Callable[..., Any]) -> bool:
    annotation = function.__annotations__.get("return")
    shown = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    return str(shown).split("[", 1)[0].rsplit(".", 1)[-1] in _ASYNC_ITERATORS


class _Call:
    """What the wrappers of one method know: its name, span name, parameters."""

    __slots__ = ("kind", "label", "method", "signature", "span_name")

    def __init__(self, cls: type[_Observed], method: str, signature: inspect.Signature) -> None:
        self.method = method
        self.span_name = f"sessionstore.{method}"
        self.label = f"{cls.__name__}.{method}"
        self.signature = signature
        self.kind = cls._span_kind

    def start(
        self, tracer: Any, owner: _Observed, store: SessionStore, args: Any, kwargs: Any
    ) -> Any:
        """Start this call's span (not made current); ``None`` without a tracer."""
        if tracer is None:
            return None
        attributes: dict[str, str] = {
            "db.system.name": store._db_system_name,
            "db.operation.name": self.method,
        }
        if store.otel_ids:
            attributes.update(self._ids(owner, args, kwargs))
        kind = getattr(_otel.trace.SpanKind, self.kind)
        return tracer.start_span(self.span_name, kind=kind, attributes=attributes)

    def _ids(self, owner: _Observed, args: Any, kwargs: Any) -> Mapping[str, str]:
        """Return the call's id arguments (those named ``*_id``) that are strings."""
        try:
            bound = self.signature.bind(owner, *args, **kwargs)
        except TypeError:
            return {}  # the call itself raises it
        return {
            f"sessionstore.{name}": value
            for name, value in bound.arguments.items()
            if name.endswith("_id") and isinstance(value, str)
        }

    def end(
        self, owner: _Observed, store: SessionStore, span: Any, error: Exception | None, took: float
    ) -> None:
        """End the span (recording ``error``) and warn if the call was slow."""
        if span is not None:
            if error is not None:
                _record_error(span, error, details=store.otel_ids)
            span.end()
        limit = store.slow_call_ms
        if limit is not None and took * 1000 > limit:
            owner._log.warning(
                "slow call: %s on %s took %.1f ms (slow_call_ms=%g)",
                self.label,
                store.describe(),
                took * 1000,
                limit,
            )


def _record_error(span: Any, error: Exception, *, details: bool) -> None:
    """Record ``error`` on ``span`` and set its status to ERROR.

    Error messages may name ids, so without ``otel_ids`` the event and the
    status say only the exception's type, and the stack trace only its frames.
    """
    kind = type(error)
    name = (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )
    span.set_attribute("error.type", name)
    if details:
        span.record_exception(error)
        description = f"{kind.__name__}: {error}"
    else:
        frames = "".join(traceback.format_tb(error.__traceback__))
        span.record_exception(
            error,
            attributes={"exception.message": kind.__name__, "exception.stacktrace": frames},
        )
        description = kind.__name__
    span.set_status(_otel.trace.Status(_otel.trace.StatusCode.ERROR, description))


def _current(span: Any) -> Any:
    """Make ``span`` the current span for a block (exceptions are recorded by ``_Call.end``)."""
    if span is None:
        return nullcontext()
    return _otel.trace.use_span(span, record_exception=False, set_status_on_exception=False)


def _wrap_coroutine(method: Callable[..., Any], call: _Call) -> Callable[..., Any]:
    @functools.wraps(method)
    async def observed(self: _Observed, *args: Any, **kwargs: Any) -> Any:
        store = self._observed_store()
        tracer = _tracer()
        if tracer is None and store.slow_call_ms is None:
            return await method(self, *args, **kwargs)
        span = call.start(tracer, self, store, args, kwargs)
        error = None
        begun = time.perf_counter()
        try:
            if span is None:
                return await method(self, *args, **kwargs)
            # Made current by hand: the API's use_span is a generator, slower on this path.
            token = _otel.context.attach(_otel.trace.set_span_in_context(span))
            try:
                return await method(self, *args, **kwargs)
            finally:
                _otel.context.detach(token)
        except Exception as exc:
            error = exc
            raise
        finally:
            call.end(self, store, span, error, time.perf_counter() - begun)

    return observed


def _wrap_iterator(method: Callable[..., Any], call: _Call) -> Callable[..., Any]:
    """Wrap a method returning an async iterator; its arguments are still checked at once."""

    @functools.wraps(method)
    def observed(self: _Observed, *args: Any, **kwargs: Any) -> Any:
        store = self._observed_store()
        tracer = _tracer()
        if tracer is None and store.slow_call_ms is None:
            return method(self, *args, **kwargs)
        begun = time.perf_counter()
        try:
            inner = method(self, *args, **kwargs)
        except Exception as exc:
            span = call.start(tracer, self, store, args, kwargs)
            call.end(self, store, span, exc, time.perf_counter() - begun)
            raise
        took = time.perf_counter() - begun
        return _iterate(
            self, store, call, inner, tracer=tracer, arguments=(args, kwargs), took=took
        )

    return observed


async def _iterate(
    owner: _Observed,
    store: SessionStore,
    call: _Call,
    inner: AsyncIterator[Any],
    *,
    tracer: Any,
    arguments: tuple[Any, Any],
    took: float,
) -> AsyncIterator[Any]:
    """Yield what ``inner`` yields, in one span; time only the steps, not the consumer."""
    span = call.start(tracer, owner, store, *arguments)
    error = None
    try:
        while True:
            begun = time.perf_counter()
            try:
                with _current(span):
                    item = await anext(inner)
            except StopAsyncIteration:
                return
            finally:
                took += time.perf_counter() - begun
            yield item
    except Exception as exc:
        error = exc
        raise
    finally:
        closing = getattr(inner, "aclose", None)
        if closing is not None:
            await closing()
        call.end(owner, store, span, error, took)


def _wrap_context(method: Callable[..., Any], call: _Call) -> Callable[..., Any]:
    """Wrap a method returning an async context manager (an ``@asynccontextmanager``)."""

    @functools.wraps(method)
    def observed(self: _Observed, *args: Any, **kwargs: Any) -> Any:
        store = self._observed_store()
        tracer = _tracer()
        if tracer is None and store.slow_call_ms is None:
            return method(self, *args, **kwargs)
        inner = method(self, *args, **kwargs)
        return _ObservedContext(self, store, call, inner, (tracer, args, kwargs))

    return observed


class _ObservedContext:
    """One span from entering the block to leaving it; only entering and leaving are timed.

    The span is current only while entering and leaving: the two may run in
    different contexts (the sync facade runs each in a task of its own).
    """

    def __init__(
        self,
        owner: _Observed,
        store: SessionStore,
        call: _Call,
        inner: AbstractAsyncContextManager[Any],
        arguments: tuple[Any, Any, Any],
    ) -> None:
        self._owner, self._store, self._call, self._inner = owner, store, call, inner
        self._arguments = arguments
        self._span: Any = None
        self._took = 0.0

    async def __aenter__(self) -> Any:
        tracer, args, kwargs = self._arguments
        self._span = self._call.start(tracer, self._owner, self._store, args, kwargs)
        begun = time.perf_counter()
        try:
            with _current(self._span):
                return await self._inner.__aenter__()
        except Exception as exc:
            self._end(exc, begun)
            raise
        finally:
            self._took += time.perf_counter() - begun

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        begun = time.perf_counter()
        error = exc if isinstance(exc, Exception) else None
        try:
            with _current(self._span):
                return await self._inner.__aexit__(exc_type, exc, tb)
        except Exception as raised:
            error = raised
            raise
        finally:
            self._end(error, begun)

    def _end(self, error: Exception | None, begun: float) -> None:
        took = self._took + time.perf_counter() - begun
        self._call.end(self._owner, self._store, self._span, error, took)


# -- the observed classes --------------------------------------------------------------


class _Observed:
    """Wraps the public async methods of each subclass once, when it is created."""

    _log: ClassVar[logging.Logger]
    _span_kind: ClassVar[str] = "INTERNAL"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._log = logger_for(cls.__module__)
        _observed_classes.add(cls)
        if _wrapping:
            _wrap_class(cls)

    def _observed_store(self) -> SessionStore:
        """Return the store whose options (slow calls, ids, system) apply to this object."""
        raise NotImplementedError


class ObservedStore(_Observed):
    """The tracing and slow-call timing of :class:`~sessionstore.SessionStore`.

    A backend names its storage for the ``db.system.name`` span attribute in
    ``_db_system_name``: OpenTelemetry's well-known value where one applies
    (``sqlite``, ``redis``, ``postgresql``, ``mysql``, ``mariadb``), else
    ``sessionstore.<backend>``.
    """

    _span_kind: ClassVar[str] = "CLIENT"
    _db_system_name: str = "sessionstore.other"

    def _observed_store(self) -> SessionStore:
        return self  # type: ignore[return-value]  # only SessionStore derives from it


class ObservedManager(_Observed):
    """The tracing and slow-call timing of :class:`~sessionstore.SessionManager`."""

    store: SessionStore

    def _observed_store(self) -> SessionStore:
        return self.store
