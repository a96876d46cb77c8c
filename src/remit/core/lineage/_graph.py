"""The DAG of a run's results, derived from its journal rows (pure).

Nothing extra is journaled for it: the engine only lets information flow along edges the
rows already record. A task's role sees its task's goal and inputs (from the parent's
plan row) and the results of the siblings it depends on (the plan's ``deps``); an
aggregator sees its children's results; each effect a role makes may read the results
of the role's earlier effects. So, from the rows alone:

- a role's effect ``T:role.n`` derives from the role's earlier effects and the task's
  inputs, and the role's result derives from all of its effects;
- a task's result (``T:end``) derives from its roles: for a leaf, its execute role's
  effects; for a planner, its aggregate, which derives from its children's results;
- a task derives from the results of its ``deps`` and from its parent's plan.

:meth:`Lineage.dependents` walks those edges downstream (what must run again when a
result is bad), :meth:`Lineage.upstream` one step upstream (what a result came from).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import NamedTuple, Protocol

from remit.core.lineage._ids import StepRef, base_id, generation_of, parse
from remit.core.tasks import task_parent, task_position

__all__ = ["Edge", "Lineage", "Row"]

#: rows of a task that are not a step of its roles (a signed hop of older runs)
_NOT_STEPS = frozenset({"warrant"})


class Row(Protocol):
    """What the lineage reads of a journal row (a ``StepRecord`` is one)."""

    @property
    def step_id(self) -> str: ...
    @property
    def task_id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def output(self) -> str | None: ...


class Edge(NamedTuple):
    """One step upstream of another, and what it gave it (``call``, ``inputs``,
    ``dep <key>``, ``child <key>``, ``role``)."""

    step: str
    via: str


class Lineage:
    """A run's steps (by their ids without generation) and the edges between them."""

    def __init__(self, rows: Iterable[Row]) -> None:
        #: the latest generation's row of each step, by step id without generation
        self.rows: dict[str, Row] = {}
        self.refs: dict[str, StepRef] = {}
        self._gen: dict[str, int] = {}
        self.by_task: dict[str, list[str]] = {}
        self.calls: dict[tuple[str, str], list[tuple[int, str]]] = {}
        self.children: dict[str, list[str]] = {}
        #: each planner's subtasks as (key, deps), from its latest plan row
        self.plans: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
        for r in rows:
            ref = parse(r.step_id)
            if ref is None or ref.role in _NOT_STEPS:
                continue
            base, g = base_id(r.step_id), generation_of(r.step_id)
            if base in self.rows:
                if g >= self._gen[base]:
                    self.rows[base], self._gen[base] = r, g
                continue
            self.rows[base], self._gen[base], self.refs[base] = r, g, ref
            self._add_task(ref.task)
            self.by_task[ref.task].append(base)
            if ref.n is not None:
                self.calls.setdefault((ref.task, ref.role), []).append((ref.n, base))
        for base, r in self.rows.items():
            if self.refs[base].role == "plan" and self.refs[base].n is None and r.status == "ok":
                self.plans[self.refs[base].task] = _subtasks(r.output)
        for calls in self.calls.values():
            calls.sort()

    def _add_task(self, tid: str) -> None:
        while tid not in self.by_task:
            self.by_task[tid] = []
            parent = task_parent(tid)
            if parent is None:
                return
            self.children.setdefault(parent, []).append(tid)
            tid = parent

    # --- naming a step ---------------------------------------------------------------

    def resolve(self, step: str) -> str | None:
        """The step a person names (a step id, with or without its generation, or a
        task id for the task's result), or None if the run has no such step."""
        base = base_id(step.strip())
        if base in self.rows:
            return base
        if base in self.by_task:
            return f"{base}:end" if f"{base}:end" in self.rows else None
        ref = parse(base)
        if ref is not None and ref.n is None and (ref.task, ref.role) in self.calls:
            return base  # a role with no row of its own (execute): all its effects
        return None

    # --- downstream --------------------------------------------------------------------

    def dependents(self, step: str) -> set[str]:
        """``step`` and every step derived from it, transitively (ids without generation;
        only steps the journal holds). ``step`` is what :meth:`resolve` returns."""
        return self._walk(step, redo=False)

    def invalidated_by(self, step: str) -> set[str]:
        """What runs again when ``step`` is marked bad: its dependents, and for a task's
        result (``T:end``) the whole task too (every step it took, its subtree)."""
        return self._walk(step, redo=True)

    def _walk(self, step: str, *, redo: bool) -> set[str]:
        ref = parse(step)
        assert ref is not None, step
        out: set[str] = set()
        whole_done: set[str] = set()
        result_done: set[str] = set()

        def add(base: str) -> None:
            if base in self.rows:
                out.add(base)

        def calls(tid: str, role: str, start: int = 0) -> None:
            for n, base in self.calls.get((tid, role), ()):
                if n >= start:
                    out.add(base)

        def result(tid: str) -> None:  # the task's result changes
            if tid in result_done:
                return
            result_done.add(tid)
            add(f"{tid}:end")
            parent = task_parent(tid)
            if parent is None:
                return
            for sibling in self.dependent_siblings(tid):
                whole(sibling)
            add(f"{parent}:aggregate")  # the parent's aggregate read this result
            calls(parent, "aggregate")
            result(parent)

        def whole(tid: str) -> None:  # everything the task did is redone
            if tid in whole_done:
                return
            whole_done.add(tid)
            out.update(self.by_task.get(tid, ()))
            for child in self.children.get(tid, ()):
                whole(child)
            result(tid)

        tid, role, n = ref
        if role == "end":
            if redo:
                whole(tid)
            else:
                result(tid)
            return out
        add(step)
        calls(tid, role, n or 0)
        if role == "atomize":  # everything after the decision
            whole(tid)
            for m, base in self.calls.get((tid, role), ()):
                if m < (n or 0):
                    out.discard(base)  # upstream of the step: never derived from it
        elif role == "plan":
            for base in self.by_task.get(tid, ()):
                if self.refs[base].role not in ("atomize", "plan"):
                    out.add(base)
            for child in self.children.get(tid, ()):
                whole(child)
            result(tid)
        elif role.startswith("replan."):
            pos = int(role.split(".", 1)[1])
            for child in self.children.get(tid, ()):
                if task_position(child)[0] == pos and task_position(child)[1] > 0:
                    whole(child)
            result(tid)
        else:  # execute, aggregate: the role's result is the task's
            result(tid)
        return out

    def dependent_siblings(self, tid: str) -> list[str]:
        """The siblings whose plan entry names ``tid``'s key among its ``deps``."""
        parent = task_parent(tid)
        subs = self.plans.get(parent or "", [])
        pos = task_position(tid)[0]
        if parent is None or pos >= len(subs):
            return []
        key = subs[pos][0]
        wanted = {j for j, (_, deps) in enumerate(subs) if key in deps}
        return [c for c in self.children.get(parent, ()) if task_position(c)[0] in wanted]

    # --- upstream ----------------------------------------------------------------------

    def upstream(self, step: str) -> list[Edge]:
        """The steps ``step`` was derived from directly (one edge back)."""
        ref = parse(step)
        if ref is None:
            return []
        tid, role, n = ref
        edges: list[Edge] = []
        if role == "end":
            for base in self.by_task.get(tid, ()):
                if base != step:
                    edges.append(Edge(base, "call" if self.refs[base].n is not None else "role"))
            edges += self._children_results(tid)
        else:
            for m, base in self.calls.get((tid, role), ()):
                if n is None or m < n:
                    edges.append(Edge(base, "call"))
            if role == "aggregate":
                edges += self._children_results(tid)
        return edges + self._task_inputs(tid)

    def _children_results(self, tid: str) -> list[Edge]:
        subs = self.plans.get(tid, [])
        out: list[Edge] = []
        for child in self.children.get(tid, ()):
            if f"{child}:end" in self.rows:
                out.append(Edge(f"{child}:end", f"child {_key(subs, child)}"))
        return out

    def _task_inputs(self, tid: str) -> list[Edge]:
        parent = task_parent(tid)
        if parent is None:
            return []
        edges: list[Edge] = []
        if f"{parent}:plan" in self.rows:
            edges.append(Edge(f"{parent}:plan", "inputs"))
        subs = self.plans.get(parent, [])
        pos = task_position(tid)[0]
        deps = subs[pos][1] if pos < len(subs) else ()
        for child in self.children.get(parent, ()):
            key = _key(subs, child)
            if key in deps and f"{child}:end" in self.rows:
                edges.append(Edge(f"{child}:end", f"dep {key}"))
        return edges

    def generation(self, base: str) -> int:
        """The generation of ``base``'s latest row."""
        return self._gen.get(base, 0)


def _key(subs: list[tuple[str, tuple[str, ...]]], tid: str) -> str:
    pos = task_position(tid)[0]
    return subs[pos][0] if pos < len(subs) else str(pos)


def _subtasks(output: str | None) -> list[tuple[str, tuple[str, ...]]]:
    """A plan row's subtasks as (key, deps) (a damaged row gives none)."""
    try:
        data = json.loads(output or "null")
        return [(str(s["key"]), tuple(str(d) for d in s.get("deps", ()))) for s in data["subtasks"]]
    except (ValueError, TypeError, KeyError, AttributeError):
        return []
