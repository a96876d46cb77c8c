"""MCP servers' tools under the Gate: real server processes over stdio; a denied call
never reaches the server (the server's own log says so); a recorded call is served from
the journal on resume, not sent again; a signed run's MCP calls verify offline."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from remit import Agent, Remit, Runtime, one_of
from remit.errors import DeniedError, ToolServerError
from remit.tools.mcp import McpServer
from remit.trust.provenance import verify_run

pytestmark = pytest.mark.mcp

HERE = Path(__file__).resolve().parent
TIME = McpServer("time", command=[sys.executable, "-m", "mcp_server_time"])


def counter(log: Path) -> McpServer:
    return McpServer(
        "calc",
        command=[sys.executable, str(HERE / "mcp_counter.py")],
        env={"COUNTER_LOG": str(log)},
    )


class Caller(Agent):
    """Makes the calls in ``ctx.inputs["calls"]``; a denial is part of the result."""

    async def execute(self, ctx: Any) -> Any:
        out: list[Any] = []
        for name, args in ctx.inputs["calls"]:
            try:
                out.append(await ctx.call(name, **args))
            except DeniedError as e:
                out.append(e.code)
        return out


def test_a_real_mcp_server_tool_is_called_through_the_gate(tmp_path: Path) -> None:
    rt = Runtime(journal=tmp_path / "j.db", agent=Caller(), mcp=[TIME], durability="normal")
    remit = Remit(tools={"time.get_current_time": {"timezone": one_of("UTC", "Europe/Paris")}})
    calls = [["time.get_current_time", {"timezone": "UTC"}],
             ["time.get_current_time", {"timezone": "Asia/Tokyo"}]]  # fmt: skip
    run = rt.run("what time is it", remit=remit, inputs={"calls": calls}, run_id="r")
    assert run.ok, run.error
    now, denied = run.result
    assert now["timezone"] == "UTC" and "datetime" in now
    assert denied == "DENIED"
    rows = [s for s in rt.store.steps("r") if s.kind == "tool"]
    assert [(s.name, s.status) for s in rows] == [
        ("time.get_current_time", "ok"),
        ("time.get_current_time", "denied"),
    ]
    report = verify_run(rt.store, "r")
    assert report.ok, report.failures
    rt.close()


def test_a_denied_call_never_reaches_the_server(tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    rt = Runtime(journal=tmp_path / "j.db", agent=Caller(), mcp=[counter(log)],
                 durability="normal")  # fmt: skip
    remit = Remit(tools={"calc.add": {"a": one_of(1, 2)}})
    calls = [["calc.add", {"a": 1, "b": 2}], ["calc.add", {"a": 9, "b": 9}]]
    run = rt.run("add", remit=remit, inputs={"calls": calls}, run_id="r")
    assert run.result == [{"result": 3}, "DENIED"]  # the SDK's server wraps a bare int
    assert [json.loads(line) for line in log.read_text().splitlines()] == [{"a": 1, "b": 2}]
    rt.close()


def test_a_recorded_call_is_not_sent_again_on_resume(tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    crash = {"armed": True}

    class CallThenCrash(Agent):
        async def execute(self, ctx: Any) -> Any:
            first = await ctx.call("calc.add", a=1, b=2)
            if crash["armed"]:
                crash["armed"] = False
                raise KeyboardInterrupt  # the process dies after the call's result
            return [first, await ctx.call("calc.add", a=2, b=2)]

    remit = Remit(tools={"calc.add": {}})
    rt = Runtime(journal=tmp_path / "j.db", agent=CallThenCrash(), mcp=[counter(log)],
                 durability="normal")  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        rt.run("add", remit=remit, run_id="r")
    rt.close()
    rt = Runtime(journal=tmp_path / "j.db", agent=CallThenCrash(), mcp=[counter(log)],
                 durability="normal")  # fmt: skip
    run = rt.resume("r")
    assert run.ok and run.result == [{"result": 3}, {"result": 4}]
    # the server saw the first call once: the resume was served it from the journal
    assert [json.loads(line) for line in log.read_text().splitlines()] == [
        {"a": 1, "b": 2},
        {"a": 2, "b": 2},
    ]
    rt.close()


KILLED = """
import sys
from remit import Remit, Runtime
from remit.core.faults import FaultPlan
from remit.tools.mcp import McpServer
from tests.tools.mcp_kill import AddThenMore

