"""Step ids across generations: which step a row is, and which generation wrote it.

A step id names a position (``{task}:{role}.{n}``, ``{task}:end``, see docs/design.md).
When a result is invalidated, the steps that depend on it run again in a new
*generation* ``g``: their rows are written under ``{step}#{g}``, so the rows of the
earlier generation stay in the journal (and in a sealed run's chain) untouched, and the
re-run's rows are new entries. ``#`` never occurs in a task id or a role name, so a
step id is read back without ambiguity:

>>> base_id("t.0.ab/1.cd:execute.1#2"), generation_of("t.0.ab/1.cd:execute.1#2")
('t.0.ab/1.cd:execute.1', 2)
>>> at_generation("t.0.ab:end", 0), at_generation("t.0.ab:end", 3)
('t.0.ab:end', 't.0.ab:end#3')
>>> parse("t.0.ab:replan.2.0"), parse("t.0.ab:end")
(StepRef(task='t.0.ab', role='replan.2', n=0), StepRef(task='t.0.ab', role='end', n=None))
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

__all__ = ["GEN", "StepRef", "at_generation", "base_id", "generation_of", "is_history", "parse"]

#: what separates a step id from its generation
GEN: Final = "#"
_GEN = re.compile(r"#(\d+)")
#: a role's own row, a role's n-th effect, a task's end
_STEP = re.compile(r"(?P<role>replan\.\d+|[a-z_]+)(?:\.(?P<n>\d+))?")


class StepRef(NamedTuple):
    """A step id read back: its task, its role (``end`` for the task's end) and, for an
    effect, its position in the role (None for the role's or the task's own row)."""

    task: str
    role: str
    n: int | None


def base_id(step_id: str) -> str:
    """The step id without its generation (the position the step holds in every one)."""
    return _GEN.sub("", step_id) if GEN in step_id else step_id


def generation_of(step_id: str) -> int:
    """The generation that wrote ``step_id`` (0: the run's first)."""
    m = _GEN.search(step_id) if GEN in step_id else None
    return 0 if m is None else int(m.group(1))


def at_generation(base: str, generation: int) -> str:
    """The id step ``base`` has in ``generation``."""
    return base if generation == 0 else f"{base}{GEN}{generation}"


def is_history(step_id: str) -> bool:
    """A row that records how a step went (a retry, an alternative, an approval, an
    injected fault, a breaker...), not a step a replay looks up."""
    return "~" in step_id or "@" in step_id or step_id.startswith("health:")


def parse(step_id: str) -> StepRef | None:
    """The task, role and position of a step id (None: not a step of a task's roles)."""
    task, sep, rest = base_id(step_id).partition(":")
    if not sep or not task or is_history(step_id):
        return None
    m = _STEP.fullmatch(rest)
    if m is None:
        return None
    n = m.group("n")
    return StepRef(task, m.group("role"), None if n is None else int(n))
