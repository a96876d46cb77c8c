"""Agents for the README's promises under kill -9, signals and concurrent owners.

- ``BUDGET``: the root's planner makes 3 ``tick`` calls, then plans 3 children of one
  ``tick`` each. Under ``calls = 5`` the third child is denied by the budget, whether
  or not the run was killed in between. With ``PROMISES_STALL`` set to a path, the
  call of ``child 0`` writes that file and waits forever (the test kills it there).
- ``EFFECTS``: the root plans ``PROMISES_N`` children (default 200); each makes one
  effect, ``record``, which appends ``<pid> <idempotency key>`` to ``PROMISES_LOG``
  (one O_APPEND write) and then waits 10 ms.
- ``BURN``: the root plans ``PROMISES_N`` children (default 2,400) whose ``execute`` is
  plain CPU work (about a millisecond) that never waits; each appends its
  fixed-width index to ``PROMISES_LOG`` when done, so a test knows how many finished
  before it killed the process.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from remit import Agent, ChildResult, Context, Plan, Subtask, tool

LOG_ENV = "PROMISES_LOG"
STALL_ENV = "PROMISES_STALL"
N_ENV = "PROMISES_N"
#: bytes per line of the BURN log
LINE = 8


def _append(line: str) -> None:
    path = os.environ.get(LOG_ENV)
    if not path:
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def _n(default: int) -> int:
    return int(os.environ.get(N_ENV, default))


# --- budget after a kill -------------------------------------------------------------------


@tool(name="tick")
async def tick(who: str) -> str:
    stall = os.environ.get(STALL_ENV)
    if stall and who == "child 0":
        Path(stall).write_text("stalled")
        await asyncio.sleep(3600)
    _append(f"{os.getpid()} {who}\n")
    return who


class BudgetAgent(Agent):
    tools = (tick,)

    def atomize(self, ctx: Context) -> str:
        return "plan" if ctx.depth == 0 else "execute"

    async def plan(self, ctx: Context) -> Plan:
        for i in range(3):
            await ctx.call("tick", who=f"plan {i}")
        return Plan([Subtask(f"c{i}", f"child {i}") for i in range(3)])

    async def execute(self, ctx: Context) -> Any:
        return await ctx.call("tick", who=ctx.goal)

    def aggregate(self, ctx: Context, results: list[ChildResult]) -> Any:
        return [r.value for r in results]


BUDGET = BudgetAgent()


# --- one owner per run ----------------------------------------------------------------------


@tool(name="record", effect=True)
async def record(n: int, idempotency_key: str) -> int:
    _append(f"{os.getpid()} {idempotency_key}\n")
    await asyncio.sleep(0.01)
    return n


class EffectsAgent(Agent):
    tools = (record,)

    def atomize(self, ctx: Context) -> str:
        return "plan" if ctx.depth == 0 else "execute"

    def plan(self, ctx: Context) -> Plan:
        return Plan([Subtask(f"e{i}", f"effect {i}", inputs={"n": i}) for i in range(_n(200))])

    async def execute(self, ctx: Context) -> Any:
        return await ctx.call("record", n=ctx.inputs["n"])

    def aggregate(self, ctx: Context, results: list[ChildResult]) -> Any:
        return sum(r.value for r in results if r.ok)


EFFECTS = EffectsAgent()


# --- a CPU-bound fan-out ----------------------------------------------------------------------


def burn(i: int) -> int:
    """About a millisecond of pure-Python work."""
    acc = i
    for k in range(12_000):
        acc = (acc * 31 + k) % 1_000_003
    return acc


class BurnAgent(Agent):
    def atomize(self, ctx: Context) -> str:
        return "plan" if ctx.depth == 0 else "execute"

    def plan(self, ctx: Context) -> Plan:
        return Plan([Subtask(f"b{i}", f"burn {i}", inputs={"i": i}) for i in range(_n(2400))])

    def execute(self, ctx: Context) -> int:
        i = int(ctx.inputs["i"])
        value = burn(i)
        _append(f"{i:0{LINE - 1}d}\n")
        return value

    def aggregate(self, ctx: Context, results: list[ChildResult]) -> Any:
        return sum(r.value for r in results if r.ok)


BURN = BurnAgent()
