"""OpenTelemetry export of runs: a span per run, task and effect, from the journal alone.

Spans follow the GenAI semantic conventions (``invoke_workflow`` for the run,
``invoke_agent`` for a task, ``chat`` for a model call, ``execute_tool`` for a tool
call) and carry remit's own attributes (``remit.*``: the remit's digest, budget and
spend, denials and their reasons, retries, reroutes, escalations, injected faults).
Trace and span ids are hashes of the run and step ids, so every export of a run, live
or after the fact, before or after a resume, names the same spans (see docs/otel.md).

A module per idea: ``_spans`` (the span as plain data, and its ids), ``_rows`` (what a
journal row says, as attributes and events), ``_mapper`` (rows in, spans out: which rows
make which span, and when): those three are pure, with no OpenTelemetry; ``_sdk`` (the
SDK's spans and exporters, imported on first use), ``_live`` (export while a run works).

The SDK is the optional extra ``remit[otel]``; everything here but :func:`spans_of`
and the data types needs it, and says so (``MISSING_EXTRA``) when it is missing.

>>> from remit.trace.otel import export_run, console_exporter     # doctest: +SKIP
>>> export_run(store, run_id, console_exporter())                 # doctest: +SKIP
14
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from remit.journal import JournalStore
from remit.trace.otel._live import LiveExport
from remit.trace.otel._mapper import SpanMapper, spans_of
from remit.trace.otel._rows import remit_digest
from remit.trace.otel._sdk import (
    ENDPOINT_VARS,
    console_exporter,
    default_exporter,
    export_spans,
    otlp_exporter,
    otlp_target,
    require_otel,
    to_readable,
)
from remit.trace.otel._spans import RUN_KEY, SpanData, SpanEvent, span_id_of, trace_id_of

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = [
    "ENDPOINT_VARS",
    "RUN_KEY",
    "LiveExport",
    "SpanData",
    "SpanEvent",
    "SpanMapper",
    "console_exporter",
    "default_exporter",
    "export_run",
    "export_spans",
    "otlp_exporter",
    "otlp_target",
    "remit_digest",
    "require_otel",
    "span_id_of",
    "spans_of",
    "to_readable",
    "trace_id_of",
]


def export_run(store: JournalStore, run_id: str, exporter: SpanExporter) -> tuple[int, bool]:
    """Export every span of a recorded run (finished or not) through ``exporter``.

    Returns how many spans were exported and whether the exporter accepted them all;
    ``RunNotFound`` and ``MissingExtra`` propagate.
    """
    require_otel()
    spans = spans_of(store.get_run(run_id), store.steps(run_id))
    return len(spans), export_spans(spans, exporter)
