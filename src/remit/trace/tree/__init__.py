"""The task tree of a run, rebuilt from its journal alone (``remit show``).

A module per idea: ``_view`` (DeniedCall, TaskView, RunTree: what a person reads about
a run, and its JSON form), ``_build`` (the tree from the run's step records, in any
order) and ``_render`` (the rich tree for a terminal, and the number formats the CLI
shares).
"""

from __future__ import annotations

from remit.trace.tree._build import DENIAL_CODES, build, load
from remit.trace.tree._render import (
    format_seconds,
    format_spend,
    plural,
    printable,
    render,
    status_style,
)
from remit.trace.tree._view import DeniedCall, RunTree, TaskView

__all__ = [
    "DENIAL_CODES",
    "DeniedCall",
    "RunTree",
    "TaskView",
    "build",
    "format_seconds",
    "format_spend",
    "load",
    "plural",
    "printable",
    "render",
    "status_style",
]
