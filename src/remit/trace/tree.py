"""The task tree of a run, rebuilt from its journal alone (a pure view: no I/O here).

Everything comes from the run's record and its step records (see DESIGN.md, Journal):

- tasks are the ``task_id``s of the steps; a child's parent is everything before the
  last ``/`` of its id, its position the number that starts the last segment;
- a child's goal, key and remit come from its parent's ``plan`` step (the plan is
  journaled), so children that never started are still known (status ``pending``);
  a re-planned child comes from the parent's ``replan.N`` step;
- the role decision is the ``atomize`` step's output (``execute`` with no atomize step
  means the depth cap forced it; a leaf's execute role is recorded by its end row);
- status, error and the spend of the whole subtree come from the ``end`` step;
- a denied call is a step with status ``denied`` (the Gate refused it: remit, budget,
  deadline), or a tool step that failed with an authority code (the tool's own
  confinement refused it).

>>> from remit.journal import RunRecord, StepRecord
>>> run = RunRecord("r1", "add", "m:a", '{"budget": {"calls": 5}}', "done")
>>> t = task_id("t", 0, "add")
>>> steps = [StepRecord("r1", f"{t}:execute", t, 0, "execute", "execute", "ok", None, "2",
...                     started_at=1.0, ended_at=1.5),
...          StepRecord("r1", f"{t}:end", t, 1, "task", "done", "ok", None, "2", None,
...                     '{"calls": 1}', 1.0, 2.0)]
>>> tree = build(run, steps)
>>> tree.root.status, tree.root.decision, tree.root.spent.calls, tree.root.budget.calls
('done', 'execute', 1, 5)
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from rich.text import Text
from rich.tree import Tree

from remit.core.ledger import Usage
from remit.core.remit import Budget, Remit
from remit.core.tasks import task_id
from remit.errors import RemitError
from remit.journal import JournalStore, RunRecord, StepRecord
from remit.journal.lease import run_state

__all__ = [
    "DENIAL_CODES",
    "DeniedCall",
    "RunTree",
    "TaskView",
    "build",
    "format_seconds",
    "format_spend",
    "load",
    "plural",
    "printable",
    "render",
    "status_style",
]

#: error codes that mean "not allowed" rather than "went wrong"
DENIAL_CODES = frozenset({"DENIED", "BUDGET", "DEADLINE", "DELEGATION_DENIED"})

_SEGMENT = re.compile(r"(\d+)(?:r(\d+))?\.[0-9a-f]+")
_ROLE_KINDS = frozenset({"atomize", "plan", "execute", "aggregate"})


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
                "error": _loads(r.error),
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


# --- building ------------------------------------------------------------------------


def load(store: JournalStore, run_id: str) -> RunTree:
    """The tree of run ``run_id`` (``RunNotFound``, ``JournalCorrupt`` propagate)."""
    run = store.get_run(run_id)
    tree = build(run, store.steps(run_id))
    tree.state = run_state(run, store.get_lease(run_id))
    return tree


def _loads(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _position(tid: str) -> tuple[int, int]:
    seg = tid.rsplit("/", 1)[-1] if "/" in tid else tid.split(".", 1)[-1]
    m = _SEGMENT.fullmatch(seg)
    if m is None:
        return 0, 0
    return int(m.group(1)), int(m.group(2) or 0)


def _parent(tid: str) -> str | None:
    return tid.rsplit("/", 1)[0] if "/" in tid else None


def _tools(remit: Remit | None) -> dict[str, Any] | None:
    return remit.to_dict()["tools"] if remit is not None else None


def _error_of(text: str | None) -> dict[str, Any]:
    data = _loads(text)
    if isinstance(data, Mapping):
        err = cast(Mapping[str, Any], data)
        return {"code": str(err.get("code", "ERROR")), "message": str(err.get("message", ""))}
    return {"code": "ERROR", "message": str(data or "")}


def _narrow(parent: Remit | None, spec: Any) -> Remit | None:
    """The child's remit as the engine derived it (deadlines aside: not shown)."""
    if parent is None:
        return None
    args = dict(spec) if isinstance(spec, Mapping) else {}  # pyright: ignore[reportUnknownArgumentType]
    args.pop("deadline", None)
    try:
        return parent.narrow(**args)
    except (RemitError, TypeError):
        return None


