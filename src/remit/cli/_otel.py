"""``--otel`` for ``remit run`` and ``remit resume``: live export while the run works."""

from __future__ import annotations

import os
import sys
from collections.abc import Generator
from contextlib import contextmanager

from remit.cli._common import err
from remit.trace.otel import (
    LiveExport,
    console_exporter,
    otlp_exporter,
    otlp_target,
    require_otel,
)
from remit.trace.tree import plural

#: the help of ``--otel`` on ``run`` and ``resume``
OTEL_HELP = (
    "Export the run's spans (OpenTelemetry, OTLP/HTTP) while it works, to where the "
    "standard OTEL_EXPORTER_OTLP_* variables say (default http://localhost:4318); "
    "needs the otel extra (see docs/otel.md)."
)


@contextmanager
def live_export(enabled: bool) -> Generator[LiveExport | None]:
    """With ``enabled``: a :class:`LiveExport` to OTLP (or the console, if
    ``OTEL_TRACES_EXPORTER=console``) for the length of the block; a failed export is
    one line on stderr at the end, never a failed run."""
    if not enabled:
        yield None
        return
    require_otel()  # MISSING_EXTRA (exit 2) before the run starts
    if os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "console":
        # stdout is the run's progress and outcome
        exporter, where = console_exporter(sys.stderr), "the console"
    else:
        exporter, where = otlp_exporter(), otlp_target()
    live = LiveExport(exporter)
    try:
        yield live
    finally:
        live.close()
        if live.failed or live.error is not None:
            err.print(f"remit: otel: {live.failed:,} of {plural(live.exported, 'span')} could "
                      f"not be exported to {where}", soft_wrap=True)  # fmt: skip
