"""The OpenTelemetry SDK for tests: one global provider, spans kept in memory while asked.

A process can set the global tracer provider only once, so the first caller
sets it (an SDK provider with an in-memory exporter behind a switch) and
every later one reuses it. Spans are collected only between :meth:`start`
and :meth:`stop`, so the rest of the test run does not fill memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

if TYPE_CHECKING:
    from opentelemetry.context import Context

__all__ = ["SpanRecorder", "span_recorder"]


class SpanRecorder(SpanProcessor):
    """Hands ended spans to an in-memory exporter while it is started."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self._export = SimpleSpanProcessor(self.exporter)
        self.recording = False

    def start(self) -> None:
        """Forget the spans seen so far and keep the next ones."""
        self.exporter.clear()
        self.recording = True

    def stop(self) -> None:
        """Keep no more spans, and forget those kept."""
        self.recording = False
        self.exporter.clear()

    def spans(self, name: str | None = None) -> Sequence[ReadableSpan]:
        """The ended spans kept, oldest first; only those called ``name`` if given."""
        ended = self.exporter.get_finished_spans()
        return [span for span in ended if name is None or span.name == name]

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing to do when a span starts."""

    def on_end(self, span: ReadableSpan) -> None:
        """Keep the span if recording."""
        if self.recording:
            self._export.on_end(span)


_recorder: SpanRecorder | None = None


def span_recorder() -> SpanRecorder:
    """Return the process's recorder, setting the global SDK provider the first time."""
    global _recorder  # noqa: PLW0603 - one provider per process
    if _recorder is None:
        _recorder = SpanRecorder()
        provider = TracerProvider()
        provider.add_span_processor(_recorder)
        trace.set_tracer_provider(provider)
    return _recorder
