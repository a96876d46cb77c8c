"""What a person reads about a run: its tasks, their denied calls, and the JSON form of it.

Separate because the builder fills these in and the renderer only reads them.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from remit.core.ledger import Usage
from remit.core.remit import Budget, Remit
from remit.journal import RunRecord


@dataclass(slots=True)
class DeniedCall:
    """A call a task made that was not allowed, and why."""

    step_id: str
    kind: str
    name: str
    args: Any
    code: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"step_id": self.step_id, "kind": self.kind, "name": self.name,
                "args": self.args, "code": self.code, "reason": self.reason}  # fmt: skip

    def call(self, width: int = 80) -> str:
        """``read_file(path='src/x')``, shortened to about ``width`` characters."""
        if isinstance(self.args, Mapping):
            inner = ", ".join(f"{k}={v!r}" for k, v in self.args.items())  # pyright: ignore[reportUnknownVariableType]
        elif self.args is None:
            inner = ""
        else:
            inner = repr(self.args)
        text = f"{self.name}({inner})"
        return text if len(text) <= width else text[: width - 2] + "…)"


@dataclass(slots=True)
class TaskView:
    """One task of a run, as the journal knows it."""

    id: str
    parent: str | None
    position: int = 0
    attempt: int = 0
    key: str = "root"
    goal: str = ""
    #: done | failed | cancelled | running | pending
    status: str = "pending"
    #: "execute" | "plan" | None (not decided yet)
    decision: str | None = None
    #: True when no delegation depth was left, so execute was not a choice
    forced: bool = False
    #: what the task and its subtree spent
    spent: Usage = field(default_factory=Usage)
    #: the task's remit as the engine derived it (None if it could not be rebuilt)
    remit: Remit | None = None
    budget: Budget | None = None
    depth_left: int | None = None
    started_at: float | None = None
    ended_at: float | None = None
    error: dict[str, Any] | None = None
    denied: list[DeniedCall] = field(default_factory=lambda: [])
    #: how failures ended, in journal order, as (kind, text): ``fault`` (injected on
    #: purpose), ``retry``, ``reroute``, ``escalate``, ``breaker`` (a circuit changed)
    events: list[tuple[str, str]] = field(default_factory=lambda: [])
    #: what the task's roles said, for people: the atomizer model's answer, the
    #: result's ``summary`` (a model-driven agent's roles decide in words)
    said: list[str] = field(default_factory=lambda: [])
    #: step records of this task (roles, tool and model calls), its end excluded
    steps: int = 0
    calls: int = 0
    children: list[TaskView] = field(default_factory=lambda: [])
    #: counts over the subtree, this task included
    subtree_tasks: int = 1
    subtree_denied: int = 0
    subtree_failed: int = 0

    @property
    def seconds(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return max(0.0, self.ended_at - self.started_at)

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed", "cancelled")

    def walk(self) -> Iterable[TaskView]:
        """This task and all below it, depth first (iteratively: trees can be deep)."""
        stack: list[TaskView] = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form of the subtree (``remit show --json``)."""
        out: dict[str, Any] = {
            "id": self.id,
            "key": self.key,
            "goal": self.goal,
            "status": self.status,
            "decision": self.decision,
            "forced": self.forced,
            "spent": self.spent.to_dict(),
            "budget": self.budget.to_dict() if self.budget is not None else None,
            "depth_left": self.depth_left,
            "tools": _tools(self.remit),
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "seconds": self.seconds,
            "steps": self.steps,
            "calls": self.calls,
            "error": self.error,
            "denied": [d.to_dict() for d in self.denied],
            "events": [{"kind": k, "text": t} for k, t in self.events],
            "said": list(self.said),
        }
        if self.attempt:
            out["attempt"] = self.attempt
        out["children"] = [c.to_dict() for c in self.children]
        return out


@dataclass(slots=True)
class RunTree:
    """A run and its task tree."""

    run: RunRecord
    root: TaskView
    remit: Remit | None
    steps: int
    result: Any = None
    #: what a person should read: ``running`` only while a live process holds the run,
    #: ``interrupted`` when nobody does (see :func:`remit.journal.lease.run_state`)
    state: str = ""

    def __post_init__(self) -> None:
        if not self.state:
            self.state = self.run.status

    @property
    def tasks(self) -> int:
        return self.root.subtree_tasks

    def counts(self) -> Counter[str]:
        """Tasks by status."""
        return Counter(n.status for n in self.root.walk())

    def denied(self) -> list[tuple[TaskView, DeniedCall]]:
        return [(n, d) for n in self.root.walk() for d in n.denied]

    @property
    def seconds(self) -> float:
        return max(0.0, self.run.updated_at - self.run.created_at)

    def to_dict(self) -> dict[str, Any]:
        r = self.run
        return {
            "run": {
                "id": r.run_id,
                "goal": r.goal,
                "agent": r.agent,
                "status": r.status,
                "state": self.state,
                "created_at": r.created_at,
                "updated_at": r.updated_at,
                "seconds": self.seconds,
                "remit": self.remit.to_dict() if self.remit is not None else None,
                "error": loads(r.error),
                "result": self.result,
            },
            "summary": {
                "tasks": self.tasks,
                "by_status": dict(sorted(self.counts().items())),
                "steps": self.steps,
                "denied": self.root.subtree_denied,
                "spent": self.root.spent.to_dict(),
                "budget": self.root.budget.to_dict() if self.root.budget is not None else None,
            },
            "tree": self.root.to_dict(),
        }


def loads(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _tools(remit: Remit | None) -> dict[str, Any] | None:
    return remit.to_dict()["tools"] if remit is not None else None
