"""A task's two phases as the agent works them, apart from where they run.

The engine decides *when* a task works (ready: atomize, then execute or plan; all its
children ended: aggregate) and what follows from the outcome (finish, spawn, fail). The
work itself is a function of the Gate, the agent and the task alone, so an executor
can run it in this process (:class:`Inline`) or in a worker of its own with a Gate of
its own (``remit.executors``), and both give the engine the same :class:`Outcome`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from remit.agents._agent import Agent, Context
from remit.core.delegation import remits_record
from remit.core.remit import Remit
from remit.core.tasks import ChildResult, Plan
from remit.engine._tree import checked_plan
from remit.errors import EffectUncertain, JournalError, PlanError, RemitError
from remit.gate import Gate
from remit.gate._node import Node

__all__ = ["Executor", "Inline", "Outcome", "aggregate_phase", "ready_phase"]


@dataclass(slots=True)
class Outcome:
    """How a phase ended: ``done`` (``value`` is the result), ``plan`` (``value`` is the
    plan row's data, ``plan``/``remits`` what it decided), ``failed`` (``error``), or
    ``halt`` (an effect of unknown outcome: the run stops for a person)."""

    kind: Literal["done", "plan", "failed", "halt"]
    value: Any = None
    error: RemitError | None = None
    plan: Plan | None = None
    remits: list[Remit] | None = None
    #: what the phase spent where it ran (calls, input, output, cost), for the parent's view
    spent: tuple[float, ...] | None = None
    #: receipts the phase's calls are owed, when it ran in another process
    receipts: list[Any] | None = field(default=None)
    #: it ran in another process (a cancel may have reached it too late)
    remote: bool = False


class Executor(Protocol):
    """Where a task's phases run. The engine awaits one phase per task at a time."""

    async def ready(self, node: Node, deps: Mapping[str, Any]) -> Outcome:
        """Atomize, then execute or plan (``deps``: its dependencies' results)."""
        ...

    async def aggregate(
        self, node: Node, deps: Mapping[str, Any], results: Sequence[ChildResult]
    ) -> Outcome:
        """Aggregate the children's ``results``."""
        ...

    def cancel(self, nodes: Sequence[Node]) -> None:
        """``nodes`` were cancelled while their phase ran: stop them where they run."""
        ...

    async def close(self) -> None:
        """The run is over: let go of what the executor holds for it."""
        ...


async def ready_phase(gate: Gate, agent: Agent, node: Node, deps: Mapping[str, Any]) -> Outcome:
    """Atomize ``node`` (unless its depth forces execution), then execute or plan it."""
    return await _ended(_ready(gate, agent, node, deps))


async def aggregate_phase(
    gate: Gate,
    agent: Agent,
    node: Node,
    deps: Mapping[str, Any],
    results: Sequence[ChildResult],
) -> Outcome:
    """Aggregate ``node``'s children's ``results`` into its own."""
    return await _ended(_aggregate(gate, agent, node, deps, results))


async def _ended(work: Awaitable[Outcome]) -> Outcome:
    """How a phase ended, as an outcome: a failure of the task's is one; a journal that
    cannot be written stops the run, and is raised."""
    try:
        return await work
    except JournalError:
        raise
    except EffectUncertain as e:
        return Outcome("halt", error=e)
    except RemitError as e:
        return Outcome("failed", error=e)


async def _ready(gate: Gate, agent: Agent, node: Node, deps: Mapping[str, Any]) -> Outcome:
    ctx = Context(gate, node, deps)
    gate.mint(node)
    if node.remit.depth > 0:
        decision = await gate.role(node, "atomize", agent.atomize, ctx)
        if decision not in ("execute", "plan", True, False):
            raise PlanError(
                f"task {node.id}: atomize returned {decision!r}; expected 'execute' or 'plan'"
            )
    else:
        decision = "execute"  # the depth cap forces execution
    if decision in ("execute", True):
        value = await gate.role(node, "execute", agent.execute, ctx)
        if node.stopped is not None:
            return Outcome("failed", error=node.stopped)  # a "stop" the role swallowed
        return Outcome("done", value)
    decided: list[tuple[Plan, list[Remit]]] = []

    async def plan_step() -> dict[str, Any]:
        """The plan step: ask the planner, validate, check every delegation."""
        raw = agent.plan(ctx)
        if asyncio.iscoroutine(raw):
            raw = await raw
        plan, remits = checked_plan(node, raw)
        decided.append((plan, remits))
        # the plan row records each child's remit as derived now (deadlines resolved):
        # a resume gives the children the same, and an audit checks each hop narrows
        return {**plan.to_dict(), **remits_record(remits)}

    plan_data = await gate.role(node, "plan", plan_step, normalize=False)
    if node.stopped is not None:
        raise node.stopped
    if decided:
        plan, remits = decided[0]
        return Outcome("plan", plan_data, plan=plan, remits=remits)
    # served from the journal: checked again by whoever spawns it
    return Outcome("plan", plan_data)


async def _aggregate(
    gate: Gate,
    agent: Agent,
    node: Node,
    deps: Mapping[str, Any],
    results: Sequence[ChildResult],
) -> Outcome:
    ctx = Context(gate, node, deps)
    value = await gate.role(node, "aggregate", agent.aggregate, ctx, list(results))
    if node.stopped is not None:
        return Outcome("failed", error=node.stopped)
    return Outcome("done", value)


class Inline:
    """The in-process executor: phases run on the engine's own loop and Gate."""

    def __init__(self, gate: Gate, agent: Agent) -> None:
        self.gate, self.agent = gate, agent

    async def ready(self, node: Node, deps: Mapping[str, Any]) -> Outcome:
        return await ready_phase(self.gate, self.agent, node, deps)

    async def aggregate(
        self, node: Node, deps: Mapping[str, Any], results: Sequence[ChildResult]
    ) -> Outcome:
        return await aggregate_phase(self.gate, self.agent, node, deps, results)

    def cancel(self, nodes: Sequence[Node]) -> None:
        return None  # (their step's scope was fired where they run: here)

    async def close(self) -> None:
        return None
