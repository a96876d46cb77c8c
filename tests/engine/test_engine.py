"""The engine: the recursive shape, the ready queue, deadlines, failure policies,
delegation checks, and resume across a real crash."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from remit import Agent, Budget, ChildResult, Plan, Remit, Runtime, ScriptedModel, Subtask, tool
from remit.core.ledger import Usage
from remit.core.tasks import ROOT, task_id
from remit.errors import InvalidInput, RemitError, UnknownToolError
from remit.journal import StepRecord
from remit.policy import max_len

RUN = "run-engine"
GOAL = "root goal"
ROOT_ID = task_id(ROOT, 0, GOAL)


def code(step: StepRecord) -> str | None:
    return json.loads(step.error)["code"] if step.error else None


def steps(rt: Runtime, run_id: str = RUN) -> dict[str, StepRecord]:
    return {s.step_id: s for s in rt.store.steps(run_id)}


def child_id(position: int, goal: str, attempt: int = 0) -> str:
    return task_id(ROOT_ID, position, goal, attempt)


class Planner(Agent):
    """Root plans ``subtasks``; children run ``leaf`` (an async function of ctx)."""

    def __init__(
        self,
        subtasks: list[Subtask],
        leaf: Callable[[Any], Any],
        *,
        on_failure: str = "fail",
        aggregate: Callable[[Any, list[ChildResult]], Any] | None = None,
    ) -> None:
        self.subtasks = subtasks
        self.leaf = leaf
        self.on_failure = on_failure
        self._aggregate = aggregate
        self.calls: dict[str, int] = {"atomize": 0, "plan": 0, "execute": 0, "aggregate": 0}
        self.results: list[ChildResult] | None = None

    def atomize(self, ctx: Any) -> str:
        self.calls["atomize"] += 1
        return "plan"

    def plan(self, ctx: Any) -> Plan:
        self.calls["plan"] += 1
        return Plan(self.subtasks, self.on_failure)  # type: ignore[arg-type]

    async def execute(self, ctx: Any) -> Any:
        self.calls["execute"] += 1
        return await self.leaf(ctx)

    def aggregate(self, ctx: Any, results: list[ChildResult]) -> Any:
        self.calls["aggregate"] += 1
        self.results = results
        if self._aggregate is not None:
            return self._aggregate(ctx, results)
        return {r.key: r.value if r.ok else r.code for r in results}


async def echo_goal(ctx: Any) -> str:
    return ctx.goal


# --- the recursive shape ---------------------------------------------------------------------


def test_atomize_execute(make_runtime: Any) -> None:
    seen: list[str] = []

    class A(Agent):
        def atomize(self, ctx: Any) -> str:
            seen.append("atomize")
            return "execute"

        def plan(self, ctx: Any) -> Plan:
            seen.append("plan")
            raise AssertionError("must not plan")

        async def execute(self, ctx: Any) -> Any:
            seen.append("execute")
            return {"goal": ctx.goal, "inputs": dict(ctx.inputs), "task": ctx.task_id}

    rt = make_runtime(agent=A())
    run = rt.run(GOAL, remit=Remit(depth=2), inputs={"n": 1}, run_id=RUN)
    assert run.ok
    assert run.result == {"goal": GOAL, "inputs": {"n": 1}, "task": ROOT_ID}
    assert seen == ["atomize", "execute"]
    recorded = steps(rt)
    assert recorded[f"{ROOT_ID}:atomize"].output == '"execute"'
    assert recorded[f"{ROOT_ID}:end"].status == "ok"
    assert run.tasks == 1


def test_plan_children_aggregate(make_runtime: Any) -> None:
    events: list[tuple[str, str]] = []
    subs = [
        Subtask("a", "leaf a", inputs={"v": 1}),
        Subtask("b", "leaf b", inputs={"v": 2}),
        Subtask("c", "leaf c", deps=("a", "b"), inputs={"v": 3}),
    ]

    async def leaf(ctx: Any) -> int:
        return ctx.inputs["v"] * 10 + sum(ctx.deps.values())

    agent = Planner(subs, leaf, aggregate=lambda ctx, rs: [(r.key, r.goal, r.value) for r in rs])
    rt = make_runtime(agent=agent, observer=lambda e, n: events.append((e, n.id)))
    run = rt.run(GOAL, remit=Remit(depth=1), run_id=RUN)
    assert run.ok, run.error
    assert run.result == [["a", "leaf a", 10], ["b", "leaf b", 20], ["c", "leaf c", 60]]
    assert agent.calls == {"atomize": 1, "plan": 1, "execute": 3, "aggregate": 1}
    assert run.tasks == 4
    recorded = steps(rt)
    for i, sub in enumerate(subs):
        assert recorded[f"{child_id(i, sub.goal)}:end"].status == "ok"
    plan_row = json.loads(recorded[f"{ROOT_ID}:plan"].output or "{}")
    assert [s["key"] for s in plan_row["subtasks"]] == ["a", "b", "c"]
    assert ("plan", ROOT_ID) in events
    assert events[-1] == ("done", ROOT_ID)


def test_depth_cap_forces_execute_without_atomizing(make_runtime: Any) -> None:
    class A(Agent):
        atomized: list[str] = []

        def atomize(self, ctx: Any) -> str:
            self.atomized.append(ctx.task_id)
            return "plan"

        def plan(self, ctx: Any) -> Plan:
            return Plan([Subtask("x", "leaf x"), Subtask("y", "leaf y")])

        async def execute(self, ctx: Any) -> Any:
            return ctx.remit.depth

    agent = A()
    rt = make_runtime(agent=agent)
    run = rt.run(GOAL, remit=Remit(depth=0), run_id=RUN)
    assert run.result == 0
    assert agent.atomized == []
    assert f"{ROOT_ID}:atomize" not in steps(rt)
    # one level deeper: the root atomizes and plans, its depth-0 children do not atomize
    rt2 = make_runtime(agent=agent, journal=rt.store.path.with_name("j2.db"))
    run2 = rt2.run(GOAL, remit=Remit(depth=1), run_id=RUN)
    assert run2.result == [0, 0]
    assert agent.atomized == [ROOT_ID]


def test_a_bad_atomize_answer_fails_the_task(make_runtime: Any) -> None:
    class A(Agent):
        def atomize(self, ctx: Any) -> str:
            return "maybe"

    rt = make_runtime(agent=A())
    run = rt.run(GOAL, remit=Remit(depth=1), run_id=RUN)
    assert run.status == "failed" and run.error is not None
    assert run.error["code"] == "PLAN_INVALID" and "maybe" in run.error["message"]


# --- the ready queue ---------------------------------------------------------------------------


def test_ready_queue_starts_a_task_when_its_own_deps_are_done_not_in_waves(
    make_runtime: Any,
) -> None:
    """a -> c, and an unrelated slow b: c starts while b is still running."""
    started: list[str] = []
    c_started = asyncio.Event()

    async def leaf(ctx: Any) -> str:
        started.append(ctx.goal)
        if ctx.goal == "slow b":
            try:
                await asyncio.wait_for(c_started.wait(), 5)
            except TimeoutError:
                return "c never started while b ran"
            return "saw c start"
        if ctx.goal == "c after a":
            c_started.set()
        return "ok"

    subs = [Subtask("a", "fast a"), Subtask("b", "slow b"), Subtask("c", "c after a", deps=("a",))]
    rt = make_runtime(agent=Planner(subs, leaf), concurrency=4)
    run = rt.run(GOAL, remit=Remit(depth=1), run_id=RUN)
    assert run.result == {"a": "ok", "b": "saw c start", "c": "ok"}
    assert started.index("c after a") > started.index("fast a")


def test_concurrency_bounds_the_executors_in_flight(make_runtime: Any) -> None:
    in_flight = 0
    peak = 0

    async def leaf(ctx: Any) -> int:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return 1

    subs = [Subtask(f"k{i}", f"leaf {i}") for i in range(20)]
    rt = make_runtime(agent=Planner(subs, leaf), concurrency=3)
    run = rt.run(GOAL, remit=Remit(depth=1), run_id=RUN)
    assert run.ok and sum(run.result.values()) == 20
    assert peak == 3


def test_concurrency_must_be_positive(make_runtime: Any) -> None:
    rt = make_runtime(agent=Planner([Subtask("a", "a")], echo_goal), concurrency=0)
    with pytest.raises(ValueError, match="concurrency"):
        rt.run(GOAL, remit=Remit(depth=1), run_id=RUN)


# --- deadlines ---------------------------------------------------------------------------------


def test_child_deadline_is_the_earlier_of_parents_and_its_own(make_runtime: Any) -> None:
    now = time.time()
    parent_deadline = now + 600
    subs = [
        Subtask("late", "asks later", remit={"deadline": now + 3600}),
        Subtask("early", "asks earlier", remit={"deadline": now + 300}),
        Subtask("none", "asks nothing"),
    ]

    async def leaf(ctx: Any) -> Any:
        return ctx.remit.deadline

    rt = make_runtime(agent=Planner(subs, leaf))
    run = rt.run(GOAL, remit=Remit(depth=1, deadline=parent_deadline), run_id=RUN)
    assert run.ok, run.error
    assert run.result["late"] == pytest.approx(parent_deadline)
    assert run.result["early"] == pytest.approx(now + 300)
    assert run.result["none"] == pytest.approx(parent_deadline)


def test_a_capped_deadline_is_enforced_not_just_reported(make_runtime: Any) -> None:
    """A child asking for an hour under a parent with half a second is stopped at the
    parent's deadline."""
    subs = [Subtask("late", "asks later", remit={"deadline": time.time() + 3600})]

    async def leaf(ctx: Any) -> Any:
        await asyncio.sleep(30)
        return "finished"

    class A(Planner):
        def aggregate(self, ctx: Any, results: list[ChildResult]) -> Any:
            raise AssertionError("the root's deadline has passed too")

    rt = make_runtime(agent=A(subs, leaf, on_failure="aggregate"))
    started = time.monotonic()
    run = rt.run(GOAL, remit=Remit(depth=1, deadline=time.time() + 0.6), run_id=RUN)
    assert time.monotonic() - started < 5
    assert run.status == "failed"
    assert run.error is not None and run.error["code"] == "DEADLINE"
    end = steps(rt)[f"{child_id(0, 'asks later')}:end"]
    # stopped by its own (capped) deadline or by the parent's watchdog, whichever fired first
    assert code(end) in ("DEADLINE", "CANCELLED")


