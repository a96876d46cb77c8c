"""Invalidating a result: the journal row that says so, and what it leaves current.

An invalidation is a row of its own (kind ``invalidation``, step id
``{step}~invalidation.{g}``): it names the step, why, who, and the steps it invalidates
(the step and its transitive dependents, :meth:`Lineage.invalidated_by`, ids without
generation). It is generation ``g``: the ``g``-th invalidation of the run. No row is
edited or deleted; a resume runs each invalidated step again under ``{step}#{g}``
(:func:`generations` says which generation of each step is current), and serves every
other step from the journal as before.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from remit.core.lineage._graph import Lineage, Row
from remit.core.lineage._ids import is_history, parse
from remit.errors import InvalidInput

__all__ = ["KIND", "Invalidation", "generations", "invalidation_id", "invalidations",
           "plan_invalidation"]  # fmt: skip

#: the kind of an invalidation row
KIND = "invalidation"


@dataclass(frozen=True, slots=True)
class Invalidation:
    """A result marked bad, and everything that ran again (or will) because of it."""

    generation: int
    step: str
    why: str
    by: str
    at: float
    #: the step and its transitive dependents (ids without generation), sorted
    steps: tuple[str, ...]
    #: the tasks those steps belong to, sorted
    tasks: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "step": self.step,
            "why": self.why,
            "by": self.by,
            "at": self.at,
            "steps": list(self.steps),
            "tasks": list(self.tasks),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Invalidation:
        return cls(
            int(data["generation"]),
            str(data["step"]),
            str(data.get("why", "")),
            str(data.get("by", "")),
            float(data.get("at", 0.0)),
            tuple(str(s) for s in data.get("steps", ())),
            tuple(str(t) for t in data.get("tasks", ())),
        )


def invalidation_id(step: str, generation: int) -> str:
    """The step id of the row that invalidates ``step`` as generation ``generation``."""
    return f"{step}~{KIND}.{generation}"


def invalidations(rows: Iterable[Row]) -> list[Invalidation]:
    """A run's invalidations, in the order of their generations (a row that does not
    read as one is skipped: the audit, not a resume, judges damaged rows)."""
    found: list[Invalidation] = []
    for r in rows:
        if r.kind != KIND:
            continue
        try:
            found.append(Invalidation.from_dict(json.loads(r.output or "null")))
        except (ValueError, TypeError, KeyError, AttributeError):
            continue
    found.sort(key=lambda i: i.generation)
    return found


def generations(invalidated: Iterable[Invalidation]) -> dict[str, int]:
    """The current generation of every step an invalidation covered (steps not named
    are at generation 0): the last invalidation to name a step wins."""
    current: dict[str, int] = {}
    for inv in invalidated:
        for step in inv.steps:
            current[step] = inv.generation
    return current


def plan_invalidation(
    rows: Iterable[Row], step: str, *, why: str, by: str, at: float
) -> Invalidation:
    """The invalidation of ``step`` (a step id, or a task id for its result) in the run
    whose rows are ``rows``: ``InvalidInput`` naming what is wrong if it names no step."""
    rows = list(rows)
    lineage = Lineage(rows)
    base = lineage.resolve(step)
    if base is None:
        if is_history(step):
            hint = "it records how a step went; name the step itself (the part before ~ or @)"
        elif parse(step) is None and ":" not in step:
            hint = "no task of the run has that id"
        else:
            hint = "the run has no such step"
        raise InvalidInput(
            f"cannot invalidate {step!r}: {hint}. Name a task id (its result), TASK:end, "
            "TASK:ROLE (atomize, plan, execute, aggregate) or a call TASK:ROLE.N; "
            "`remit show RUN_ID --json` lists the tasks"
        )
    if not why.strip():
        raise InvalidInput("an invalidation needs a reason (--why): it is journaled")
    steps = lineage.invalidated_by(base)
    tasks = {lineage.refs[s].task for s in steps}
    g = 1 + max((_generation_of_row(r.step_id) for r in rows if r.kind == KIND), default=0)
    return Invalidation(g, base, why, by, at, tuple(sorted(steps)), tuple(sorted(tasks)))


def _generation_of_row(step_id: str) -> int:
    """The generation an invalidation row's id names (0 if it names none)."""
    tail = step_id.rpartition(f"~{KIND}.")[2]
    return int(tail) if tail.isdigit() else 0