class _Builder:
    def __init__(self, run: RunRecord) -> None:
        self.run = run
        self.nodes: dict[str, TaskView] = {}
        self.remits: dict[str, Remit | None] = {}
        self.plans: dict[str, list[Mapping[str, Any]]] = {}
        self.replans: dict[tuple[str, int], Mapping[str, Any]] = {}
        self.own_spent: dict[str, Usage] = {}
        self.ended: set[str] = set()
        self.hops = 0

    def node(self, tid: str) -> TaskView:
        n = self.nodes.get(tid)
        if n is None:
            pos, attempt = _position(tid)
            n = self.nodes[tid] = TaskView(tid, _parent(tid), pos, attempt)
        return n

    def add(self, s: StepRecord) -> None:
        n = self.node(s.task_id)
        if n.started_at is None or s.started_at < n.started_at:
            n.started_at = s.started_at
        if s.kind == "warrant":  # the task's signed hop: not a step it took
            self.hops += 1
            return
        if s.kind == "task":  # the end of the task
            self.ended.add(n.id)
            n.ended_at = s.ended_at
            n.spent = Usage.from_dict(_loads(s.spent))
            if s.status == "ok":
                n.status = "done"
                out = _loads(s.output)
                if isinstance(out, Mapping):
                    for key in ("summary", "overview"):
                        text = out.get(key)  # pyright: ignore[reportUnknownMemberType]
                        if isinstance(text, str) and text.strip():
                            n.said.append(f"{key}: {' '.join(text.split())}")
                            break
            else:
                n.error = _error_of(s.error)
                n.status = "cancelled" if n.error["code"] == "CANCELLED" else "failed"
            return
        n.steps += 1
        if (
            s.ended_at is not None
            and n.id not in self.ended
            and (n.ended_at is None or s.ended_at > n.ended_at)
        ):
            n.ended_at = s.ended_at
        if s.spent:
            self.own_spent[n.id] = self.own_spent.get(n.id, Usage()) + Usage.from_dict(
                _loads(s.spent)
            )
        if s.kind in ("tool", "model"):
            n.calls += 1
            if s.kind == "model" and s.status == "ok" and s.step_id.endswith(":atomize.0"):
                answer = _loads(s.output)
                if isinstance(answer, Mapping):
                    content = answer.get("content")  # pyright: ignore[reportUnknownMemberType]
                    if isinstance(content, str) and content.strip():
                        n.said.append(f"atomizer said {' '.join(content.split())}")
        if s.kind == "atomize" and s.status == "ok":
            out = _loads(s.output)
            n.decision = "plan" if out in ("plan", False) else "execute"
        elif s.kind == "plan" and s.status == "ok":
            n.decision = "plan"
            plan = _loads(s.output)
            if isinstance(plan, Mapping) and isinstance(plan.get("subtasks"), list):  # pyright: ignore[reportUnknownMemberType]
                self.plans[n.id] = [x for x in plan["subtasks"] if isinstance(x, Mapping)]  # pyright: ignore[reportUnknownVariableType]
        elif s.kind == "execute" and n.decision is None:
            n.decision = "execute"
        elif s.kind.startswith("replan.") and s.status == "ok":
            out = _loads(s.output)
            if isinstance(out, Mapping):
                self.replans[(n.id, int(s.kind.split(".", 1)[1]))] = out  # pyright: ignore[reportUnknownArgumentType]
        if s.status == "denied" or (
            s.status == "error" and s.kind not in _ROLE_KINDS and s.kind != "task"
        ):
            err = _error_of(s.error)
            if s.status == "denied" or err["code"] in DENIAL_CODES:
                n.denied.append(DeniedCall(s.step_id, s.kind, s.name, _loads(s.input),
                                           err["code"], err["message"]))  # fmt: skip

    def known_children(self) -> None:
        """Children named by plans (and re-plans) but with no step of their own yet."""
        for pid, subs in list(self.plans.items()):
            for i, sub in enumerate(subs):
                goal = str(sub.get("goal", ""))
                self.node(task_id(pid, i, goal))
        for (pid, pos), out in self.replans.items():
            self.node(task_id(pid, pos, str(out.get("goal", "")), 1))

    def finish(self, root_id: str, root_remit: Remit | None) -> TaskView:
        root = self.node(root_id)
        root.goal = self.run.goal
        self.remits[root_id] = root_remit
        # link children to parents; a task whose parent is unknown hangs off the root
        for n in list(self.nodes.values()):
            if n.id == root_id:
                continue
            pid = n.parent if n.parent in self.nodes else root_id
            self.nodes[pid].children.append(n)
        running = self.run.status == "running"
        # top-down: goals, keys, remits; bottom-up: spend and subtree counts
        order: list[TaskView] = []
        stack = [root]
        while stack:
            n = stack.pop()
            order.append(n)
            n.children.sort(key=lambda c: (c.position, c.attempt))
            subs = self.plans.get(n.id, [])
            parent_remit = self.remits.get(n.id)
            for c in n.children:
                sub = subs[c.position] if c.position < len(subs) else {}
                c.key = str(sub.get("key", c.position))
                c.goal = str(sub.get("goal", ""))
                if c.attempt:
                    c.goal = str(self.replans.get((n.id, c.position), {}).get("goal", c.goal))
                self.remits[c.id] = _narrow(parent_remit, sub.get("remit"))
                stack.append(c)
        for n in reversed(order):
            remit = self.remits.get(n.id)
            if remit is not None:
                n.remit = remit
                n.budget = remit.budget
                n.depth_left = remit.depth
                # a leaf's execute role has no row of its own (its end row holds it)
                if (
                    n.decision is None
                    and n.id not in self.plans
                    and (n.status == "done" or (remit.depth == 0 and (n.steps or n.finished)))
                ):
                    n.decision = "execute"
                if n.decision == "execute" and remit.depth == 0:
                    n.forced = True
            if not n.finished:
                # a task with any row (its warrant hop, minted as it starts) had started
                if n.steps or n.started_at is not None:
                    n.status = "running" if running else "cancelled"
                else:
                    n.status = "pending" if running else "cancelled"
                spent = self.own_spent.get(n.id, Usage())
                for c in n.children:
                    spent = spent + c.spent
                n.spent = spent
            n.subtree_tasks = 1 + sum(c.subtree_tasks for c in n.children)
            n.subtree_denied = len(n.denied) + sum(c.subtree_denied for c in n.children)
            n.subtree_failed = (n.status == "failed") + sum(c.subtree_failed for c in n.children)
        return root


