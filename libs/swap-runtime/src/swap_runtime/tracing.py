"""OpenTelemetry tracing: one trace follows a swap across the gateway, session, quote and chain services
(context travels in gRPC metadata, and the session keeps its trace parent with the session so the saga's
background steps join the trace of the request that created it).

The exporter comes from settings: "none" (default), "otlp" (OTLP/gRPC to OTEL_EXPORTER_OTLP_ENDPOINT),
"console", or "file:<path>" (one JSON span per line, for tests and local debugging).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.instrumentation.grpc import aio_client_interceptors, aio_server_interceptor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor

log = logging.getLogger(__name__)
_enabled = False


def _one_line(span: ReadableSpan) -> str:
    return json.dumps(json.loads(span.to_json()), separators=(",", ":")) + "\n"


def configure_tracing(service: str, exporter: str) -> bool:
    """Installs the tracer provider; returns whether tracing is on."""
    global _enabled  # noqa: PLW0603 - one provider per process, set once at start
    if exporter in ("", "none"):
        return False
    processor: SpanProcessor
    if exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter  # noqa: PLC0415

        processor = BatchSpanProcessor(OTLPSpanExporter())
    elif exporter == "console":
        processor = BatchSpanProcessor(ConsoleSpanExporter(formatter=_one_line))
    elif exporter.startswith("file:"):
        # Line-buffered, so a span is on disk as soon as it ends (tests read the file right away).
        stream = open(exporter.removeprefix("file:"), "a", buffering=1)  # noqa: SIM115 - lives as long as the process
        processor = SimpleSpanProcessor(ConsoleSpanExporter(out=stream, formatter=_one_line))
    else:
        raise ValueError(f"unknown trace exporter {exporter!r}: none, otlp, console or file:<path>")
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    _enabled = True
    log.info("tracing on", extra={"exporter": exporter.split(":", 1)[0]})
    return True


def server_interceptors() -> list[Any]:
    return [aio_server_interceptor()] if _enabled else []  # type: ignore[no-untyped-call]


def client_interceptors() -> list[Any]:
    return list(aio_client_interceptors()) if _enabled else []  # type: ignore[no-untyped-call]


def current_parent() -> str:
    """The W3C traceparent of the current span ("" when there is none), to resume the trace later."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent", "")


@contextmanager
def resumed(parent: str, name: str) -> Iterator[None]:
    """A span named `name` in the trace `parent` came from (a new trace when it is empty)."""
    context = propagate.extract({"traceparent": parent}) if parent else None
    with trace.get_tracer("swap").start_as_current_span(name, context=context):
        yield