@tool
async def hang(x: int = 0) -> int:
    await asyncio.Event().wait()
    return x


def test_watchdog_fails_a_child_whose_tool_hangs_and_the_parent_aggregates(
    make_runtime: Any,
) -> None:
    subs = [
        Subtask("stuck", "hangs", remit={"deadline": time.time() + 0.3}),
        Subtask("fine", "returns"),
    ]

    async def leaf(ctx: Any) -> Any:
        if ctx.goal == "hangs":
            return await ctx.call("hang")
        return "ok"

    agent = Planner(subs, leaf, on_failure="aggregate")
    rt = make_runtime(agent=agent, tools=[hang])
    started = time.monotonic()
    run = rt.run(GOAL, remit=Remit(tools={"hang": {}}, depth=1), run_id=RUN)
    assert time.monotonic() - started < 5, "the run waited on a stuck child"
    assert run.ok, run.error
    assert run.result == {"stuck": "DEADLINE", "fine": "ok"}
    assert agent.results is not None
    stuck = agent.results[0]
    assert not stuck.ok and stuck.error and "deadline" in stuck.error


def test_watchdog_failure_of_a_child_fails_the_parent_under_fail_policy(
    make_runtime: Any,
) -> None:
    subs = [Subtask("stuck", "hangs", remit={"deadline": time.time() + 0.3})]

    async def leaf(ctx: Any) -> Any:
        return await ctx.call("hang")

    rt = make_runtime(agent=Planner(subs, leaf, on_failure="fail"), tools=[hang])
    started = time.monotonic()
    run = rt.run(GOAL, remit=Remit(tools={"hang": {}}, depth=1), run_id=RUN)
    assert time.monotonic() - started < 5
    assert run.status == "failed"
    assert run.error is not None and run.error["code"] == "CHILD_FAILED"
    assert "'stuck'" in run.error["message"]


