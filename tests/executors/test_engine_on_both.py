"""The engine's specification on both executors: the same tree, the same outcome, the
same journal, whether tasks work in this process or on Ray workers.

Agents and tools are module-level and pure (they travel to workers); what a test
observes it reads from the run's result, its error and its journal. Effects that must
happen exactly once append a line to a file in the workspace, which every process on
this host sees.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from remit import Agent, Budget, ChildResult, Plan, Remit, Runtime, Subtask, tool
from remit.core.tasks import ROOT, task_id
from remit.errors import BudgetExceeded, RemitError
from remit.journal import StepRecord

GOAL = "root goal"
ROOT_ID = task_id(ROOT, 0, GOAL)

Make = Callable[..., Runtime]


def child_id(position: int, goal: str, attempt: int = 0) -> str:
    return task_id(ROOT_ID, position, goal, attempt)


def steps(rt: Runtime, run_id: str) -> dict[str, StepRecord]:
    return {s.step_id: s for s in rt.store.steps(run_id)}


def code(step: StepRecord) -> str | None:
    return json.loads(step.error)["code"] if step.error else None


@tool
def note(path: str, line: str) -> str:
    """An effect: one line appended to ``path`` per real call."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")
    return line


@tool
async def wait_forever(who: str) -> str:
    await asyncio.Event().wait()
    return who


class Leaves(Agent):
    """The root plans the subtasks of ``inputs["subs"]`` (dicts for ``Subtask``) under
    ``inputs["policy"]``; a leaf does what its goal says (``say X``, ``note X``,
    ``fail X``, ``int X``, ``str X``, ``dep``, ``notes N``, ``hang``)."""

    tools = [note, wait_forever]

    def atomize(self, ctx: Any) -> str:
        return "plan" if "subs" in ctx.inputs else "execute"

    def plan(self, ctx: Any) -> Plan:
        subs = [
            Subtask(
                s["key"],
                s["goal"],
                tuple(s.get("deps", ())),
                s.get("inputs", {}),
                s.get("output_schema"),
                s.get("remit"),
            )
            for s in ctx.inputs["subs"]
        ]
        return Plan(subs, ctx.inputs.get("policy", "fail"))

    async def execute(self, ctx: Any) -> Any:
        verb, _, arg = ctx.goal.partition(" ")
        if verb == "say":
            return arg
        if verb == "note":
            return await ctx.call("note", path=ctx.inputs["path"], line=arg)
        if verb == "notes":  # as many notes as the budget lets through
            done = 0
            for i in range(int(arg)):
                try:
                    await ctx.call("note", path=ctx.inputs["path"], line=f"{ctx.task_id}.{i}")
                    done += 1
                except BudgetExceeded:
                    pass
            return done
        if verb == "fail":
            raise RemitError(arg)
        if verb == "later":  # fail, once its siblings are under way
            await asyncio.sleep(0.5)
            raise RemitError(arg)
        if verb == "int":
            return int(arg)
        if verb == "str":
            return arg
        if verb == "dep":
            return {k: v for k, v in ctx.deps.items()}
        if verb == "hang":
            return await ctx.call("wait_forever", who="me")
        raise AssertionError(f"unknown goal {ctx.goal!r}")

    def aggregate(self, ctx: Any, results: list[ChildResult]) -> Any:
        return {r.key: r.value if r.ok else r.code for r in results}

    def replan(self, ctx: Any, failed: ChildResult) -> Any:
        return Subtask(failed.key, "say replanned")


def run_of(rt: Runtime, subs: list[dict[str, Any]], remit: Remit | None = None, **inputs: Any):
    return rt.run(
        GOAL,
        remit=remit or Remit(tools={"note": {}}, budget=Budget(calls=100), depth=1),
        inputs={"subs": subs, **inputs},
    )


def test_a_leaf_atomizes_then_executes(on: Make) -> None:
    rt = on(agent=Leaves())
    run = rt.run("say hello", remit=Remit(depth=2))
    assert run.ok and run.result == "hello" and run.tasks == 1
    rows = steps(rt, run.id)
    root = task_id(ROOT, 0, "say hello")
    assert rows[f"{root}:atomize"].output == '"execute"'
    assert rows[f"{root}:end"].status == "ok"


