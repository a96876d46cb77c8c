"""Tasks, plans and the statuses a task moves through.

Pure: nothing here performs I/O. Task ids are derived, never random, so a resumed
run (or a replay) names every task exactly as the first run did:

>>> task_id(ROOT, 0, "Audit src/")
't.0.4f9e51'
>>> task_id("t.0.4f9e51", 2, "read main.py")
't.0.4f9e51/2.f4df46'
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from remit.core.receipts import Receipt
from remit.errors import PlanError, TransitionError

ROOT = "t"

FailurePolicy = Literal["fail", "aggregate", "replan"]
FAILURE_POLICIES: tuple[str, ...] = ("fail", "aggregate", "replan")


def task_id(parent: str, position: int, goal: str, attempt: int = 0) -> str:
    """The deterministic id of the child at ``position`` of ``parent`` with ``goal``.

    The goal hash makes a changed plan visible: the same position with another goal
    is another task. ``attempt`` distinguishes a re-planned branch from the original.
    """
    digest = hashlib.blake2b(goal.encode(), digest_size=3).hexdigest()
    suffix = f"{position}.{digest}" if attempt == 0 else f"{position}r{attempt}.{digest}"
    sep = "." if parent == ROOT else "/"
    return f"{parent}{sep}{suffix}"


_SEGMENT = re.compile(r"(\d+)(?:r(\d+))?\.[0-9a-f]+")


def task_parent(tid: str) -> str | None:
    """The id of the task that planned ``tid`` (None for a root): :func:`task_id` read
    back.

    >>> task_parent(task_id(task_id(ROOT, 0, "g"), 2, "sub"))
    't.0.3344a4'
    """
    return tid.rsplit("/", 1)[0] if "/" in tid else None


def task_position(tid: str) -> tuple[int, int]:
    """``tid``'s position in its parent's plan and its attempt (1 when re-planned).

    >>> task_position(task_id(task_id(ROOT, 0, "g"), 2, "sub", attempt=1))
    (2, 1)
    """
    seg = tid.rsplit("/", 1)[-1] if "/" in tid else tid.split(".", 1)[-1]
    m = _SEGMENT.fullmatch(seg)
    return (0, 0) if m is None else (int(m.group(1)), int(m.group(2) or 0))


class Status(StrEnum):
    """Where a task stands. Only the transitions in ``TRANSITIONS`` are allowed."""

    PENDING = "pending"  # known from a plan, waiting for dependencies
    READY = "ready"  # dependencies done, waiting for a worker
    RUNNING = "running"  # atomizing, planning or executing
    WAITING = "waiting"  # planned; its children are running
    AGGREGATING = "aggregating"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL = frozenset({Status.DONE, Status.FAILED, Status.CANCELLED})

TRANSITIONS: Mapping[Status, frozenset[Status]] = {
    Status.PENDING: frozenset({Status.READY, Status.FAILED, Status.CANCELLED, Status.DONE}),
    Status.READY: frozenset({Status.RUNNING, Status.FAILED, Status.CANCELLED, Status.DONE}),
    Status.RUNNING: frozenset({Status.WAITING, Status.DONE, Status.FAILED, Status.CANCELLED}),
    Status.WAITING: frozenset({Status.AGGREGATING, Status.FAILED, Status.CANCELLED}),
    Status.AGGREGATING: frozenset({Status.DONE, Status.FAILED, Status.CANCELLED}),
    Status.DONE: frozenset(),
    Status.FAILED: frozenset(),
    Status.CANCELLED: frozenset(),
}


def check_transition(task: str, old: Status, new: Status) -> None:
    """Raise ``TransitionError`` unless ``old -> new`` is allowed."""
    if new not in TRANSITIONS[old]:
        raise TransitionError(f"task {task}: status {old.value} -> {new.value} is not allowed")


@dataclass(frozen=True, slots=True)
class Subtask:
    """One entry of a plan.

    ``key`` is the planner's local name (what ``deps`` refer to); the runtime gives the
    child its own deterministic id. ``remit`` holds keyword arguments for
    ``Remit.narrow`` (``tools``, ``budget``, ``deadline``, ``depth``): a child can only
    be narrower than its parent.

    >>> Subtask("read", "read README.md", output_schema={"type": "string"})
    Subtask(key='read', goal='read README.md', ...)
    """

    key: str
    goal: str
    deps: tuple[str, ...] = ()
    inputs: Mapping[str, Any] = field(default_factory=lambda: {})
    output_schema: Mapping[str, Any] | None = None
    remit: Mapping[str, Any] | None = None

    def __repr__(self) -> str:
        return f"Subtask(key={self.key!r}, goal={self.goal!r}, ...)"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"key": self.key, "goal": self.goal}
        if self.deps:
            data["deps"] = list(self.deps)
        if self.inputs:
            data["inputs"] = dict(self.inputs)
        if self.output_schema is not None:
            data["output_schema"] = dict(self.output_schema)
        if self.remit is not None:
            data["remit"] = dict(self.remit)
        return data


@dataclass(frozen=True, slots=True)
class Plan:
    """What a planner returns: subtasks and their dependencies (a DAG).

    >>> Plan([Subtask("a", "fetch"), Subtask("b", "summarize", deps=("a",))]).order()
    ['a', 'b']
    """

    subtasks: Sequence[Subtask]
    on_failure: FailurePolicy = "fail"

    def __post_init__(self) -> None:
        object.__setattr__(self, "subtasks", tuple(self.subtasks))

    def validate(self) -> Plan:
        """Check the plan; raise ``PlanError`` naming the problem. Returns self."""
        if not self.subtasks:
            raise PlanError("plan has no subtasks: a task with nothing to delegate should execute")
        if self.on_failure not in FAILURE_POLICIES:
            raise PlanError(
                f"plan.on_failure={self.on_failure!r}; "
                f"expected one of {', '.join(FAILURE_POLICIES)}"
            )
        seen: set[str] = set()
        for i, sub in enumerate(self.subtasks):
            if not isinstance(sub, Subtask):  # pyright: ignore[reportUnnecessaryIsInstance]
                raise PlanError(f"plan.subtasks[{i}] is {type(sub).__name__}, not a Subtask")
            if not sub.key or not isinstance(sub.key, str):  # pyright: ignore[reportUnnecessaryIsInstance]
                raise PlanError(f"plan.subtasks[{i}] has an empty key")
            if not isinstance(sub.goal, str) or not sub.goal.strip():  # pyright: ignore[reportUnnecessaryIsInstance]
                raise PlanError(f"plan.subtasks[{i}] ({sub.key!r}) has an empty goal")
            if sub.key in seen:
                raise PlanError(f"plan has two subtasks with key {sub.key!r}")
            seen.add(sub.key)
        for sub in self.subtasks:
            for dep in sub.deps:
                if dep == sub.key:
                    raise PlanError(f"subtask {sub.key!r} depends on itself")
                if dep not in seen:
                    raise PlanError(f"subtask {sub.key!r} depends on unknown subtask {dep!r}")
        self.order()
        return self

    def order(self) -> list[str]:
        """A topological order of the keys; ``PlanError`` naming a cycle if there is one."""
        deps = {s.key: s.deps for s in self.subtasks}
        state: dict[str, int] = {}
        out: list[str] = []
        for start in deps:
            if state.get(start):
                continue
            # iterative DFS: plans from models can be long chains
            stack: list[tuple[str, int]] = [(start, 0)]
            path: list[str] = []
            while stack:
                key, i = stack.pop()
                if i == 0:
                    if state.get(key) == 2:
                        continue
                    state[key] = 1
                    path.append(key)
                children = deps.get(key, ())
                if i < len(children):
                    stack.append((key, i + 1))
                    nxt = children[i]
                    if state.get(nxt) == 1:
                        cycle = [*path[path.index(nxt) :], nxt]
                        raise PlanError("plan has a dependency cycle: " + " -> ".join(cycle))
                    if state.get(nxt) != 2 and nxt in deps:
                        stack.append((nxt, 0))
                else:
                    state[key] = 2
                    path.pop()
                    out.append(key)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"subtasks": [s.to_dict() for s in self.subtasks], "on_failure": self.on_failure}

    @classmethod
    def from_dict(cls, data: Any, where: str = "plan") -> Plan:
        """Build and validate a plan from its JSON form; ``PlanError`` names the bad field."""
        if not isinstance(data, Mapping):
            raise PlanError(f"{where} must be an object with 'subtasks', got {type(data).__name__}")
        raw_subs = data.get("subtasks")  # pyright: ignore[reportUnknownMemberType]
        if not isinstance(raw_subs, list):
            raise PlanError(f"{where}.subtasks must be a list")
        subs: list[Subtask] = []
        for i, raw in enumerate(raw_subs):  # pyright: ignore[reportUnknownArgumentType]
            at = f"{where}.subtasks[{i}]"
            if not isinstance(raw, Mapping):
                raise PlanError(f"{at} must be an object")
            unknown = set(raw) - {"key", "goal", "deps", "inputs", "output_schema", "remit"}  # pyright: ignore[reportUnknownArgumentType]
            if unknown:
                raise PlanError(f"{at} has unknown field(s): {', '.join(sorted(unknown))}")
            key, goal = raw.get("key"), raw.get("goal")  # pyright: ignore[reportUnknownMemberType]
            if not isinstance(key, str) or not isinstance(goal, str):
                raise PlanError(f"{at} needs string 'key' and 'goal'")
            deps = raw.get("deps", [])  # pyright: ignore[reportUnknownMemberType]
            if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):  # pyright: ignore[reportUnknownVariableType]
                raise PlanError(f"{at}.deps must be a list of subtask keys")
            inputs = raw.get("inputs", {})  # pyright: ignore[reportUnknownMemberType]
            if not isinstance(inputs, Mapping):
                raise PlanError(f"{at}.inputs must be an object")
            schema = raw.get("output_schema")  # pyright: ignore[reportUnknownMemberType]
            if schema is not None and not isinstance(schema, Mapping):
                raise PlanError(f"{at}.output_schema must be a JSON schema object")
            remit = raw.get("remit")  # pyright: ignore[reportUnknownMemberType]
            if remit is not None and not isinstance(remit, Mapping):
                raise PlanError(f"{at}.remit must be an object of narrowing arguments")
            subs.append(Subtask(key, goal, tuple(deps), inputs, schema, remit))  # pyright: ignore[reportUnknownArgumentType]
        policy = data.get("on_failure", "fail")  # pyright: ignore[reportUnknownMemberType]
        return cls(subs, policy).validate()  # pyright: ignore[reportArgumentType]


@dataclass(frozen=True, slots=True)
class ChildResult:
    """What an aggregator sees of one child: its typed result, or why it failed, and
    the receipts of the tool calls its subtree made (see :mod:`remit.core.receipts`).

    >>> ChildResult("a", "count files", True, 42).receipts
    ()
    """

    key: str
    goal: str
    ok: bool
    value: Any = None
    error: str | None = None
    code: str | None = None
    #: the receipts of the calls behind this result (the child's and its descendants')
    receipts: Sequence[Receipt] = ()