def test_a_child_whose_role_itself_hangs_is_failed_by_the_deadline(make_runtime: Any) -> None:
    subs = [Subtask("stuck", "hangs", remit={"deadline": time.time() + 0.3}), Subtask("ok", "ok")]

    async def leaf(ctx: Any) -> Any:
        if ctx.goal == "hangs":
            await asyncio.Event().wait()
        return "ok"

    rt = make_runtime(agent=Planner(subs, leaf, on_failure="aggregate"))
    started = time.monotonic()
    run = rt.run(GOAL, remit=Remit(depth=1), run_id=RUN)
    assert time.monotonic() - started < 5
    assert run.result == {"stuck": "DEADLINE", "ok": "ok"}


# --- typed child results -----------------------------------------------------------------------


def test_child_output_is_validated_against_its_schema_before_the_parent_sees_it(
    make_runtime: Any,
) -> None:
    subs = [
        Subtask("good", "returns 7", output_schema={"type": "integer"}),
        Subtask("bad", "returns seven", output_schema={"type": "integer"}),
    ]

    async def leaf(ctx: Any) -> Any:
        return 7 if ctx.goal == "returns 7" else "seven"

    agent = Planner(subs, leaf, on_failure="aggregate")
    rt = make_runtime(agent=agent)
    run = rt.run(GOAL, remit=Remit(depth=1), run_id=RUN)
    assert run.result == {"good": 7, "bad": "SCHEMA_VIOLATION"}
    assert agent.results is not None
    bad = agent.results[1]
    assert not bad.ok and bad.value is None  # the invalid value never reaches the parent
    end = steps(rt)[f"{child_id(1, 'returns seven')}:end"]
    assert end.status == "error" and code(end) == "SCHEMA_VIOLATION"
    assert end.output is None


