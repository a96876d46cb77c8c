"""Invalidating a result: exactly its transitive dependents run again at the next resume,
under the same remits, in a new generation of step ids; nothing else re-runs, no row
is changed, and the sealed run still verifies."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from remit import Agent, Plan, Remit, Runtime, Subtask, tool
from remit.core.tasks import ROOT, task_id
from remit.errors import InvalidInput, RunLeased, RunNotFound
from remit.journal import StepRecord
from remit.journal.lease import RunLease
from remit.trust.provenance import verify_run

RUN = "run-diamond"
GOAL = "diamond"
ROOT_ID = task_id(ROOT, 0, GOAL)
P = task_id(ROOT_ID, 0, "parent")
A, B, C, D = (task_id(P, i, g) for i, g in enumerate("ABCD"))

#: what the world says right now (a test changes it between the run and the resume)
WORLD: dict[str, int] = {}
#: every real execution of the tool, by tag
CALLS: Counter[str] = Counter()


@tool
def look(tag: str) -> int:
    """Read the world's value for ``tag``, counting the real executions."""
    CALLS[tag] += 1
    return WORLD.get(tag, 1)


class Diamond(Agent):
    """root → parent → A; B and C need A; D needs B and C. A leaf makes two calls and
    adds its deps' values to theirs; aggregates sum their children."""

    tools = [look]

    def __init__(self) -> None:
        self.roles: Counter[str] = Counter()

    def atomize(self, ctx: Any) -> str:
        self.roles[f"atomize {ctx.goal}"] += 1
        return "plan" if ctx.depth < 2 else "execute"

    def plan(self, ctx: Any) -> Plan:
        self.roles[f"plan {ctx.goal}"] += 1
        if ctx.depth == 0:
            return Plan([Subtask("p", "parent")])
        a, b = Subtask("a", "A"), Subtask("b", "B", deps=("a",))
        return Plan([a, b, Subtask("c", "C", deps=("a",)), Subtask("d", "D", deps=("b", "c"))])

    async def execute(self, ctx: Any) -> int:
        self.roles[f"execute {ctx.goal}"] += 1
        first = await ctx.call("look", tag=f"{ctx.goal}.0")
        second = await ctx.call("look", tag=f"{ctx.goal}.1")
        return first + second + sum(ctx.deps.values())

    def aggregate(self, ctx: Any, results: list[Any]) -> int:
        self.roles[f"aggregate {ctx.goal}"] += 1
        return sum(r.value for r in results)


REMIT = Remit(tools={"look": {}}, depth=3)


@pytest.fixture(autouse=True)
def world() -> None:
    WORLD.clear()
    CALLS.clear()


def rows(rt: Runtime) -> dict[str, StepRecord]:
    return {s.step_id: s for s in rt.store.steps(RUN)}


def finished_diamond(make_runtime: Any) -> tuple[Runtime, Diamond]:
    agent = Diamond()
    rt = make_runtime(agent=agent)
    run = rt.run(GOAL, remit=REMIT, run_id=RUN)
    # A=2, B=2+A=4, C=4, D=2+B+C=10; the parent and the root sum: 20
    assert run.ok and run.result == 20
    agent.roles.clear()
    CALLS.clear()
    return rt, agent


def test_invalidating_one_call_in_a_diamond_reruns_exactly_its_dependents(
    make_runtime: Any,
) -> None:
    rt, agent = finished_diamond(make_runtime)
    before = rows(rt)
    WORLD["B.1"] = 5  # B's second call read a stale value

    inv = rt.invalidate(RUN, f"{B}:execute.1", why="stale read", by="checker")
    assert inv.generation == 1
    assert inv.tasks == tuple(sorted({B, D, P, ROOT_ID}))
    assert rt.get(RUN).status == "running"  # open again until a resume ends it

    run = rt.resume(RUN)
    # B = 1+5+A(2) = 8, D = 2+B+C = 14, the parent and root: 2+8+4+14 = 28
    assert run.ok and run.result == 28 and rt.get(RUN).result == 28
    # the roles that ran: B, D and the two aggregates; never A, C or any plan
    assert agent.roles == Counter({
        "execute B": 1, "atomize D": 1, "execute D": 1,
        "aggregate parent": 1, "aggregate diamond": 1,
    })  # fmt: skip
    # B's first call came before the bad one: served; D's calls read B: made again
    assert dict(CALLS) == {"B.1": 1, "D.0": 1, "D.1": 1}

    after = rows(rt)
    for step_id, rec in before.items():  # nothing written is changed
        assert after[step_id] == rec
    new = set(after) - set(before)
    assert new == {
        f"{B}:execute.1~invalidation.1",
        f"{B}:execute.1#1", f"{B}:end#1",
        f"{D}:atomize#1", f"{D}:execute.0#1", f"{D}:execute.1#1", f"{D}:end#1",
        f"{P}:aggregate#1", f"{P}:end#1", f"{ROOT_ID}:aggregate#1", f"{ROOT_ID}:end#1",
    }  # fmt: skip
    assert after[f"{B}:execute.1#1"].output == "5"
    report = verify_run(rt.store, RUN)
    assert report.ok, report.failures
    # each call of each generation has its own nonce, used once
    assert report.calls == 8 + 3


