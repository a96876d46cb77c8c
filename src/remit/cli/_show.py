"""Reading a journal: ``remit runs``, ``remit show`` (the tree, or a step's warrant chain)."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated

import typer
from rich.table import Table
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
from remit.cli._lineage import show_lineage
from remit.journal.lease import run_state
from remit.trace.chain import chain_view
from remit.trace.tree import (
    format_seconds,
    format_spend,
    load,
    plural,
    printable,
    render,
    status_style,
)


@app.command()
def runs(
    journal: JournalOpt = DEFAULT_JOURNAL,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.", min=0)] = 20,
    as_json: Annotated[
        bool, typer.Option("--json", help="The runs as JSON (see docs/schemas/runs.json).")
    ] = False,
) -> None:
    """List the runs of a journal."""
    with user_errors():
        store = open_existing(journal)
        try:
            records = store.list_runs(limit)
            # running only while a live process holds the run; else interrupted
            states = [run_state(r, store.get_lease(r.run_id)) for r in records]
        finally:
            store.close()
    if as_json:
        rows_json = [
            {
                "id": r.run_id,
                "goal": r.goal,
                "agent": r.agent,
                "status": r.status,
                "state": state,
                "created_at": r.created_at,
                "updated_at": r.updated_at,
                "seconds": None if r.status == "running" else r.updated_at - r.created_at,
            }
            for r, state in zip(records, states, strict=True)
        ]
        write_json({"journal": str(journal), "runs": rows_json})
        return
    if not records:
        out.print(f"no runs in {journal}")
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    rows: list[tuple[str, Text, str, str, str]] = []
    for r, state in zip(records, states, strict=True):
        sym, style = status_style(state)
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created_at))
        took = "-" if r.status == "running" else format_seconds(r.updated_at - r.created_at)
        rows.append(
            (r.run_id, Text(f"{sym} {state}", style=style), printable(r.goal), created, took)
        )
    # every column but the goal keeps its full width; the goal takes what is left
    widths = [max(len(h), *(len(str(row[i])) for row in rows)) for i, h in
              enumerate(("run id", "status", "goal", "created", "duration"))]  # fmt: skip
    goal_width = max(12, out.width - sum(widths) + widths[2] - 2 * 4)
    table.add_column("run id", no_wrap=True, min_width=widths[0])
    table.add_column("status", no_wrap=True, min_width=widths[1])
    table.add_column("goal", overflow="ellipsis", no_wrap=True, max_width=goal_width)
    table.add_column("created", no_wrap=True, min_width=widths[3])
    table.add_column("duration", justify="right", no_wrap=True, min_width=widths[4])
    for row in rows:
        table.add_row(*row)
    out.print(table)


@app.command()
def show(
    run_id: Annotated[str, typer.Argument(help="The run to show.")],
    journal: JournalOpt = DEFAULT_JOURNAL,
    as_json: Annotated[
        bool, typer.Option("--json", help="The whole tree as JSON (see docs/schemas/show.json).")
    ] = False,
    show_all: Annotated[bool, typer.Option("--all", help="Every child of every task.")] = False,
    max_children: Annotated[
        int, typer.Option("--max-children", help="Children shown per task.", min=1)
    ] = 20,
    chain: Annotated[
        str | None,
        typer.Option(
            "--chain",
            help="Instead of the tree: the warrant chain principal → … → agent of this "
            "step (or task) id, with each hop's narrowing.",
            show_default=False,
        ),
    ] = None,
    lineage: Annotated[
        str | None,
        typer.Option(
            "--lineage",
            help="Instead of the tree: what this step's (or task's) result came from and "
            "what depends on it, with invalidated and re-run steps marked.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Show the task tree of a run: status, role decision, spend vs budget, denials."""
    if lineage is not None:
        show_lineage(run_id, lineage, journal, as_json)
        return
    if chain is not None:
        _show_chain(run_id, chain, journal, as_json)
        return
    with user_errors():
        store = open_existing(journal)
        try:
            tree = load(store, run_id)
        finally:
            store.close()
    if as_json:
        sys.stdout.write(json.dumps(tree.to_dict(), indent=2, ensure_ascii=False, default=str))
        sys.stdout.write("\n")
        return
    out.print(render(tree, max_children=None if show_all else max_children, width=out.width))
    counts = tree.counts()
    line = Text()
    line.append(f"{plural(tree.tasks, 'task')}: ", style="bold")
    line.append(" · ".join(f"{v:,} {k}" for k, v in counts.most_common()))
    line.append(f"   {plural(tree.steps, 'step')} · "
                f"{plural(tree.root.subtree_denied, 'denied call')} · "
                f"spent {format_spend(tree.root.spent, tree.root.budget)} · "
                f"{format_seconds(tree.seconds)}", style="dim")  # fmt: skip
    out.print(line)
    if tree.state == "interrupted":
        hint = f"remit resume {run_id}" + ("" if journal == DEFAULT_JOURNAL
                                           else f" --journal {journal}")  # fmt: skip
        out.print(Text(f"no process carries this run any more; carry it on: {hint}",
                       style="yellow"))  # fmt: skip


def _show_chain(run_id: str, step: str, journal: str, as_json: bool) -> None:
    view = read_view(journal, lambda store: chain_view(store, run_id, step))
    if as_json:
        write_json(view)
        return
    head = Text()
    head.append(f"warrant chain of {step}", style="bold")
    head.append(f"   run {run_id}", style="dim")
    out.print(head)
    line = Text("principal ", style="bold")
    line.append(view["principal"][:16] + "…", style="cyan")
    out.print(line)
    for hop in view["hops"]:
        t = Text("  → " + ("  " * hop["position"]))
        t.append(f"hop {hop['position']} ", style="bold")
        t.append(hop["task_id"], style="dim")
        t.append(f"  {printable(hop['goal'][:60])!r}" if hop["goal"] else "")
        if hop["holder"]:
            t.append(f"  holder {hop['holder'][:12]}…", style="cyan")
        out.print(t)
        pad = "      " + ("  " * hop["position"])
        if hop["position"] == 0:
            out.print(Text(pad + "grants: " + printable(hop["grants"]), style="green"))
        for change in hop["narrowing"] or (["(no narrowing)"] if hop["position"] else []):
            out.print(Text(pad + "narrows: " + printable(change), style="yellow"))
    if view.get("step"):
        s = view["step"]
        t = Text("  ⇒ ")
        t.append(f"{s['kind']} {s['name']}", style="bold")
        t.append(
            f"  {s['status']}  "
            + ("recorded under the sealed chain, nonce: " if view.get("sealed") else
               "signed by the last holder: ")
        )  # fmt: skip
        t.append("yes" if s["signed"] else "no", style="green" if s["signed"] else "red")
        out.print(t)
    verdict = view["verified"]
    out.print(
        Text("chain verifies offline ✓", style="green")
        if verdict is True
        else Text(f"chain does NOT verify: {verdict}", style="red")
    )