def build(run: RunRecord, steps: Iterable[StepRecord]) -> RunTree:
    """The task tree of ``run`` from its step records (in any order)."""
    try:
        remit: Remit | None = Remit.from_json(run.remit)
    except RemitError:
        remit = None
    b = _Builder(run)
    count = 0
    for s in steps:
        b.add(s)
        count += 1
    b.known_children()
    root_id = task_id("t", 0, run.goal)
    root = b.finish(root_id, remit)
    # warrant hops are how a task was authorized, not steps it took
    return RunTree(run, root, remit, count - b.hops, _loads(run.result))


# --- formatting ----------------------------------------------------------------------


def plural(n: int, word: str) -> str:
    """``"1 task"``, ``"2 tasks"``, ``"1,290 tasks"``."""
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def format_seconds(seconds: float | None) -> str:
    """``"12 ms"``, ``"3.4 s"``, ``"2 m 05 s"``; ``"-"`` for None."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(int(seconds), 60)
    if m < 60:
        return f"{m} m {s:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} m"


def format_spend(spent: Usage, budget: Budget | None) -> str:
    """``"3/10 calls · $0.02/$0.50"``: each spent dimension, against its limit if any."""
    b = budget or Budget()
    parts: list[str] = []
    if spent.calls or b.calls is not None:
        lim = f"/{b.calls:,}" if b.calls is not None else ""
        parts.append(f"{spent.calls:,}{lim} calls")
    tokens = spent.input_tokens + spent.output_tokens
    if tokens or b.input_tokens is not None or b.output_tokens is not None:
        tin = f"/{b.input_tokens:,}" if b.input_tokens is not None else ""
        tout = f"/{b.output_tokens:,}" if b.output_tokens is not None else ""
        parts.append(f"{spent.input_tokens:,}{tin} in + {spent.output_tokens:,}{tout} out tokens")
    if spent.cost_usd or b.cost_usd is not None:
        lim = f"/${b.cost_usd:.2f}" if b.cost_usd is not None else ""
        parts.append(f"${spent.cost_usd:.4f}{lim}")
    return " · ".join(parts) if parts else "nothing spent"


_STATUS_STYLE = {
    "done": ("✓", "green"),
    "failed": ("✗", "bold red"),
    "cancelled": ("⊘", "yellow"),
    "running": ("●", "cyan"),
    "interrupted": ("◐", "yellow"),
    "pending": ("○", "dim"),
}


#: C0 and C1 controls (tab and newline included: a label is one line) and the Unicode
#: bidirectional controls, which could make a goal display as something it is not
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` safe to print on a terminal: control and bidi characters become ``�``
    (``--json`` keeps the text as it was).

    >>> printable("pay \x1b[31mbob\u202e")
    'pay �[31mbob�'
    """
    return _UNPRINTABLE.sub("\ufffd", text)


