"""The ``remit`` command: run, resume, list and show journaled runs.

    remit run --job audit                          # the built-in main job
    remit run "sum 1..10" --agent mymod:Adder --tool calculator --calls 20
    remit resume RUN_ID                            # after a crash or kill -9
    remit runs                                     # the runs in ./remit.db
    remit show RUN_ID [--json] [--all]             # the task tree of a run
    remit invalidate RUN_ID STEP --why TEXT        # a bad result: resume re-runs its dependents
    remit show RUN_ID --lineage STEP               # what it came from, what depends on it
    remit mcp serve --remit FILE                   # remit as an MCP server (stdio)
    remit trace RUN_ID [--otlp | --console]        # its spans, to OpenTelemetry
    remit run ... --otel                           # spans exported while it works
    remit ui                                       # the web view: live tree, approvals

Exit codes: 0 the run is done, 1 the run failed, 2 bad input (a malformed remit file,
an unknown tool or agent, bad flags, an unknown run id, a corrupt journal, a run another
live process carries), 3 the run halted for a person (an uncertain effect: ``remit
resolve``), 130 interrupted by SIGINT and 143 by SIGTERM (resume the run). Errors are
one line naming what was wrong and where.

One module per command group (``_run``: run and resume; ``_approvals``: approve, deny,
resolve; ``_lineage``: invalidate, show --lineage; ``_show``: runs and show; ``_verify``:
verify and keys; ``_trace``: trace; ``_otel``: ``--otel`` for run and resume; ``_mcp``:
mcp serve; ``_ui``: ui), each thin: the tree and its rendering live in
:mod:`remit.trace.tree`, the spans in :mod:`remit.trace.otel`, the MCP server in
:mod:`remit.serve.mcp`, the web view in :mod:`remit.ui`.
"""

# each module registers its commands as it is imported: this order is `remit --help`'s
from remit.cli import _run  # noqa: F401  # pyright: ignore[reportUnusedImport]

# isort: split
from remit.cli import _approvals, _lineage  # noqa: F401  # pyright: ignore[reportUnusedImport]

# isort: split
from remit.cli import _show, _trace, _verify  # noqa: F401  # pyright: ignore[reportUnusedImport]

# isort: split
from remit.cli import _mcp  # noqa: F401  # pyright: ignore[reportUnusedImport]

# isort: split
from remit.cli import _ui  # noqa: F401  # pyright: ignore[reportUnusedImport]
from remit.cli._common import app
from remit.cli._run import build_remit

__all__ = ["app", "build_remit", "main"]


def main() -> None:
    """The ``remit`` console script."""
    app()
