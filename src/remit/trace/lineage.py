"""What a result came from and what depends on it (``remit show RUN_ID --lineage STEP``).

:func:`lineage_view` is the data (also ``--json``, see docs/schemas/lineage.json);
:func:`render_lineage` draws it. Each step is marked with where it stands: ``current``
(never invalidated), ``invalidated`` (an invalidation covers it and no resume has run
it again yet) or ``re-run`` (its current generation has run).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Group
from rich.text import Text
from rich.tree import Tree

from remit.core.lineage import (
    Invalidation,
    Lineage,
    at_generation,
    base_id,
    generations,
    invalidations,
)
from remit.errors import InvalidInput
from remit.journal import JournalStore, StepRecord
from remit.trace.tree import printable, status_style

__all__ = ["lineage_view", "render_lineage"]

_MARK = {
    "current": ("", ""),
    "invalidated": ("✗ invalidated", "red"),
    "re-run": ("↻ re-run", "cyan"),
}


def lineage_view(store: JournalStore, run_id: str, step: str) -> dict[str, Any]:
    """The lineage of ``step`` (a step id, or a task id for its result) in run ``run_id``:
    the steps it was derived from directly (``upstream``), every step derived from it,
    transitively (``downstream``), and the run's invalidations."""
    store.get_run(run_id)  # RunNotFound names the journal
    rows = list(store.steps(run_id))
    lineage = Lineage(rows)
    base = lineage.resolve(step)
    if base is None:
        raise InvalidInput(
            f"run {run_id} has no step {step!r}; name a task id, TASK:end, TASK:ROLE or a "
            "call TASK:ROLE.N (`remit show RUN_ID --json` lists the tasks)"
        )
    invs = invalidations(rows)
    current = generations(invs)
    by_id = {r.step_id: r for r in rows}

    def entry(s: str, via: str | None = None) -> dict[str, Any]:
        g = current.get(s, 0)
        ran = lineage.generation(s)
        state = "current" if g == 0 else ("re-run" if ran >= g else "invalidated")
        row = by_id.get(at_generation(s, ran)) or lineage.rows[s]
        out: dict[str, Any] = {
            "step": s,
            # the row that holds its result now (the earlier one, until a resume re-runs it)
            "id": at_generation(s, ran),
            "current_id": at_generation(s, g),
            "task": lineage.refs[s].task,
            "kind": row.kind,
            "name": row.name,
            "status": row.status,
            "state": state,
            "generation": g,
        }
        if via is not None:
            out["via"] = via
        return out

    down = sorted(lineage.dependents(base) - {base}, key=_order(rows))
    return {
        "run_id": run_id,
        "step": entry(base),
        "upstream": [entry(e.step, e.via) for e in lineage.upstream(base)],
        "downstream": [entry(s) for s in down],
        "invalidations": [_inv(i, base) for i in invs],
    }


def _order(rows: list[StepRecord]) -> Any:
    first: dict[str, int] = {}
    for i, r in enumerate(rows):
        first.setdefault(base_id(r.step_id), i)
    return lambda s: first.get(s, len(first))  # pyright: ignore[reportUnknownLambdaType]


def _inv(inv: Invalidation, base: str) -> dict[str, Any]:
    data = inv.to_dict()
    data["covers_step"] = base in inv.steps
    data["steps"] = len(inv.steps)
    data["tasks"] = len(inv.tasks)
    return data


def _line(e: Mapping[str, Any], prefix: str = "") -> Text:
    t = Text()
    if prefix:
        t.append(f"{prefix}  ", style="bold")
    t.append(printable(e["id"]))
    what = e["kind"] if e["kind"] == e["name"] else f"{e['kind']} {e['name']}"
    status = str(e["status"])
    sym, style = status_style({"ok": "done", "error": "failed"}.get(status, status))
    t.append(f"  {printable(what)}", style="dim")
    t.append(f"  {sym} {e['status']}", style=style)
    mark, mstyle = _MARK[e["state"]]
    if mark:
        t.append(f"  {mark} #{e['generation']}", style=mstyle)
        if e["state"] == "invalidated":
            t.append(" (a resume runs it again)", style="dim")
    return t


def render_lineage(view: Mapping[str, Any]) -> Group:
    """The lineage view drawn for a terminal."""
    head = Text()
    head.append("lineage of ", style="bold")
    head.append_text(_line(view["step"]))
    head.append(f"   run {view['run_id']}", style="dim")
    parts: list[Any] = [head]
    for inv in view["invalidations"]:
        if inv["covers_step"]:
            t = Text(f"  invalidation #{inv['generation']} by {inv['by']}: ", style="red")
            t.append(printable(inv["why"]))
            t.append(f"  (from {inv['step']}: {inv['steps']} steps, {inv['tasks']} tasks)",
                     style="dim")  # fmt: skip
            parts.append(t)
    up = Tree(Text(f"came from ({len(view['upstream'])})", style="bold"))
    for e in view["upstream"]:
        up.add(_line(e, e["via"]))
    if not view["upstream"]:
        up.add(Text("nothing journaled: the run's goal and inputs", style="dim"))
    parts.append(up)
    down = Tree(Text(f"depends on it ({len(view['downstream'])})", style="bold"))
    by_task: dict[str, Tree] = {}
    for e in view["downstream"]:
        branch = by_task.get(e["task"])
        if branch is None:
            branch = by_task[e["task"]] = down.add(Text(f"task {e['task']}", style="blue"))
        branch.add(_line(e))
    if not view["downstream"]:
        down.add(Text("nothing: no other result was derived from it", style="dim"))
    parts.append(down)
    return Group(*parts)