def status_style(status: str) -> tuple[str, str]:
    """The symbol and rich style of a task or run status."""
    return _STATUS_STYLE.get(status, ("?", "magenta"))


def _label(n: TaskView, root: bool = False) -> Text:
    sym, style = status_style(n.status)
    t = Text()
    t.append(f"{sym} ", style=style)
    t.append(printable(n.goal or n.key), style="bold" if root else "")
    if n.attempt:
        t.append(f" (re-planned, attempt {n.attempt + 1})", style="yellow")
    if n.decision:
        t.append(f"  {n.decision}", style="blue")
    t.append(f"  {format_spend(n.spent, n.budget)}", style="dim")
    if n.seconds is not None:
        t.append(f"  {format_seconds(n.seconds)}", style="dim")
    if n.status not in ("done",):
        t.append(f"  {n.status}", style=style)
    return t


def _pick(children: list[TaskView], limit: int) -> tuple[list[TaskView], list[TaskView]]:
    """At most ``limit`` children to show: failed and denied ones first, then in order."""
    if len(children) <= limit:
        return children, []
    rank = sorted(
        range(len(children)),
        key=lambda i: (
            0 if children[i].subtree_failed or children[i].status in ("failed", "running") else
            1 if children[i].subtree_denied else 2,
            i,
        ),
    )  # fmt: skip
    keep = set(rank[:limit])
    shown = [c for i, c in enumerate(children) if i in keep]
    hidden = [c for i, c in enumerate(children) if i not in keep]
    return shown, hidden


def render(tree: RunTree, *, max_children: int | None = 20, width: int = 80) -> Tree:
    """A rich ``Tree`` of the run: per task its status, goal, role decision, spend
    against its remit's budget and duration; denied calls and errors beneath the task
    that met them. With ``max_children``, each task shows at most that many children
    (failed and denied first) and a line counting the rest. Denial reasons longer than
    ``2 * width`` are cut (``to_dict`` has them whole)."""
    r = tree.run
    sym, style = status_style(tree.state)
    head = Text()
    head.append(f"{sym} run {r.run_id}", style=f"bold {style}")
    head.append(f"  {tree.state}", style=style)
    head.append(f"  {plural(tree.tasks, 'task')} · {plural(tree.steps, 'step')}", style="dim")
    out = Tree(head, guide_style="dim")
    # iterative: trees can be deeper than Python's recursion limit
    stack: list[tuple[Tree, TaskView | Text]] = [(out, tree.root)]
    while stack:
        parent_ui, item = stack.pop()
        if isinstance(item, Text):  # the "… and N more" line
            parent_ui.add(item)
            continue
        n = item
        ui = parent_ui.add(_label(n, n is tree.root))
        # (a task failed by a denied call: the denial below says it all)
        if (
            n.error is not None
            and n.status != "done"
            and not any(d.reason == n.error["message"] for d in n.denied)
        ):
            ui.add(Text(printable(f"{n.error['code']}: {n.error['message']}"), style="red"))
        for said in n.said:
            said = said if len(said) <= width * 2 else said[: width * 2 - 1] + "…"
            ui.add(Text(printable(said), style="italic dim"))
        for d in n.denied:
            line = Text()
            # "denied DENIED" says one thing twice; "denied BUDGET" says why
            code = "" if d.code == "DENIED" else f" {d.code}"
            line.append(f"denied{code} ", style="bold red")
            if not d.reason.startswith(d.name):
                # the reason does not name the call (budget, deadline): show it
                line.append(f"{d.call(width // 2)}: ", style="red")
            reason = d.reason if len(d.reason) <= width * 2 else d.reason[: width * 2 - 1] + "…"
            line.append(printable(reason), style="red")
            ui.add(line)
        if max_children is None:
            shown, hidden = n.children, []
        else:
            shown, hidden = _pick(n.children, max_children)
        todo: list[tuple[Tree, TaskView | Text]] = [(ui, c) for c in shown]
        if hidden:
            by_status = Counter(h.status for h in hidden)
            detail = ", ".join(f"{v:,} {k}" for k, v in by_status.most_common())
            todo.append((ui, Text(f"… and {len(hidden):,} more ({detail})", style="dim italic")))
        stack.extend(reversed(todo))
    return out
