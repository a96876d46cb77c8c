"""What a parent hands its children, and what it reads back: pure functions of the tree.

Narrowing a subtask's remit from its parent's (a later deadline is capped, anything
else wider is refused), the results a task's dependencies give it, and what an
aggregator sees of a child.
"""

from __future__ import annotations

import json
from typing import Any

from remit.core.remit import Remit
from remit.core.tasks import ChildResult, Plan, Status, Subtask
from remit.errors import PlanError, RemitFormatError, WideningError
from remit.gate._node import Node

__all__ = ["child_remits", "child_result", "dep_results", "narrow_for"]


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


def child_result(c: Node) -> ChildResult:
    if c.status is Status.DONE:
        return ChildResult(c.key, c.goal, True, c.result)
    err = c.error
    return ChildResult(
        c.key,
        c.goal,
        False,
        None,
        getattr(err, "message", str(err) if err else "cancelled"),
        getattr(err, "code", "CANCELLED"),
    )
