"""OpenTelemetry export of runs (remit.trace.otel, remit trace, remit run --otel), through
the real SDK: its in-memory exporter in process, and its OTLP/HTTP exporter against a
real receiver on 127.0.0.1 (tests/trace/otel_receiver.py), from this process and from
real ``remit`` processes, one of them killed with SIGKILL and resumed."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from typer.testing import CliRunner

from remit import Agent, Budget, Context, Plan, Remit, Runtime, Subtask, within
from remit.cli import app
from remit.core.tasks import ROOT as TASKS_ROOT
from remit.core.tasks import task_id
from remit.errors import MissingExtra
from remit.journal import SQLiteJournal, open_journal
from remit.models import Message, ScriptedModel
from remit.tools import tool
from remit.trace import load
from remit.trace.otel import (
    RUN_KEY,
    LiveExport,
    SpanData,
    export_run,
    span_id_of,
    spans_of,
    trace_id_of,
)
from tests.faults.scenarios import GOAL, ROOT_REMIT, Scenario, plan_of, runtime
from tests.trace.otel_receiver import otlp_receiver

pytestmark = pytest.mark.otel

runner = CliRunner()

Key = tuple[str, str, str | None, str]


@tool
def flaky(n: int) -> int:
    """Fails on 13, else doubles."""
    if n == 13:
        raise ValueError("13 is unlucky")
    return 2 * n


def scripted_answer(messages: list[Message]) -> str:
    """The scripted model (not a language model): says the question back, longer."""
    return f"you asked: {messages[-1]['content']}"


class Fanout(Agent):
    """The root plans a child per number; each asks the scripted model about it, then
    doubles it with ``flaky`` (13 fails); the child for 7 also reads a file it was not
    granted (a denial)."""

    tools = [flaky]

    def atomize(self, ctx: Context) -> str:
        return "plan" if "ns" in ctx.inputs else "execute"

    def plan(self, ctx: Context) -> Plan:
        return Plan(
            [Subtask(f"n{n}", f"double {n}", inputs={"n": n},
                     remit={"tools": {"flaky": {}}, "budget": {"calls": 3}})
             for n in ctx.inputs["ns"]],
            on_failure="aggregate",
        )  # fmt: skip

    async def execute(self, ctx: Context) -> int:
        n = ctx.inputs["n"]
        if n == 7:
            with contextlib.suppress(Exception):
                await ctx.call("read_file", path="secrets.txt")
        await ctx.complete([{"role": "user", "content": f"what is twice {n}?"}], max_tokens=64)
        return await ctx.call("flaky", n=n)

    def aggregate(self, ctx: Context, results: Any) -> int:
        return sum(r.value for r in results if r.ok)


FANOUT = Fanout()
GRANT = Remit(tools={"flaky": {}, "read_file": {"path": within("docs/")}},
             budget=Budget(calls=20, cost_usd=1.0), depth=1)  # fmt: skip


def hexes(s: ReadableSpan) -> Key:
    ctx, parent = s.context, s.parent
    assert ctx is not None
    return (f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}",
            None if parent is None else f"{parent.span_id:016x}", s.name)  # fmt: skip


def keys(spans: list[SpanData]) -> set[Key]:
    return {(*s.ids, s.name) for s in spans}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No OTEL_* variable of the machine running the tests steers an exporter here."""
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)


@pytest.fixture
def live_run(journal_path: Path, workspace: Path, clean_env: None) -> Iterator[
    tuple[str, list[ReadableSpan]]
]:  # fmt: skip
    """The Fanout run, exported live to the SDK's in-memory exporter."""
    memory = InMemorySpanExporter()
    with LiveExport(memory, interval=0.01) as live:
        rt = Runtime(journal=live.tap(journal_path, "normal"), agent=FANOUT,
                     model=ScriptedModel(scripted_answer), workspace=workspace)  # fmt: skip
        try:
            run = rt.run("double some numbers", remit=GRANT, inputs={"ns": [1, 7, 13]})
        finally:
            rt.close()
    assert run.status == "done" and run.result == 2 + 14
    yield run.id, list(memory.get_finished_spans())


def recorded(journal: Path, run_id: str) -> list[SpanData]:
    store = SQLiteJournal(journal)
    try:
        return spans_of(store.get_run(run_id), store.steps(run_id))
    finally:
        store.close()


# --- the mapping, through the SDK ---------------------------------------------------------


