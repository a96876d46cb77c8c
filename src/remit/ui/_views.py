"""What the page is sent, as JSON-ready dicts: a run's snapshot (its tasks as a flat list
of small rows, its budget, its approvals), a task's detail, and the diff between two
snapshots that a live update carries. Pure functions of the journal's rows.

A row is kept small (a 1,500-task tree is a few hundred kilobytes) and flat, parent
first, so the page can index it by id and draw only what is visible.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from remit.core.ledger import Usage
from remit.core.remit import Budget, Remit
from remit.gate import approvals
from remit.journal import RunRecord, StepRecord
from remit.trace.tree import RunTree, TaskView, build
from remit.trace.tree._view import loads

#: characters of a goal sent in a row (the detail has it whole)
GOAL_CHARS: Final = 160
#: characters of a call's arguments or result in a detail (a result can be large)
VALUE_CHARS: Final = 4000


def _fraction(spent: Usage, budget: Budget | None) -> float | None:
    """The largest share of any limited dimension the task has used (None: no limit)."""
    if budget is None:
        return None
    shares: list[float] = []
    if budget.calls:
        shares.append(spent.calls / budget.calls)
    if budget.cost_usd:
        shares.append(spent.cost_usd / budget.cost_usd)
    if budget.input_tokens:
        shares.append(spent.input_tokens / budget.input_tokens)
    if budget.output_tokens:
        shares.append(spent.output_tokens / budget.output_tokens)
    return round(max(shares), 4) if shares else None


def row(n: TaskView, depth: int, waiting: bool) -> dict[str, Any]:
    """One task as a row of the tree (what the page draws)."""
    role = n.decision or ""
    if n.forced:
        role = "execute (cap)"
    return {
        "id": n.id,
        "parent": n.parent,
        "pos": [n.position, n.attempt],
        "key": n.key,
        "goal": n.goal[:GOAL_CHARS],
        "status": "waiting" if waiting and not n.finished else n.status,
        "role": role,
        "depth": depth,
        "spent": n.spent.to_dict(),
        "budget": n.budget.to_dict() if n.budget is not None else None,
        "frac": _fraction(n.spent, n.budget),
        "depth_left": n.depth_left,
        "started_at": n.started_at,
        "seconds": n.seconds,
        "denied": len(n.denied),
        "events": len(n.events),
        "children": len(n.children),
        "tasks": n.subtree_tasks,
    }


def approval(s: StepRecord, tree: RunTree, now_state: str) -> dict[str, Any]:
    """An approval request: what is asked, why, and its answer or whether it waits."""
    asked = loads(s.input)
    asked = asked if isinstance(asked, Mapping) else {}
    answer = approvals.answer_of(s)
    if s.status == "started":
        # a live run waits (a killed one too: the answer is used when it resumes); in a
        # run that is over nobody waits: a resume after the deadline ends the run before
        # it reaches the request again, so it is past its deadline, or was never answered
        if now_state in ("running", "interrupted"):
            state = "waiting"
        else:
            deadline = tree.remit.deadline if tree.remit is not None else None
            state = (
                "expired"
                if deadline is not None and tree.run.updated_at >= deadline
                else "unanswered"
            )
    elif answer is not None:
        state = "approved" if answer.get("approved") else "denied"
    else:
        state = "expired"
    return {
        "step": s.step_id.removesuffix(approvals.SUFFIX),
        "approval": s.step_id,
        "task": s.task_id,
        "tool": s.name,
        "args": asked.get("args"),  # pyright: ignore[reportUnknownMemberType]
        "why": asked.get("why"),  # pyright: ignore[reportUnknownMemberType]
        "asked_at": s.started_at,
        "state": state,
        "answer": dict(answer) if answer is not None else None,
        "error": loads(s.error),
        "run_state": tree.state,
    }


def snapshot(run: RunRecord, state: str, steps: Sequence[StepRecord]) -> dict[str, Any]:
    """Everything the page shows of a run but a task's detail."""
    tree = build(run, steps)
    tree.state = state
    asks = [approval(s, tree, state) for s in steps if s.kind == "approval"]
    waiting = {a["task"] for a in asks if a["state"] == "waiting"}
    rows: list[dict[str, Any]] = []
    stack: list[tuple[TaskView, int]] = [(tree.root, 0)]
    while stack:  # depth first, parents before children, iteratively (trees can be deep)
        n, depth = stack.pop()
        rows.append(row(n, depth, n.id in waiting))
        stack.extend((c, depth + 1) for c in reversed(n.children))
    counts = dict(sorted(tree.counts().items()))
    counts["waiting"] = len(waiting)
    r = run
    return {
        "run": {
            "id": r.run_id,
            "goal": r.goal,
            "agent": r.agent,
            "status": r.status,
            "state": state,
            "created_at": r.created_at,
            "updated_at": r.updated_at,
            "seconds": tree.seconds,
            "error": loads(r.error),
            "result": _clip(tree.result),
        },
        "summary": {
            "tasks": tree.tasks,
            "by_status": counts,
            "steps": tree.steps,
            "denied": tree.root.subtree_denied,
        },
        "budget": budget_view(tree),
        "approvals": asks,
        "nodes": rows,
    }


