"""The agent the web view's tests watch: a plain-Python tree of ``1 + width + width *
leaves`` tasks (root → branches → leaves), with, in branch 0, one leaf whose call is
denied (a tool its remit does not grant) and one whose call waits for a person.

Inputs (the root's): ``width``, ``leaves``, ``ask`` (false: no leaf asks), and
``gate``: a file path; leaves outside branch 0 wait (a bounded while) until that file
exists, so a test sees them running, then opens the gate and sees them finish, live.
Without a gate, leaves finish at once.
"""

from __future__ import annotations

import asyncio
import os
import textwrap
from typing import Any

from remit import Agent, ChildResult, Context, Plan, Remit, Subtask, tool
from remit.errors import DeniedError

#: the longest a leaf waits for the gate (seconds): a test that forgets it still ends
GATE_WAIT_S = 60.0
DENIED_LEAF = (0, 1)
ASKING_LEAF = (0, 2)


@tool
async def work(gate: str | None, n: int) -> int:
    """A leaf's work: wait for the gate file (if any), then return ``n``."""
    if gate:
        for _ in range(int(GATE_WAIT_S / 0.05)):
            if os.path.exists(gate):
                break
            await asyncio.sleep(0.05)
    return n


@tool(effect=True)
def pay(recipient: str, amount: int) -> str:
    """An effect the remit lets through only with a person's approval (large amounts)."""
    return f"paid {amount} to {recipient}"


@tool(effect=True)
def delete_everything(where: str) -> str:
    """A tool no remit of these tests grants: every call is denied at the Gate."""
    raise AssertionError("a call outside the remit reached the tool")


def remit(deadline: str = "10m") -> Remit:
    """The root remit: ``work`` and ``pay`` (large payments ask a person), depth 2."""
    return Remit.from_toml(
        textwrap.dedent(f"""
        deadline = "{deadline}"
        depth = 2
        [budget]
        calls = 5000
        [tools.work]
        [tools.pay]
        fallback = "ask"
        rules = [
          {{ forbid = {{ amount = {{ between = {{ min = 1000 }} }} }}, reason = "large payment" }},
          {{ allow = {{}} }},
        ]
        """)
    )


class TreeAgent(Agent):
    """Root and branches plan; leaves execute (see the module's docstring)."""

    tools = (work, pay, delete_everything)

    def atomize(self, ctx: Context) -> str:
        return "plan" if ctx.depth < 2 else "execute"

    def plan(self, ctx: Context) -> Plan:
        if ctx.depth == 0:
            width, leaves = int(ctx.inputs["width"]), int(ctx.inputs["leaves"])
            return Plan([
                Subtask(f"b{i}", f"branch {i}",
                        inputs={**ctx.inputs, "branch": i},
                        remit={"budget": {"calls": 2 * leaves + 4}})
                for i in range(width)
            ])  # fmt: skip
        b = int(ctx.inputs["branch"])
        return Plan([
            Subtask(f"l{j}", f"leaf {b}.{j}", inputs={**ctx.inputs, "leaf": j},
                    remit={"budget": {"calls": 2}})
            for j in range(int(ctx.inputs["leaves"]))
        ])  # fmt: skip

    async def execute(self, ctx: Context) -> Any:
        b, j = int(ctx.inputs["branch"]), int(ctx.inputs["leaf"])
        if (b, j) == DENIED_LEAF:
            try:
                return await ctx.call("delete_everything", where="/")
            except DeniedError as e:
                return f"refused: {e.message}"
        if (b, j) == ASKING_LEAF and ctx.inputs.get("ask", True):
            try:
                return await ctx.call("pay", recipient="mallory", amount=5000)
            except DeniedError as e:
                return f"refused: {e.message}"
        gate = None if b == 0 else ctx.inputs.get("gate")
        return await ctx.call("work", gate=gate, n=b * 1000 + j)

    def aggregate(self, ctx: Context, results: list[ChildResult]) -> Any:
        return sum(r.value if isinstance(r.value, int) else 0 for r in results)


AGENT = TreeAgent()