def test_the_span_tree_mirrors_the_task_tree(
    live_run: tuple[str, list[ReadableSpan]], journal_path: Path
) -> None:
    run_id, spans = live_run
    store = SQLiteJournal(journal_path)
    try:
        tree = load(store, run_id)
        steps = list(store.steps(run_id))
    finally:
        store.close()
    trace = trace_id_of(run_id)
    assert {s.context.trace_id for s in spans if s.context} == {trace}
    assert len({s.context.span_id for s in spans if s.context}) == len(spans)  # no duplicates
    by_id = {s.context.span_id: s for s in spans if s.context}
    (run_span,) = [s for s in spans if s.parent is None]
    assert run_span.name == "invoke_workflow tests.trace.test_otel:FANOUT"
    assert run_span.context is not None and run_span.context.span_id == span_id_of(run_id, RUN_KEY)
    # one invoke_agent span per task, each under its parent task's (the root's: the run's)
    tasks = {s.attributes["remit.task.id"]: s for s in spans
             if s.attributes.get("gen_ai.operation.name") == "invoke_agent"}  # fmt: skip
    assert set(tasks) == {n.id for n in tree.root.walk()} and len(tasks) == tree.tasks == 4
    for n in tree.root.walk():
        span = tasks[n.id]
        assert span.parent is not None
        parent = by_id[span.parent.span_id]
        assert parent.attributes.get("remit.task.id", RUN_KEY) == (n.parent or RUN_KEY)
        assert span.attributes["remit.task.status"] == n.status
        assert span.attributes["remit.task.decision"] == n.decision
        assert span.attributes["remit.task.key"] == n.key
        assert span.attributes["remit.task.goal"] == n.goal
        assert span.attributes["remit.task.depth"] == n.id.count("/")
        assert span.attributes["remit.spend.calls"] == n.spent.calls
        assert n.budget is not None and span.attributes["remit.budget.calls"] == n.budget.calls
    # one effect span per tool or model call in the journal, under its task
    effects = [s for s in spans if s.attributes.get("gen_ai.operation.name") in
               ("chat", "execute_tool")]  # fmt: skip
    calls = [s for s in steps if s.kind in ("tool", "model")]
    assert sorted(str(s.attributes["remit.step.id"]) for s in effects) == sorted(
        s.step_id for s in calls
    )
    for s in effects:
        assert s.parent is not None
        assert by_id[s.parent.span_id].attributes["remit.task.id"] == s.attributes["remit.task.id"]
    assert len(spans) == 1 + 4 + len(calls)
    # a failed task is an error span with its code and message
    failed = tasks[task_id(tree.root.id, 2, "double 13")]
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.status.description is not None and "13 is unlucky" in failed.status.description
    assert failed.attributes["error.type"] == "STEP_FAILED"


def test_model_and_tool_spans_carry_the_genai_attributes(
    live_run: tuple[str, list[ReadableSpan]], journal_path: Path
) -> None:
    _, spans = live_run
    chats = [s for s in spans if s.attributes.get("gen_ai.operation.name") == "chat"]
    tools = [s for s in spans if s.attributes.get("gen_ai.operation.name") == "execute_tool"]
    assert len(chats) == 3 and len(tools) == 4  # 3 questions; flaky x3, read_file (denied)
    for s in chats:
        assert s.name == "chat scripted" and s.kind is SpanKind.CLIENT
        assert s.attributes["gen_ai.request.model"] == "scripted"
        assert s.attributes["gen_ai.response.model"] == "scripted"
        # the scripted model counts a token per 4 characters, rounded up
        question = f"what is twice {_n_of(s, spans)}?"
        assert s.attributes["gen_ai.usage.input_tokens"] == math.ceil(len(question) / 4)
        answer = f"you asked: {question}"
        assert s.attributes["gen_ai.usage.output_tokens"] == math.ceil(len(answer) / 4)
        assert s.attributes["remit.spend.calls"] == 1
        assert s.attributes["remit.role"] == "execute"
    for s in tools:
        name = s.attributes["gen_ai.tool.name"]
        assert s.name == f"execute_tool {name}" and s.kind is SpanKind.INTERNAL
        # the call id is the journal's step id: unique in the run, stable across resumes
        assert s.attributes["gen_ai.tool.call.id"] == s.attributes["remit.step.id"]
        assert str(s.attributes["gen_ai.tool.call.id"]).startswith(
            str(s.attributes["remit.task.id"])
        )
    assert sorted(str(s.attributes["gen_ai.tool.name"]) for s in tools) == [
        "flaky", "flaky", "flaky", "read_file"]  # fmt: skip