def test_the_run_output_schema_applies_to_the_root(make_runtime: Any) -> None:
    class A(Agent):
        async def execute(self, ctx: Any) -> Any:
            return {"n": "x"}

    rt = make_runtime(agent=A())
    run = rt.run(
        GOAL,
        remit=Remit(),
        run_id=RUN,
        output_schema={"type": "object", "properties": {"n": {"type": "integer"}}},
    )
    assert run.status == "failed"
    assert run.error is not None and run.error["code"] == "SCHEMA_VIOLATION"


# --- partial failure ------------------------------------------------------------


def test_fail_policy_fails_the_parent_and_cancels_running_siblings(make_runtime: Any) -> None:
    slow_running = asyncio.Event()
    cancelled: list[str] = []
    never: list[str] = []

    @tool
    async def wait_forever(who: str) -> str:
        slow_running.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(who)
            raise
        return who

    async def leaf(ctx: Any) -> Any:
        if ctx.goal == "slow":
            return await ctx.call("wait_forever", who="slow")
        if ctx.goal == "boom":
            await asyncio.wait_for(slow_running.wait(), 5)
            raise RemitError("boom failed")
        never.append(ctx.goal)
        return "ran"

    subs = [
        Subtask("slow", "slow"),
        Subtask("boom", "boom"),
        Subtask("after", "after slow", deps=("slow",)),
    ]
    agent = Planner(subs, leaf, on_failure="fail")
    rt = make_runtime(agent=agent, tools=[wait_forever], concurrency=4)
    started = time.monotonic()
    run = rt.run(GOAL, remit=Remit(tools={"wait_forever": {}}, depth=1), run_id=RUN)
    assert time.monotonic() - started < 5, "a cancelled sibling kept the run waiting"
    assert run.status == "failed"
    assert run.error is not None and run.error["code"] == "CHILD_FAILED"
    assert "'boom'" in run.error["message"] and "boom failed" in run.error["message"]
    assert cancelled == ["slow"]
    assert never == []
    assert agent.calls["aggregate"] == 0
    recorded = steps(rt)
    assert code(recorded[f"{child_id(0, 'slow')}:end"]) == "CANCELLED"
    assert code(recorded[f"{ROOT_ID}:end"]) == "CHILD_FAILED"


def test_aggregate_policy_reports_failures_and_fails_dependents(make_runtime: Any) -> None:
    ran: list[str] = []

    async def leaf(ctx: Any) -> Any:
        ran.append(ctx.goal)
        if ctx.goal == "breaks":
            raise RemitError("it broke")
        return ctx.goal

    subs = [
        Subtask("a", "breaks"),
        Subtask("b", "needs a", deps=("a",)),
        Subtask("c", "independent"),
        Subtask("d", "needs b", deps=("b",)),
    ]
    agent = Planner(subs, leaf, on_failure="aggregate")
    rt = make_runtime(agent=agent)
    run = rt.run(GOAL, remit=Remit(depth=1), run_id=RUN)
    assert run.ok, run.error
    assert sorted(ran) == ["breaks", "independent"]
    assert agent.results is not None
    a, b, c, d = agent.results
    assert (a.ok, a.code, a.error) == (False, "REMIT_ERROR", "it broke")
    assert (b.ok, b.code) == (False, "CHILD_FAILED")
    assert b.error is not None and "'a'" in b.error
    assert (c.ok, c.value) == (True, "independent")
    assert (d.ok, d.code) == (False, "CHILD_FAILED")
    recorded = steps(rt)
    assert code(recorded[f"{child_id(1, 'needs a')}:end"]) == "CHILD_FAILED"
    assert f"{child_id(1, 'needs a')}:execute" not in recorded


def test_replan_reruns_the_failed_branch_once_with_the_new_goal(make_runtime: Any) -> None:
    replans: list[ChildResult] = []

    async def leaf(ctx: Any) -> Any:
        if ctx.goal == "original":
            raise RemitError("original failed")
        return {"goal": ctx.goal, "deps": dict(ctx.deps)}

    class A(Planner):
        def replan(self, ctx: Any, failed: ChildResult) -> Subtask:
            replans.append(failed)
            return Subtask(failed.key, "replanned")

    subs = [Subtask("first", "first"), Subtask("x", "original", deps=("first",))]
    agent = A(subs, leaf, on_failure="replan")
    rt = make_runtime(agent=agent)
    run = rt.run(GOAL, remit=Remit(depth=1), run_id=RUN)
    assert run.ok, run.error
    first = {"goal": "first", "deps": {}}
    assert run.result == {"first": first, "x": {"goal": "replanned", "deps": {"first": first}}}
    assert [(r.key, r.ok, r.code) for r in replans] == [("x", False, "REMIT_ERROR")]
    recorded = steps(rt)
    assert code(recorded[f"{child_id(1, 'original')}:end"]) == "REMIT_ERROR"
    assert recorded[f"{child_id(1, 'replanned', attempt=1)}:end"].status == "ok"
    assert recorded[f"{ROOT_ID}:replan.1"].status == "ok"


