"""The fault scenarios: task trees under injected failures, each with an oracle.

Shared by ``tests/faults`` (one test per scenario, asserting its outcome) and
``benchmarks/faults.py`` (every scenario, routed and against the baseline).

The workload is small and exact: every task fetches a value through the ``fetch``
capability (alternatives ``fetch_a`` 1, ``fetch_b`` 2, ``fetch_c`` 5: real tools,
async, with timeouts and retries) and asks the model to classify it (a scripted model:
it answers from the question, so a wrong answer is detectable). A task's value is what
it fetched plus the values of the tasks it depends on; the oracle computes the same
from the graph alone. Three shapes: a linear **pipeline**, a **dag** and a **fanout**.

Two modes on the same scenario and seed:

- ``routed``: the tasks call the capability ``fetch`` and the Gate routes around
  failures; a planner is asked again only when no route is left (escalation);
- ``baseline`` (retry then re-plan): the tasks call the tool their plan names, with
  the same retries; a failed task is re-planned by asking the model for another tool.

A **control-plane call** is a model call made to re-plan. A **silent failure** is a run
that says done with a result the oracle says is wrong or incomplete.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remit import Agent, Context, Plan, Remit, Runtime, Subtask, tool
from remit.core.faults import FaultPlan
from remit.core.tasks import ChildResult
from remit.errors import SchemaError
from remit.journal import open_journal
from remit.models import Message, ScriptedModel

ROUTES = {"fetch": {"fetch_a": 1, "fetch_b": 2, "fetch_c": 5}}
TOOLS_IN_ORDER = ("fetch_a", "fetch_b", "fetch_c")
#: the tool step timeout: an injected hang ends here
TOOL_TIMEOUT_S = 0.3

SHAPES: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "pipeline": {"s1": (), "s2": ("s1",), "s3": ("s2",), "s4": ("s3",)},
    "dag": {"a": (), "b": (), "c": ("a", "b"), "d": ("c",), "e": ("a",)},
    "fanout": {f"f{i}": () for i in range(8)},
}

CLASSIFY_SCHEMA = {
    "type": "object",
    "properties": {"key": {"type": "string"}, "parity": {"enum": ["even", "odd"]}},
    "required": ["key", "parity"],
    "additionalProperties": False,
}
REPLAN_SCHEMA = {
    "type": "object",
    "properties": {"tool": {"enum": list(TOOLS_IN_ORDER)}},
    "required": ["tool"],
}


def fetched(key: str) -> int:
    """What every fetch tool returns for ``key`` (they are mirrors of one source)."""
    return sum(ord(c) for c in key)


def oracle(shape: str) -> dict[str, int]:
    """The value of every task of ``shape``, from the graph alone."""
    out: dict[str, int] = {}
    for key, deps in SHAPES[shape].items():  # listed in dependency order
        out[key] = fetched(key) + sum(out[d] for d in deps)
    return out


def _fetch_tool(name: str) -> Any:
    async def fetch(key: str) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"key": key, "value": fetched(key), "via": name}

    fetch.__name__ = name
    return tool(name=name, timeout=TOOL_TIMEOUT_S, retries=2)(fetch)


FETCH_TOOLS = [_fetch_tool(n) for n in TOOLS_IN_ORDER]


def answer(messages: Sequence[Message]) -> str:
    """The scripted model: classifies a value, or names the next tool to try."""
    text = str(messages[-1].get("content", ""))
    m = re.search(r"classify key=(\S+) value=(-?\d+)", text)
    if m:
        return json.dumps({"key": m[1], "parity": "even" if int(m[2]) % 2 == 0 else "odd"})
    m = re.search(r"tool (\S+) failed", text)
    if m and m[1] in TOOLS_IN_ORDER:
        i = TOOLS_IN_ORDER.index(m[1])
        return json.dumps({"tool": TOOLS_IN_ORDER[min(i + 1, len(TOOLS_IN_ORDER) - 1)]})
    return json.dumps({"tool": TOOLS_IN_ORDER[0]})


class ScenarioAgent(Agent):
    """Plans the shape's tasks; each fetches and classifies; the root sums them up."""

    tools = FETCH_TOOLS

    def __init__(self, mode: str = "routed", shape: str = "pipeline", wall_s: float = 5.0):
        self.mode, self.shape, self.wall_s = mode, shape, wall_s

    def atomize(self, ctx: Context) -> str:
        return "execute" if "key" in ctx.inputs else "plan"

    def plan(self, ctx: Context) -> Plan:
        grant = {n: {} for n in TOOLS_IN_ORDER}
        subtasks = [
            Subtask(
                key,
                f"fetch and classify {key}",
                deps=deps,
                inputs={"key": key, "tool": TOOLS_IN_ORDER[0]},
                remit={
                    "tools": grant,
                    "budget": {"calls": 40, "wall_seconds": self.wall_s},
                    "depth": 0,
                },
            )
            for key, deps in SHAPES[self.shape].items()
        ]
        return Plan(subtasks, on_failure="replan")

    async def execute(self, ctx: Context) -> dict[str, Any]:
        key = str(ctx.inputs["key"])
        name = "fetch" if self.mode == "routed" else str(ctx.inputs["tool"])
        got = await ctx.call(name, key=key)
        if got.get("key") != key:
            raise SchemaError(f"fetch returned key {got.get('key')!r}, asked for {key!r}")
        value = int(got["value"]) + sum(int(v["value"]) for v in ctx.deps.values())
        parity = await self._classify(ctx, key, value)
        return {"key": key, "value": value, "parity": parity, "via": got.get("via")}

    async def _classify(self, ctx: Context, key: str, value: int) -> str:
        question = f"classify key={key} value={value}"
        messages: list[Message] = [{"role": "user", "content": question}]
        for _ in range(3):  # a wrong answer goes back to the model with the reason
            try:
                c = await ctx.complete(messages, schema=CLASSIFY_SCHEMA, max_tokens=32)
            except SchemaError as e:
                messages = [*messages, {"role": "user", "content": f"{e.message}; {question}"}]
                continue
            data = json.loads(c.content)
            if data["key"] == key:
                return str(data["parity"])
            why = f"you answered about {data['key']!r}, the question is about {key!r}"
            messages = [*messages, {"role": "user", "content": f"{why}; {question}"}]
        raise SchemaError(f"no answer about {key!r} after 3 questions")

    async def replan(self, ctx: Context, failed: ChildResult) -> Subtask:
        # the control-plane call: the model picks what to do with the failed branch
        m = re.search(r"(fetch_[abc])", str(failed.error or ""))
        tool_name = m[1] if m else TOOLS_IN_ORDER[0]
        c = await ctx.complete(
            [{"role": "user", "content": f"tool {tool_name} failed: {failed.error}"}],
            schema=REPLAN_SCHEMA,
            max_tokens=16,
        )
        nxt = json.loads(c.content)["tool"]
        return Subtask(failed.key, f"fetch and classify {failed.key} with {nxt}",
                       inputs={"key": failed.key, "tool": nxt})  # fmt: skip

    def aggregate(self, ctx: Context, results: list[ChildResult]) -> dict[str, Any]:
        values = {r.key: r.value["value"] for r in results if r.ok}
        failed = [r.key for r in results if not r.ok]
        if failed:
            raise SchemaError(f"subtasks failed: {', '.join(failed)}")
        return {"values": values, "total": sum(values.values())}