def _n_of(span: ReadableSpan, spans: list[ReadableSpan]) -> int:
    """The number a task span's goal names ("double 7" -> 7), for an effect span."""
    for s in spans:
        if s.attributes.get("remit.task.id") == span.attributes["remit.task.id"] and (
            s.attributes.get("gen_ai.operation.name") == "invoke_agent"
        ):
            return int(str(s.attributes["remit.task.goal"]).split()[-1])
    raise AssertionError("no task span for the effect")


def test_a_denial_is_an_error_span_with_its_reason(
    live_run: tuple[str, list[ReadableSpan]],
) -> None:
    _, spans = live_run
    (denied,) = [s for s in spans if s.attributes.get("remit.denial.code")]
    assert denied.name == "execute_tool read_file"
    assert denied.status.status_code is StatusCode.ERROR
    assert denied.attributes["remit.step.status"] == "denied"
    assert denied.attributes["remit.denial.code"] == "DENIED"
    assert "tool not granted" in str(denied.attributes["remit.denial.reason"])
    # its task counts it, and the task still succeeded (the agent caught the denial)
    (task,) = [s for s in spans if s.attributes.get("remit.task.goal") == "double 7"]
    assert task.attributes["remit.task.denied"] == 1
    assert task.status.status_code is StatusCode.UNSET


def test_the_run_span_holds_the_remit_digest_budget_and_spend(
    live_run: tuple[str, list[ReadableSpan]],
) -> None:
    run_id, spans = live_run
    (run_span,) = [s for s in spans if s.parent is None]
    a = run_span.attributes
    canonical = json.dumps(GRANT.to_dict(), sort_keys=True, separators=(",", ":"))
    assert a["remit.remit.digest"] == "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
    assert a["remit.run.id"] == run_id and a["remit.goal"] == "double some numbers"
    assert a["remit.run.status"] == "done" and a["gen_ai.operation.name"] == "invoke_workflow"
    assert a["remit.budget.calls"] == 20 and a["remit.budget.cost_usd"] == 1.0
    # 3 model calls and 3 flaky calls (13's raised: a call is still spent); the denial cost none
    assert a["remit.spend.calls"] == 6
    assert a["remit.spend.input_tokens"] == sum(
        s.attributes["gen_ai.usage.input_tokens"] for s in spans  # type: ignore[misc]
        if s.attributes.get("gen_ai.operation.name") == "chat"
    )  # fmt: skip
    assert a["remit.tasks"] == 4 and a["remit.signed"] is True
    assert run_span.resource.attributes["service.name"] == "remit"
    assert run_span.instrumentation_scope is not None
    assert run_span.instrumentation_scope.name == "remit"
    # the run span spans the whole run
    starts = [s.start_time for s in spans if s.start_time is not None]
    assert run_span.start_time == min(starts)


def test_live_export_and_the_journal_give_the_same_spans(
    live_run: tuple[str, list[ReadableSpan]], journal_path: Path
) -> None:
    run_id, spans = live_run
    after = recorded(journal_path, run_id)
    assert {hexes(s) for s in spans} == keys(after)
    assert all(s.finished for s in after)
    # attributes and status too: one mapping serves both ways
    by_id = {s.span_id: s for s in after}
    for s in spans:
        assert s.context is not None
        assert dict(s.attributes) == dict(by_id[s.context.span_id].attributes)
        assert s.status.status_code.name.lower() == by_id[s.context.span_id].status


def test_ids_are_derived_from_the_run_and_step_ids(
    live_run: tuple[str, list[ReadableSpan]], journal_path: Path
) -> None:
    run_id, _ = live_run
    once, twice = recorded(journal_path, run_id), recorded(journal_path, run_id)
    assert [(*s.ids, s.name) for s in once] == [(*s.ids, s.name) for s in twice]
    want = hashlib.sha256(b"remit.trace\x00" + run_id.encode() + b"\x00").digest()[:16]
    assert {s.trace_id for s in once} == {int.from_bytes(want, "big")}
    for s in once:
        h = hashlib.sha256(f"remit.span\x00{run_id}\x00{s.key}\x00".encode()).digest()[:8]
        assert s.span_id == int.from_bytes(h, "big")
    # another run: another trace, other spans
    assert trace_id_of(run_id + "x") != trace_id_of(run_id)


# --- failures: retries, reroutes, injected faults, escalation --------------------------------


