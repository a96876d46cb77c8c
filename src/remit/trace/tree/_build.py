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
from collections.abc import Iterable, Mapping
from typing import Any, cast

from remit.core.ledger import Usage
from remit.core.remit import Remit
from remit.core.tasks import task_id, task_parent, task_position
from remit.errors import RemitError
from remit.journal import JournalStore, RunRecord, StepRecord
from remit.journal.lease import run_state
from remit.trace.tree._view import DeniedCall, RunTree, TaskView, loads

#: error codes that mean "not allowed" rather than "went wrong"
DENIAL_CODES = frozenset({"DENIED", "BUDGET", "DEADLINE", "DELEGATION_DENIED"})

_ROLE_KINDS = frozenset({"atomize", "plan", "execute", "aggregate"})
#: rows that record how a failure ended, not a step the task took
_EVENT_KINDS = frozenset({"fault", "retry", "reroute", "health", "vote", "invalidation"})


def _event(s: StepRecord) -> tuple[str, str]:
    """A failure row as a line for people: what was injected, retried, rerouted."""
    if s.kind == "fault":
        d = loads(s.output)
        d = d if isinstance(d, Mapping) else {}
        where = f"{d.get('at', '')} {d.get('target', '')}".strip()  # pyright: ignore[reportUnknownMemberType]
        return "fault", f"injected {s.name}" + (f" at {where}" if where else "")
    if s.kind == "vote":
        return _vote_event(s)
    if s.kind == "invalidation":  # a result marked bad after the fact (remit invalidate)
        d = loads(s.output)
        d = d if isinstance(d, Mapping) else {}
        g, by, why = d.get("generation", "?"), d.get("by", "?"), d.get("why", "")  # pyright: ignore[reportUnknownMemberType]
        return "invalidated", f"invalidated {s.name} (#{g}) by {by}: {why}"
    if s.kind == "health":
        d = loads(s.output)
        d = d if isinstance(d, Mapping) else {}
        state, n = d.get("state", "?"), d.get("failures", 0)  # pyright: ignore[reportUnknownMemberType]
        return "breaker", f"circuit of {s.name} {state} ({n} failure(s) so far)"
    err = _error_of(s.error)
    why = f"{err['code']}: {err['message']}"
    if err.get("injected") and "injected" not in why:
        why += " (injected)"
    if s.kind == "retry":
        return "retry", f"retry {err.get('attempt', '')} of {s.name} after {why}"
    return "reroute", f"rerouted {s.name} → {err.get('to', '?')} after {why}"


def _vote_event(s: StepRecord) -> tuple[str, str]:
    """A vote's verdict: the winner and its margin, or why nothing won."""
    if s.status == "ok":
        d = loads(s.output)
        d = cast(Mapping[str, Any], d) if isinstance(d, Mapping) else {}
        flagged = int(d.get("flagged", 0))
        won = json.dumps(d.get("value"), ensure_ascii=False)
        won = won if len(won) <= 40 else won[:39] + "…"
        return "vote", (
            f"voted {won}: ahead by {d.get('lead', '?')} after {d.get('samples', '?')}"
            f" sample(s)" + (f", {flagged} red-flagged" if flagged else "")
        )
    err = _error_of(s.error)
    return "vote", (
        f"vote undecided after {err.get('samples', '?')} sample(s)"
        f" ({err.get('flagged', 0)} red-flagged, best lead {err.get('lead', 0)}):"
        f" {err.get('outcome', 'fail')}"
    )


def load(store: JournalStore, run_id: str) -> RunTree:
    """The tree of run ``run_id`` (``RunNotFound``, ``JournalCorrupt`` propagate)."""
    run = store.get_run(run_id)
    tree = build(run, store.steps(run_id))
    tree.state = run_state(run, store.get_lease(run_id))
    return tree


def _error_of(text: str | None) -> dict[str, Any]:
    data = loads(text)
    if isinstance(data, Mapping):
        err = cast(Mapping[str, Any], data)
        # the failure's kind and outcome (retry, reroute, ...) ride along with it
        return {
            **err,
            "code": str(err.get("code", "ERROR")),
            "message": str(err.get("message", "")),
        }
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
            pos, attempt = task_position(tid)
            n = self.nodes[tid] = TaskView(tid, task_parent(tid), pos, attempt)
        return n

    def add(self, s: StepRecord) -> None:
        n = self.node(s.task_id)
        if n.started_at is None or s.started_at < n.started_at:
            n.started_at = s.started_at
        if s.kind == "warrant":  # the task's signed hop: not a step it took
            self.hops += 1
            return
        if s.kind in _EVENT_KINDS:  # how a failure ended: its spend is in the step's
            n.events.append(_event(s))
            return
        if s.kind == "task":  # the end of the task
            self.ended.add(n.id)
            n.ended_at = s.ended_at
            n.spent = Usage.from_dict(loads(s.spent))
            if s.status == "ok":
                n.status = "done"
                out = loads(s.output)
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
                loads(s.spent)
            )
        if s.kind in ("tool", "model"):
            n.calls += 1
            if s.kind == "model" and s.status == "ok" and s.step_id.endswith(":atomize.0"):
                answer = loads(s.output)
                if isinstance(answer, Mapping):
                    content = answer.get("content")  # pyright: ignore[reportUnknownMemberType]
                    if isinstance(content, str) and content.strip():
                        n.said.append(f"atomizer said {' '.join(content.split())}")
        if s.kind == "atomize" and s.status == "ok":
            out = loads(s.output)
            n.decision = "plan" if out in ("plan", False) else "execute"
        elif s.kind == "plan" and s.status == "ok":
            n.decision = "plan"
            plan = loads(s.output)
            if isinstance(plan, Mapping) and isinstance(plan.get("subtasks"), list):  # pyright: ignore[reportUnknownMemberType]
                self.plans[n.id] = [x for x in plan["subtasks"] if isinstance(x, Mapping)]  # pyright: ignore[reportUnknownVariableType]
        elif s.kind == "execute" and n.decision is None:
            n.decision = "execute"
        elif s.kind.startswith("replan.") and s.status == "ok":
            out = loads(s.output)
            if isinstance(out, Mapping):
                self.replans[(n.id, int(s.kind.split(".", 1)[1]))] = out  # pyright: ignore[reportUnknownArgumentType]
        if s.status == "denied" or (
            # an expired approval request is not a call: the call's own row is denied
            s.status == "error" and s.kind not in _ROLE_KINDS and s.kind not in ("task", "approval")
        ):
            err = _error_of(s.error)
            if err.get("outcome") == "escalate":
                n.events.append(("escalate", f"{s.name}: no route left: escalated to the planner"))
            if s.status == "denied" or err["code"] in DENIAL_CODES:
                n.denied.append(DeniedCall(s.step_id, s.kind, s.name, loads(s.input),
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
    return RunTree(run, root, remit, count - b.hops, loads(run.result))