def test_dependents_of_a_replanned_branch_see_the_new_result(make_runtime: Any) -> None:
    async def leaf(ctx: Any) -> Any:
        if ctx.goal == "original":
            raise RemitError("original failed")
        return {"goal": ctx.goal, "deps": dict(ctx.deps)}

    class A(Planner):
        def replan(self, ctx: Any, failed: ChildResult) -> Subtask:
            return Subtask(failed.key, "replanned")

    subs = [Subtask("x", "original"), Subtask("after", "after x", deps=("x",))]
    rt = make_runtime(agent=A(subs, leaf, on_failure="replan"))
    run = rt.run(GOAL, remit=Remit(depth=1), run_id=RUN)
    assert run.ok, run.error
    assert run.result["after"]["deps"] == {"x": {"goal": "replanned", "deps": {}}}


def test_replan_that_fails_again_fails_the_parent(make_runtime: Any) -> None:
    replans: list[str] = []

    async def leaf(ctx: Any) -> Any:
        if ctx.goal in ("original", "replanned"):
            raise RemitError(f"{ctx.goal} failed")
        return ctx.goal

    class A(Planner):
        def replan(self, ctx: Any, failed: ChildResult) -> Subtask:
            replans.append(failed.goal)
            return Subtask(failed.key, "replanned")

    agent = A([Subtask("x", "original"), Subtask("y", "y")], leaf, on_failure="replan")
    rt = make_runtime(agent=agent)
    run = rt.run(GOAL, remit=Remit(depth=1), run_id=RUN)
    assert run.status == "failed"
    assert run.error is not None and run.error["code"] == "CHILD_FAILED"
    assert "replanned failed" in run.error["message"]
    assert replans == ["original"]
    assert agent.calls["aggregate"] == 0


def test_replan_returning_none_retries_the_same_goal_once(make_runtime: Any) -> None:
    attempts: list[str] = []

    async def leaf(ctx: Any) -> Any:
        attempts.append(ctx.task_id)
        if len(attempts) == 1:
            raise RemitError("transient")
        return "second time lucky"

    rt = make_runtime(agent=Planner([Subtask("x", "flaky")], leaf, on_failure="replan"))
    run = rt.run(GOAL, remit=Remit(depth=1), run_id=RUN)
    assert run.result == {"x": "second time lucky"}
    assert attempts == [child_id(0, "flaky"), child_id(0, "flaky", attempt=1)]


# --- delegation checks -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("child_remit", "dimension"),
    [
        ({"tools": {"write_file": {}}}, "tools.write_file"),
        ({"budget": {"calls": 100}}, "budget.calls"),
        ({"budget": Budget(cost_usd=5.0)}, "budget.cost_usd"),
        ({"depth": 3}, "depth"),
    ],
)
def test_a_plan_that_widens_a_childs_remit_fails_planning_and_spawns_nothing(
    make_runtime: Any, child_remit: dict[str, Any], dimension: str
) -> None:
    events: list[str] = []
    subs = [Subtask("ok", "fine"), Subtask("greedy", "wants more", remit=child_remit)]
    agent = Planner(subs, echo_goal)
    rt = make_runtime(agent=agent, observer=lambda e, n: events.append(e))
    remit = Remit(tools={"calculator": {}}, budget=Budget(calls=10, cost_usd=1.0), depth=2)
    run = rt.run(GOAL, remit=remit, run_id=RUN)
    assert run.status == "failed"
    assert run.error is not None and run.error["code"] == "REMIT_WIDENING"
    assert dimension in run.error["message"] and "'greedy'" in run.error["message"]
    recorded = steps(rt)
    plan_step = recorded[f"{ROOT_ID}:plan"]
    assert plan_step.status == "error" and code(plan_step) == "REMIT_WIDENING"
    assert all("/" not in sid for sid in recorded), "a child was spawned"
    assert agent.calls["execute"] == 0
    assert "plan" not in events


def test_children_get_a_narrowed_remit(make_runtime: Any) -> None:
    subs = [Subtask("n", "narrow", remit={"tools": {"calculator": {}}, "budget": {"calls": 1}})]

    async def leaf(ctx: Any) -> Any:
        out = [await ctx.call("calculator", expression="1+1")]
        for name, args in (("calculator", {"expression": "2"}), ("read_file", {"path": "x"})):
            try:
                await ctx.call(name, **args)
            except RemitError as e:
                out.append(e.code)
        return out

    rt = make_runtime(agent=Planner(subs, leaf))
    remit = Remit(tools={"calculator": {}, "read_file": {}}, budget=Budget(calls=10), depth=1)
    run = rt.run(GOAL, remit=remit, run_id=RUN)
    assert run.result == {"n": [2, "BUDGET", "DENIED"]}


