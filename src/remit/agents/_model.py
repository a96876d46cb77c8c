"""A model-driven agent: every role asks the runtime's model, and the remit decides.

:class:`ModelAgent` works on goals of the form "read some files and write a report":

- **atomizer** asks the model how many tool calls the goal needs (an ``enum``; a
  count of :data:`~remit.agents.prompts.PLAN_FROM_STEPS` or more means plan);
- **planner** lists the candidate files (``list_dir`` on ``inputs.target``, through the
  Gate) and asks the model for steps, each one tool call on one path, with
  dependencies; :func:`~remit.agents.prompts.check_plan` repairs the answer (self and cyclic
  dependencies, unknown tools, repeats, a missing report step) and a plan that reads
  nothing the remit allows is asked for again, with the reason. Each step becomes a
  subtask whose remit grants *that one call* (its tool, ``equals`` its path), a few
  calls of budget and no depth. A step outside the parent's remit is planned all the
  same: the Gate denies its call and journals why, and the report lists it;
- **executor** runs one step: ``read_file`` then a one-sentence summary of the file, or
  ``write_file`` of the report built from the results of the steps it comes after
  (:func:`~remit.agents._report.render_report`);
- **verifier** asks the model to quote the sentence of the file that best matches the
  summary; code checks the quote is really in the file (:func:`~remit.agents.prompts.grounded`);
- **aggregator** writes the report's overview from the summaries; the root's
  ``aggregate`` (plain code) sums up what every step did.

Every model call goes through ``ctx.complete`` (the Gate checks the answer against the
role's schema and charges it), every tool call through ``ctx.call``. An answer off its
schema is asked for again with the reason, up to ``schema_retries`` times, each attempt
a charged call. A denied call (remit, budget, deadline) is recorded by the Gate and
reported in the step's result, never raised past the step.

What each role decided is in the journal (``remit show RUN_ID``): the atomizer's
``plan``/``execute``, the planner's steps as the children's goals
(``s3 write_file out/digest.md after s1, s2: write the report``), denials under the
task that made them, and the root result's ``summary``, ``steps`` and ``notes`` (plan
repairs, retries).

>>> from remit import Runtime
>>> from remit.jobs.digest import digest_remit
>>> from remit.models import LocalModel
>>> rt = Runtime(journal="digest.db", agent=ModelAgent(), model=LocalModel())  # doctest: +SKIP
>>> inputs = {"target": "docs", "report": "out/digest.md"}
>>> run = rt.run("Read the documents in docs/ and write a digest to out/digest.md",
...              remit=digest_remit(inputs), inputs=inputs)                  # doctest: +SKIP
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping, Sequence
from typing import Any

from remit.agents._agent import Agent, Context
from remit.agents._report import render_report
from remit.agents.prompts import (
    OVERVIEW_CHARS,
    ROLES,
    STEP_TOOLS,
    SUMMARY_CHARS,
    PlanCheck,
    RoleCall,
    Step,
    check_plan,
    decide,
    grounded,
    retry_messages,
    supporting,
    supports,
    tidy,
    within_remit,
)
from remit.core.tasks import ChildResult, Plan, Subtask
from remit.errors import AuthorityError, Cancelled, JournalError, RemitError, SchemaError
from remit.errors import from_dict as error_from_dict

__all__ = ["ModelAgent"]


def _soft(e: RemitError) -> dict[str, str]:
    """A step-level error as data; what must stop the task is raised again."""
    if isinstance(e, Cancelled | JournalError):
        raise e
    return {"code": e.code, "message": e.message}


class ModelAgent(Agent):
    """The five roles of a model-driven task tree (see the module docstring).

    Inputs of the root task: ``target`` (a directory whose files the planner may name)
    or ``files`` (the candidate paths), ``report`` (the file to write) and
    ``every_file`` (every candidate the remit lets it read must be read: a plan that
    leaves one out gets a step for it). A planned step the remit denies is a mistake the
    planner corrects: it is asked again with the reasons, and a step still denied after
    that is dropped, in the plan's notes. Knobs:
    ``schema_retries`` (asks again after an off-schema answer), ``plan_retries`` (asks
    again for a plan that reads nothing the remit allows), ``step_calls`` (the call
    budget of each step's subtask), ``max_files`` (candidates shown to the planner).

    >>> ModelAgent(step_calls=4).step_calls
    4
    """

    def __init__(
        self,
        *,
        schema_retries: int = 1,
        plan_retries: int = 1,
        step_calls: int = 6,
        max_files: int = 8,
    ) -> None:
        self.schema_retries = schema_retries
        self.plan_retries = plan_retries
        self.step_calls = step_calls
        self.max_files = max_files

    # --- the roles ---------------------------------------------------------------------

    async def atomize(self, ctx: Context) -> str:
        if "step" in ctx.inputs:
            return "execute"  # a planned step is one call by construction
        try:
            answer = await self._ask(ctx, ROLES["atomizer"].call(goal=ctx.goal))
        except SchemaError:
            return "plan"  # planning copes with a one-step goal; executing cannot do more
        return decide(answer)

    async def plan(self, ctx: Context) -> Plan:
        checked, notes = await self._make_plan(ctx)
        report = ctx.inputs.get("report")
        plan_notes = [*notes, *checked.repairs]
        limit = ctx.remit.budget.calls
        # never more than the parent has: a wider child budget fails the whole plan
        calls = self.step_calls if limit is None else min(self.step_calls, limit)
        subtasks: list[Subtask] = []
        for step in checked.steps:
            tool = step.tool
            # the child may make exactly this call; a tool the parent lacks is granted
            # to no one, so the Gate denies the call and says why
            grant = {tool: {"path": {"equals": step.path}}} if tool in ctx.remit.tools else {}
            subtasks.append(
                Subtask(
                    step.id,
                    _step_goal(step),
                    deps=step.after,
                    inputs={
                        "step": step.to_dict(),
                        "goal": ctx.goal,
                        "report": report,
                        "notes": plan_notes,
                    },
                    remit={"tools": grant, "budget": {"calls": calls}, "depth": 0},
                )
            )
        return Plan(subtasks, on_failure="aggregate")

    async def execute(self, ctx: Context) -> dict[str, Any]:
        raw = ctx.inputs.get("step")
        if isinstance(raw, Mapping):
            step = Step.from_dict(raw)  # pyright: ignore[reportUnknownArgumentType]
            out = await self._run_step(ctx, step, ctx.deps)
            out["notes"] = list(ctx.inputs.get("notes", ()))
            return out
        # the atomizer said one call: do the plan's steps here, under this task's remit
        checked, notes = await self._make_plan(ctx)
        done: dict[str, Any] = {}
        for step in _in_order(checked.steps):
            done[step.id] = await self._run_step(ctx, step, {d: done[d] for d in step.after})
        values = [{**v, "notes": [*notes, *checked.repairs]} for v in done.values()]
        return self._summary(
            ctx, [ChildResult(k, k, True, v) for k, v in zip(done, values, strict=True)]
        )

    async def aggregate(self, ctx: Context, results: list[ChildResult]) -> dict[str, Any]:
        return self._summary(ctx, results)

    # --- planning ------------------------------------------------------------------------

    async def _candidates(self, ctx: Context, notes: list[str]) -> list[str]:
        files = ctx.inputs.get("files")
        if isinstance(files, list):
            return [str(f) for f in files][: self.max_files]  # pyright: ignore[reportUnknownVariableType]
        target = str(ctx.inputs.get("target", "."))
        try:
            entries: list[dict[str, Any]] = await ctx.call("list_dir", path=target)
        except RemitError as e:
            err = _soft(e)
            notes.append(f"list_dir {target}: {err['code']}: {err['message']}")
            return []
        base = "" if posixpath.normpath(target) == "." else posixpath.normpath(target) + "/"
        names = [
            base + str(e["name"])
            for e in entries
            if not e.get("dir") and not str(e["name"]).startswith(".")
        ]
        return names[: self.max_files]

    async def _make_plan(self, ctx: Context) -> tuple[PlanCheck, list[str]]:
        """Ask for a plan, check and repair it; ask again (with the reason) if it reads
        nothing the remit allows. Returns the last checked plan and what happened."""
        notes: list[str] = []
        files = await self._candidates(ctx, notes)
        report = ctx.inputs.get("report")
        call = ROLES["planner"].call(
            goal=ctx.goal, files=files, report=report, tools=list(STEP_TOOLS)
        )
        checked = check_plan(None, remit=ctx.remit, report=report)
        for attempt in range(1, self.plan_retries + 2):
            try:
                answer = await self._ask(ctx, call)
            except SchemaError as e:
                notes.append(f"planner answer {attempt} rejected: {e.message[:160]}")
                answer = None
            checked = check_plan(answer, remit=ctx.remit, report=report)
            if (checked.usable and not checked.outside) or attempt > self.plan_retries:
                break
            readable = [f for f in files if ctx.remit.check("read_file", {"path": f}, now=0.0)]
            may = f"; you may read: {', '.join(readable)}" if readable else ""
            if checked.outside:
                # a denial is the planner's to correct: it hears why, and plans again
                # (what it may do first: a long reason is cut at the end)
                outside = [s for s in checked.steps if s.id in checked.outside]
                steps = ", ".join(f"{s.tool} {s.path}" for s in outside)
                reasons = "; ".join(checked.outside[s.id] for s in outside)
                why = f"your remit denies {steps}{may}; why: {reasons}"
            else:
                why = "it reads no file you may read" + may
            notes.append(f"plan {attempt} asked for again: {why}")
            call = RoleCall(call.role, retry_messages(call, why), call.schema, call.max_tokens)
        every = bool(ctx.inputs.get("every_file"))
        if checked.outside or every:
            readable = [f for f in files if ctx.remit.check("read_file", {"path": f}, now=0.0)]
            checked = within_remit(checked, readable, every=every)
        if not checked.usable:
            notes.append("the plan reads nothing the remit allows; the report will say so")
        return checked, notes

    # --- one step ------------------------------------------------------------------------

    async def _run_step(self, ctx: Context, step: Step, deps: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"step": step.id, "tool": step.tool, "path": step.path}
        if step.tool == "read_file":
            out.update(await self._read(ctx, step))
        elif step.tool == "write_file":
            out.update(await self._write(ctx, step, deps))
        else:  # check_plan keeps only known tools; a hand-made step may not
            out.update(ok=False, error={"code": "UNKNOWN_TOOL", "message": step.tool})
        return out

    async def _read(self, ctx: Context, step: Step) -> dict[str, Any]:
        try:
            text: str = await ctx.call("read_file", path=step.path)
        except AuthorityError as e:
            return {"ok": False, "denied": _soft(e)}
        except RemitError as e:
            return {"ok": False, "error": _soft(e)}
        try:
            said = await self._ask(ctx, ROLES["executor"].call(path=step.path, text=text))
            summary = tidy(str(said["summary"]), SUMMARY_CHARS)
        except AuthorityError as e:  # out of budget or time: the file was read, no more
            return {"ok": False, "denied": _soft(e)}
        except RemitError as e:  # off-schema twice, or the model failed
            return {"ok": False, "error": _soft(e)}
        out: dict[str, Any] = {"ok": True, "summary": summary, "chars": len(text)}
        # the verifier cites one of the file's sentences that share words with the
        # summary; none: the summary says what the file does not
        cited = supporting(summary, text)
        if not cited:
            out.update(verified=False, quote=None,
                       unverified={"code": "UNSUPPORTED", "message": "no sentence of the "
                                   "file shares a word with the summary"})  # fmt: skip
            return out
        call = ROLES["verifier"].call(path=step.path, text=text, summary=summary)
        schema = {**call.schema, "properties": {"quote": {"enum": cited}}}
        try:
            check = await self._ask(
                ctx, RoleCall(call.role, call.messages, schema, call.max_tokens)
            )
        except RemitError as e:
            out.update(verified=False, quote=None, unverified=_soft(e))
            return out
        quote = str(check["quote"]).strip()
        # a server that ignores the schema may still answer anything: code checks it
        out.update(verified=grounded(quote, text) and supports(quote, summary), quote=quote)
        return out

    async def _write(self, ctx: Context, step: Step, deps: Mapping[str, Any]) -> dict[str, Any]:
        results = [v for v in deps.values() if isinstance(v, Mapping)]
        lines = [f"{r['path']}: {r['summary']}" for r in results if r.get("ok")]
        overview: str | None = None
        out: dict[str, Any] = {}
        if lines:
            goal = str(ctx.inputs.get("goal", ctx.goal))
            try:
                said = await self._ask(ctx, ROLES["aggregator"].call(goal=goal, results=lines))
                overview = tidy(str(said["overview"]), OVERVIEW_CHARS)
            except RemitError as e:
                out["no_overview"] = _soft(e)  # the report is written without one
        text = render_report(
            str(ctx.inputs.get("goal", ctx.goal)),
            results,  # pyright: ignore[reportArgumentType]
            overview,
            list(ctx.inputs.get("notes", ())),
        )
        try:
            await ctx.call("write_file", path=step.path, text=text)
        except AuthorityError as e:
            return {**out, "ok": False, "denied": _soft(e), "overview": overview}
        except RemitError as e:
            return {**out, "ok": False, "error": _soft(e), "overview": overview}
        return {**out, "ok": True, "wrote": len(text.encode()), "overview": overview}

    # --- asking the model ------------------------------------------------------------

    async def _ask(self, ctx: Context, call: RoleCall) -> dict[str, Any]:
        """One role's answer, as JSON of its schema; asks again after an off-schema
        answer (each attempt is a charged model call). Raises the last ``SchemaError``."""
        messages = call.messages
        for attempt in range(self.schema_retries + 1):
            try:
                c = await ctx.complete(messages, schema=call.schema, max_tokens=call.max_tokens)
            except SchemaError as e:
                if attempt == self.schema_retries:
                    raise
                messages = retry_messages(call, e.message)
                continue
            data = json.loads(c.content)  # the Gate checked it against the schema
            return data if isinstance(data, dict) else {"value": data}
        raise AssertionError("unreachable")  # pragma: no cover

    # --- summing up ------------------------------------------------------------------

    def _summary(self, ctx: Context, results: Sequence[ChildResult]) -> dict[str, Any]:
        """What every step did, in one result; fails the task if the report is missing."""
        report = ctx.inputs.get("report")
        steps: list[dict[str, Any]] = []
        notes: list[str] = []
        reads = verified = denied = failed = 0
        written = False
        why = "no step wrote it"
        code = "STEP_FAILED"
        for r in results:
            v: Mapping[str, Any] = r.value if r.ok and isinstance(r.value, Mapping) else {}  # pyright: ignore[reportUnknownMemberType]
            for n in v.get("notes", ()):
                if n not in notes:
                    notes.append(n)
            row: dict[str, Any] = {"step": r.key, "tool": v.get("tool"), "path": v.get("path")}
            problem: Mapping[str, Any] = v.get("denied") or v.get("error") or {}
            if not r.ok:
                failed += 1
                row["outcome"] = f"failed: {r.code}: {r.error}"
            elif v.get("denied"):
                denied += 1
                code = "" if problem["code"] == "DENIED" else f"{problem['code']}: "
                row["outcome"] = f"denied: {code}{problem['message']}"
            elif problem:
                failed += 1
                row["outcome"] = f"error: {problem['code']}: {problem['message']}"
            elif v.get("tool") == "read_file":
                reads += 1
                verified += bool(v.get("verified"))
                tag = "verified" if v.get("verified") else "unverified"
                row["outcome"] = f"summarized ({tag}): {v.get('summary')}"
            else:
                written = written or v.get("path") == report
                row["outcome"] = f"wrote {v.get('wrote')} bytes"
            if report and v.get("path") == report and v.get("tool") == "write_file" and problem:
                why, code = row["outcome"], str(problem["code"])
            steps.append(row)
        summary = (
            f"read and summarized {reads} file(s) ({verified} verified by quote); "
            f"{denied} step(s) denied by the remit, {failed} failed; {len(notes)} plan note(s)"
        )
        if report and not written:
            # the goal was the report: without it the task fails, with the reason of the
            # step that should have written it (a BUDGET denial stays a BUDGET error)
            message = f"the report {report} was not written ({why}); {summary}"
            raise error_from_dict({"code": code, "message": message})
        if report:
            summary += f"; report written to {report}"
        return {"summary": summary, "report": report, "steps": steps, "notes": notes}


def _step_goal(step: Step) -> str:
    """The child's goal: the planner's decision, readable in ``remit show``."""
    text = f"{step.id} {step.tool} {step.path}"
    if step.after:
        text += " after " + ", ".join(step.after)
    return f"{text}: {step.do}" if step.do.strip() else text


def _in_order(steps: Sequence[Step]) -> list[Step]:
    """The steps in an order where each comes after its dependencies (they form a DAG)."""
    done: set[str] = set()
    out: list[Step] = []
    pending = list(steps)
    while pending:
        ready = [s for s in pending if all(d in done for d in s.after)]
        if not ready:  # not a DAG: check_plan prevents it; never loop forever
            ready = pending[:1]
        for s in ready:
            out.append(s)
            done.add(s.id)
            pending.remove(s)
    return out