@dataclass(frozen=True)
class Scenario:
    """One scenario: a shape, the faults struck, and what its outcome must be."""

    name: str
    shape: str
    faults: tuple[Mapping[str, Any], ...]
    #: "correct" (done, and the oracle agrees) or "explicit" (failed, with an error)
    expect: str = "correct"
    #: "kill": the run dies (process_kill) and is resumed; "journal": its journal
    #: fails and it is resumed; "" : one run
    restart: str = ""
    #: faults struck during the resume (a fault during resume)
    resume_faults: tuple[Mapping[str, Any], ...] = ()
    seed: int = 7
    #: the expected outcome rows of the routed run: kind -> at least how many
    rows: Mapping[str, int] = field(default_factory=dict[str, int])
    #: the routed mode's expectation when it differs ("correct" where baseline fails)
    baseline_expect: str | None = None
    wall_s: float = 5.0

    @property
    def fault_types(self) -> set[str]:
        return {str(f["type"]) for f in (*self.faults, *self.resume_faults)}


@dataclass
class Outcome:
    """What one scenario's run did, as the journal says."""

    scenario: str
    mode: str
    status: str
    result: Any
    error: Mapping[str, Any] | None
    correct: bool
    silent: bool
    control_plane_calls: int
    kinds: dict[str, int]
    injected: int


