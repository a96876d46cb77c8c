"""Budgets never overshoot under concurrent fan-out, and every refusal is recorded.

The requirement: at least 200 randomized trials of 100-1,000 concurrent children
against a budget that admits only some of them; spend stays within the budget in
every trial, and every refusal is recorded as a budget denial.

Each trial is a real run: the Runtime, the engine, the Gate, the ledger and a SQLite
journal on disk. The root plans N children; each child calls tools 1-3 times (sync
and async tools, some with a price so the cost dimension is exercised too), catches
the ``BudgetExceeded`` of a refused call and counts it. A tenth of the children have
a tighter budget of their own. The root's budget admits a random fraction of the
calls (and sometimes a random fraction of the cost).

``BUDGET_TRIALS`` and ``BUDGET_SEED`` in the environment change the trial count and
replay a particular sequence.
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from remit import Agent, Budget, ChildResult, Plan, Remit, Runtime, Subtask, tool
from remit.errors import BudgetExceeded

TRIALS = int(os.environ.get("BUDGET_TRIALS", "200"))
SEED = int(os.environ.get("BUDGET_SEED", "20250611"))
#: prices are dyadic fractions so sums of them are exact in floating point
PRICES = {"paid": 0.25, "apaid": 0.125}
TOOLS = ("tick", "atick", "paid", "apaid")

#: real invocations of each tool in the current trial
invoked: dict[str, int] = dict.fromkeys(TOOLS, 0)


@tool
def tick(i: int) -> int:
    invoked["tick"] += 1
    return i


@tool
async def atick(i: int) -> int:
    invoked["atick"] += 1
    await asyncio.sleep(0)  # siblings genuinely interleave between reserve and settle
    return i


@tool(cost_usd=PRICES["paid"])
def paid(i: int) -> int:
    invoked["paid"] += 1
    return i


@tool(cost_usd=PRICES["apaid"])
async def apaid(i: int) -> int:
    invoked["apaid"] += 1
    await asyncio.sleep(0)
    return i


class FanOut(Agent):
    """The root plans one child per entry of ``inputs["children"]``: a list of the
    tools that child calls, in order, and whether it has a budget of its own."""

    tools = [tick, atick, paid, apaid]

    def atomize(self, ctx: Any) -> str:
        return "plan"

    def plan(self, ctx: Any) -> Plan:
        subs = []
        for i, (calls, own_budget) in enumerate(ctx.inputs["children"]):
            remit = {"budget": {"calls": own_budget}} if own_budget is not None else None
            subs.append(Subtask(f"c{i}", f"child {i}", inputs={"calls": calls}, remit=remit))
        return Plan(subs, on_failure="aggregate")

    async def execute(self, ctx: Any) -> dict[str, int]:
        executed = refused = 0
        for n, name in enumerate(ctx.inputs["calls"]):
            if n:
                await asyncio.sleep(0)
            try:
                await ctx.call(name, i=n)
            except BudgetExceeded:
                refused += 1
            else:
                executed += 1
        return {"executed": executed, "refused": refused}

    def aggregate(self, ctx: Any, results: list[ChildResult]) -> dict[str, int]:
        failed = [r for r in results if not r.ok]
        return {
            "executed": sum(r.value["executed"] for r in results if r.ok),
            "refused": sum(r.value["refused"] for r in results if r.ok),
            "failed": len(failed),
        }


def make_trial(rng: random.Random) -> tuple[list[Any], Budget, int, float]:
    """(children, root budget, attempted calls, most the calls could cost)."""
    n = rng.randint(100, 1000)
    children = []
    for _ in range(n):
        k = rng.choice((1, 1, 2, 3))
        calls = [rng.choice(TOOLS) for _ in range(k)]
        own = rng.randint(0, 2) if rng.random() < 0.1 else None
        children.append((calls, own))
    attempted = sum(len(c) for c, _ in children)
    max_cost = sum(PRICES.get(t, 0.0) for c, _ in children for t in c)
    calls_budget = int(attempted * rng.uniform(0.05, 0.95))
    cost_budget = None
    if rng.random() < 0.5:
        cost_budget = rng.randint(1, 100) * max_cost / 128  # a dyadic fraction of the most
    return children, Budget(calls=calls_budget, cost_usd=cost_budget), attempted, max_cost


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[tuple[Runtime, sqlite3.Connection]]:
    path = tmp_path / "budget.db"
    rt = Runtime(journal=path, agent=FanOut(), durability="normal")
    conn = sqlite3.connect(path)
    yield rt, conn
    conn.close()
    rt.close()


def budget_denials(conn: sqlite3.Connection, run_id: str) -> int:
    (n,) = conn.execute(
        "SELECT count(*) FROM steps WHERE run_id = ? AND status = 'denied'"
        " AND json_extract(error, '$.code') = 'BUDGET'",
        (run_id,),
    ).fetchone()
    return n


def other_denials(conn: sqlite3.Connection, run_id: str) -> int:
    (n,) = conn.execute(
        "SELECT count(*) FROM steps WHERE run_id = ? AND (status = 'denied' OR status = 'error')"
        " AND json_extract(error, '$.code') != 'BUDGET' AND kind = 'tool'",
        (run_id,),
    ).fetchone()
    return n


def test_concurrent_children_never_overshoot_and_every_refusal_is_a_recorded_denial(
    journal: tuple[Runtime, sqlite3.Connection],
) -> None:
    rt, conn = journal
    rng = random.Random(SEED)
    grants = {name: {} for name in TOOLS}
    total_refused = 0
    for trial in range(TRIALS):
        children, budget, attempted, _ = make_trial(rng)
        for name in TOOLS:
            invoked[name] = 0
        rt.concurrency = rng.choice((4, 64, 512))
        run_id = f"trial-{trial}"
        where = f"trial {trial} (BUDGET_SEED={SEED}): {len(children)} children, {budget}"
        run = rt.run(
            "fan out",
            remit=Remit(tools=grants, budget=budget, depth=1),
            inputs={"children": children},
            run_id=run_id,
        )
        assert run.ok, f"{where}: {run.error}"
        out = run.result
        assert out["failed"] == 0, where
        executed_calls = sum(invoked.values())

        # never overshoot: not in what the tools did, not in what the ledger booked
        assert budget.calls is not None
        assert executed_calls <= budget.calls, where
        assert run.spent.calls <= budget.calls, where
        if budget.cost_usd is not None:
            assert run.spent.cost_usd <= budget.cost_usd, where
        assert run.spent.calls == executed_calls, where
        spent_cost = invoked["paid"] * PRICES["paid"] + invoked["apaid"] * PRICES["apaid"]
        assert run.spent.cost_usd == spent_cost, where

        # every refusal is recorded as a budget denial, and nothing else went wrong
        assert out["executed"] == executed_calls, where
        assert out["refused"] == attempted - executed_calls, where
        assert budget_denials(conn, run_id) == out["refused"], where
        assert other_denials(conn, run_id) == 0, where
        assert run.denied == out["refused"], where

        # the budget admitted only some of the calls
        assert 0 < out["refused"] < attempted or budget.calls == 0, where
        total_refused += out["refused"]
    assert total_refused > 0


def test_trials_are_reproducible_from_the_seed() -> None:
    a = [make_trial(random.Random(SEED)) for _ in range(2)]
    assert a[0] == a[1]
    sizes = [len(make_trial(rng)[0]) for rng in [random.Random(SEED)] for _ in range(50)]
    assert min(sizes) >= 100 and max(sizes) <= 1000
