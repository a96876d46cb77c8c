"""remit as an MCP server, driven by the SDK's own client over stdio against a real
``remit mcp serve`` process: a delegated goal runs as a journaled task tree under the
server's remit or a narrower one the client asks for; a wider ask is refused before
anything runs; ``status`` and ``show`` read the journal back."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from remit import Remit
from remit.journal import open_journal
from remit.serve.mcp import RemitServer
from remit.trust.provenance import verify_run

pytestmark = pytest.mark.mcp

#: a scripted agent (no model): makes the calculator calls its inputs list, a denied
#: call showing in its result as the denial's code
AGENT = """
from remit import Agent
from remit.errors import DeniedError

class Calls(Agent):
    async def execute(self, ctx):
        out = []
        for expression in ctx.inputs.get("expressions", []):
            try:
                out.append(await ctx.call("calculator", expression=expression))
            except DeniedError as e:
                out.append(e.code)
        return out

AGENT = Calls()
"""

REMIT = """
depth = 2
[budget]
calls = 10
[tools.calculator]
expression = { max_len = 20 }
"""

Call = Callable[..., Awaitable[Any]]


@asynccontextmanager
async def served(tmp_path: Path) -> AsyncGenerator[Any]:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    (tmp_path / "calls_agent.py").write_text(AGENT)
    (tmp_path / "remit.toml").write_text(REMIT)
    params = StdioServerParameters(
        command=sys.executable,
        args=[
            "-m",
            "remit.cli",
            "mcp",
            "serve",
            "--remit",
            "remit.toml",
            "--agent",
            "calls_agent:AGENT",
            "--journal",
            "j.db",
        ],
        cwd=str(tmp_path),
    )
    with (tmp_path / "server.err").open("w") as errlog:
        async with stdio_client(params, errlog) as (read, write), ClientSession(read, write) as s:
            await s.initialize()
            yield s


def structured(result: Any) -> Any:
    assert not result.is_error, result.content
    return result.structured_content


def test_delegate_runs_a_journaled_tree_that_status_and_show_read_back(tmp_path: Path) -> None:
    async def main() -> tuple[Any, ...]:
        async with served(tmp_path) as s:
            names = sorted(t.name for t in (await s.list_tools()).tools)
            progress: list[float] = []

            async def on_progress(done: float, total: float | None, message: str | None) -> None:
                progress.append(done)

            answer = structured(await s.call_tool(
                "delegate",
                {"goal": "add up", "inputs": {"expressions": ["1+2", "2*" * 20 + "2"]}},
                progress_callback=on_progress,
            ))  # fmt: skip
            status = structured(await s.call_tool("status", {"run_id": answer["run_id"]}))
            shown = structured(await s.call_tool("show", {"run_id": answer["run_id"]}))
            return names, answer, status, shown, progress

    names, answer, status, shown, progress = anyio.run(main)
    assert progress and progress == sorted(progress)  # tasks done, reported as they end
    assert names == ["delegate", "show", "status"]
    assert answer["status"] == "done", answer
    # the long expression breaks the server's max_len: denied by the Gate, not computed
    assert answer["result"] == [3, "DENIED"]
    assert answer["spent"] == {"calls": 1} and answer["budget"] == {"calls": 10}
    assert answer["verify"].startswith(f"remit verify {answer['run_id']}")
    assert status["status"] == "done" and status["tasks"] == {"done": 1}
    assert shown["run"]["id"] == answer["run_id"] and shown["run"]["result"] == [3, "DENIED"]
    # it is an ordinary run in the server's journal, under the server's remit exactly
    store = open_journal(tmp_path / "j.db")
    rec = store.get_run(answer["run_id"])
    assert Remit.from_json(rec.remit) == Remit.load(tmp_path / "remit.toml")
    assert verify_run(store, answer["run_id"]).ok
    store.close()


def test_a_client_can_narrow_the_remit_and_the_narrowing_holds(tmp_path: Path) -> None:
    async def main() -> Any:
        async with served(tmp_path) as s:
            return structured(await s.call_tool("delegate", {
                "goal": "add up",
                "inputs": {"expressions": ["1+2", "3+4", "40+2"]},
                "remit": {"tools": {"calculator": {"expression": {"max_len": 3}}},
                          "budget": {"calls": 2}, "depth": 0},
            }))  # fmt: skip

    answer = anyio.run(main)
    # "40+2" breaks the client's max_len 3 (the server allows 20)
    assert answer["result"] == [3, 7, "DENIED"], answer
    store = open_journal(tmp_path / "j.db")
    recorded = Remit.from_json(store.get_run(answer["run_id"]).remit)
    server = Remit.load(tmp_path / "remit.toml")
    assert recorded.budget.calls == 2 and recorded.depth == 0
    assert not recorded.allows("calculator", {"expression": "40+2"})
    assert server.allows("calculator", {"expression": "40+2"})
    store.close()


@pytest.mark.parametrize(
    ("asked", "dimension"),
    [
        ({"tools": ["read_file"]}, "tools.read_file"),
        ({"budget": {"calls": 11}}, "budget.calls"),
        ({"depth": 3}, "depth"),
        ({"principal": "mallory"}, "principal"),
    ],
)
def test_a_wider_ask_is_refused_before_anything_runs(
    tmp_path: Path, asked: dict[str, Any], dimension: str
) -> None:
    server = RemitServer(Remit.from_toml(REMIT), journal=tmp_path / "j.db")

    async def main() -> Any:
        return await server.delegate("add up", asked, inputs={"expressions": ["1+1"]})

    from remit.errors import RemitError

    with pytest.raises(RemitError) as e:
        anyio.run(main)
    assert e.value.code == "REMIT_WIDENING"
    assert dimension in e.value.message
    assert not (tmp_path / "j.db").exists()  # no run was recorded


def test_errors_reach_the_client_as_tool_errors(tmp_path: Path) -> None:
    async def main() -> list[Any]:
        async with served(tmp_path) as s:
            return [
                await s.call_tool("delegate", {"goal": "x", "remit": {"budget": {"calls": 99}}}),
                await s.call_tool("delegate", {"goal": "x", "remit": {"color": "red"}}),
                await s.call_tool("status", {"run_id": "no-such-run"}),
                await s.call_tool(
                    "delegate",
                    {
                        "goal": "add",
                        "inputs": {"expressions": ["1+1"]},
                        "output_schema": {"type": "object"},
                    },
                ),
            ]

    wider, unknown, missing, off_schema = anyio.run(main)
    assert wider.is_error and "budget.calls" in wider.content[0].text
    assert unknown.is_error and "remit.color: unknown field" in unknown.content[0].text
    assert missing.is_error and "no-such-run" in missing.content[0].text
    # a result off the client's schema fails the run, and says so
    answer = structured(off_schema)
    assert answer["status"] == "failed" and answer["error"]["code"], answer
    assert json.dumps(answer["result"]) == "null"


def test_a_relative_deadline_in_the_file_counts_from_each_delegation(tmp_path: Path) -> None:
    import time

    (tmp_path / "remit.toml").write_text('deadline = "1h"\n' + REMIT)
    server = RemitServer(tmp_path / "remit.toml", journal=tmp_path / "j.db")
    first = server.narrowed(None).deadline
    time.sleep(0.05)
    later = server.narrowed({"budget": {"calls": 1}}).deadline
    assert first is not None and later is not None
    assert later - first >= 0.04 and abs(later - (time.time() + 3600)) < 1


def test_module_examples() -> None:
    import doctest

    from remit.serve import mcp as module

    assert doctest.testmod(module).failed == 0