def test_a_plan_runs_its_children_and_aggregates_them(on: Make) -> None:
    rt = on(agent=Leaves())
    subs = [{"key": k, "goal": f"say {k}"} for k in "abc"]
    run = run_of(rt, subs)
    assert run.ok and run.result == {"a": "a", "b": "b", "c": "c"} and run.tasks == 4
    rows = steps(rt, run.id)
    for i, k in enumerate("abc"):
        assert json.loads(rows[f"{child_id(i, f'say {k}')}:end"].output or "") == k
    assert rows[f"{ROOT_ID}:aggregate"].status == "ok"


def test_the_depth_cap_forces_execution_without_atomizing(on: Make) -> None:
    rt = on(agent=Leaves())
    run = rt.run("say capped", remit=Remit(depth=0))
    assert run.result == "capped"
    assert not any(s.endswith(":atomize") for s in steps(rt, run.id))


def test_a_dependent_gets_its_dependencies_results(on: Make) -> None:
    rt = on(agent=Leaves())
    subs = [{"key": "a", "goal": "int 7"}, {"key": "b", "goal": "dep", "deps": ["a"]}]
    run = run_of(rt, subs)
    assert run.result == {"a": 7, "b": {"a": 7}}


def test_a_childs_output_is_checked_against_its_schema(on: Make) -> None:
    rt = on(agent=Leaves())
    subs = [
        {"key": "good", "goal": "int 7", "output_schema": {"type": "integer"}},
        {"key": "bad", "goal": "str seven", "output_schema": {"type": "integer"}},
    ]
    run = run_of(rt, subs, policy="aggregate")
    assert run.result == {"good": 7, "bad": "SCHEMA_VIOLATION"}
    end = steps(rt, run.id)[f"{child_id(1, 'str seven')}:end"]
    assert end.status == "error" and code(end) == "SCHEMA_VIOLATION" and end.output is None


def test_a_failed_child_fails_its_parent_under_the_fail_policy(on: Make) -> None:
    rt = on(agent=Leaves())
    run = run_of(rt, [{"key": "ok", "goal": "say fine"}, {"key": "x", "goal": "fail boom"}])
    assert run.status == "failed" and run.error is not None
    assert run.error["code"] == "CHILD_FAILED" and "boom" in run.error["message"]
    assert code(steps(rt, run.id)[f"{ROOT_ID}:end"]) == "CHILD_FAILED"


def test_a_failed_child_stops_its_running_siblings(on: Make) -> None:
    rt = on(agent=Leaves())
    subs = [{"key": "slow", "goal": "hang"}, {"key": "boom", "goal": "later boom"}]
    started = time.monotonic()
    run = run_of(rt, subs, remit=Remit(tools={"wait_forever": {}}, depth=1))
    assert time.monotonic() - started < 5, "a cancelled sibling kept the run waiting"
    assert run.status == "failed" and run.error is not None
    assert run.error["code"] == "CHILD_FAILED" and "boom" in run.error["message"]
    assert code(steps(rt, run.id)[f"{child_id(0, 'hang')}:end"]) == "CANCELLED"


def test_the_aggregate_policy_reports_failures_and_fails_dependents(on: Make) -> None:
    rt = on(agent=Leaves())
    subs = [
        {"key": "a", "goal": "fail it broke"},
        {"key": "b", "goal": "dep", "deps": ["a"]},
        {"key": "c", "goal": "say independent"},
    ]
    run = run_of(rt, subs, policy="aggregate")
    assert run.ok and run.result == {"a": "REMIT_ERROR", "b": "CHILD_FAILED", "c": "independent"}
    rows = steps(rt, run.id)
    assert f"{child_id(1, 'dep')}:atomize" not in rows  # a skipped dependent never started


def test_a_replan_reruns_the_failed_branch_once(on: Make) -> None:
    rt = on(agent=Leaves())
    run = run_of(rt, [{"key": "a", "goal": "fail first try"}], policy="replan")
    assert run.ok and run.result == {"a": "replanned"}
    rows = steps(rt, run.id)
    assert code(rows[f"{child_id(0, 'fail first try')}:end"]) == "REMIT_ERROR"
    assert rows[f"{child_id(0, 'say replanned', 1)}:end"].status == "ok"


