"""The Gate's receipts: one per recorded tool result, the same after a crash and a
resume, carried up the tree with the results, checked for an agent that asks (never
showing it the key)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from remit import Agent, Budget, ChildResult, Plan, Remit, ScriptedModel, Subtask, tool
from remit.agents import Context
from remit.core.quotes import FABRICATED_QUOTE, QUOTE_OK
from remit.trust.provenance import KeyFiles, RunKeys

RUN = "run-receipts"


@tool
def lookup(city: str) -> str:
    """A tool whose output an answer may quote."""
    return f"{city} has {len(city) * 7} parks"


class Crashing:
    """A tool ``crash()`` that aborts the run the first time it is called (as Ctrl-C)."""

    def __init__(self) -> None:
        self.armed = True

        @tool(name="crash")
        def crash() -> str:
            if self.armed:
                self.armed = False
                raise KeyboardInterrupt
            return "survived"

        self.tool = crash


class Cities(Agent):
    """The root plans one child per city; each looks its city up and quotes the tool; the
    root aggregates what its children quote, plus ``extra``, and asks the Gate for a
    verdict on all of it."""

    tools = (lookup,)

    def __init__(self, cities: list[str], extra: list[Any] | None = None) -> None:
        self.cities, self.extra = cities, extra or []
        self.seen: list[ChildResult] = []

    def atomize(self, ctx: Context) -> str:
        return "plan" if ctx.depth == 0 else "execute"

    def plan(self, ctx: Context) -> Plan:
        return Plan([Subtask(c, f"look up {c}", inputs={"city": c}) for c in self.cities])

    async def execute(self, ctx: Context) -> Any:
        out = await ctx.call("lookup", city=ctx.inputs["city"])
        if ctx.inputs["city"] == "Rome":
            await ctx.call("crash")
        return {"quote": out, "tool": "lookup"}

    async def aggregate(self, ctx: Context, results: list[ChildResult]) -> Any:
        self.seen = list(results)
        answer = [r.value for r in results] + self.extra
        return {"answer": answer, "verdicts": [c.code for c in await ctx.check_quotes(answer)]}


REMIT = Remit(tools={"lookup": {}}, budget=Budget(calls=20), depth=2)


def test_every_tool_result_gets_the_receipt_remade_from_its_row(make_runtime: Any) -> None:
    rt = make_runtime(agent=Cities(["Oslo", "Lima"]))
    run = rt.run("parks", remit=REMIT, run_id=RUN)
    assert run.ok, run.error
    tools = [s for s in rt.store.steps(RUN) if s.kind == "tool"]
    assert sorted(r.step for r in run.receipts) == sorted(s.step_id for s in tools)
    assert {r.step: r for r in rt.receipts(RUN)} == {r.step: r for r in run.receipts}
    for r, s in zip(sorted(run.receipts, key=lambda r: r.step),
                    sorted(tools, key=lambda s: s.step_id), strict=True):  # fmt: skip
        assert (r.run, r.tool) == (RUN, "lookup")
        assert r.covers(s.input, s.output)


def test_a_child_result_carries_its_subtree_receipts(make_runtime: Any) -> None:
    agent = Cities(["Oslo", "Lima"])
    rt = make_runtime(agent=agent)
    run = rt.run("parks", remit=REMIT, run_id=RUN)
    assert [len(c.receipts) for c in agent.seen] == [1, 1]
    oslo = agent.seen[0].receipts[0]
    assert oslo.step.startswith(next(iter(rt.store.steps(RUN))).task_id + "/0.")
    assert set(run.receipts) == {agent.seen[0].receipts[0], agent.seen[1].receipts[0]}


def test_the_gate_accepts_a_real_quote_and_flags_a_fabricated_one(make_runtime: Any) -> None:
    fabricated = [
        {"quote": "Oslo has 99 parks", "tool": "lookup"},  # not in any result
        {"quote": "Oslo has 28 parks", "tool": "web_search"},  # a tool never called
        '<quote tool="lookup" step="t.0.x:execute.0">Oslo</quote>',  # no call at that step
    ]
    rt = make_runtime(agent=Cities(["Oslo", "Lima"], fabricated))
    run = rt.run("parks", remit=REMIT, run_id=RUN)
    assert run.ok, run.error
    assert run.result["verdicts"] == [QUOTE_OK, QUOTE_OK] + [FABRICATED_QUOTE] * 3


def test_receipts_are_the_same_after_a_crash_and_a_resume(make_runtime: Any) -> None:
    crash = Crashing()
    agent = Cities(["Oslo", "Rome"])
    agent.tools = (lookup, crash.tool)
    rt = make_runtime(agent=agent)
    remit = Remit(tools={"lookup": {}, "crash": {}}, budget=Budget(calls=20), depth=2)
    with pytest.raises(KeyboardInterrupt):
        rt.run("parks", remit=remit, run_id=RUN)
    before = {r.step: r for r in rt.receipts(RUN)}
    assert len(before) >= 1  # lookups recorded before the crash
    run = rt.resume(RUN)
    assert run.ok, run.error
    assert run.replayed >= 1
    after = {r.step: r for r in run.receipts}
    assert {s: after[s] for s in before} == before, "a served call got another receipt"
    assert after == {r.step: r for r in rt.receipts(RUN)}
    assert run.result["verdicts"] == [QUOTE_OK, QUOTE_OK]


def test_the_agent_never_sees_the_receipt_key(make_runtime: Any, journal_path: Any) -> None:
    seen: dict[str, Any] = {}

    class Peeking(Cities):
        async def execute(self, ctx: Context) -> Any:
            seen["public"] = {n: repr(getattr(ctx, n)) for n in dir(ctx) if not n.startswith("_")}
            return await super().execute(ctx)

    model = ScriptedModel(["{}"])
    rt = make_runtime(agent=Peeking(["Oslo"]), model=model)
    rt.run("parks", remit=REMIT, run_id=RUN)
    meta = json.loads(rt.store.get_run(RUN).meta or "{}")
    key = RunKeys(KeyFiles.beside(journal_path).load(RUN, meta)).receipt_key.hex()
    assert not any(key in text for text in seen["public"].values())
    # what a role may see: verdicts and receipts (values), nothing that holds the key
    assert {n for n in seen["public"] if "receipt" in n or "quote" in n} == {
        "receipts", "check_quotes"
    }  # fmt: skip
    rows = json.dumps([dataclasses.astuple(s) for s in rt.store.steps(RUN)])
    assert key not in rows


def test_an_unsigned_run_has_receipts_of_its_process_only(make_runtime: Any) -> None:
    rt = make_runtime(agent=Cities(["Oslo"]), sign=False)
    run = rt.run("parks", remit=REMIT, run_id=RUN)
    assert len(run.receipts) == 1
    assert run.result["verdicts"] == [QUOTE_OK]
    assert rt.receipts(RUN) == ()  # no key outlives the process


class Silent(Cities):
    """Aggregates without reading a receipt or checking a quote."""

    async def aggregate(self, ctx: Context, results: list[ChildResult]) -> Any:
        return [r.value for r in results]


def test_a_receipt_is_made_when_first_read(make_runtime: Any, monkeypatch: Any) -> None:
    # a receipt is a pure function of its row and the key: a run nobody asks for one
    # hashes nothing for them; reading them makes each one, once
    from remit.trust.receipts import Receipter

    made: list[str] = []
    real = Receipter.make

    def counting(self: Receipter, run: str, step: str, *rest: Any) -> Any:
        made.append(step)
        return real(self, run, step, *rest)

    monkeypatch.setattr(Receipter, "make", counting)
    rt = make_runtime(agent=Silent(["Oslo", "Lima", "Kyiv"]))
    run = rt.run("cities", remit=REMIT, run_id=RUN)
    assert run.ok and made == []
    assert len(run.receipts) == 3 and made == []  # counted without being made
    steps = sorted(r.step for r in run.receipts)
    assert sorted(made) == steps and len(made) == 3
    list(run.receipts)
    assert len(made) == 3
