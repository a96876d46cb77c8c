"""Failures at the Gate: every failure is classified and ends as one journaled outcome
(retry, reroute, escalate, fail); a routed call goes around a failing alternative,
never to one the remit does not grant; breakers are journaled and a resume keeps them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from remit import Agent, Remit, tool
from remit.errors import DeniedError, NoRouteLeft, RetryableToolError, ToolArgumentError
from remit.gate._taxonomy import classify, reroutable
from remit.journal import StepRecord

RUN = "run-routes"
ROUTES = {"fetch": {"fetch_a": 1, "fetch_b": 2, "fetch_c": 3}}


class Fetcher(Agent):
    """Calls ``fetch`` ``n`` times (keys 0..n-1); returns what came back, or the error."""

    def __init__(self, n: int = 1) -> None:
        self.n = n

    async def execute(self, ctx: Any) -> Any:
        out: list[Any] = []
        for i in range(self.n):
            try:
                out.append(await ctx.call("fetch", key=i))
            except (NoRouteLeft, DeniedError, ToolArgumentError) as e:
                out.append({"code": e.code})
        return out


def alternatives(broken: set[str], calls: list[str], transient: bool = False) -> list[Any]:
    """Three real tools: each returns its name and key, or fails if it is ``broken``."""
    made = []
    for name in ("fetch_a", "fetch_b", "fetch_c"):

        def fn(key: int, _name: str = name) -> dict[str, Any]:
            calls.append(_name)
            if _name in broken:
                if transient:
                    raise RetryableToolError(f"{_name} is busy")
                raise ConnectionError(f"{_name} is down")
            return {"via": _name, "key": key}

        fn.__name__ = name
        made.append(tool(name=name, retries=1)(fn))
    return made


def rows(rt: Any, kind: str) -> list[StepRecord]:
    return [s for s in rt.store.steps(RUN) if s.kind == kind]


GRANT_ALL = Remit(tools={"fetch_a": {}, "fetch_b": {}, "fetch_c": {}})


def test_a_failing_alternative_is_routed_around_and_the_reroute_is_journaled(
    make_runtime: Any,
) -> None:
    calls: list[str] = []
    rt = make_runtime(agent=Fetcher(), tools=alternatives({"fetch_a"}, calls), routes=ROUTES)
    run = rt.run("g", remit=GRANT_ALL, run_id=RUN)
    assert run.ok, run.error
    assert run.result == [{"via": "fetch_b", "key": 0}]
    assert calls == ["fetch_a", "fetch_b"]  # a fatal error is not retried, it is rerouted
    [reroute] = rows(rt, "reroute")
    err = json.loads(reroute.error or "{}")
    assert (reroute.name, err["outcome"], err["to"], err["failure"]) == (
        "fetch_a",
        "reroute",
        "fetch_b",
        "fatal",
    )
    # each alternative tried is a step of its own, with its own row (and proof); the
    # call's outcome is the step's route row
    tried = {s.step_id.split("@")[1]: s for s in rt.store.steps(RUN) if s.kind == "tool"}
    assert (tried["fetch_a"].status, tried["fetch_b"].status) == ("error", "ok")
    assert json.loads(tried["fetch_a"].error or "{}")["outcome"] == "reroute"
    [route] = rows(rt, "route")
    assert (route.name, route.status, json.loads(route.output or "null")) == (
        "fetch_b",
        "ok",
        {"via": "fetch_b", "key": 0},
    )
    assert run.spent.calls == 2


def test_a_routed_signed_run_verifies_offline(make_runtime: Any) -> None:
    from remit.trust.provenance import verify_run

    calls: list[str] = []
    rt = make_runtime(agent=Fetcher(3), tools=alternatives({"fetch_a"}, calls), routes=ROUTES)
    assert rt.run("g", remit=GRANT_ALL, run_id=RUN).ok
    report = verify_run(rt.store, RUN)
    assert report.ok, report.failures
    assert report.calls == len(calls) == 6  # three failed on fetch_a, three served by b


def test_routing_never_widens_authority(make_runtime: Any) -> None:
    calls: list[str] = []
    rt = make_runtime(agent=Fetcher(), tools=alternatives({"fetch_a"}, calls), routes=ROUTES)
    remit = Remit(tools={"fetch_a": {}, "fetch_c": {}})  # fetch_b is not granted
    run = rt.run("g", remit=remit, run_id=RUN)
    assert run.result == [{"via": "fetch_c", "key": 0}]
    assert "fetch_b" not in calls


def test_a_capability_with_no_granted_alternative_is_a_denial(make_runtime: Any) -> None:
    calls: list[str] = []
    rt = make_runtime(agent=Fetcher(), tools=alternatives(set(), calls), routes=ROUTES)
    run = rt.run("g", remit=Remit(tools={"calculator": {}}), run_id=RUN)
    assert run.result == [{"code": "DENIED"}]
    assert calls == []


def test_with_every_route_failed_the_call_escalates(make_runtime: Any) -> None:
    calls: list[str] = []
    broken = {"fetch_a", "fetch_b", "fetch_c"}
    rt = make_runtime(agent=Fetcher(), tools=alternatives(broken, calls), routes=ROUTES)
    run = rt.run("g", remit=GRANT_ALL, run_id=RUN)
    assert run.result == [{"code": "NO_ROUTE"}]
    assert calls == ["fetch_a", "fetch_b", "fetch_c"]
    assert [json.loads(r.error or "{}")["to"] for r in rows(rt, "reroute")] == [
        "fetch_b",
        "fetch_c",
    ]
    [route] = rows(rt, "route")
    err = json.loads(route.error or "{}")
    assert (route.status, err["code"], err["outcome"], err["cause"]) == (
        "error",
        "NO_ROUTE",
        "escalate",
        "STEP_FAILED",
    )


def test_a_transient_failure_is_retried_and_each_retry_journaled(make_runtime: Any) -> None:
    calls: list[str] = []
    tools = alternatives({"fetch_a"}, calls, transient=True)
    rt = make_runtime(agent=Fetcher(), tools=tools, routes=ROUTES)
    run = rt.run("g", remit=GRANT_ALL, run_id=RUN)
    assert run.result == [{"via": "fetch_b", "key": 0}]
    assert calls == ["fetch_a", "fetch_a", "fetch_b"]  # retries=1, then the reroute
    [retry] = rows(rt, "retry")
    err = json.loads(retry.error or "{}")
    assert (err["outcome"], err["failure"], err["attempt"]) == ("retry", "transient", 1)
    assert retry.step_id.endswith("~retry.1")


def test_a_correctable_mistake_goes_back_to_the_agent_not_to_another_route(
    make_runtime: Any,
) -> None:
    calls: list[str] = []

    class BadArgs(Agent):
        async def execute(self, ctx: Any) -> Any:
            try:
                await ctx.call("fetch", key="not a number")
            except ToolArgumentError as e:
                return e.code

    rt = make_runtime(agent=BadArgs(), tools=alternatives(set(), calls), routes=ROUTES)
    run = rt.run("g", remit=GRANT_ALL, run_id=RUN)
    assert run.result == "TOOL_ARGUMENTS"
    assert calls == [] and rows(rt, "reroute") == []


def test_an_open_breaker_is_journaled_and_skipped(make_runtime: Any) -> None:
    calls: list[str] = []
    rt = make_runtime(agent=Fetcher(5), tools=alternatives({"fetch_a"}, calls), routes=ROUTES)
    run = rt.run("g", remit=GRANT_ALL, run_id=RUN)
    assert [r["via"] for r in run.result] == ["fetch_b"] * 5
    # three failures in a row open fetch_a's breaker: the last two calls skip it
    assert calls.count("fetch_a") == 3
    opened = [json.loads(h.output or "{}") for h in rows(rt, "health") if h.name == "fetch_a"]
    assert opened[-1]["state"] == "open" and opened[-1]["consecutive"] == 3


def test_a_resume_routes_as_the_interrupted_run_would_have(make_runtime: Any) -> None:
    calls: list[str] = []
    crashed = {"armed": True}

    class FetchThenCrash(Fetcher):
        async def execute(self, ctx: Any) -> Any:
            out = [await ctx.call("fetch", key=i) for i in range(3)]  # opens fetch_a
            if crashed["armed"]:
                crashed["armed"] = False
                raise KeyboardInterrupt  # the process dies here
            out.append(await ctx.call("fetch", key=3))
            return out

    tools = alternatives({"fetch_a"}, calls)
    rt = make_runtime(agent=FetchThenCrash(), tools=tools, routes=ROUTES)
    with pytest.raises(KeyboardInterrupt):
        rt.run("g", remit=GRANT_ALL, run_id=RUN)
    rt.close()
    calls.clear()
    rt2 = make_runtime(agent=FetchThenCrash(), tools=tools, routes=ROUTES)
    run = rt2.resume(RUN)
    assert run.ok, run.error
    # the three calls were served from the journal; the fourth skipped the open breaker
    assert calls == ["fetch_b"]


def test_the_taxonomy() -> None:
    from remit.errors import SchemaError, StepFailed, StepTimeout

    assert classify(SchemaError("x")) == "model-correctable"
    assert classify(StepTimeout("x")) == "transient"
    assert classify(StepFailed("x")) == "fatal"
    assert reroutable(StepFailed("x")) and reroutable(StepTimeout("x"))
    assert not reroutable(DeniedError("x")) and not reroutable(SchemaError("x"))


def test_with_no_route_after_a_replan_a_person_is_asked_and_the_routes_tried_again(
    tmp_path: Any,
) -> None:
    import subprocess
    import sys
    import threading
    import time

    from remit import Plan, Runtime, Subtask
    from remit.journal import SQLiteJournal

    calls: list[str] = []
    broken = {"fetch_a", "fetch_b", "fetch_c"}
    made = alternatives(broken, calls)
    ask = {n: {"fallback": "ask"} for n in ("fetch_a", "fetch_b", "fetch_c")}

    class Branch(Agent):
        tools = tuple(made)

        def atomize(self, ctx: Any) -> str:
            return "execute" if ctx.depth else "plan"

        def plan(self, ctx: Any) -> Plan:
            return Plan([Subtask("f", "fetch one", remit={"tools": ask, "depth": 0})])

        async def execute(self, ctx: Any) -> Any:
            return await ctx.call("fetch", key=1)

        def aggregate(self, ctx: Any, results: Any) -> Any:
            return results[0].value if results[0].ok else results[0].error

    journal = tmp_path / "j.db"
    rt = Runtime(journal=journal, agent=Branch(), routes=ROUTES, durability="normal")
    box: dict[str, Any] = {}
    t = threading.Thread(
        target=lambda: box.update(run=rt.run("g", remit=Remit(tools=ask, depth=1), run_id="r"))
    )
    t.start()
    try:
        step = None
        end = time.monotonic() + 30
        while step is None and time.monotonic() < end:
            waiting = []
            if journal.exists():
                try:  # the run may be creating the file: look again
                    with SQLiteJournal(journal) as store:
                        waiting = [s for s in store.steps("r") if s.kind == "approval"]
                except Exception:
                    pass
            step = waiting[0].step_id.removesuffix("~approval") if waiting else None
            time.sleep(0.05)
        assert step is not None, "no one was asked"
        # the first attempt escalated to the planner; its re-planned task asks a person
        assert "r1" in step
        broken.discard("fetch_b")  # the person fixed a mirror, then says: try again
        out = subprocess.run(
            [sys.executable, "-m", "remit.cli", "approve", "r", step, "--journal", str(journal)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
    finally:
        t.join(timeout=30)
    run = box["run"]
    assert run.ok, run.error
    assert run.result == {"via": "fetch_b", "key": 1}
    rt.close()


class Down:
    """A model whose endpoint is down: every call fails for good."""

    name = "primary"
    usd_per_input_token = usd_per_output_token = 0.0

    def __init__(self) -> None:
        self.calls = 0

    async def complete(self, messages: Any, **kw: Any) -> Any:
        from remit.errors import ModelError

        self.calls += 1
        raise ModelError("primary: 503 for good", status=503)


def test_model_calls_route_around_a_model_that_is_down(make_runtime: Any) -> None:
    from remit import ScriptedModel

    class Asker(Agent):
        async def execute(self, ctx: Any) -> Any:
            return (await ctx.complete([{"role": "user", "content": "hi"}])).content

    down = Down()
    backup = ScriptedModel(["hello from the backup"], name="backup")
    routes = {"model": {"primary": 1, "backup": 2}}
    rt = make_runtime(agent=Asker(), model=down, models=[backup], routes=routes)
    run = rt.run("g", remit=Remit(), run_id=RUN)
    assert run.ok and run.result == "hello from the backup"
    assert down.calls == 1
    [reroute] = rows(rt, "reroute")
    assert (reroute.name, json.loads(reroute.error or "{}")["to"]) == ("primary", "backup")
    calls = {s.name: s.status for s in rt.store.steps(RUN) if s.kind == "model"}
    assert calls == {"primary": "error", "backup": "ok"}
    [route] = rows(rt, "route")
    assert route.name == "backup"


def test_a_model_route_to_a_model_the_runtime_lacks_is_refused(make_runtime: Any) -> None:
    from remit.core.routes import RoutesError

    class Asker(Agent):
        async def execute(self, ctx: Any) -> Any:
            return None

    with pytest.raises(RoutesError, match=r"routes\.model names model\(s\) .*: gpt"):
        make_runtime(agent=Asker(), model=Down(), routes={"model": {"primary": 1, "gpt": 2}})
