"""The agent of the kill -9 test, importable by the resuming process."""

from __future__ import annotations

from typing import Any

from remit import Agent


class AddThenMore(Agent):
    async def execute(self, ctx: Any) -> Any:
        total = await ctx.call("calc.add", a=1, b=2)
        # the plan kills the process here, after the MCP call's result, before the end
        more = await ctx.call("calculator", expression="2+2")
        return [total, more]