@pytest.mark.parametrize(
    "raw",
    [
        {
            "subtasks": [
                {"key": "a", "goal": "x", "deps": ["b"]},
                {"key": "b", "goal": "y", "deps": ["a"]},
            ]
        },
        Plan([Subtask("a", "x", deps=("b",)), Subtask("b", "y", deps=("a",))]),
    ],
    ids=["dict", "Plan"],
)
def test_a_cyclic_plan_is_recorded_as_plan_invalid(make_runtime: Any, raw: Any) -> None:
    class A(Agent):
        def atomize(self, ctx: Any) -> str:
            return "plan"

        def plan(self, ctx: Any) -> Any:
            return raw

    rt = make_runtime(agent=A())
    run = rt.run(GOAL, remit=Remit(depth=1), run_id=RUN)
    assert run.status == "failed"
    assert run.error is not None and run.error["code"] == "PLAN_INVALID"
    assert "cycle" in run.error["message"]
    plan_step = steps(rt)[f"{ROOT_ID}:plan"]
    assert plan_step.status == "error" and code(plan_step) == "PLAN_INVALID"
    assert all("/" not in sid for sid in steps(rt))


def test_children_without_depth_left_execute_even_if_the_agent_would_plan(
    make_runtime: Any,
) -> None:
    class A(Agent):
        def atomize(self, ctx: Any) -> str:
            return "plan"

        def plan(self, ctx: Any) -> Plan:
            return Plan([Subtask("a", "leaf")])

        async def execute(self, ctx: Any) -> Any:
            return "leaf"

    # depth 1: the root may plan; its children have depth 0 and are forced to execute
    rt = make_runtime(agent=A())
    assert rt.run(GOAL, remit=Remit(depth=1), run_id=RUN).result == ["leaf"]


# --- spend -----------------------------------------------------------------------------------


def test_the_runs_spend_is_the_sum_of_its_childrens(make_runtime: Any) -> None:
    paid = tool(name="paid", cost_usd=0.05)(lambda x: x)
    model = ScriptedModel(
        lambda msgs: "an answer of some length",
        usd_per_input_token=0.0001,
        usd_per_output_token=0.0002,
    )

    async def leaf(ctx: Any) -> Any:
        n = ctx.inputs["n"]
        for i in range(n):
            await ctx.call("paid", x=i)
        if n % 2:
            await ctx.complete([{"role": "user", "content": "q" * (40 * n)}], max_tokens=64)
        return n

    subs = [Subtask(f"k{n}", f"leaf {n}", inputs={"n": n}) for n in range(1, 6)]
    rt = make_runtime(agent=Planner(subs, leaf), model=model, tools=[paid])
    remit = Remit(tools={"paid": {}}, budget=Budget(calls=100, cost_usd=10.0), depth=1)
    run = rt.run(GOAL, remit=remit, run_id=RUN)
    assert run.ok, run.error
    recorded = steps(rt)
    total = Usage()
    for i, sub in enumerate(subs):
        total = total + Usage.from_dict(json.loads(recorded[f"{child_id(i, sub.goal)}:end"].spent))
    assert total.calls == 15 + 3
    assert total.input_tokens > 0 and total.output_tokens > 0
    assert run.spent.calls == total.calls
    assert run.spent.input_tokens == total.input_tokens
    assert run.spent.output_tokens == total.output_tokens
    assert run.spent.cost_usd == pytest.approx(total.cost_usd)
    root_end = Usage.from_dict(json.loads(recorded[f"{ROOT_ID}:end"].spent))
    assert root_end.calls == run.spent.calls
    assert rt.get(RUN).spent.calls == run.spent.calls


# --- resume ---------------------------------------------------------------------

CRASH_GOAL = "crash and resume"
PLAN_LOG_ENV = "REMIT_TEST_PLAN_LOG"
STALL_ENV = "REMIT_TEST_STALL_MARKER"


@tool(effect=True)
async def stall(who: str) -> str:
    """Blocks forever, once its intent is on disk, when the stall marker is configured."""
    marker = os.environ.get(STALL_ENV)
    if marker:
        Path(marker).write_text(who)
        await asyncio.sleep(3600)
    return f"stalled {who}"


class CrashPlanAgent(Agent):
    """The agent a subprocess runs until it is killed; resumed in the test process."""

    tools = [stall]

    def atomize(self, ctx: Any) -> str:
        return "plan"

    def plan(self, ctx: Any) -> Plan:
        with open(os.environ[PLAN_LOG_ENV], "a") as f:
            f.write(f"{os.getpid()}\n")
        return Plan(
            [Subtask("a", "leaf a"), Subtask("b", "leaf b"), Subtask("c", "leaf c", deps=("a",))]
        )

    async def execute(self, ctx: Any) -> Any:
        if ctx.goal == "leaf b":
            return await ctx.call("stall", who="b")
        return ctx.goal

    def aggregate(self, ctx: Any, results: list[ChildResult]) -> Any:
        return [r.value for r in results]