def budget_view(tree: RunTree) -> dict[str, Any]:
    """The whole run's spend against the root's budget, and the biggest spenders."""
    root = tree.root
    top = sorted(
        (c for c in root.walk() if c is not root and not c.children),
        key=lambda c: (c.spent.cost_usd, c.spent.calls),
        reverse=True,
    )[:10]
    remit = tree.remit
    return {
        "spent": root.spent.to_dict(),
        "budget": root.budget.to_dict() if root.budget is not None else None,
        "frac": _fraction(root.spent, root.budget),
        "deadline": remit.deadline if remit is not None else None,
        "by_child": [_spender(c) for c in root.children],
        "top_leaves": [{"id": c.id, "key": c.key, "spent": c.spent.to_dict()} for c in top],
    }


def _spender(n: TaskView) -> dict[str, Any]:
    return {
        "id": n.id,
        "key": n.key,
        "spent": n.spent.to_dict(),
        "frac": _fraction(n.spent, n.budget),
    }


def diff(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any] | None:
    """What changed from ``old`` to ``new`` (None: nothing): the rows that differ or are
    new, and the run, summary, budget and approvals whole (they are small)."""
    if old is None:
        return None
    before = {n["id"]: n for n in old["nodes"]}
    changed = [n for n in new["nodes"] if before.get(n["id"]) != n]
    rest = {k: new[k] for k in ("run", "summary", "budget", "approvals")}
    if not changed and all(old[k] == v for k, v in rest.items()):
        return None
    return {**rest, "nodes": changed}


def detail(tree: RunTree, task_id: str, steps: Iterable[StepRecord]) -> dict[str, Any] | None:
    """One task whole: its remit, its delegation chain up to the principal, its calls
    with arguments and results, its denials, its failure events and approvals."""
    nodes = {n.id: n for n in tree.root.walk()}
    n = nodes.get(task_id)
    if n is None:
        return None
    chain: list[dict[str, Any]] = []
    up: TaskView | None = n
    while up is not None:
        chain.append({"id": up.id, "key": up.key, "goal": up.goal[:GOAL_CHARS],
                      "remit": _remit(up.remit)})  # fmt: skip
        up = nodes.get(up.parent) if up.parent is not None else None
    chain.reverse()
    calls: list[dict[str, Any]] = []
    asks: list[dict[str, Any]] = []
    for s in steps:
        if s.kind == "approval":
            asks.append(approval(s, tree, tree.state))
        elif s.kind in ("tool", "model"):
            calls.append({
                "step": s.step_id, "kind": s.kind, "name": s.name, "status": s.status,
                "args": _clip(loads(s.input)), "result": _clip(loads(s.output)),
                "error": loads(s.error), "spent": loads(s.spent),
                "seconds": None if s.ended_at is None else max(0.0, s.ended_at - s.started_at),
            })  # fmt: skip
    return {
        "task": {**n.to_dict(), "children": [c.id for c in n.children]},
        "remit": _remit(n.remit),
        "principal": {"run": tree.run.run_id, "remit": _remit(tree.remit)},
        "chain": chain,
        "calls": calls,
        "approvals": asks,
    }


def _remit(remit: Remit | None) -> dict[str, Any] | None:
    return remit.to_dict() if remit is not None else None


def _clip(value: Any) -> Any:
    """A value as sent to the page: whole if small, else its JSON text, shortened."""
    if value is None or isinstance(value, bool | int | float):
        return value
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    if len(text) <= VALUE_CHARS:
        return value
    return text[:VALUE_CHARS] + f"… ({len(text):,} characters)"
