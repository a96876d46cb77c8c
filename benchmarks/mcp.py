"""The Gate's cost per MCP call, against the SDK's bare ``call_tool`` on the same server.

One stdio server (the SDK's own server class, ``tests/tools/mcp_counter.py``) and its
read-only ``peek`` tool (a pure call for the Gate); ``--effect`` uses ``add`` instead,
which declares no hints, so the Gate treats it as an effect: its intent reaches the disk
(fsync) before each call, which is the write-ahead guarantee, not overhead. Per round:

- **bare**: a ``ClientSession`` calls ``add`` ``--calls`` times in a row;
- **gate**: a run whose one task makes the same calls through ``ctx.call`` (remit check,
  ledger, journal with durability ``full``, signed call proofs: the default), on a
  fresh journal.

Both sessions are open before the clock starts (a server's start-up is not a call).
``gate_overhead_ms`` is the median over rounds of (gate - bare) per call, ``bare_call_ms``
the median bare call; ``--json`` prints them (and the rest) as the last line.

    python benchmarks/mcp.py [--calls 200] [--rounds 5] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SERVER = ROOT / "tests" / "tools" / "mcp_counter.py"
# this file is named mcp.py: run as a script, its folder must not hide the mcp package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]


async def bare(calls: int, log: Path, tool: str) -> float:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(
        command=sys.executable, args=[str(SERVER)], env={**os.environ, "COUNTER_LOG": str(log)}
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        await session.call_tool(tool, {"a": 0, "b": 0})  # warm
        started = time.perf_counter()
        for i in range(calls):
            await session.call_tool(tool, {"a": i, "b": 1})
        return (time.perf_counter() - started) / calls


def gated(calls: int, log: Path, journal: Path, tool: str) -> float:
    from remit import Agent, Remit, Runtime
    from remit.tools.mcp import McpServer

    timing: dict[str, float] = {}

    class Caller(Agent):
        async def execute(self, ctx: Any) -> Any:
            await ctx.call(f"calc.{tool}", a=0, b=0)  # warm, as the bare session
            started = time.perf_counter()
            for i in range(calls):
                await ctx.call(f"calc.{tool}", a=i, b=1)
            timing["s"] = time.perf_counter() - started
            return calls

    server = McpServer("calc", command=[sys.executable, str(SERVER)], env={"COUNTER_LOG": str(log)})
    rt = Runtime(journal=journal, agent=Caller(), mcp=[server])
    try:
        remit = Remit(tools={f"calc.{tool}": {}}, budget={"calls": calls + 5})
        run = rt.run("call", remit=remit)
        assert run.ok, run.error
    finally:
        rt.close()
    return timing["s"] / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--effect", action="store_true", help="an effect tool (write-ahead)")
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    args = parser.parse_args()
    tool = "add" if args.effect else "peek"
    bare_s: list[float] = []
    gate_s: list[float] = []
    with tempfile.TemporaryDirectory(prefix="remit-mcp-") as tmp:
        for r in range(args.rounds):
            log = Path(tmp) / f"calls-{r}.log"
            bare_s.append(asyncio.run(bare(args.calls, log, tool)))
            gate_s.append(gated(args.calls, log, Path(tmp) / f"j{r}.db", tool))
            print(
                f"round {r + 1}: bare {bare_s[-1] * 1e3:.3f} ms/call, "
                f"gate {gate_s[-1] * 1e3:.3f} ms/call"
            )
    overhead = statistics.median(g - b for g, b in zip(gate_s, bare_s, strict=True)) * 1e3
    bare_ms = statistics.median(bare_s) * 1e3
    gate_ms = statistics.median(gate_s) * 1e3
    print(
        f"median per call: bare {bare_ms:.3f} ms, through the Gate {gate_ms:.3f} ms, "
        f"overhead {overhead:.3f} ms (goal <= 0.5)"
    )
    if args.json:
        print(
            json.dumps(
                {
                    "tool": tool,
                    "calls": args.calls,
                    "rounds": args.rounds,
                    "bare_call_ms": round(bare_ms, 4),
                    "gate_call_ms": round(gate_ms, 4),
                    "gate_overhead_ms": round(overhead, 4),
                }
            )
        )


if __name__ == "__main__":
    main()
