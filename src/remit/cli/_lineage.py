"""Lineage: ``remit invalidate`` (mark a result bad) and ``remit show --lineage`` (what a
result came from and what depends on it)."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.text import Text

from remit.cli._common import (
    DEFAULT_JOURNAL,
    JournalOpt,
    app,
    open_existing,
    out,
    read_view,
    user_errors,
    write_json,
)
from remit.runtime import Runtime
from remit.trace.lineage import lineage_view, render_lineage


@app.command()
def invalidate(
    run_id: Annotated[str, typer.Argument(help="The run whose result is bad.")],
    step: Annotated[
        str,
        typer.Argument(help="The step (a call TASK:ROLE.N, TASK:ROLE, TASK:end) or a task id."),
    ],
    why: Annotated[str, typer.Option("--why", help="Why the result is bad (recorded).")],
    journal: JournalOpt = DEFAULT_JOURNAL,
    by: Annotated[str, typer.Option(help="Who says so (recorded).")] = "",
) -> None:
    """Mark a result bad: it and exactly the results derived from it run again at the
    next `remit resume`; everything else is served from the journal."""
    with user_errors():
        store = open_existing(journal)
        rt = Runtime(journal=store)
        try:
            inv = rt.invalidate(run_id, step, why=why, by=by or os.environ.get("USER", "someone"))
        finally:
            rt.close()
    flag = "" if journal == DEFAULT_JOURNAL else f" --journal {journal}"
    line = Text()
    line.append(f"invalidated {inv.step}", style="bold")
    line.append(f" (generation {inv.generation}): {len(inv.steps)} step(s) in "
                f"{len(inv.tasks)} task(s) run again")  # fmt: skip
    out.print(line)
    for task in inv.tasks[:20]:
        out.print(Text(f"  {task}", style="dim"))
    if len(inv.tasks) > 20:
        out.print(Text(f"  … and {len(inv.tasks) - 20} more", style="dim"))
    out.print(f"carry the run on: remit resume {run_id}{flag}   "
              f"(what depends on it: remit show {run_id} --lineage {inv.step}{flag})")  # fmt: skip


def show_lineage(run_id: str, step: str, journal: str, as_json: bool) -> None:
    """``remit show RUN_ID --lineage STEP``."""
    view = read_view(journal, lambda store: lineage_view(store, run_id, step))
    if as_json:
        write_json(view)
        return
    out.print(render_lineage(view))
