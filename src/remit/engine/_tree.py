"""What a parent hands its children, and what it reads back: pure functions of the tree.

Narrowing a subtask's remit from its parent's (a later deadline is capped, anything
else wider is refused), the results a task's dependencies give it, and what an
aggregator sees of a child.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from remit.core.ledger import Ledger
from remit.core.receipts import Receipt
from remit.core.remit import Remit
from remit.core.tasks import ChildResult, Plan, Status, Subtask, task_id
from remit.errors import DelegationError, PlanError, RemitFormatError, WideningError
from remit.gate._node import Node

__all__ = [
    "cancel_subtree",
    "checked_plan",
    "child_remits",
    "child_result",
    "dep_results",
    "link_dependents",
    "make_child",
    "narrow_for",
    "replanned",
]


def narrow_for(node: Node, sub: Subtask) -> Remit:
    args = dict(sub.remit or {})
    try:
        return node.remit.narrow(**args)
    except WideningError as e:
        if e.dimension != "deadline":
            raise WideningError(
                e.dimension, f"subtask {sub.key!r} of task {node.id}: {e.message}"
            ) from None
        # a child's deadline is min(parent's, its own): a later one is simply capped
        args.pop("deadline")
        return node.remit.narrow(**args)
    except (TypeError, RemitFormatError) as e:
        raise PlanError(f"subtask {sub.key!r} of task {node.id}: bad remit: {e}") from None


def child_remits(node: Node, plan: Plan) -> list[Remit]:
    """Each subtask's remit, narrowed from ``node``'s (once per distinct request:
    a fan-out's children usually ask for the same)."""
    cache: dict[str, Remit] = {}
    remits: list[Remit] = []
    for sub in plan.subtasks:
        spec = json.dumps(sub.remit, sort_keys=True, default=str) if sub.remit else ""
        remit = cache.get(spec)
        if remit is None:
            remit = cache[spec] = narrow_for(node, sub)
        remits.append(remit)
    return remits


def dep_results(node: Node) -> dict[str, Any]:
    parent = node.parent
    if not node.deps or parent is None or parent.children is None:
        return {}
    by_key = parent.by_key or {}
    return {k: by_key[k].result for k in node.deps if k in by_key}


def child_result(c: Node, receipts: Sequence[Receipt] = ()) -> ChildResult:
    """What ``c``'s parent sees of it; ``receipts``: its subtree's (the Gate's ``receipts_of``)."""
    if c.status is Status.DONE:
        return ChildResult(c.key, c.goal, True, c.result, receipts=receipts)
    err = c.error
    return ChildResult(
        c.key,
        c.goal,
        False,
        None,
        getattr(err, "message", str(err) if err else "cancelled"),
        getattr(err, "code", "CANCELLED"),
        receipts,
    )


def cancel_subtree(node: Node) -> list[Node]:
    """Cancel what runs below ``node``: pending children never start, running ones are
    told to stop (their step's timeout scope fires now), timers are dropped. Returns
    the ones that were running (an executor elsewhere is told to stop them too)."""
    if node.timer is not None:
        node.timer.cancel()
        node.timer = None
    loop = asyncio.get_running_loop()
    running: list[Node] = []
    stack = list(node.children or ())
    while stack:
        c = stack.pop()
        if c.status in (Status.DONE, Status.FAILED, Status.CANCELLED):
            continue
        c.cancelled = True
        if c.timer is not None:
            c.timer.cancel()
            c.timer = None
        if c.status in (Status.PENDING, Status.READY):
            c.status = Status.CANCELLED
        else:
            running.append(c)
            if c.scope is not None and not c.scope.expired():
                # an expiring scope is already on its way out
                with contextlib.suppress(RuntimeError):
                    c.scope.reschedule(loop.time())
        stack.extend(c.children or ())
    return running


def checked_plan(node: Node, raw: Any) -> tuple[Plan, list[Remit]]:
    """A planner's answer as a valid plan ``node`` may delegate, with each child's remit
    narrowed from ``node``'s (raises on any widening: nothing is spawned)."""
    if isinstance(raw, Plan):
        plan = raw.validate()
    else:
        plan = Plan.from_dict(raw, where=f"task {node.id} plan")
    if node.remit.depth <= 0:
        raise DelegationError(f"task {node.id} has no delegation depth left")
    return plan, child_remits(node, plan)


def link_dependents(children: list[Node], by_key: Mapping[str, Node], plan: Plan) -> None:
    """Each child learns which of its siblings wait for it."""
    for child, sub in zip(children, plan.subtasks, strict=True):
        for dep in sub.deps:
            d = by_key[dep]
            if d.dependents is None:
                d.dependents = []
            d.dependents.append(child)


def replanned(raw: Any, sub: Subtask) -> dict[str, Any]:
    """A replan's answer as the failed subtask's new goal and inputs (None: the same)."""
    if raw is None:
        return {"goal": sub.goal, "inputs": dict(sub.inputs)}
    if isinstance(raw, Subtask):
        return {"goal": raw.goal, "inputs": dict(raw.inputs)}
    if isinstance(raw, Mapping) and isinstance(raw.get("goal"), str):  # pyright: ignore[reportUnknownMemberType]
        return {"goal": raw["goal"], "inputs": dict(raw.get("inputs", sub.inputs))}  # pyright: ignore[reportUnknownArgumentType, reportUnknownMemberType]
    raise PlanError(f"replan of subtask {sub.key!r} returned {raw!r}; expected a Subtask")


def make_child(
    ledger: Ledger, parent: Node, position: int, sub: Subtask, remit: Remit, attempt: int = 0
) -> Node:
    """The child task of ``parent`` at ``position``: its own account under the parent's,
    the earlier of the two deadlines, waiting on its dependencies."""
    cid = task_id(parent.id, position, sub.goal, attempt)
    deadline = parent.deadline
    if remit.deadline is not None:
        deadline = remit.deadline if deadline is None else min(deadline, remit.deadline)
    child = Node(
        cid,
        sub.goal,
        remit,
        ledger.open(cid, remit.budget, parent.account),
        parent=parent,
        key=sub.key,
        position=position,
        inputs=sub.inputs,
        output_schema=sub.output_schema,
        deadline=deadline,
        deps=sub.deps,
        attempt=attempt,
    )
    child.waiting_on = len(sub.deps)
    return child