CRASH_REMIT = Remit(tools={"stall": {}}, depth=1)


def test_a_resumed_run_reuses_the_journaled_plan_after_kill_9(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "crash.db"
    plan_log = tmp_path / "plans.log"
    marker = tmp_path / "stalled"
    script = (
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parents[2])!r})\n"
        "from remit import Runtime\n"
        "from tests.engine.test_engine import CrashPlanAgent, CRASH_GOAL, CRASH_REMIT\n"
        f"rt = Runtime(journal={str(db)!r}, agent=CrashPlanAgent(), durability='full')\n"
        "rt.run(CRASH_GOAL, remit=CRASH_REMIT, run_id='crashed')\n"
    )
    env = {**os.environ, PLAN_LOG_ENV: str(plan_log), STALL_ENV: str(marker)}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not marker.exists():
            if proc.poll() is not None:
                pytest.fail(f"the run ended before the crash: {proc.stderr.read().decode()}")  # type: ignore[union-attr]
            if time.monotonic() > deadline:
                pytest.fail("the subprocess never reached the stalling effect")
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert len(plan_log.read_text().splitlines()) == 1

    monkeypatch.setenv(PLAN_LOG_ENV, str(plan_log))
    monkeypatch.delenv(STALL_ENV, raising=False)
    with Runtime(journal=db, agent=CrashPlanAgent(), durability="full") as rt:
        root = task_id(ROOT, 0, CRASH_GOAL)
        before = steps(rt, "crashed")
        assert before[f"{root}:plan"].status == "ok"
        assert rt.get("crashed").status == "running"
        run = rt.resume("crashed")
        assert run.ok, run.error
        assert run.result == ["leaf a", "stalled b", "leaf c"]
        assert len(plan_log.read_text().splitlines()) == 1, "the planner ran again on resume"
        assert run.replayed >= 1
        assert rt.get("crashed").status == "done"


def test_resume_of_a_finished_run_does_nothing(make_runtime: Any) -> None:
    probe_calls: list[int] = []
    probe = tool(name="probe")(lambda x: probe_calls.append(x) or x)

    async def leaf(ctx: Any) -> Any:
        return await ctx.call("probe", x=ctx.inputs["x"])

    subs = [Subtask(f"k{i}", f"leaf {i}", inputs={"x": i}) for i in range(3)]
    agent = Planner(subs, leaf)
    rt = make_runtime(agent=agent, tools=[probe])
    run = rt.run(GOAL, remit=Remit(tools={"probe": {}}, depth=1), run_id=RUN)
    assert run.ok
    rows = [(s.step_id, s.status, s.ended_at) for s in rt.store.steps(RUN)]
    calls = dict(agent.calls)
    again = rt.resume(RUN)
    assert again.status == "done"
    assert again.result == run.result
    assert again.spent == run.spent
    assert again.executed == 0
    assert probe_calls == [0, 1, 2]
    assert agent.calls == calls
    assert [(s.step_id, s.status, s.ended_at) for s in rt.store.steps(RUN)] == rows


def test_resume_of_a_failed_run_does_nothing(make_runtime: Any) -> None:
    ran: list[int] = []

    class A(Agent):
        async def execute(self, ctx: Any) -> Any:
            ran.append(1)
            raise RemitError("nope")

    rt = make_runtime(agent=A())
    run = rt.run(GOAL, remit=Remit(), run_id=RUN)
    again = rt.resume(RUN)
    assert (run.status, again.status) == ("failed", "failed")
    assert again.error == run.error
    assert ran == [1]


# --- cancellation ---------------------------------------------------------------------------------


def test_cancelling_a_run_cancels_its_in_flight_tools_promptly(make_runtime: Any) -> None:
    """Cancellation flows down the tree: cancelling ``arun`` must not wait on a tool
    that would never return."""
    tool_cancelled: list[bool] = []
    tool_started = asyncio.Event()

    @tool
    async def forever(x: int) -> int:
        tool_started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            tool_cancelled.append(True)
            raise
        return x

    async def leaf(ctx: Any) -> Any:
        return await ctx.call("forever", x=1)

    rt = make_runtime(agent=Planner([Subtask("a", "a")], leaf), tools=[forever])

    async def main() -> str:
        task = asyncio.create_task(
            rt.arun(GOAL, remit=Remit(tools={"forever": {}}, depth=1), run_id=RUN)
        )
        await asyncio.wait_for(tool_started.wait(), 5)
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=3)
        if not done:
            task.cancel()  # a second cancel frees the test; the first should have sufficed
            await asyncio.wait({task}, timeout=3)
            return "hung"
        return "cancelled" if task.cancelled() else "finished"

    outcome = asyncio.run(main())
    assert outcome == "cancelled", "cancelling arun waited on an in-flight tool forever"
    assert tool_cancelled == [True]
    assert rt.get(RUN).status == "running"  # resumable