def test_resuming_again_reruns_nothing(make_runtime: Any) -> None:
    rt, agent = finished_diamond(make_runtime)
    rt.invalidate(RUN, f"{B}:execute.1", why="stale read")
    rt.resume(RUN)
    agent.roles.clear()
    CALLS.clear()
    run = rt.resume(RUN)
    assert run.ok and run.result == 20 and not agent.roles and not CALLS


def test_invalidating_a_source_reruns_everything_that_reads_it(make_runtime: Any) -> None:
    rt, agent = finished_diamond(make_runtime)
    inv = rt.invalidate(RUN, A, why="A's source was retracted")  # a task: its result
    assert set(inv.tasks) == {A, B, C, D, P, ROOT_ID}
    rt.resume(RUN)
    assert dict(CALLS) == {f"{g}.{i}": 1 for g in "ABCD" for i in (0, 1)}
    assert agent.roles["plan parent"] == 0  # the plan came before any result


def test_a_second_invalidation_is_a_new_generation(make_runtime: Any) -> None:
    rt, agent = finished_diamond(make_runtime)
    rt.invalidate(RUN, f"{B}:execute.1", why="stale read")
    rt.resume(RUN)
    agent.roles.clear()
    CALLS.clear()
    WORLD["C.0"] = 3
    inv = rt.invalidate(RUN, f"{C}:execute.0", why="C too")
    assert inv.generation == 2
    run = rt.resume(RUN)
    # C = 3+1+2 = 6, D = 2+4+6 = 12; 2+4+6+12 = 24 (B's first re-run stands)
    assert run.ok and run.result == 24
    assert dict(CALLS) == {"C.0": 1, "C.1": 1, "D.0": 1, "D.1": 1}
    after = rows(rt)
    assert f"{D}:end#2" in after and f"{D}:end#1" in after and f"{B}:end#2" not in after
    report = verify_run(rt.store, RUN)
    assert report.ok, report.failures


def test_invalidated_work_still_counts_toward_the_runs_spend(make_runtime: Any) -> None:
    rt, _ = finished_diamond(make_runtime)
    assert rt.get(RUN).spent.calls == 8
    rt.invalidate(RUN, f"{B}:execute.1", why="stale read")
    run = rt.resume(RUN)
    assert run.spent.calls == 8 + 3 and rt.get(RUN).spent.calls == 8 + 3


def test_a_step_the_run_does_not_have_is_refused_and_nothing_changes(
    make_runtime: Any,
) -> None:
    rt, _ = finished_diamond(make_runtime)
    before = rows(rt)
    with pytest.raises(InvalidInput, match=r"cannot invalidate .*execute\.9"):
        rt.invalidate(RUN, f"{B}:execute.9", why="typo")
    with pytest.raises(RunNotFound, match="no-such-run"):
        rt.invalidate("no-such-run", B, why="typo")
    assert rows(rt) == before
    assert rt.get(RUN).status == "done" and rt.get(RUN).result == 20
    assert rt.store.get_lease(RUN) is None  # the lease taken to look was given back


def test_a_run_a_live_process_carries_is_refused(make_runtime: Any) -> None:
    rt, _ = finished_diamond(make_runtime)
    before = rows(rt)
    other = RunLease(rt.store, RUN)
    other.acquire()  # this process's pid, another owner: a live holder
    try:
        with pytest.raises(RunLeased):
            rt.invalidate(RUN, B, why="busy")
    finally:
        other.release()
    assert rows(rt) == before and rt.get(RUN).status == "done"