def test_a_plan_that_widens_a_childs_remit_spawns_nothing(on: Make) -> None:
    rt = on(agent=Leaves())
    subs = [{"key": "greedy", "goal": "say more", "remit": {"budget": {"calls": 1000}}}]
    run = run_of(rt, subs)
    assert run.status == "failed" and run.error is not None
    assert run.error["code"] == "REMIT_WIDENING"
    assert all("/" not in sid for sid in steps(rt, run.id)), "a child was spawned"


def test_a_child_acts_under_its_narrowed_remit(on: Make, tmp_path: Path) -> None:
    rt = on(agent=Leaves())
    path = str(tmp_path / "notes.txt")
    subs = [
        {"key": "one", "goal": "notes 3", "inputs": {"path": path},
         "remit": {"budget": {"calls": 1}}},
    ]  # fmt: skip
    run = run_of(rt, subs)
    assert run.ok and run.result == {"one": 1}
    assert Path(path).read_text().count("\n") == 1
    denied = [s for s in steps(rt, run.id).values() if s.status == "denied"]
    assert len(denied) == 2 and all(code(s) == "BUDGET" for s in denied)


def test_siblings_never_overshoot_the_parents_budget(on: Make, tmp_path: Path) -> None:
    """Twenty siblings (on Ray: spread over two workers) each try three effects against a
    root budget of 25 calls: exactly 25 happen, once each, and every other is refused
    on the record."""
    rt = on(agent=Leaves())
    path = str(tmp_path / "notes.txt")
    subs = [{"key": f"k{i}", "goal": "notes 3", "inputs": {"path": path}} for i in range(20)]
    remit = Remit(tools={"note": {}}, budget=Budget(calls=25), depth=1)
    run = run_of(rt, subs, remit=remit)
    assert run.ok, run.error
    lines = Path(path).read_text().splitlines()
    assert len(lines) == 25 and len(set(lines)) == 25
    assert sum(run.result.values()) == 25
    assert run.spent.calls == 25
    denied = [s for s in steps(rt, run.id).values() if s.status == "denied"]
    assert len(denied) == 60 - 25


def test_a_childs_deadline_fails_it_and_the_parent_aggregates(on: Make) -> None:
    rt = on(agent=Leaves())
    subs = [
        {"key": "slow", "goal": "hang", "remit": {"budget": {"wall_seconds": 0.3}}},
        {"key": "fast", "goal": "say done"},
    ]
    remit = Remit(tools={"wait_forever": {}}, depth=1)
    run = run_of(rt, subs, remit=remit, policy="aggregate")
    assert run.ok, run.error
    assert run.result == {"slow": "DEADLINE", "fast": "done"}


def test_the_runs_spend_is_the_sum_of_its_childrens(on: Make, tmp_path: Path) -> None:
    rt = on(agent=Leaves())
    path = str(tmp_path / "notes.txt")
    subs = [{"key": f"k{i}", "goal": f"notes {i}", "inputs": {"path": path}} for i in range(5)]
    run = run_of(rt, subs)
    assert run.ok and run.spent.calls == 0 + 1 + 2 + 3 + 4
    assert run.executed >= 10


def test_a_sealed_run_verifies_from_its_journal(on: Make, tmp_path: Path) -> None:
    from remit.trust.provenance import verify_run

    rt = on(agent=Leaves())
    path = str(tmp_path / "notes.txt")
    subs = [{"key": f"k{i}", "goal": f"note n{i}", "inputs": {"path": path}} for i in range(6)]
    run = run_of(rt, subs)
    assert run.ok and run.signed
    report = verify_run(rt.store, run.id)
    assert report.ok, report.failures
    assert report.calls == 6


def test_resuming_a_finished_run_does_nothing(on: Make, tmp_path: Path) -> None:
    rt = on(agent=Leaves())
    path = str(tmp_path / "notes.txt")
    run = run_of(rt, [{"key": "a", "goal": "note once", "inputs": {"path": path}}])
    again = rt.resume(run.id)
    assert again.ok and again.result == run.result
    assert Path(path).read_text() == "once\n"
