"""The Gate: every effect is checked, budgeted, journaled, and served from the journal
on resume, in that order.

A crash is simulated in-process by a tool that raises ``KeyboardInterrupt`` once: it
escapes the event loop like a Ctrl-C, so nothing after it is recorded (the intent of
an effect is already on disk), and the run is left ``running`` for ``resume``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from remit import Agent, Budget, Remit, ScriptedModel, tool, within
from remit.core.ledger import Ledger, Usage
from remit.errors import (
    BudgetExceeded,
    DeniedError,
    DeterminismError,
    EffectUncertain,
    InvalidInput,
    OutputTooLarge,
    RemitError,
    RetryableToolError,
    SchemaError,
    StepFailed,
    ToolArgumentError,
    UnknownToolError,
)
from remit.gate import Gate, idempotency_key
from remit.journal import StepRecord
from remit.journal._writer import JournalWriter
from remit.tools import Tool, ToolRegistry, calculator

Execute = Callable[[Any], Awaitable[Any]]
RUN = "run-gate"


class FnAgent(Agent):
    """An agent whose only role is ``execute``, given as an async function of ctx."""

    def __init__(self, execute: Execute) -> None:
        self.fn = execute

    async def execute(self, ctx: Any) -> Any:
        return await self.fn(ctx)


def counting(name: str, **options: Any) -> tuple[Tool, list[int]]:
    """A sync tool ``name(x: int = 0) -> x`` that records every real invocation."""
    calls: list[int] = []

    def fn(x: int = 0) -> int:
        calls.append(x)
        return x

    fn.__name__ = name
    return tool(**options)(fn), calls


class Crash:
    """A tool ``crash()`` that aborts the process-like run the first time it is called."""

    def __init__(self) -> None:
        self.armed = True
        self.calls = 0

        @tool(name="crash")
        def crash() -> str:
            self.calls += 1
            if self.armed:
                self.armed = False
                raise KeyboardInterrupt
            return "survived"

        self.tool = crash


def steps_by_id(rt: Any, run_id: str = RUN) -> dict[str, StepRecord]:
    return {s.step_id: s for s in rt.store.steps(run_id)}


def tool_steps(rt: Any, run_id: str = RUN) -> list[StepRecord]:
    return [s for s in rt.store.steps(run_id) if s.kind in ("tool", "model")]


def code(step: StepRecord) -> str | None:
    return json.loads(step.error)["code"] if step.error else None


# --- 1. the remit check: denied calls never reach the tool ---------------------------------


def test_a_tool_not_granted_is_denied_journaled_and_never_run(make_runtime: Any) -> None:
    secret, calls = counting("secret")

    async def execute(ctx: Any) -> Any:
        try:
            await ctx.call("secret", x=7)
        except DeniedError as e:
            return e.code
        return "reached"

    rt = make_runtime(agent=FnAgent(execute), tools=[secret])
    run = rt.run("g", remit=Remit(tools={"calculator": {}}), run_id=RUN)
    assert run.result == "DENIED"
    assert calls == []
    [step] = tool_steps(rt)
    assert (step.status, step.name, code(step)) == ("denied", "secret", "DENIED")
    assert "not granted" in json.loads(step.error)["message"]
    assert json.loads(step.input or "null") == {"x": 7}
    assert run.denied == 1
    assert run.spent.is_zero()


def test_an_argument_outside_its_constraint_is_denied_and_nothing_written(
    make_runtime: Any, workspace: Any
) -> None:
    async def execute(ctx: Any) -> Any:
        ok = await ctx.call("write_file", path="out/a.txt", text="fine")
        try:
            await ctx.call("write_file", path="etc/passwd", text="evil")
        except DeniedError as e:
            return [ok, e.message]
        return "reached"

    rt = make_runtime(agent=FnAgent(execute))
    remit = Remit(tools={"write_file": {"path": within("out/")}})
    run = rt.run("g", remit=remit, run_id=RUN)
    assert run.ok, run.error
    assert "etc/passwd" in run.result[1] and "out/" in run.result[1]
    assert (workspace / "out" / "a.txt").read_text() == "fine"
    assert not (workspace / "etc").exists()
    denied = [s for s in tool_steps(rt) if s.status == "denied"]
    assert len(denied) == 1 and code(denied[0]) == "DENIED"
    assert "etc/passwd" in json.loads(denied[0].error)["message"]
    assert run.spent.calls == 1  # the denied call spent nothing


def _call_after_remit_deadline(make_runtime: Any) -> tuple[Any, Any, list[int]]:
    probe, calls = counting("probe")

    async def execute(ctx: Any) -> Any:
        # block past the deadline without yielding: the role cannot be interrupted here
        time.sleep(max(0.0, ctx.remit.deadline - time.time()) + 0.05)
        try:
            await ctx.call("probe", x=1)
        except RemitError as e:
            return {"code": e.code, "message": e.message}
        return "reached"

    rt = make_runtime(agent=FnAgent(execute), tools=[probe])
    run = rt.run("g", remit=Remit(tools={"probe": {}}, deadline=time.time() + 1.0), run_id=RUN)
    return rt, run, calls


def test_a_call_after_the_deadline_is_denied_and_never_run(make_runtime: Any) -> None:
    rt, run, calls = _call_after_remit_deadline(make_runtime)
    assert calls == []
    assert isinstance(run.result, dict) and "deadline" in run.result["message"]
    [step] = tool_steps(rt)
    assert step.status == "denied"
    assert "deadline" in json.loads(step.error)["message"]


def test_a_call_after_the_deadline_is_recorded_with_code_deadline(make_runtime: Any) -> None:
    """Deadline denials carry the DEADLINE code, as model calls past it already do."""
    rt, run, _ = _call_after_remit_deadline(make_runtime)
    [step] = tool_steps(rt)
    assert code(step) == "DEADLINE"
    assert run.result["code"] == "DEADLINE"


def test_a_call_after_the_wall_time_budget_is_denied_and_never_run(make_runtime: Any) -> None:
    """``Budget(wall_seconds=...)`` is a deadline too: a call past it never reaches the tool."""
    probe, calls = counting("probe")

    async def execute(ctx: Any) -> Any:
        time.sleep(0.6)  # past the wall time, without yielding
        try:
            await ctx.call("probe", x=1)
        except RemitError as e:
            return e.code
        return "reached"

    rt = make_runtime(agent=FnAgent(execute), tools=[probe])
    remit = Remit(tools={"probe": {}}, budget=Budget(wall_seconds=0.5))
    run = rt.run("g", remit=remit, run_id=RUN)
    assert calls == [], "the tool ran after the task's wall time was used up"
    assert run.result == "DEADLINE"
    [step] = tool_steps(rt)
    assert step.status == "denied"


# --- 2. the ledger ----------------------------------------------------------------------


def test_a_budget_refusal_is_journaled_as_denied_and_the_tool_not_run(make_runtime: Any) -> None:
    probe, calls = counting("probe")

    async def execute(ctx: Any) -> Any:
        out = [await ctx.call("probe", x=1), await ctx.call("probe", x=2)]
        try:
            await ctx.call("probe", x=3)
        except BudgetExceeded as e:
            out.append(e.code)
        return out

    rt = make_runtime(agent=FnAgent(execute), tools=[probe])
    run = rt.run("g", remit=Remit(tools={"probe": {}}, budget=Budget(calls=2)), run_id=RUN)
    assert run.result == [1, 2, "BUDGET"]
    assert calls == [1, 2]
    steps = tool_steps(rt)
    assert [s.status for s in steps] == ["ok", "ok", "denied"]
    assert code(steps[2]) == "BUDGET"
    assert "budget.calls" in json.loads(steps[2].error)["message"]
    assert run.spent.calls == 2
    assert run.denied == 1


def test_a_tool_cost_is_reserved_before_it_runs(make_runtime: Any) -> None:
    paid, calls = counting("paid", cost_usd=0.4)

    async def execute(ctx: Any) -> Any:
        out = []
        for i in range(3):
            try:
                out.append(await ctx.call("paid", x=i))
            except BudgetExceeded as e:
                out.append(e.dimension)
        return out

    rt = make_runtime(agent=FnAgent(execute), tools=[paid])
    run = rt.run("g", remit=Remit(tools={"paid": {}}, budget=Budget(cost_usd=1.0)), run_id=RUN)
    assert run.result == [0, 1, "cost_usd"]
    assert calls == [0, 1]
    assert run.spent == Usage(calls=2, cost_usd=0.8)


# --- unknown tools and bad arguments --------------------------------------------------------


def test_a_remit_granting_an_unknown_tool_is_refused_before_the_run(make_runtime: Any) -> None:
    async def execute(ctx: Any) -> Any:
        return await ctx.call("ghost")

    rt = make_runtime(agent=FnAgent(execute))
    with pytest.raises(UnknownToolError, match="'ghost'"):
        rt.run("g", remit=Remit(tools={"ghost": {}}), run_id=RUN)
    assert rt.store.list_runs() == []


def test_the_gate_raises_unknown_tool_for_a_granted_but_unregistered_tool(
    journal_path: Any,
) -> None:
    from remit.gate._node import Node
    from remit.journal import SQLiteJournal

    async def main() -> None:
        store = SQLiteJournal(journal_path, durability="normal")
        ledger = Ledger()
        writer = JournalWriter(store)
        gate = Gate(run_id=RUN, writer=writer, ledger=ledger, tools=ToolRegistry([calculator]))
        remit = Remit(tools={"ghost": {}, "calculator": {}})
        node = Node("t.0.abcdef", "g", remit, ledger.open("t.0.abcdef", remit.budget))
        with pytest.raises(UnknownToolError, match=r"unknown tool 'ghost' \(known tools: calc"):
            await gate.call_tool(node, "ghost", {})
        assert await gate.call_tool(node, "calculator", {"expression": "1+1"}) == 2
        writer.close()
        store.close()

    asyncio.run(main())


def test_bad_arguments_raise_tool_argument_error_naming_the_argument(make_runtime: Any) -> None:
    probe, calls = counting("probe")

    async def execute(ctx: Any) -> Any:
        msgs = []
        for args in ({"x": "not a number"}, {"y": 1}):
            try:
                await ctx.call("probe", **args)
            except ToolArgumentError as e:
                msgs.append(e.message)
        return msgs

    rt = make_runtime(agent=FnAgent(execute), tools=[probe])
    run = rt.run("g", remit=Remit(tools={"probe": {}}), run_id=RUN)
    assert calls == []
    first, second = run.result
    assert "tool probe" in first and "x:" in first
    assert "y:" in second and "Extra inputs" in second
    assert run.spent.is_zero()


def test_an_uncaught_argument_error_fails_the_task_with_its_code(make_runtime: Any) -> None:
    async def execute(ctx: Any) -> Any:
        return await ctx.call("calculator", expr="1+1")

    rt = make_runtime(agent=FnAgent(execute))
    run = rt.run("g", remit=Remit(tools={"calculator": {}}), run_id=RUN)
    assert run.status == "failed"
    assert run.error is not None and run.error["code"] == "TOOL_ARGUMENTS"
    assert "expr" in run.error["message"] and "expression" in run.error["message"]


# --- 3. the journal: resume serves what was recorded --------------------------------------------


def test_a_recorded_result_is_served_on_resume_without_running_the_tool(make_runtime: Any) -> None:
    probe, calls = counting("probe")
    crash = Crash()

    async def execute(ctx: Any) -> Any:
        a = await ctx.call("probe", x=1)
        b = await ctx.call("probe", x=2)
        c = await ctx.call("crash")
        return [a, b, c]

    rt = make_runtime(agent=FnAgent(execute), tools=[probe, crash.tool])
    remit = Remit(tools={"probe": {}, "crash": {}}, budget=Budget(calls=10))
    with pytest.raises(KeyboardInterrupt):
        rt.run("g", remit=remit, run_id=RUN)
    assert calls == [1, 2]
    assert rt.get(RUN).status == "running"
    run = rt.resume(RUN)
    assert run.ok, run.error
    assert run.result == [1, 2, "survived"]
    assert calls == [1, 2], "a recorded step ran again on resume"
    assert crash.calls == 2
    assert run.replayed == 2
    # the replayed spend is booked again: the run's spent covers both processes
    assert run.spent.calls == 3


def test_a_recorded_error_is_re_raised_on_resume(make_runtime: Any) -> None:
    invoked: list[int] = []

    @tool(retries=0)
    def flaky(x: int) -> int:
        invoked.append(x)
        raise ValueError(f"bad value {x}")

    crash = Crash()
    seen: list[tuple[str, str]] = []

    async def execute(ctx: Any) -> Any:
        try:
            await ctx.call("flaky", x=5)
        except RemitError as e:
            seen.append((e.code, e.message))
        return await ctx.call("crash")

    rt = make_runtime(agent=FnAgent(execute), tools=[flaky, crash.tool])
    with pytest.raises(KeyboardInterrupt):
        rt.run("g", remit=Remit(tools={"flaky": {}, "crash": {}}), run_id=RUN)
    run = rt.resume(RUN)
    assert run.ok
    assert invoked == [5]
    assert len(seen) == 2
    assert seen[0] == seen[1]
    assert seen[0][0] == "STEP_FAILED" and "bad value 5" in seen[0][1]


class QuotaError(RemitError):
    """An error class an application defines, with its own stable code."""

    code = "QUOTA"


def test_a_recorded_error_of_an_application_class_keeps_its_code_on_resume(
    make_runtime: Any,
) -> None:
    invoked: list[int] = []

    @tool(retries=0)
    def metered(x: int) -> int:
        invoked.append(x)
        raise QuotaError("monthly quota used up")

    crash = Crash()
    seen: list[tuple[str, str]] = []

    async def execute(ctx: Any) -> Any:
        try:
            await ctx.call("metered", x=1)
        except RemitError as e:
            seen.append((e.code, e.message))
        return await ctx.call("crash")

    rt = make_runtime(agent=FnAgent(execute), tools=[metered, crash.tool])
    with pytest.raises(KeyboardInterrupt):
        rt.run("g", remit=Remit(tools={"metered": {}, "crash": {}}), run_id=RUN)
    run = rt.resume(RUN)
    assert run.ok, run.error
    assert invoked == [1]
    assert seen == [("QUOTA", "monthly quota used up")] * 2


def test_a_recorded_budget_denial_is_re_raised_with_its_details_on_resume(
    make_runtime: Any,
) -> None:
    """The agent sees the same error on resume, down to the fields it may read."""
    probe, calls = counting("probe", cost_usd=0.75)
    crash = Crash()
    seen: list[tuple[str, str, str]] = []

    async def execute(ctx: Any) -> Any:
        await ctx.call("probe", x=1)
        try:
            await ctx.call("probe", x=2)
        except BudgetExceeded as e:
            seen.append((e.code, e.dimension, e.account))
        return await ctx.call("crash")

    rt = make_runtime(agent=FnAgent(execute), tools=[probe, crash.tool])
    remit = Remit(tools={"probe": {}, "crash": {}}, budget=Budget(cost_usd=1.0))
    with pytest.raises(KeyboardInterrupt):
        rt.run("g", remit=remit, run_id=RUN)
    assert len(seen) == 1
    run = rt.resume(RUN)
    assert run.ok, run.error
    assert calls == [1]
    assert len(seen) == 2 and seen[0] == seen[1]
    assert seen[0][:2] == ("BUDGET", "cost_usd")


def test_replay_meeting_another_tool_at_a_recorded_position_is_a_determinism_error(
    make_runtime: Any,
) -> None:
    alpha, alpha_calls = counting("alpha")
    beta, beta_calls = counting("beta")
    crash = Crash()
    which = {"tool": "alpha"}

    async def execute(ctx: Any) -> Any:
        await ctx.call(which["tool"], x=1)
        return await ctx.call("crash")

    rt = make_runtime(agent=FnAgent(execute), tools=[alpha, beta, crash.tool])
    remit = Remit(tools={"alpha": {}, "beta": {}, "crash": {}})
    with pytest.raises(KeyboardInterrupt):
        rt.run("g", remit=remit, run_id=RUN)
    which["tool"] = "beta"  # the agent's code changed between the crash and the resume
    with pytest.raises(DeterminismError) as info:
        rt.resume(RUN)
    assert info.value.code == "NON_DETERMINISTIC"
    assert "'alpha'" in info.value.message and "'beta'" in info.value.message
    assert alpha_calls == [1] and beta_calls == []


def test_effects_get_an_idempotency_key_stable_across_resume_and_unique_per_step(
    make_runtime: Any, read_steps: Any
) -> None:
    keys: list[tuple[str, str]] = []
    state = {"crash": True}

    @tool(effect=True)
    def send(to: str, idempotency_key: str) -> str:
        keys.append((to, idempotency_key))
        if to == "b" and state["crash"]:
            state["crash"] = False
            raise KeyboardInterrupt  # dies mid-effect: intent on disk, no result
        return f"sent to {to}"

    async def execute(ctx: Any) -> Any:
        return [await ctx.call("send", to="a"), await ctx.call("send", to="b")]

    rt = make_runtime(agent=FnAgent(execute), tools=[send])
    with pytest.raises(KeyboardInterrupt):
        rt.run("g", remit=Remit(tools={"send": {}}), run_id=RUN)
    on_disk = [s for s in read_steps(RUN) if s.kind == "tool"]
    assert [s.status for s in on_disk] == ["ok", "started"], "intent must precede the effect"
    run = rt.resume(RUN)
    assert run.ok and run.result == ["sent to a", "sent to b"]
    assert [to for to, _ in keys] == ["a", "b", "b"]  # a served; b ran again
    (_, ka), (_, kb1), (_, kb2) = keys
    assert kb1 == kb2, "the key changed across the resume"
    assert ka != kb1
    ids = [s.step_id for s in tool_steps(rt)]
    assert [ka, kb1] == [idempotency_key(RUN, sid) for sid in ids]
    assert idempotency_key("other-run", ids[0]) != ka


def _crash_mid_effect(make_runtime: Any) -> tuple[Any, list[int]]:
    """A run whose non-idempotent effect was in flight when its process stopped."""
    charged: list[int] = []
    state = {"crash": True}

    @tool(effect=True, idempotent=False)
    def charge_card(cents: int) -> str:
        charged.append(cents)
        if state["crash"]:
            state["crash"] = False
            raise KeyboardInterrupt
        return f"charged {cents}"

    async def execute(ctx: Any) -> Any:
        return await ctx.call("charge_card", cents=500)

    rt = make_runtime(agent=FnAgent(execute), tools=[charge_card])
    with pytest.raises(KeyboardInterrupt):
        rt.run("g", remit=Remit(tools={"charge_card": {}}), run_id=RUN)
    return rt, charged


def test_a_non_idempotent_effect_with_an_intent_but_no_result_halts_the_resume(
    make_runtime: Any, read_steps: Any
) -> None:
    rt, charged = _crash_mid_effect(make_runtime)
    [intent] = [s for s in read_steps(RUN) if s.kind == "tool"]
    assert intent.status == "started"
    with pytest.raises(EffectUncertain) as e:
        rt.resume(RUN)
    assert charged == [500], "a possibly-done, non-idempotent effect was run again"
    assert e.value.steps == (intent.step_id,)
    assert "charge_card" in e.value.message and "remit resolve" in e.value.message
    # halted, not failed: the run waits for a person
    assert rt.get(RUN).status == "running"
    with pytest.raises(EffectUncertain):
        rt.resume(RUN)
    assert charged == [500]


def test_an_effect_a_person_says_happened_is_served_with_the_given_result(
    make_runtime: Any, read_steps: Any
) -> None:
    rt, charged = _crash_mid_effect(make_runtime)
    [intent] = [s for s in read_steps(RUN) if s.kind == "tool"]
    rt.resolve(RUN, intent.step_id, happened=True, result="charged 500 (bank log)",
               by="ana", why="seen in the bank log")  # fmt: skip
    run = rt.resume(RUN)
    assert run.ok and run.result == "charged 500 (bank log)"
    assert charged == [500]
    rows = {s.step_id: s for s in read_steps(RUN)}
    answer = json.loads(rows[f"{intent.step_id}~resolution.1"].output)
    assert answer["happened"] is True and answer["by"] == "ana"
    assert answer["why"] == "seen in the bank log"


def test_an_effect_a_person_says_did_not_happen_runs_exactly_once_more(
    make_runtime: Any, read_steps: Any
) -> None:
    rt, charged = _crash_mid_effect(make_runtime)
    [intent] = [s for s in read_steps(RUN) if s.kind == "tool"]
    rt.resolve(RUN, intent.step_id, happened=False, by="ana")
    with pytest.raises(InvalidInput, match="already resolved"):
        rt.resolve(RUN, intent.step_id, happened=False, by="ana")
    run = rt.resume(RUN)
    assert run.ok and run.result == "charged 500"
    assert charged == [500, 500]
    rows = {s.step_id: s for s in read_steps(RUN)}
    assert f"{intent.step_id}~attempt.1" in rows
    with pytest.raises(InvalidInput, match="already has a result"):
        rt.resolve(RUN, intent.step_id, happened=True, result="x", by="ana")


# --- 5. execution: timeouts and retries ------------------------------------------------------


def test_an_async_tool_past_its_timeout_is_retried_then_fails_with_step_timeout(
    make_runtime: Any,
) -> None:
    attempts: list[float] = []

    @tool(timeout=0.05, retries=2)
    async def slow(x: int) -> int:
        attempts.append(time.monotonic())
        await asyncio.sleep(30)
        return x

    async def execute(ctx: Any) -> Any:
        try:
            await ctx.call("slow", x=1)
        except RemitError as e:
            return e.code
        return "finished"

    rt = make_runtime(agent=FnAgent(execute), tools=[slow])
    started = time.monotonic()
    run = rt.run("g", remit=Remit(tools={"slow": {}}), run_id=RUN)
    assert time.monotonic() - started < 5
    assert run.result == "STEP_TIMEOUT"
    assert len(attempts) == 3  # the first try and two retries
    [step] = tool_steps(rt)
    assert step.status == "error" and code(step) == "STEP_TIMEOUT"
    assert run.spent.calls == 3  # every attempt is charged
    assert json.loads(step.spent or "{}") == {"calls": 3}


def test_a_retryable_error_is_retried_up_to_retries_and_each_attempt_charged(
    make_runtime: Any,
) -> None:
    attempts: list[int] = []

    @tool(retries=3)
    def shaky(x: int) -> int:
        attempts.append(x)
        raise RetryableToolError("503 from upstream")

    async def execute(ctx: Any) -> Any:
        try:
            await ctx.call("shaky", x=1)
        except RemitError as e:
            return e.code
        return "finished"

    rt = make_runtime(agent=FnAgent(execute), tools=[shaky])
    run = rt.run("g", remit=Remit(tools={"shaky": {}}), run_id=RUN)
    assert run.result == "TOOL_TRANSIENT"
    assert len(attempts) == 4
    assert run.spent.calls == 4
    [step] = tool_steps(rt)
    assert (step.status, code(step)) == ("error", "TOOL_TRANSIENT")


def test_a_retry_that_succeeds_returns_the_result_and_charges_every_attempt(
    make_runtime: Any,
) -> None:
    attempts: list[int] = []

    @tool(retries=2)
    def shaky(x: int) -> int:
        attempts.append(x)
        if len(attempts) < 3:
            raise RetryableToolError("try again")
        return x * 10

    async def execute(ctx: Any) -> Any:
        return await ctx.call("shaky", x=4)

    rt = make_runtime(agent=FnAgent(execute), tools=[shaky])
    run = rt.run("g", remit=Remit(tools={"shaky": {}}), run_id=RUN)
    assert run.result == 40
    assert len(attempts) == 3
    assert run.spent.calls == 3
    [step] = tool_steps(rt)
    assert step.status == "ok" and json.loads(step.spent or "{}") == {"calls": 3}


def test_retries_stop_when_the_budget_runs_out(make_runtime: Any) -> None:
    attempts: list[int] = []

    @tool(retries=5)
    def shaky(x: int) -> int:
        attempts.append(x)
        raise RetryableToolError("try again")

    async def execute(ctx: Any) -> Any:
        try:
            await ctx.call("shaky", x=1)
        except RemitError as e:
            return e.code
        return "finished"

    rt = make_runtime(agent=FnAgent(execute), tools=[shaky])
    run = rt.run("g", remit=Remit(tools={"shaky": {}}, budget=Budget(calls=2)), run_id=RUN)
    assert run.result == "BUDGET"
    assert len(attempts) == 2
    assert run.spent.calls == 2
    [step] = tool_steps(rt)
    assert (step.status, code(step)) == ("denied", "BUDGET")


def test_a_non_retryable_error_is_not_retried(make_runtime: Any) -> None:
    attempts: list[int] = []

    @tool(retries=5)
    def broken(x: int) -> int:
        attempts.append(x)
        raise KeyError("nope")

    async def execute(ctx: Any) -> Any:
        try:
            await ctx.call("broken", x=1)
        except RemitError as e:
            return [e.code, e.message]
        return "finished"

    rt = make_runtime(agent=FnAgent(execute), tools=[broken])
    run = rt.run("g", remit=Remit(tools={"broken": {}}), run_id=RUN)
    assert attempts == [1]
    assert run.result[0] == "STEP_FAILED" and "KeyError" in run.result[1]


# --- model calls ---------------------------------------------------------------------------------

MSG = [{"role": "user", "content": "What is 2 + 2? Answer as JSON."}]


def test_model_usage_charged_equals_the_reported_usage(make_runtime: Any) -> None:
    model = ScriptedModel(['{"answer": 4}'], usd_per_input_token=0.001, usd_per_output_token=0.002)
    got: list[Any] = []

    async def execute(ctx: Any) -> Any:
        c = await ctx.complete(MSG, schema={"type": "object", "required": ["answer"]})
        got.append(c)
        return json.loads(c.content)

    rt = make_runtime(agent=FnAgent(execute), model=model)
    run = rt.run("g", remit=Remit(budget=Budget(output_tokens=1000, cost_usd=5.0)), run_id=RUN)
    assert run.result == {"answer": 4}
    [c] = got
    assert c.input_tokens > 0 and c.output_tokens > 0
    assert run.spent == Usage(1, c.input_tokens, c.output_tokens, c.cost_usd)
    [step] = tool_steps(rt)
    assert (step.kind, step.name, step.status) == ("model", "scripted", "ok")
    assert Usage.from_dict(json.loads(step.spent or "{}")) == run.spent


def _schema_violation_run(make_runtime: Any, reply: str) -> tuple[Any, Any, ScriptedModel]:
    model = ScriptedModel([reply], usd_per_input_token=0.001, usd_per_output_token=0.002)

    async def execute(ctx: Any) -> Any:
        try:
            await ctx.complete(MSG, schema={"type": "object", "required": ["answer"]})
        except SchemaError as e:
            return [e.code, e.message]
        return "accepted"

    rt = make_runtime(agent=FnAgent(execute), model=model)
    run = rt.run("g", remit=Remit(budget=Budget(cost_usd=5.0)), run_id=RUN)
    return rt, run, model


@pytest.mark.parametrize("reply", ['{"wrong": 1}', "four", '{"answer": 4'])
def test_schema_violating_model_output_raises_schema_error_and_is_recorded(
    make_runtime: Any, reply: str
) -> None:
    rt, run, _ = _schema_violation_run(make_runtime, reply)
    assert run.result[0] == "SCHEMA_VIOLATION"
    assert "scripted" in run.result[1]
    [step] = tool_steps(rt)
    assert (step.kind, step.status, code(step)) == ("model", "error", "SCHEMA_VIOLATION")


def test_schema_violating_model_output_is_still_charged_its_reported_usage(
    make_runtime: Any,
) -> None:
    """The tokens were spent even though the output was rejected; a loop re-asking a
    model that keeps answering badly must still run into its token budget."""
    _, run, model = _schema_violation_run(make_runtime, '{"wrong": "' + "x" * 200 + '"}')
    reported = asyncio.run(ScriptedModel(['{"wrong": "' + "x" * 200 + '"}']).complete(MSG))
    assert len(model.calls) == 1
    assert run.spent.output_tokens == reported.output_tokens
    assert run.spent.input_tokens == reported.input_tokens
    assert run.spent.calls == 1


def test_model_reservation_is_the_worst_case_max_tokens(make_runtime: Any) -> None:
    """Two concurrent calls whose actual use would fit together are not both admitted,
    because each reserves ``max_tokens`` until it settles."""

    class SlowModel(ScriptedModel):
        async def complete(self, messages: Any, **kw: Any) -> Any:
            await asyncio.sleep(0.05)
            return await super().complete(messages, **kw)

    model = SlowModel(lambda _msgs: "ok")

    async def execute(ctx: Any) -> Any:
        async def one() -> str:
            try:
                return (await ctx.complete(MSG, max_tokens=100)).content
            except BudgetExceeded as e:
                return e.code

        return list(await asyncio.gather(one(), one()))

    rt = make_runtime(agent=FnAgent(execute), model=model)
    run = rt.run("g", remit=Remit(budget=Budget(output_tokens=150)), run_id=RUN)
    assert sorted(run.result) == ["BUDGET", "ok"]
    assert len(model.calls) == 1
    assert run.spent.output_tokens == 1  # "ok" is one token: the rest was released


def test_a_budget_too_small_for_max_tokens_is_denied_before_the_model_is_called(
    make_runtime: Any,
) -> None:
    model = ScriptedModel(["tiny"])

    async def execute(ctx: Any) -> Any:
        out = []
        for max_tokens in (500, 50):
            try:
                out.append((await ctx.complete(MSG, max_tokens=max_tokens)).content)
            except BudgetExceeded as e:
                out.append(f"{e.code}:{e.dimension}")
        return out

    rt = make_runtime(agent=FnAgent(execute), model=model)
    run = rt.run("g", remit=Remit(budget=Budget(output_tokens=100)), run_id=RUN)
    assert run.result == ["BUDGET:output_tokens", "tiny"]
    assert len(model.calls) == 1  # only the call that fit
    first, second = tool_steps(rt)
    assert (first.status, code(first)) == ("denied", "BUDGET")
    assert second.status == "ok"
    assert run.spent.output_tokens == 1


def test_input_reservation_covers_the_chat_template_and_the_tools(make_runtime: Any) -> None:
    """A chat template adds tokens of its own (SmolLM2's adds a system prompt: 18
    characters of content were billed as 33 prompt tokens), and tool schemas are sent
    too: the reservation covers both, so the settle can never overshoot the budget."""
    from remit.gate import TEMPLATE_TOKENS

    tools = [{"type": "function", "function": {"name": "f", "parameters": {"x": "y" * 300}}}]
    content = sum(len(m["content"]) + 8 for m in MSG)
    model = ScriptedModel(["ok"] * 3)

    async def execute(ctx: Any) -> Any:
        out = []
        for kw in ({}, {"tools": tools}):
            try:
                out.append((await ctx.complete(MSG, max_tokens=5, **kw)).content)
            except BudgetExceeded as e:
                out.append(e.dimension)
        return out

    rt = make_runtime(agent=FnAgent(execute), model=model)
    room = Budget(input_tokens=content + TEMPLATE_TOKENS + 10)
    run = rt.run("g", remit=Remit(budget=room), run_id=RUN)
    assert run.result == ["ok", "input_tokens"]
    assert len(model.calls) == 1
    tight = Budget(input_tokens=content + TEMPLATE_TOKENS - 1)
    rt2 = make_runtime(
        agent=FnAgent(execute), model=ScriptedModel(["ok"]), journal=rt.store.path.with_name("2.db")
    )
    assert rt2.run("g", remit=Remit(budget=tight), run_id=RUN).result == [
        "input_tokens",
        "input_tokens",
    ]


def test_a_transient_model_error_is_retried_after_the_servers_retry_after(
    make_runtime: Any,
) -> None:
    from remit.errors import ModelTransientError

    class Busy(ScriptedModel):
        retries = 2

        async def complete(self, messages: Any, **kw: Any) -> Any:
            self.calls.append(messages)
            if len(self.calls) == 1:
                err = ModelTransientError("HTTP 429 from the server")
                err.retry_after_s = 0.4  # type: ignore[attr-defined]
                raise err
            return await ScriptedModel(["fine"]).complete(messages, **kw)

    model = Busy([])

    async def execute(ctx: Any) -> Any:
        t = time.perf_counter()
        c = await ctx.complete(MSG, max_tokens=5)
        return [c.content, time.perf_counter() - t]

    rt = make_runtime(agent=FnAgent(execute), model=model)
    run = rt.run("g", remit=Remit(budget=Budget(calls=5)), run_id=RUN)
    assert run.result[0] == "fine" and run.result[1] >= 0.4
    assert len(model.calls) == 2 and run.spent.calls == 2  # every attempt is charged


def test_a_cost_budget_too_small_for_the_worst_case_is_denied_before_the_call(
    make_runtime: Any,
) -> None:
    model = ScriptedModel(["tiny"], usd_per_output_token=0.01)

    async def execute(ctx: Any) -> Any:
        try:
            await ctx.complete(MSG, max_tokens=200)  # worst case $2.00
        except BudgetExceeded as e:
            return e.dimension
        return "called"

    rt = make_runtime(agent=FnAgent(execute), model=model)
    run = rt.run("g", remit=Remit(budget=Budget(cost_usd=1.0)), run_id=RUN)
    assert run.result == "cost_usd"
    assert model.calls == []
    assert run.spent.is_zero()


def test_model_results_are_served_on_resume_without_calling_the_model(make_runtime: Any) -> None:
    model = ScriptedModel(['{"n": 1}'])
    crash = Crash()

    async def execute(ctx: Any) -> Any:
        c = await ctx.complete(MSG)
        await ctx.call("crash")
        return [c.content, c.input_tokens]

    rt = make_runtime(agent=FnAgent(execute), model=model, tools=[crash.tool])
    with pytest.raises(KeyboardInterrupt):
        rt.run("g", remit=Remit(tools={"crash": {}}), run_id=RUN)
    run = rt.resume(RUN)
    assert len(model.calls) == 1
    assert run.result[0] == '{"n": 1}' and run.result[1] > 0
    assert run.spent.input_tokens == run.result[1]


def test_oversized_model_output_raises_output_too_large(make_runtime: Any) -> None:
    model = ScriptedModel(["x" * 5000])

    async def execute(ctx: Any) -> Any:
        try:
            await ctx.complete(MSG, max_tokens=4000)
        except OutputTooLarge as e:
            return [e.code, e.message]
        return "accepted"

    rt = make_runtime(agent=FnAgent(execute), model=model, max_output_bytes=2000)
    run = rt.run("g", remit=Remit(), run_id=RUN)
    assert run.result[0] == "OUTPUT_TOO_LARGE"
    assert "2000" in run.result[1]


def test_an_oversized_output_is_recorded_as_the_steps_error(make_runtime: Any) -> None:
    """Every failure ends recorded: the step must not stay an open intent."""
    model = ScriptedModel(["x" * 5000])
    big = tool(name="big")(lambda n: "y" * n)

    async def execute(ctx: Any) -> Any:
        for call in (lambda: ctx.complete(MSG, max_tokens=4000), lambda: ctx.call("big", n=5000)):
            with contextlib.suppress(OutputTooLarge):
                await call()
        return "done"

    rt = make_runtime(agent=FnAgent(execute), model=model, tools=[big], max_output_bytes=2000)
    run = rt.run("g", remit=Remit(tools={"big": {}}), run_id=RUN)
    assert run.ok
    steps = tool_steps(rt)
    assert [(s.kind, s.status, code(s)) for s in steps] == [
        ("model", "error", "OUTPUT_TOO_LARGE"),
        ("tool", "error", "OUTPUT_TOO_LARGE"),
    ]


def test_a_result_json_cannot_hold_fails_its_step_with_the_reason(make_runtime: Any) -> None:
    """A result that refers to itself, or holds an object JSON has no form for, cannot
    be journaled: the step ends as an error that says why, and the run goes on."""
    loop: list[Any] = []
    loop.append(loop)
    cyclic = tool(name="cyclic")(lambda: loop)
    opaque = tool(name="opaque")(lambda: {"handle": object()})

    async def execute(ctx: Any) -> Any:
        seen = []
        for name in ("cyclic", "opaque"):
            try:
                await ctx.call(name)
            except StepFailed as e:
                seen.append(e.message)
        return seen

    rt = make_runtime(agent=FnAgent(execute), tools=[cyclic, opaque])
    run = rt.run("g", remit=Remit(tools={"cyclic": {}, "opaque": {}}), run_id=RUN)
    assert run.ok, run.error
    assert len(run.result) == 2
    assert "cannot be journaled as JSON: it refers to itself" in run.result[0]
    assert "object is not JSON-serializable" in run.result[1]
    assert [(s.name, s.status) for s in tool_steps(rt)] == [
        ("cyclic", "error"),
        ("opaque", "error"),
    ]


def test_the_gate_checks_in_order_remit_before_budget(make_runtime: Any) -> None:
    """A call that is both ungranted and over budget is denied by the remit, and
    holds no budget."""
    probe, calls = counting("probe")

    async def execute(ctx: Any) -> Any:
        try:
            await ctx.call("secret", x=1)
        except RemitError as e:
            return e.code
        return "reached"

    rt = make_runtime(agent=FnAgent(execute), tools=[probe, counting("secret")[0]])
    run = rt.run("g", remit=Remit(tools={"probe": {}}, budget=Budget(calls=0)), run_id=RUN)
    assert run.result == "DENIED"
    assert calls == []