def plan_of(faults: Sequence[Mapping[str, Any]], seed: int) -> FaultPlan | None:
    return FaultPlan.from_dict({"seed": seed, "fault": list(faults)}) if faults else None


def runtime(journal: Path, mode: str, scenario: Scenario, faults: FaultPlan | None) -> Runtime:
    return Runtime(
        journal=journal,
        agent=ScenarioAgent(mode, scenario.shape, scenario.wall_s),
        model=ScriptedModel(answer),
        durability="normal",
        routes=ROUTES if mode == "routed" else None,
        faults=faults,
        concurrency=8,
    )


ROOT_REMIT = Remit(tools={n: {} for n in TOOLS_IN_ORDER}, budget={"calls": 400}, depth=1)
GOAL = "fetch and classify every key of the graph"


def run_scenario(scenario: Scenario, mode: str, workdir: Path) -> Outcome:
    """Run ``scenario`` in ``mode`` under ``workdir``; read what happened from the journal."""
    journal = workdir / f"{scenario.name}-{mode}.db"
    run_id = f"{scenario.name}-{mode}".replace("_", "-")
    faults = plan_of(scenario.faults, scenario.seed)
    if scenario.restart == "kill":
        child = subprocess.run(
            [sys.executable, "-c", _CHILD, str(journal), mode, scenario.name, run_id],
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        if child.returncode != -9:
            raise AssertionError(
                f"the run was to be killed; exit {child.returncode}: {child.stderr}"
            )
    else:
        rt = runtime(journal, mode, scenario, faults)
        try:
            rt.run(GOAL, remit=ROOT_REMIT, run_id=run_id)
        except Exception as e:  # a journal failure stops the run: it must say so
            if scenario.restart != "journal":
                raise
            assert getattr(e, "code", "").startswith("JOURNAL"), e
        finally:
            rt.close()
    if scenario.restart:
        rt = runtime(journal, mode, scenario, plan_of(scenario.resume_faults, scenario.seed))
        try:
            rt.resume(run_id)
        finally:
            rt.close()
    return read_outcome(scenario, mode, journal, run_id)


def read_outcome(scenario: Scenario, mode: str, journal: Path, run_id: str) -> Outcome:
    store = open_journal(journal)
    try:
        record = store.get_run(run_id)
        steps = list(store.steps(run_id))
    finally:
        store.close()
    kinds: dict[str, int] = {}
    injected = 0
    for s in steps:
        kinds[s.kind] = kinds.get(s.kind, 0) + 1
        if s.error and '"injected"' in s.error:
            injected += 1
    control = sum(1 for s in steps if s.kind == "model" and ":replan." in s.step_id)
    result = json.loads(record.result) if record.result else None
    error = json.loads(record.error) if record.error else None
    want = oracle(scenario.shape)
    right = isinstance(result, dict) and result.get("values") == want
    expect = scenario.expect if mode == "routed" else (scenario.baseline_expect or scenario.expect)
    if record.status == "done":
        correct = right and expect == "correct"
    else:
        correct = expect == "explicit" and bool(error and error.get("code"))
    return Outcome(
        scenario.name,
        mode,
        record.status,
        result,
        error,
        correct,
        silent=record.status == "done" and not right,
        control_plane_calls=control,
        kinds=kinds,
        injected=injected,
    )


# the killed run of a "kill" scenario, in its own process
_CHILD = """
import sys
from pathlib import Path
from tests.faults.scenarios import BY_NAME, GOAL, ROOT_REMIT, plan_of, runtime
journal, mode, name, run_id = sys.argv[1:]
s = BY_NAME[name]
rt = runtime(Path(journal), mode, s, plan_of(s.faults, s.seed))
rt.run(GOAL, remit=ROOT_REMIT, run_id=run_id)
"""


def _f(type: str, **where: Any) -> dict[str, Any]:
    return {"type": type, **where}


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "pipeline_tool_error",
        "pipeline",
        (_f("tool_error", tool="fetch_a", after=1),),
        rows={"reroute": 1, "fault": 1},
    ),
    Scenario(
        "pipeline_timeout_retried", "pipeline", (_f("timeout", tool="fetch_a"),), rows={"retry": 1}
    ),
    Scenario(
        "pipeline_hang",
        "pipeline",
        (_f("hang", tool="fetch_a", times=3),),
        rows={"retry": 2, "reroute": 1},
    ),
    Scenario(
        "dag_malformed_output",
        "dag",
        (_f("malformed_output", tool="fetch_a", task="*c*"),),
        rows={"reroute": 1},
    ),
    Scenario(
        "dag_oversized_output",
        "dag",
        (_f("oversized_output", tool="fetch_a", after=2),),
        rows={"reroute": 1},
    ),
    Scenario("fanout_wrong_schema", "fanout", (_f("wrong_schema_output", model="*", times=2),)),
    Scenario("fanout_model_refusal", "fanout", (_f("model_refusal", model="*", times=2),)),
    Scenario("pipeline_wrong_question", "pipeline", (_f("wrong_question", model="*", after=1),)),
    Scenario("fanout_message_lost", "fanout", (_f("message_lost", times=2),)),
    Scenario("fanout_message_duplicated", "fanout", (_f("message_duplicated", times=3),)),
    Scenario("dag_message_reordered", "dag", (_f("message_reordered", times=4),)),
    Scenario(
        "fanout_child_never_returns",
        "fanout",
        (_f("child_never_returns", task="*f3*", role="execute"),),
        wall_s=0.5,
    ),
    Scenario(
        "pipeline_journal_write_failure",
        "pipeline",
        (_f("journal_write_failure", after=8),),
        restart="journal",
    ),
    Scenario(
        "pipeline_process_kill",
        "pipeline",
        (_f("process_kill", tool="fetch_*", after=2),),
        restart="kill",
    ),
    Scenario(
        "compound_two_alternatives_down",
        "dag",
        (_f("tool_error", tool="fetch_a", times=0), _f("tool_error", tool="fetch_b", times=0)),
        rows={"reroute": 2},
        baseline_expect="explicit",
    ),
    Scenario(
        "compound_fault_during_retry",
        "pipeline",
        (_f("timeout", tool="fetch_a", task="*s2*"), _f("tool_error", tool="fetch_a", task="*s2*")),
        rows={"retry": 1, "reroute": 1},
    ),
    Scenario(
        "compound_fault_during_resume",
        "pipeline",
        (_f("process_kill", tool="fetch_*", after=1),),
        restart="kill",
        resume_faults=(_f("tool_error", tool="fetch_a", times=0),),
    ),
    Scenario(
        "fanout_circuit_opens",
        "fanout",
        (_f("tool_error", tool="fetch_a", times=0),),
        rows={"health": 1},
    ),
    Scenario(
        "compound_every_route_down",
        "pipeline",
        tuple(_f("tool_error", tool=t, task="*s3*", times=0) for t in TOOLS_IN_ORDER),
        expect="explicit",
    ),
    Scenario("dag_timeouts_everywhere", "dag", (_f("timeout", tool="fetch_*", rate=0.5, times=0),)),
)
BY_NAME = {s.name: s for s in SCENARIOS}
FAULT_TYPES_USED = set().union(*(s.fault_types for s in SCENARIOS))