def scenario_spans(tmp_path: Path, name: str, faults: tuple[dict[str, Any], ...]) -> list[SpanData]:
    """A fault scenario's run (tests/faults/scenarios.py, routed), as spans."""
    s = Scenario(name, "pipeline", faults)
    rt = runtime(tmp_path / f"{name}.db", "routed", s, plan_of(s.faults, s.seed))
    try:
        rt.run(GOAL, remit=ROOT_REMIT, run_id=name)
        return spans_of(rt.store.get_run(name), rt.store.steps(name))
    finally:
        rt.close()


def test_a_reroute_and_its_injected_fault_appear(tmp_path: Path) -> None:
    spans = scenario_spans(tmp_path, "reroute", ({"type": "tool_error", "tool": "fetch_a",
                                                  "after": 1},))  # fmt: skip
    by_id = {s.span_id: s for s in spans}
    # the call to the capability is one span; each alternative tried, a span under it
    (failed,) = [s for s in spans if s.attributes.get("remit.route.alternative") == "fetch_a"
                 and s.status == "error"]  # fmt: skip
    assert failed.parent_id is not None
    route = by_id[failed.parent_id]
    assert route.name == "execute_tool fetch" and route.attributes["gen_ai.tool.name"] == "fetch"
    assert route.attributes["remit.route.served_by"] == "fetch_b"
    assert route.status == "unset"
    assert failed.attributes["remit.outcome"] == "reroute"
    assert failed.attributes["remit.injected"] == "tool_error"
    assert [e.name for e in failed.events] == ["remit.fault"]
    assert failed.events[0].attributes["remit.fault.type"] == "tool_error"
    (reroute,) = [e for e in route.events if e.name == "remit.reroute"]
    assert reroute.attributes["remit.outcome"] == "reroute"
    assert (reroute.attributes["remit.reroute.from"], reroute.attributes["remit.reroute.to"]) == (
        "fetch_a", "fetch_b")  # fmt: skip
    served = [s for s in spans if s.parent_id == route.span_id]
    assert sorted(str(s.attributes["remit.route.alternative"]) for s in served) == [
        "fetch_a", "fetch_b"]  # fmt: skip
    # the route's task is its parent
    assert by_id[route.parent_id or 0].attributes["remit.task.id"] == route.attributes[
        "remit.task.id"]  # fmt: skip


def test_a_retry_is_an_event_on_its_call(tmp_path: Path) -> None:
    spans = scenario_spans(tmp_path, "retry", ({"type": "timeout", "tool": "fetch_a"},))
    (call,) = [s for s in spans if any(e.name == "remit.retry" for e in s.events)]
    assert call.attributes["remit.route.alternative"] == "fetch_a" and call.status == "unset"
    (retry,) = [e for e in call.events if e.name == "remit.retry"]
    assert retry.attributes["remit.outcome"] == "retry"
    assert retry.attributes["remit.retry.attempt"] == 1
    assert retry.attributes["error.type"] == "STEP_TIMEOUT"
    assert retry.attributes["remit.injected"] == "timeout"
    assert call.start_ns <= retry.time_ns <= call.end_ns


def test_an_escalation_when_no_route_is_left(tmp_path: Path) -> None:
    every = tuple({"type": "tool_error", "tool": t, "times": 0, "task": "*s1*"}
                  for t in ("fetch_a", "fetch_b", "fetch_c"))  # fmt: skip
    spans = scenario_spans(tmp_path, "escalate", every)
    escalated = [s for s in spans if s.attributes.get("remit.outcome") == "escalate"]
    calls = [s for s in escalated if s.attributes["gen_ai.operation.name"] == "execute_tool"]
    assert calls and {s.name for s in calls} == {"execute_tool fetch"}
    assert all(s.status == "error" for s in escalated)
    assert {s.attributes["error.type"] for s in escalated} == {"NO_ROUTE"}
    # the call's task ends escalated, and its parent re-plans the branch (attempt 1)
    tasks = {s.key: s for s in spans if s.attributes.get("gen_ai.operation.name") == "invoke_agent"}
    first = tasks[str(calls[0].attributes["remit.task.id"])]
    assert first in escalated and first.attributes["remit.task.status"] == "failed"
    replanned = [t for t in tasks.values() if t.attributes.get("remit.task.attempt") == 1]
    assert replanned and replanned[0].parent_id == first.parent_id


# --- export: after the fact, live, killed and resumed ----------------------------------------


