"""The bridge to the OpenTelemetry SDK: :class:`SpanData` as SDK spans, and exporters.

The SDK is an optional extra (``pip install 'remit[otel]'``): it is imported here, on
first use, and its absence is one clear error (:class:`~remit.errors.MissingExtra`).
Spans are built whole (``ReadableSpan``, with the ids the journal gives them) rather
than started and ended through a tracer, which would draw random ids and take the
clock's times instead of the journal's.

>>> from remit.trace.otel import export_spans, spans_of         # doctest: +SKIP
>>> export_spans(spans_of(run, steps), console_exporter())     # doctest: +SKIP
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any

from remit.errors import MissingExtra
from remit.trace.otel._spans import SpanData

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = [
    "ENDPOINT_VARS",
    "console_exporter",
    "default_exporter",
    "export_spans",
    "otlp_exporter",
    "require_otel",
    "to_readable",
]

MISSING = "OpenTelemetry is not installed: pip install 'remit[otel]'"

#: the variables that name where OTLP/HTTP spans go (the exporter reads them itself)
ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")

#: spans per export call: one OTLP request each, well under a collector's size limit
BATCH = 512


def require_otel() -> None:
    """Raise :class:`~remit.errors.MissingExtra` unless the SDK can be imported."""
    try:
        import opentelemetry.sdk.trace  # noqa: F401  # pyright: ignore[reportUnusedImport]
    except ImportError:
        raise MissingExtra(MISSING) from None


@functools.cache
def _resource() -> Resource:
    from opentelemetry.sdk.resources import Resource

    # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win; else the service is "remit"
    found = Resource.create({})
    if str(found.attributes.get("service.name", "")).startswith("unknown_service"):
        found = found.merge(Resource({"service.name": "remit"}))
    return found


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("remit")
    except Exception:  # an uninstalled source tree
        return "0"


def to_readable(spans: Sequence[SpanData]) -> list[ReadableSpan]:
    """The SDK's spans for ``spans``, with their ids, times, status and events."""
    require_otel()
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

    resource = _resource()
    scope = InstrumentationScope("remit", _version())
    flags = TraceFlags(TraceFlags.SAMPLED)
    kinds = {"internal": SpanKind.INTERNAL, "client": SpanKind.CLIENT}
    codes = {"unset": StatusCode.UNSET, "ok": StatusCode.OK, "error": StatusCode.ERROR}
    out: list[ReadableSpan] = []
    for s in spans:
        parent = (
            None
            if s.parent_id is None
            else SpanContext(s.trace_id, s.parent_id, is_remote=False, trace_flags=flags)
        )
        out.append(
            ReadableSpan(
                s.name,
                context=SpanContext(s.trace_id, s.span_id, is_remote=False, trace_flags=flags),
                parent=parent,
                resource=resource,
                attributes=dict(s.attributes),
                events=[Event(e.name, dict(e.attributes), e.time_ns) for e in s.events],
                kind=kinds[s.kind],
                status=Status(codes[s.status], s.status_message or None)
                if s.status == "error"
                else Status(codes[s.status]),
                start_time=s.start_ns,
                end_time=max(s.end_ns, s.start_ns),
                instrumentation_scope=scope,
            )
        )
    return out


def export_spans(spans: Sequence[SpanData], exporter: SpanExporter) -> bool:
    """Hand ``spans`` to ``exporter`` in batches; True if every batch was accepted."""
    from opentelemetry.sdk.trace.export import SpanExportResult

    ok = True
    for i in range(0, len(spans), BATCH):
        result = exporter.export(to_readable(spans[i : i + BATCH]))
        ok = ok and result is SpanExportResult.SUCCESS
    return ok


def console_exporter(out: IO[str] | None = None) -> SpanExporter:
    """The SDK's console exporter: one JSON document per span, on ``out`` (stdout)."""
    require_otel()
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    return ConsoleSpanExporter(out=out or sys.stdout)


def otlp_exporter(endpoint: str | None = None) -> SpanExporter:
    """The SDK's OTLP/HTTP exporter. Without ``endpoint`` it reads the standard
    variables (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, ``OTEL_EXPORTER_OTLP_ENDPOINT``,
    ``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_EXPORTER_OTLP_TIMEOUT``...)."""
    require_otel()
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        raise MissingExtra(MISSING) from None
    return OTLPSpanExporter(endpoint=endpoint)


def otlp_target(endpoint: str | None = None) -> str:
    """Where :func:`otlp_exporter` sends spans, for messages."""
    if endpoint:
        return endpoint
    traces = os.environ.get(ENDPOINT_VARS[0])
    if traces:
        return traces
    base = os.environ.get(ENDPOINT_VARS[1], "http://localhost:4318")
    return base.rstrip("/") + "/v1/traces"


def default_exporter(console: IO[str] | None = None) -> tuple[SpanExporter, str]:
    """OTLP/HTTP when an ``OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT`` is set or
    ``OTEL_TRACES_EXPORTER`` is ``otlp``; the console otherwise (or when it says
    ``console``). Returns the exporter and where it sends spans."""
    chosen = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if chosen == "console" or (chosen != "otlp" and not any(map(os.environ.get, ENDPOINT_VARS))):
        return console_exporter(console), "the console"
    return otlp_exporter(), otlp_target()


def shutdown(exporter: Any) -> None:
    """Flush and close ``exporter`` (what it queued is sent first)."""
    flush = getattr(exporter, "force_flush", None)
    if callable(flush):
        flush()
    exporter.shutdown()
