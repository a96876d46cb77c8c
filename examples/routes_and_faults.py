"""Routes and faults: a failing tool is routed around, and you can watch it happen.

    python examples/routes_and_faults.py     # writes routes.db in the current directory

Six tasks each ask for a price through the capability ``quote``. Its routes
(``routes.toml``) say: ``quote_api`` (cost 1), else ``quote_mirror`` (cost 3). The fault
plan (``faults.toml``) breaks ``quote_api`` for good and makes the mirror time out once.
The run still ends right: the mirror's timeout is retried, ``quote_api``'s failures are
rerouted until its circuit opens, and no planner is asked to re-plan anything.
"""

import asyncio
import tomllib
from pathlib import Path

from remit import Agent, Plan, Remit, Runtime, Subtask, tool
from remit.core.faults import FaultPlan

HERE = Path(__file__).resolve().parent
PRICES = {"apples": 3, "bread": 2, "cheese": 7, "dates": 5, "eggs": 4, "figs": 6}


@tool(timeout=0.5)
async def quote_api(item: str) -> int:
    """The cheap price feed."""
    await asyncio.sleep(0)
    return PRICES[item]


@tool(timeout=0.5)
async def quote_mirror(item: str) -> int:
    """A mirror of the feed: slower, dearer, the same prices."""
    await asyncio.sleep(0.01)
    return PRICES[item]


class Shopper(Agent):
    """Prices a basket: one subtask per item, then the total."""

    tools = [quote_api, quote_mirror]

    def atomize(self, ctx):
        return "execute" if "item" in ctx.inputs else "plan"

    def plan(self, ctx):
        return Plan([Subtask(item, f"price {item}", inputs={"item": item}) for item in PRICES])

    async def execute(self, ctx):
        return await ctx.call("quote", item=ctx.inputs["item"])  # a capability, not a tool

    def aggregate(self, ctx, results):
        return sum(r.value for r in results)


remit = Remit(tools={"quote_api": {}, "quote_mirror": {}}, budget={"calls": 40}, depth=1)
rt = Runtime(
    journal="routes.db",
    agent=Shopper(),
    routes=tomllib.loads((HERE / "routes.toml").read_text())["routes"],
    faults=FaultPlan.from_toml((HERE / "faults.toml").read_text(), where="faults.toml"),
    concurrency=1,  # one task at a time: the circuit's story reads in order
)
run = rt.run("price the basket", remit=remit)
rows = list(rt.store.steps(run.id))
count = {k: sum(1 for s in rows if s.kind == k) for k in ("fault", "retry", "reroute", "health")}
print(run.status, run.result)
print(
    f"{count['fault']} faults injected, {count['retry']} retried, {count['reroute']} rerouted, "
    f"{count['health']} circuit change(s); re-plans: "
    f"{sum(1 for s in rows if s.kind.startswith('replan'))}"
)
print(f"see it: remit show {run.id} --journal routes.db")
rt.close()