journal, log, here = sys.argv[1:]
server = McpServer("calc", command=[sys.executable, here + "/mcp_counter.py"],
                   env={"COUNTER_LOG": log})
plan = FaultPlan.from_dict({"fault": [{"type": "process_kill", "tool": "calculator"}]})
rt = Runtime(journal=journal, agent=AddThenMore(), mcp=[server], faults=plan)
rt.run("add", remit=Remit(tools={"calc.add": {}, "calculator": {}}), run_id="r")
"""


def test_kill_9_after_an_mcp_result_then_resume_the_server_sees_the_call_once(
    tmp_path: Path,
) -> None:
    import os
    import subprocess

    log, journal = tmp_path / "calls.log", tmp_path / "j.db"
    child = subprocess.run(
        [sys.executable, "-c", KILLED, str(journal), str(log), str(HERE)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=HERE.parents[1],  # tests.tools.mcp_kill importable
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert child.returncode == -9, child.stderr  # SIGKILL, by the fault plan
    assert len(log.read_text().splitlines()) == 1
    from tests.tools.mcp_kill import AddThenMore

    rt = Runtime(journal=journal, agent=AddThenMore(), mcp=[counter(log)])
    run = rt.resume("r")
    rt.close()
    assert run.ok, run.error
    assert run.result == [{"result": 3}, 4]
    assert len(log.read_text().splitlines()) == 1  # served from the journal, not sent again


def test_a_streamable_http_server_on_localhost(tmp_path: Path) -> None:
    import os
    import socket
    import subprocess
    import time

    log = tmp_path / "calls.log"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "mcp_counter.py"), "--http", str(port)],
        env={**os.environ, "COUNTER_LOG": str(log)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        end = time.monotonic() + 30
        while time.monotonic() < end:  # until the server listens
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        server = McpServer("calc", url=f"http://127.0.0.1:{port}/mcp")
        rt = Runtime(journal=tmp_path / "j.db", agent=Caller(), mcp=[server],
                     durability="normal")  # fmt: skip
        calls = [["calc.add", {"a": 1, "b": 2}], ["calc.add", {"a": 5, "b": 5}]]
        remit = Remit(tools={"calc.add": {"a": one_of(1, 2)}})
        run = rt.run("add", remit=remit, inputs={"calls": calls}, run_id="r")
        rt.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert run.result == [{"result": 3}, "DENIED"]
    assert [json.loads(line) for line in log.read_text().splitlines()] == [{"a": 1, "b": 2}]


def test_arguments_are_checked_against_the_servers_schema(tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    rt = Runtime(journal=tmp_path / "j.db", agent=Caller(), mcp=[counter(log)],
                 durability="normal")  # fmt: skip

    class Bad(Agent):
        async def execute(self, ctx: Any) -> Any:
            try:
                await ctx.call("calc.add", a="one", b=2)
            except Exception as e:
                return getattr(e, "code", type(e).__name__)

    rt.agent = Bad()
    run = rt.run("add", remit=Remit(tools={"calc.add": {}}), run_id="r")
    assert run.result == "TOOL_ARGUMENTS"
    assert not log.exists()
    rt.close()


def test_a_server_that_cannot_start_is_a_clear_error(tmp_path: Path) -> None:
    broken = McpServer("nope", command=[sys.executable, "-c", "raise SystemExit(3)"], timeout_s=5)
    rt = Runtime(journal=tmp_path / "j.db", agent=Caller(), mcp=[broken], durability="normal")
    with pytest.raises(ToolServerError, match="MCP server 'nope'"):
        rt.run("x", remit=Remit(), inputs={"calls": []}, run_id="r")
    rt.close()


def test_a_resume_reconnects_to_the_servers_the_run_recorded(tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    crash = {"armed": True}

    class CallCrashCall(Agent):
        async def execute(self, ctx: Any) -> Any:
            first = await ctx.call("calc.add", a=1, b=1)
            if crash["armed"]:
                crash["armed"] = False
                raise KeyboardInterrupt
            return [first, await ctx.call("calc.add", a=3, b=3)]

    # the log's path rides in the command line (env is not recorded: it may hold secrets)
    server = McpServer(
        "calc",
        command=[sys.executable, str(HERE / "mcp_counter.py")],
        env={"COUNTER_LOG": str(log)},
    )
    rt = Runtime(journal=tmp_path / "j.db", agent=CallCrashCall(), mcp=[server],
                 durability="normal")  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        rt.run("add", remit=Remit(tools={"calc.add": {}}), run_id="r")
    rt.close()
    meta = json.loads(Runtime(journal=tmp_path / "j.db").store.get_run("r").meta or "{}")
    assert meta["mcp"] == {
        "calc": {"timeout": 30.0, "command": [sys.executable, str(HERE / "mcp_counter.py")]}
    }
    # no servers given: the resume starts the recorded ones (with COUNTER_LOG from here)
    import os

    os.environ["COUNTER_LOG"] = str(log)
    try:
        rt = Runtime(journal=tmp_path / "j.db", agent=CallCrashCall(), durability="normal")
        run = rt.resume("r")
        rt.close()
    finally:
        del os.environ["COUNTER_LOG"]
    assert run.ok and run.result == [{"result": 2}, {"result": 6}]
    assert len(log.read_text().splitlines()) == 2


def test_remit_run_mcp_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from remit.cli import app

    (tmp_path / "caller.py").write_text(
        "from remit import Agent\n"
        "class Caller(Agent):\n"
        "    async def execute(self, ctx):\n"
        "        return await ctx.call('time.get_current_time', timezone='UTC')\n"
        "AGENT = Caller()\n"
    )
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(
        app,
        ["run", "what time is it", "--agent", "caller:AGENT", "--tool", "time.get_current_time",
         "--mcp", f"time={sys.executable} -m mcp_server_time", "-j", "j.db", "--run-id", "r",
         "-q"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    shown = json.loads(CliRunner().invoke(app, ["show", "r", "-j", "j.db", "--json"]).output)
    assert shown["run"]["result"]["timezone"] == "UTC"
    bad = CliRunner().invoke(app, ["run", "x", "--agent", "caller:AGENT", "--mcp", "nonsense"])
    assert bad.exit_code == 2 and "expected NAME=COMMAND or NAME=URL" in bad.output


def test_a_remit_file_declares_its_servers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from remit.cli import app

    # the server's log path reaches it only through the file's env table
    log = tmp_path / "calls.log"
    (tmp_path / "remit.toml").write_text(
        '[tools."calc.add"]\na = { between = [0, 9] }\n'
        "[mcp.calc]\n"
        f"command = {json.dumps([sys.executable, str(HERE / 'mcp_counter.py')])}\n"
        f"env = {{ COUNTER_LOG = {json.dumps(str(log))} }}\n"
        "timeout = 20\n"
    )
    (tmp_path / "adder.py").write_text(
        "from remit import Agent\n"
        "from remit.errors import DeniedError\n"
        "class Adder(Agent):\n"
        "    async def execute(self, ctx):\n"
        "        ok = await ctx.call('calc.add', a=2, b=3)\n"
        "        try:\n"
        "            await ctx.call('calc.add', a=20, b=3)\n"
        "        except DeniedError as e:\n"
        "            return [ok, e.code]\n"
        "AGENT = Adder()\n"
    )
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(
        app, ["run", "add", "--agent", "adder:AGENT", "--remit", "remit.toml", "-j", "j.db",
              "--run-id", "r", "-q"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    shown = json.loads(CliRunner().invoke(app, ["show", "r", "-j", "j.db", "--json"]).output)
    assert shown["run"]["result"] == [{"result": 5}, "DENIED"]
    assert [json.loads(line) for line in log.read_text().splitlines()] == [{"a": 2, "b": 3}]
    # --mcp NAME=... replaces the file's server of that name
    r = CliRunner().invoke(
        app, ["run", "add", "--agent", "adder:AGENT", "--remit", "remit.toml", "-j", "j.db",
              "--mcp", "calc=http://127.0.0.1:9/mcp", "-q"],
    )  # fmt: skip
    assert r.exit_code == 2 and "MCP server 'calc' (http://127.0.0.1:9/mcp)" in r.output
    (tmp_path / "bad.toml").write_text("[mcp.calc]\ncommand = 'x'\nport = 1\n")
    r = CliRunner().invoke(app, ["run", "x", "--agent", "adder:AGENT", "--remit", "bad.toml"])
    assert r.exit_code == 2 and "bad.toml: mcp.calc.port: unknown field" in r.output


def test_module_examples() -> None:
    import doctest

    from remit.tools import mcp as mcp_module

    assert doctest.testmod(mcp_module).failed == 0