def test_remit_trace_sends_a_recorded_run_to_a_real_otlp_receiver(
    live_run: tuple[str, list[ReadableSpan]], journal_path: Path
) -> None:
    run_id, _ = live_run
    with otlp_receiver() as rx:
        r = runner.invoke(app, ["trace", run_id, "-j", str(journal_path), "--endpoint", rx.url])
        assert r.exit_code == 0, r.output
        got = rx.snapshot()
    want = recorded(journal_path, run_id)
    assert f"exported {len(want)} spans of run {run_id} to {rx.url}" in r.stdout
    assert sorted(s.key for s in got) == sorted(keys(want))
    assert {s.service for s in got} == {"remit"} and {s.scope for s in got} == {"remit"}
    (chat, *_) = [s for s in got if s.name == "chat scripted"]
    assert chat.attributes["gen_ai.usage.input_tokens"] > 0
    (denied,) = [s for s in got if "remit.denial.reason" in s.attributes]
    assert denied.status_code == 2  # STATUS_CODE_ERROR


def test_remit_trace_to_the_console_and_as_json(
    live_run: tuple[str, list[ReadableSpan]], journal_path: Path
) -> None:
    run_id, _ = live_run
    want = recorded(journal_path, run_id)
    r = runner.invoke(app, ["trace", run_id, "-j", str(journal_path), "--console"])
    assert r.exit_code == 0, r.output
    assert r.stdout.count('"name": "execute_tool flaky"') == 3  # the SDK's JSON, per span
    assert f"exported {len(want)} spans of run {run_id} to the console" in r.stdout
    j = runner.invoke(app, ["trace", run_id, "-j", str(journal_path), "--json"])
    data = json.loads(j.stdout)
    assert data["trace_id"] == f"{trace_id_of(run_id):032x}"
    assert [(s["trace_id"], s["span_id"], s["parent_span_id"], s["name"]) for s in data["spans"]
            ] == [(*s.ids, s.name) for s in want]  # fmt: skip


def test_remit_trace_bad_input_exits_2(
    live_run: tuple[str, list[ReadableSpan]], journal_path: Path
) -> None:
    run_id, _ = live_run
    r = runner.invoke(app, ["trace", "no-such-run", "-j", str(journal_path), "--console"])
    assert r.exit_code == 2 and "RUN_NOT_FOUND" in r.stderr
    r = runner.invoke(app, ["trace", run_id, "-j", str(journal_path), "--endpoint", "ftp://x"])
    assert r.exit_code == 2 and "expected an http(s):// URL" in r.stderr
    r = runner.invoke(app, ["trace", run_id, "-j", str(journal_path), "--console", "--otlp"])
    assert r.exit_code == 2 and "not both" in r.stderr


