"""``remit invalidate`` and ``remit show --lineage``, as a person runs them: real
subprocesses on a real journal file; exit code 2 and one line for what was wrong."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from remit.core.tasks import ROOT, task_id
from remit.journal import open_journal
from remit.journal.lease import RunLease

AGENTS = '''
from remit import Agent, Plan, Subtask, tool


@tool
def note(tag: str) -> str:
    """Append the tag to calls.log (so a test can count real executions)."""
    with open("calls.log", "a") as f:
        f.write(tag + "\\n")
    return tag


class Diamond(Agent):
    tools = [note]

    def atomize(self, ctx):
        return "plan" if ctx.depth == 0 else "execute"

    def plan(self, ctx):
        return Plan([Subtask("a", "A"), Subtask("b", "B", deps=("a",)),
                     Subtask("c", "C", deps=("a",)), Subtask("d", "D", deps=("b", "c"))])

    async def execute(self, ctx):
        return await ctx.call("note", tag=ctx.goal)

    def aggregate(self, ctx, results):
        return "".join(r.value for r in results)
'''

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "docs" / "schemas" / "lineage.json").read_text()
)
GOAL = "diamond"
ROOT_ID = task_id(ROOT, 0, GOAL)
B = task_id(ROOT_ID, 1, "B")


def remit_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "remit.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": "200"})  # fmt: skip


@pytest.fixture
def ran(tmp_path: Path) -> Path:
    """A finished, sealed diamond run ``r1`` in ``tmp_path/j.db``."""
    (tmp_path / "agents.py").write_text(AGENTS)
    done = remit_cli("run", GOAL, "--agent", "agents:Diamond", "--tool", "note", "--depth", "1",
                     "--run-id", "r1", "-j", "j.db", "-q", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    (tmp_path / "calls.log").unlink()
    return tmp_path


def test_invalidate_then_resume_reruns_the_dependents_and_the_run_verifies(ran: Path) -> None:
    got = remit_cli("invalidate", "r1", f"{B}:execute.0", "--why", "wrong B", "--by", "ana",
                    "-j", "j.db", cwd=ran)  # fmt: skip
    assert got.returncode == 0, got.stderr
    assert "generation 1" in got.stdout and "remit resume r1" in got.stdout
    tree = remit_cli("show", "r1", "-j", "j.db", cwd=ran).stdout
    assert "invalidated" in tree and "by ana: wrong B" in tree and "remit resume r1" in tree

    view = json.loads(remit_cli("show", "r1", "--lineage", B, "--json", "-j", "j.db",
                                cwd=ran).stdout)  # fmt: skip
    assert view["step"]["step"] == f"{B}:end" and view["step"]["state"] == "invalidated"
    assert {e["via"] for e in view["upstream"]} >= {"call", "inputs", "dep a"}
    down = {e["step"] for e in view["downstream"]}
    d = task_id(ROOT_ID, 3, "D")  # D needs B; the root's aggregate reads both
    assert down == {f"{d}:execute.0", f"{d}:end", f"{ROOT_ID}:aggregate", f"{ROOT_ID}:end"}
    assert view["invalidations"][0]["by"] == "ana"
    jsonschema.validate(view, SCHEMA)

    resumed = remit_cli("resume", "r1", "-j", "j.db", "-q", cwd=ran)
    assert resumed.returncode == 0, resumed.stderr
    assert sorted((ran / "calls.log").read_text().split()) == ["B", "D"]

    after = json.loads(remit_cli("show", "r1", "--lineage", B, "--json", "-j", "j.db",
                                 cwd=ran).stdout)  # fmt: skip
    assert after["step"]["state"] == "re-run" and after["step"]["id"] == f"{B}:end#1"
    jsonschema.validate(after, SCHEMA)
    drawn = remit_cli("show", "r1", "--lineage", f"{B}:execute.0", "-j", "j.db", cwd=ran)
    assert drawn.returncode == 0 and "depends on it" in drawn.stdout and "re-run #1" in drawn.stdout
    verified = remit_cli("verify", "r1", "-j", "j.db", cwd=ran)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_step_the_run_does_not_have_exits_2_naming_it(ran: Path) -> None:
    got = remit_cli("invalidate", "r1", f"{B}:execute.4", "--why", "x", "-j", "j.db", cwd=ran)
    assert got.returncode == 2
    assert f"cannot invalidate '{B}:execute.4'" in got.stderr and "no such step" in got.stderr
    shown = remit_cli("show", "r1", "--lineage", "t.0.nope", "-j", "j.db", cwd=ran)
    assert shown.returncode == 2 and "has no step 't.0.nope'" in shown.stderr
    resumed = remit_cli("resume", "r1", "-j", "j.db", "-q", cwd=ran)
    assert resumed.returncode == 0 and not (ran / "calls.log").exists()  # nothing to redo


def test_a_run_another_process_carries_exits_2_naming_the_holder(ran: Path) -> None:
    store = open_journal(ran / "j.db")
    lease = RunLease(store, "r1")
    lease.acquire()  # this test's process: alive, and not the CLI's
    try:
        got = remit_cli("invalidate", "r1", B, "--why", "x", "-j", "j.db", cwd=ran)
    finally:
        lease.release()
        store.close()
    assert got.returncode == 2
    assert "RUN_LEASED" in got.stderr and str(os.getpid()) in got.stderr
    runs = json.loads(remit_cli("runs", "--json", "-j", "j.db", cwd=ran).stdout)["runs"]
    assert runs[0]["status"] == "done"  # untouched
