"""``remit run --faults/--routes`` and ``remit resume --faults``: the files are read with
errors that name them, the plan strikes, the routes route, and show draws it all."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from remit.cli import app

runner = CliRunner()

AGENT = """
from remit import Agent, tool


@tool
def fetch_a(key: int) -> int:
    return key * 10


@tool
def fetch_b(key: int) -> int:
    return key * 10


class Fetcher(Agent):
    tools = [fetch_a, fetch_b]

    async def execute(self, ctx):
        return await ctx.call("fetch", key=4)


AGENT = Fetcher()
"""


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "fetcher.py").write_text(AGENT)
    (tmp_path / "routes.toml").write_text("[routes.fetch]\nfetch_a = 1\nfetch_b = 2\n")
    (tmp_path / "plan.toml").write_text(
        textwrap.dedent("""
        seed = 1
        [[fault]]
        type = "tool_error"
        tool = "fetch_a"
        """)
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args: str) -> object:
    return runner.invoke(
        app,
        ["run", "fetch", "--agent", "fetcher:AGENT", "--tool", "fetch_a", "--tool", "fetch_b",
         "-j", "j.db", "--run-id", "r1", "-q", *args],
    )  # fmt: skip


def test_a_fault_plan_strikes_and_the_routes_carry_the_run(ws: Path) -> None:
    r = run("--routes", "routes.toml", "--faults", "plan.toml")
    assert r.exit_code == 0, r.output  # type: ignore[attr-defined]
    shown = runner.invoke(app, ["show", "r1", "-j", "j.db", "--json"])
    tree = json.loads(shown.output)
    events = tree["tree"]["events"]
    assert [e["kind"] for e in events] == ["fault", "reroute"]
    assert events[1]["text"].startswith("rerouted fetch_a → fetch_b after STEP_FAILED")
    drawn = runner.invoke(app, ["show", "r1", "-j", "j.db"]).output
    assert "⚡ injected tool_error at tool fetch_a" in drawn


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("plan.toml", '[[fault]]\ntype = "meteor"\n', "plan.toml: fault 1: type 'meteor'"),
        ("plan.toml", "[[fault]\n", "plan.toml: not valid TOML"),
        ("routes.toml", "[other]\n", "has no [routes] table"),
        ("routes.toml", "[routes.fetch]\nfetch_a = -1\n", "routes.fetch.fetch_a: cost"),
    ],
)
def test_a_bad_file_is_a_one_line_error_naming_it(
    ws: Path, name: str, text: str, message: str
) -> None:
    (ws / name).write_text(text)
    flag = "--faults" if name == "plan.toml" else "--routes"
    r = run(flag, name)
    assert r.exit_code == 2  # type: ignore[attr-defined]
    assert message in r.output  # type: ignore[attr-defined]
    assert (
        not (ws / "j.db").exists() or "r1" not in runner.invoke(app, ["runs", "-j", "j.db"]).output
    )  # nothing was recorded


def test_a_missing_plan_file_names_it(ws: Path) -> None:
    r = run("--faults", "nowhere.toml")
    assert r.exit_code == 2  # type: ignore[attr-defined]
    assert "nowhere.toml" in r.output  # type: ignore[attr-defined]
