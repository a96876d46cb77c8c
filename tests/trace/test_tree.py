"""The task tree of a run, rebuilt from the journal alone (remit.trace.tree)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from remit import Agent, Budget, Plan, Remit, Runtime, Subtask, within
from remit.core.tasks import ROOT, task_id
from remit.journal import RunRecord, StepRecord
from remit.tools import tool
from remit.trace import build, load, render
from remit.trace.tree import format_seconds, format_spend, plural


def text_of(renderable: Any, width: int = 160) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


@tool
def flaky(n: int) -> int:
    """Fails on 13, else doubles."""
    if n == 13:
        raise ValueError("13 is unlucky")
    return 2 * n


class Fanout(Agent):
    """Root plans one child per number; children double it with ``flaky``; the child
    for 7 also tries to read a file it was not granted."""

    tools = [flaky]

    def atomize(self, ctx: Any) -> str:
        return "plan" if "ns" in ctx.inputs else "execute"

    def plan(self, ctx: Any) -> Plan:
        return Plan(
            [Subtask(f"n{n}", f"double {n}", inputs={"n": n}, output_schema={"type": "integer"},
                     remit={"tools": {"flaky": {}}, "budget": {"calls": 2}})
             for n in ctx.inputs["ns"]],
            on_failure="aggregate",
        )  # fmt: skip

    async def execute(self, ctx: Any) -> int:
        if ctx.inputs["n"] == 7:
            with contextlib.suppress(Exception):
                await ctx.call("read_file", path="secrets.txt")
        return await ctx.call("flaky", n=ctx.inputs["n"])

    def aggregate(self, ctx: Any, results: Any) -> int:
        return sum(r.value for r in results if r.ok)


def root_remit() -> Remit:
    return Remit(tools={"flaky": {}, "read_file": {"path": within("docs/")}},
                 budget=Budget(calls=20), deadline="1m", depth=1)  # fmt: skip


@pytest.fixture
def fanout_run(tmp_path: Path) -> tuple[Runtime, str]:
    rt = Runtime(journal=tmp_path / "j.db", agent=Fanout(), workspace=tmp_path,
                 durability="normal")  # fmt: skip
    run = rt.run("double some numbers", remit=root_remit(), inputs={"ns": [1, 7, 13]})
    assert run.status == "done" and run.result == 2 + 14
    return rt, run.id


def test_tree_of_a_real_run(fanout_run: tuple[Runtime, str]) -> None:
    rt, run_id = fanout_run
    tree = load(rt.store, run_id)
    root = tree.root
    assert (root.goal, root.status, root.decision) == ("double some numbers", "done", "plan")
    assert root.budget is not None and root.budget.calls == 20
    assert root.spent.calls == 3  # 1 and 7 doubled; 13 raised (a call is still spent)
    assert [c.key for c in root.children] == ["n1", "n7", "n13"]
    assert [c.goal for c in root.children] == ["double 1", "double 7", "double 13"]
    assert [c.status for c in root.children] == ["done", "done", "failed"]
    for c in root.children:
        # each child's remit is the narrowed one: one tool, two calls, no depth
        assert c.budget is not None and c.budget.calls == 2
        assert c.depth_left == 0 and c.forced and c.decision == "execute"
        assert c.remit is not None and list(c.remit.tools) == ["flaky"]
        assert c.seconds is not None and c.seconds >= 0
    n7, n13 = root.children[1], root.children[2]
    # the denied call is listed under the task that made it, with the reason
    assert len(n7.denied) == 1 and not root.denied
    d = n7.denied[0]
    assert (d.kind, d.name, d.code, d.args) == ("tool", "read_file", "DENIED",
                                                {"path": "secrets.txt"})  # fmt: skip
    assert "tool not granted" in d.reason
    assert root.subtree_denied == 1
    # the failed child carries its error code and message
    assert n13.error is not None and n13.error["code"] == "STEP_FAILED"
    assert "13 is unlucky" in n13.error["message"]
    assert root.subtree_failed == 1
    assert tree.counts() == {"done": 3, "failed": 1}
    assert tree.tasks == 4


def test_render_shows_status_decision_spend_denials_and_errors(
    fanout_run: tuple[Runtime, str],
) -> None:
    rt, run_id = fanout_run
    text = text_of(render(load(rt.store, run_id)))
    assert f"run {run_id}" in text
    assert "double some numbers  plan  3/20 calls" in text
    assert "double 1  execute  1/2 calls" in text
    assert (
        "denied read_file: tool not granted" in text
        and "DENIED" not in text
        and "read_file: tool not granted" in text
    )
    assert "STEP_FAILED" in text and "13 is unlucky" in text


def test_json_form(fanout_run: tuple[Runtime, str]) -> None:
    rt, run_id = fanout_run
    data = json.loads(json.dumps(load(rt.store, run_id).to_dict()))
    assert data["run"]["id"] == run_id and data["run"]["status"] == "done"
    assert data["run"]["result"] == 16
    assert data["summary"]["tasks"] == 4 and data["summary"]["denied"] == 1
    assert data["summary"]["by_status"] == {"done": 3, "failed": 1}
    tree = data["tree"]
    assert tree["decision"] == "plan" and tree["budget"] == {"calls": 20}
    kids = tree["children"]
    assert [k["key"] for k in kids] == ["n1", "n7", "n13"]
    assert kids[1]["denied"][0]["name"] == "read_file"
    assert kids[2]["error"]["code"] == "STEP_FAILED"
    assert kids[0]["tools"] == {"flaky": {}}


# --- synthetic journals --------------------------------------------------------------


def steps_for_fanout(run_id: str, goal: str, n: int, *, finished: int, fail: set[int] = frozenset(),
                     denied: set[int] = frozenset()) -> list[StepRecord]:  # fmt: skip
    """Step records of a root that planned ``n`` leaves, of which ``finished`` ended."""
    root = task_id(ROOT, 0, goal)
    plan = {"subtasks": [{"key": f"k{i}", "goal": f"leaf {i}",
                          "remit": {"budget": {"calls": 1}}} for i in range(n)],
            "on_failure": "aggregate"}  # fmt: skip
    out = [
        StepRecord(run_id, f"{root}:atomize", root, 0, "atomize", "atomize", "ok", None,
                   '"plan"', started_at=1.0, ended_at=1.0),
        StepRecord(run_id, f"{root}:plan", root, 0, "plan", "plan", "ok", None,
                   json.dumps(plan), started_at=1.0, ended_at=1.1),
    ]  # fmt: skip
    for i in range(finished):
        tid = task_id(root, i, f"leaf {i}")
        if i in denied:
            out.append(StepRecord(run_id, f"{tid}:execute.0", tid, 0, "tool", "fetch", "denied",
                                  '{"url": "http://x"}', None,
                                  '{"code": "DENIED", "message": "fetch: tool not granted"}',
                                  None, 2.0, 2.0))  # fmt: skip
        ok = i not in fail
        out.append(StepRecord(run_id, f"{tid}:end", tid, 1_000_000, "task",
                              "done" if ok else "failed", "ok" if ok else "error", None,
                              "1" if ok else None,
                              None if ok else '{"code": "BOOM", "message": "it broke"}',
                              '{"calls": 1}', 2.0, 2.5))  # fmt: skip
    return out


def test_interrupted_run_knows_pending_children_from_the_plan() -> None:
    run = RunRecord("r1", "many leaves", "m:a", Remit(budget=Budget(calls=50), depth=1).to_json())
    tree = build(run, steps_for_fanout("r1", "many leaves", 10, finished=4))
    assert tree.tasks == 11
    assert tree.counts() == {"done": 4, "pending": 6, "running": 1}
    assert tree.root.status == "running"
    assert tree.root.spent.calls == 4  # the children's ends, summed
    leaf = tree.root.children[5]
    assert (leaf.key, leaf.goal, leaf.status) == ("k5", "leaf 5", "pending")
    assert leaf.budget is not None and leaf.budget.calls == 1


def test_finished_run_marks_unstarted_children_cancelled() -> None:
    run = RunRecord("r1", "g", "m:a", Remit(depth=1).to_json(), status="failed")
    tree = build(run, steps_for_fanout("r1", "g", 3, finished=1))
    assert [c.status for c in tree.root.children] == ["done", "cancelled", "cancelled"]


def test_big_fanout_collapses_keeping_failed_and_denied_children() -> None:
    n = 1300
    run = RunRecord("r1", "big", "m:a", Remit(depth=1).to_json())
    steps = steps_for_fanout("r1", "big", n, finished=n, fail={1200}, denied={1250})
    tree = build(run, steps)
    assert tree.tasks == n + 1
    text = text_of(render(tree, max_children=10))
    assert "… and 1,290 more (1,290 done)" in text
    # failed and denied children are shown even though they come late
    assert "leaf 1200" in text and "BOOM: it broke" in text
    assert "leaf 1250" in text and "fetch: tool not granted" in text
    assert "leaf 0" in text and "leaf 500" not in text
    everything = text_of(render(tree, max_children=None), width=200)
    assert "leaf 500" in everything and "more (" not in everything


def test_replanned_child_is_shown_with_its_new_goal(tmp_path: Path) -> None:
    class Replanner(Agent):
        tools = [flaky]

        def atomize(self, ctx: Any) -> str:
            return "plan" if ctx.depth == 0 else "execute"

        def plan(self, ctx: Any) -> Plan:
            return Plan([Subtask("x", "double 13", inputs={"n": 13})], on_failure="replan")

        async def execute(self, ctx: Any) -> int:
            return await ctx.call("flaky", n=ctx.inputs["n"])

        def replan(self, ctx: Any, failed: Any) -> Subtask:
            return Subtask("x", "double 12 instead", inputs={"n": 12})

        def aggregate(self, ctx: Any, results: Any) -> Any:
            return [r.value for r in results]

    rt = Runtime(journal=tmp_path / "j.db", agent=Replanner(), durability="normal")
    run = rt.run("replan", remit=Remit(tools={"flaky": {}}, depth=1))
    assert run.status == "done", run.error
    tree = load(rt.store, run.id)
    kids = tree.root.children
    assert [(c.goal, c.status, c.attempt) for c in kids] == [
        ("double 13", "failed", 0), ("double 12 instead", "done", 1)]  # fmt: skip
    assert "re-planned" in text_of(render(tree))


def test_formatting_helpers() -> None:
    from remit.core.ledger import Usage

    assert format_seconds(None) == "-"
    assert format_seconds(0.012) == "12 ms"
    assert format_seconds(3.44) == "3.4 s"
    assert format_seconds(125) == "2 m 05 s"
    assert format_spend(Usage(calls=3), Budget(calls=10)) == "3/10 calls"
    assert format_spend(Usage(), None) == "nothing spent"
    assert "$0.0100/$0.50" in format_spend(Usage(cost_usd=0.01), Budget(cost_usd=0.5))
    assert plural(1, "task") == "1 task" and plural(1290, "task") == "1,290 tasks"


def test_the_tree_says_what_model_roles_decided(tmp_path: Path) -> None:
    """A model-driven agent decides in words: the atomizer's answer and each result's
    summary show beneath the task, so the tree reads as what each role decided."""
    from remit import ScriptedModel

    class Talker(Agent):
        async def atomize(self, ctx: Any) -> str:
            c = await ctx.complete([{"role": "user", "content": "how many steps?"}])
            return "plan" if json.loads(c.content)["steps"] > 1 else "execute"

        def plan(self, ctx: Any) -> Plan:
            return Plan([Subtask("a", "read a"), Subtask("b", "read b")])

        def execute(self, ctx: Any) -> Any:
            return {"summary": f"{ctx.goal}:   done\n well"}

        def aggregate(self, ctx: Any, results: Any) -> Any:
            return {"overview": "two reads", "n": len(results)}

    model = ScriptedModel(lambda _: '{"steps": 2}')
    rt = Runtime(journal=tmp_path / "j.db", agent=Talker(), model=model, workspace=tmp_path)
    run = rt.run("read two", remit=Remit(budget=Budget(calls=5), depth=1), run_id="r")
    assert run.ok, run.error
    tree = load(rt.store, "r")
    assert tree.root.said == ['atomizer said {"steps": 2}', "overview: two reads"]
    assert [c.said for c in tree.root.children] == [["summary: read a: done well"],
                                                    ["summary: read b: done well"]]  # fmt: skip
    text = text_of(render(tree))
    assert text.index('atomizer said {"steps": 2}') < text.index("read a")
    assert tree.root.to_dict()["children"][0]["said"] == ["summary: read a: done well"]