# --- a busy loop still commits and still hears signals ---------------------------------------


class BusyFanOut(Agent):
    """Children that are plain CPU work and never wait (the loop never idles)."""

    def __init__(self, n: int, probe: Callable[[int], None]) -> None:
        self.n, self.probe = n, probe

    def atomize(self, ctx: Any) -> str:
        return "plan" if ctx.depth == 0 else "execute"

    def plan(self, ctx: Any) -> Plan:
        return Plan([Subtask(f"b{i}", f"busy {i}", inputs={"i": i}) for i in range(self.n)])

    def execute(self, ctx: Any) -> int:
        i = int(ctx.inputs["i"])
        until = time.perf_counter() + 0.001
        while time.perf_counter() < until:
            pass
        self.probe(i)
        return i

    def aggregate(self, ctx: Any, results: list[ChildResult]) -> int:
        return sum(r.value for r in results)


def test_records_reach_the_disk_while_a_cpu_bound_fan_out_keeps_the_loop_busy(
    tmp_path: Path,
) -> None:
    db = tmp_path / "busy.db"
    on_disk: list[int] = []

    def probe(i: int) -> None:
        if i == 300:
            conn = sqlite3.connect(db)
            (n,) = conn.execute("SELECT count(*) FROM steps WHERE kind = 'task'").fetchone()
            conn.close()
            on_disk.append(n)

    with Runtime(journal=db, agent=BusyFanOut(400, probe), sign=False) as rt:
        run = rt.run(GOAL, remit=Remit(tools={}, depth=1), run_id="busy")
    assert run.ok and run.result == sum(range(400))
    assert on_disk and on_disk[0] >= 150, f"only {on_disk} of 300 finished tasks on disk"


def test_an_interrupt_stops_a_cpu_bound_fan_out_at_once_with_its_work_on_disk(
    tmp_path: Path,
) -> None:
    db = tmp_path / "stop.db"
    ran: list[int] = []

    def probe(i: int) -> None:
        ran.append(i)
        if len(ran) == 100:
            os.kill(os.getpid(), signal.SIGINT)

    rt = Runtime(journal=db, agent=BusyFanOut(2000, probe), sign=False)
    with pytest.raises(KeyboardInterrupt) as e:
        rt.run(GOAL, remit=Remit(tools={}, depth=1), run_id="stop")
    assert getattr(e.value, "code", "") == "INTERRUPTED"
    assert len(ran) < 2000, "the run went on to its end"
    ends = [s for s in rt.store.steps("stop") if s.kind == "task" and s.status == "ok"]
    assert len(ends) >= len(ran) - 1
    assert rt.store.get_run("stop").status == "running"
    assert rt.store.get_lease("stop") is None
    again = rt.resume("stop")
    assert again.ok and again.result == sum(range(2000))
    rt.close()


@pytest.mark.parametrize("sigint", [signal.default_int_handler, signal.SIG_IGN])
def test_a_run_hands_back_the_signal_handlers_it_found(tmp_path: Path, sigint: Any) -> None:
    """SIGINT and SIGTERM stop a run while it works; after it, they are the caller's
    (SIGINT as Python sets it, or ignored, as a shell leaves it for a background job)."""
    seen: list[int] = []

    def mine(signum: int, frame: object) -> None:
        seen.append(signum)

    before = signal.signal(signal.SIGTERM, mine)
    before_int = signal.signal(signal.SIGINT, sigint)
    try:
        with Runtime(journal=tmp_path / "h.db", agent=BusyFanOut(3, lambda i: None),
                     sign=False) as rt:  # fmt: skip
            assert rt.run(GOAL, remit=Remit(tools={}, depth=1), run_id="h").ok
        assert signal.getsignal(signal.SIGTERM) is mine
        assert signal.getsignal(signal.SIGINT) is sigint
        os.kill(os.getpid(), signal.SIGTERM)
        assert seen == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, before)
        signal.signal(signal.SIGINT, before_int)


def test_a_remit_constraining_an_argument_the_tool_lacks_is_refused_at_start(
    make_runtime: Any,
) -> None:
    rt = make_runtime(agent=Planner([], None))
    with pytest.raises(UnknownToolError, match=r"argument 'expr' of tool 'calculator'.*"
                       r"its arguments: expression"):  # fmt: skip
        rt.run(GOAL, remit=Remit(tools={"calculator": {"expr": max_len(5)}}), run_id="r1")
    with pytest.raises(InvalidInput, match="run id 'a/b' is not valid"):
        rt.run(GOAL, remit=Remit(tools={}), run_id="a/b")
    assert list(rt.store.list_runs()) == []