def test_without_opentelemetry_each_entry_says_how_to_install_it(
    live_run: tuple[str, list[ReadableSpan]], journal_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id, _ = live_run
    for name in [m for m in sys.modules if m == "opentelemetry" or m.startswith("opentelemetry.")]:
        monkeypatch.setitem(sys.modules, name, None)  # any import of it now fails
    with pytest.raises(MissingExtra, match=r"pip install 'remit\[otel\]'"):
        LiveExport(InMemorySpanExporter())
    store = open_journal(journal_path)
    with pytest.raises(MissingExtra):
        export_run(store, run_id, InMemorySpanExporter())
    store.close()
    message = "OpenTelemetry is not installed: pip install 'remit[otel]'"
    r = runner.invoke(app, ["trace", run_id, "-j", str(journal_path)])
    assert r.exit_code == 2 and f"[MISSING_EXTRA] {message}" in r.stderr
    r = runner.invoke(app, ["run", "x", "--agent", "tests.trace.test_otel:FANOUT", "-j",
                            str(journal_path), "--otel"])  # fmt: skip
    assert r.exit_code == 2 and message in r.stderr
    # the spans as data need no SDK
    r = runner.invoke(app, ["trace", run_id, "-j", str(journal_path), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["run"] == run_id


def test_remit_imports_no_opentelemetry_until_it_exports() -> None:
    code = ("import sys\n"
            "sys.modules['opentelemetry'] = None  # as if the extra were not installed\n"
            "import remit, remit.cli, remit.trace.otel\n"
            "from remit.journal import RunRecord\n"
            "spans = remit.trace.otel.spans_of(RunRecord('r', 'g', 'a', '{}', 'done'), [])\n"
            "print([s.name for s in spans])\n")  # fmt: skip
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "['invoke_workflow a']"


AGENTS = '''
import asyncio
import os

from remit import Agent, Plan, Subtask, tool


@tool
def note(i: int) -> int:
    """Ten times i."""
    return i * 10


class Steps(Agent):
    """Three steps; step 2 waits while the file "hang" exists."""

    tools = [note]

    def atomize(self, ctx):
        return "plan" if ctx.depth == 0 else "execute"

    def plan(self, ctx):
        return Plan([Subtask(f"s{i}", f"step {i}", inputs={"i": i}) for i in range(3)])

    async def execute(self, ctx):
        while ctx.inputs["i"] == 2 and os.path.exists("hang"):
            await asyncio.sleep(0.02)
        return await ctx.call("note", i=ctx.inputs["i"])

    def aggregate(self, ctx, results):
        return sum(r.value for r in results)
'''


def remit_process(ws: Path, endpoint: str, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = endpoint
    return subprocess.Popen([sys.executable, "-m", "remit.cli", *args], cwd=ws, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def until(what: Callable[[], bool], proc: subprocess.Popen[str], why: str) -> None:
    deadline = time.monotonic() + 30
    while not what():
        assert proc.poll() is None, f"the run ended first: {proc.communicate()}"
        assert time.monotonic() < deadline, why
        time.sleep(0.02)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    (tmp_path / "agents.py").write_text(AGENTS)
    return tmp_path


def test_remit_run_otel_exports_while_the_run_works(ws: Path) -> None:
    with otlp_receiver() as rx:
        (ws / "hang").write_text("")
        proc = remit_process(ws, rx.url, "run", "three steps", "--agent", "agents:Steps",
                             "--tool", "note", "--calls", "10", "--depth", "1", "-j", "j.db",
                             "--run-id", "live", "--otel", "--quiet")  # fmt: skip
        try:
            # steps 0 and 1 arrive while step 2 still waits: the export is live
            until(lambda: {s.attributes.get("remit.task.key") for s in rx.snapshot()}
                  >= {"s0", "s1"}, proc, "no span arrived while the run worked")  # fmt: skip
            assert not any(s.parent_id is None for s in rx.snapshot())  # the run goes on
            (ws / "hang").unlink()
            out, errs = proc.communicate(timeout=60)
        finally:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        assert proc.returncode == 0, errs
        got = rx.snapshot()
    assert out.strip() == "live done"
    assert sorted(s.key for s in got) == sorted(keys(recorded(ws / "j.db", "live")))
    assert len({s.span_id for s in got}) == len(got) == 1 + 4 + 3  # run, tasks, note x3
    assert rx.requests >= 2  # in batches, as the spans ended


def test_a_run_killed_then_resumed_with_otel_continues_its_trace(ws: Path) -> None:
    with otlp_receiver() as rx:
        (ws / "hang").write_text("")
        proc = remit_process(ws, rx.url, "run", "three steps", "--agent", "agents:Steps",
                             "--tool", "note", "--calls", "10", "--depth", "1", "-j", "j.db",
                             "--run-id", "r1", "--otel", "--quiet")  # fmt: skip
        try:
            until(lambda: {s.attributes.get("remit.task.key") for s in rx.snapshot()}
                  >= {"s0", "s1"}, proc, "no span arrived before the kill")  # fmt: skip
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
        assert proc.returncode == -signal.SIGKILL
        before = rx.snapshot()
        (ws / "hang").unlink()
        resumed = remit_process(ws, rx.url, "resume", "r1", "-j", "j.db", "--otel", "--quiet")
        out, errs = resumed.communicate(timeout=60)
        assert resumed.returncode == 0, errs
        after = rx.snapshot()[len(before) :]
    assert out.strip() == "r1 done"
    want = keys(recorded(ws / "j.db", "r1"))
    # one trace across both processes
    assert {s.trace_id for s in before + after} == {f"{trace_id_of('r1'):032x}"}
    # what left before the kill is not sent again; the run's span leaves once, at its end
    assert not {s.span_id for s in before} & {s.span_id for s in after}
    assert len({s.span_id for s in after}) == len(after)
    assert [s.name for s in before + after if s.parent_id is None] == [
        "invoke_workflow agents:Steps"]  # fmt: skip
    # the tasks open at the kill (the root, step 2) end in the resumed process
    assert {s.attributes.get("remit.task.key") for s in after if "remit.task.key" in s.attributes
            } == {"root", "s2"}  # fmt: skip
    # nothing ended between the last export and the kill: together, the whole run
    assert {s.key for s in before + after} == want
    root = task_id(TASKS_ROOT, 0, "three steps")
    (root_span,) = [s for s in after if s.attributes.get("remit.task.id") == root]
    assert root_span.attributes["remit.task.status"] == "done"
