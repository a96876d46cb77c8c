"""``remit trace``: a recorded run's spans to OTLP or the console (or as JSON)."""

from __future__ import annotations

from typing import Annotated

import typer

from remit.cli._common import (
    DEFAULT_JOURNAL,
    JournalOpt,
    app,
    die,
    open_existing,
    out,
    user_errors,
    write_json,
)
from remit.errors import InvalidInput
from remit.trace.otel import console_exporter as make_console_exporter
from remit.trace.otel import (
    default_exporter,
    export_spans,
    otlp_exporter,
    otlp_target,
    require_otel,
    spans_of,
    trace_id_of,
)
from remit.trace.tree import plural


@app.command()
def trace(
    run_id: Annotated[str, typer.Argument(help="The run whose spans to export.")],
    journal: JournalOpt = DEFAULT_JOURNAL,
    console: Annotated[
        bool, typer.Option("--console", help="Print the spans (the SDK's console exporter).")
    ] = False,
    otlp: Annotated[
        bool,
        typer.Option(
            "--otlp",
            help="Send them over OTLP/HTTP to where OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT "
            "says (default http://localhost:4318/v1/traces).",
        ),
    ] = False,
    endpoint: Annotated[
        str | None,
        typer.Option(
            "--endpoint",
            help="Send them over OTLP/HTTP to this URL (…/v1/traces); implies --otlp.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the spans as JSON instead (no OpenTelemetry needed)."),
    ] = False,
) -> None:
    """Export a recorded run's spans: a span per run, task and effect (OpenTelemetry).

    Without --console, --otlp or --endpoint: OTLP if an OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT
    is set, else the console. The ids are the run's own: exporting again sends the same
    spans."""
    if console and (otlp or endpoint):
        die("[INVALID_INPUT] pass either --console or --otlp/--endpoint, not both")
    with user_errors():
        if endpoint is not None and not endpoint.startswith(("http://", "https://")):
            raise InvalidInput(f"--endpoint {endpoint!r}: expected an http(s):// URL")
        store = open_existing(journal)
        try:
            spans = spans_of(store.get_run(run_id), store.steps(run_id))
        finally:
            store.close()
        if as_json:
            view = {"run": run_id, "trace_id": f"{trace_id_of(run_id):032x}",
                    "spans": [s.to_dict() for s in spans]}  # fmt: skip
            write_json(view)
            return
        require_otel()
        if console:
            exporter, where = make_console_exporter(), "the console"
        elif otlp or endpoint:
            exporter, where = otlp_exporter(endpoint), otlp_target(endpoint)
        else:
            exporter, where = default_exporter()
    try:
        ok = export_spans(spans, exporter)
    finally:
        exporter.shutdown()
    line = (f"exported {plural(len(spans), 'span')} of run {run_id} to {where} "
            f"(trace {trace_id_of(run_id):032x})")  # fmt: skip
    if not ok:
        die(f"[EXPORT_FAILED] {where} did not accept the spans of run {run_id}", 1)
    out.print(line, soft_wrap=True, highlight=False)
