"""The Gate's cost per MCP call, against the SDK's bare ``call_tool`` on the same server.

One stdio server (the SDK's own server class, ``tests/tools/mcp_counter.py``) and its
read-only ``peek`` tool (a pure call for the Gate); ``--effect`` uses ``add`` instead,
which declares no hints, so the Gate treats it as an effect: its intent reaches the disk
(fsync) before each call, which is the write-ahead guarantee, not overhead.

Side by side: inside one run (the default configuration: remit check, ledger, journal
with durability ``full``, signed call proofs), one task alternates blocks of ``--block``
calls made through the Gate (``ctx.call``) with blocks made bare, on the same session to
the same server process (the SDK's ``call_tool``), so both see the same machine at the
same moment. Per round, the overhead is the median over block pairs of (gate - bare) per
call; ``gate_overhead_ms`` is the median over rounds, ``bare_call_ms`` the median bare
call. ``--json`` prints them (and the rest) as the last line.

    python benchmarks/mcp.py [--calls 400] [--block 20] [--rounds 5] [--json]
"""

from __future__ import annotations

import argparse
import json
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


def one_round(
    calls: int, block: int, log: Path, journal: Path, tool: str, sign: bool = True
) -> dict[str, float]:
    """Per-call seconds, bare and through the Gate, and the median per-pair overhead."""
    from remit import Agent, Remit, Runtime
    from remit.tools.mcp import McpServer, McpTool

    out: dict[str, float] = {}

    class SideBySide(Agent):
        async def execute(self, ctx: Any) -> Any:
            mcp_tool = next(t for t in rt._mcp_tools if t.name == f"calc.{tool}")  # pyright: ignore[reportPrivateUsage]
            assert isinstance(mcp_tool, McpTool)
            session = mcp_tool.session
            await ctx.call(f"calc.{tool}", a=0, b=0)  # warm both paths
            await session.call_tool(tool, {"a": 0, "b": 0})
            bare: list[float] = []
            gate: list[float] = []
            for start in range(0, calls, block):
                t0 = time.perf_counter()
                for i in range(start, start + block):
                    await ctx.call(f"calc.{tool}", a=i, b=1)
                t1 = time.perf_counter()
                for i in range(start, start + block):
                    await session.call_tool(tool, {"a": i, "b": 1})
                t2 = time.perf_counter()
                gate.append((t1 - t0) / block)
                bare.append((t2 - t1) / block)
            out["bare"] = statistics.median(bare)
            out["gate"] = statistics.median(gate)
            out["overhead"] = statistics.median(g - b for g, b in zip(gate, bare, strict=True))
            return calls

    server = McpServer("calc", command=[sys.executable, str(SERVER)], env={"COUNTER_LOG": str(log)})
    rt = Runtime(journal=journal, agent=SideBySide(), mcp=[server], sign=sign)
    try:
        remit = Remit(tools={f"calc.{tool}": {}}, budget={"calls": calls + 5})
        run = rt.run("call", remit=remit)
        assert run.ok, run.error
    finally:
        rt.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=400, help="calls each way per round")
    parser.add_argument("--block", type=int, default=20, help="calls per block")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--effect", action="store_true", help="an effect tool (write-ahead)")
    parser.add_argument(
        "--unsigned", action="store_true", help="without signed call proofs (not the default)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    args = parser.parse_args()
    tool = "add" if args.effect else "peek"
    rounds: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="remit-mcp-") as tmp:
        for r in range(args.rounds):
            log = Path(tmp) / f"calls-{r}.log"
            journal = Path(tmp) / f"j{r}.db"
            rounds.append(
                one_round(args.calls, args.block, log, journal, tool, sign=not args.unsigned)
            )
            print(
                f"round {r + 1}: bare {rounds[-1]['bare'] * 1e3:.3f} ms/call, "
                f"gate {rounds[-1]['gate'] * 1e3:.3f} ms/call, "
                f"overhead {rounds[-1]['overhead'] * 1e3:.3f} ms"
            )
    overhead = statistics.median(r["overhead"] for r in rounds) * 1e3
    bare_ms = statistics.median(r["bare"] for r in rounds) * 1e3
    gate_ms = statistics.median(r["gate"] for r in rounds) * 1e3
    print(
        f"median per call: bare {bare_ms:.3f} ms, through the Gate {gate_ms:.3f} ms, "
        f"overhead {overhead:.3f} ms (goal <= 0.5)"
    )
    if args.json:
        print(
            json.dumps(
                {
                    "tool": tool,
                    "signed": not args.unsigned,
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
