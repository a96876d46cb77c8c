"""The journal as spans: a run's rows in, :class:`SpanData` out, as the rows arrive.

One mapping serves both ways of exporting: ``remit trace`` feeds it a finished (or
interrupted) run's rows at once; live export feeds it each batch as it reaches the
disk. Either way a span is handed out once, when the rows that end it are in:

- the **run** (``invoke_workflow``): when the run has ended (:meth:`SpanMapper.finish`);
- a **task** (``invoke_agent``, parent: its parent task, the root's: the run): at its
  ``end`` row; the role decision, goal, remit and budget come from its own rows and
  its parent's plan, as in ``remit show``;
- an **effect** (``chat`` for a model call, ``execute_tool`` for a tool call; parent:
  its task): at its result, error or denial. A routed call is a span of its own
  (its ``route`` row) with one child per alternative tried (``<step>@<alternative>``);
- rows that say how a failure ended (``retry``, ``reroute``, injected ``fault``,
  breaker ``health``, ``approval``) are events on the span of the step they name, or
  on their task's when that step has no span (a role, the journal).

Rows may come as the journal stores them (merged) or as they were written (an intent,
then its result): they are merged here the way the journal merges them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from remit.core.ledger import Usage
from remit.core.remit import Remit
from remit.core.routes import Routes
from remit.core.tasks import ROOT, task_id
from remit.errors import RemitError
from remit.journal import FINAL_STATUSES, RunRecord, StepRecord
from remit.trace.otel._rows import (
    EFFECT_KINDS,
    EVENT_KINDS,
    budget_attrs,
    error_of,
    event_of,
    failure_attrs,
    loads,
    parent_of,
    position_of,
    remit_digest,
    short,
    spend_attrs,
)
from remit.trace.otel._spans import (
    RUN_KEY,
    AttrValue,
    SpanData,
    SpanEvent,
    StatusName,
    ns,
    span_id_of,
    trace_id_of,
)
from remit.trace.tree import DENIAL_CODES

__all__ = ["SpanMapper", "spans_of"]


def spans_of(run: RunRecord, steps: Iterable[StepRecord]) -> list[SpanData]:
    """Every span of a run, from its record and its rows (what ``remit trace`` exports).

    >>> from remit.journal import RunRecord, StepRecord
    >>> run = RunRecord("r1", "add", "m:Adder", '{"budget": {"calls": 5}}', "done",
    ...                 created_at=1.0, updated_at=2.0)
    >>> t = task_id("t", 0, "add")
    >>> rows = [StepRecord("r1", f"{t}:execute.0", t, 0, "tool", "calculator", "ok",
    ...                    None, "2", None, '{"calls": 1}', 1.1, 1.2),
    ...         StepRecord("r1", f"{t}:end", t, 1, "task", "done", "ok", None, "2", None,
    ...                    '{"calls": 1}', 1.0, 1.9)]
    >>> [s.name for s in spans_of(run, rows)]
    ['execute_tool calculator', 'invoke_agent m:Adder', 'invoke_workflow m:Adder']
    """
    mapper = SpanMapper(run)
    mapper.add(steps)
    return mapper.finish(run)


@dataclass(slots=True)
class _Task:
    """What the rows have said about one task so far."""

    first: float | None = None
    last: float | None = None
    end: StepRecord | None = None
    decision: str | None = None
    calls: int = 0
    denied: int = 0
    plan: list[Mapping[str, Any]] = field(default_factory=lambda: [])
    #: events whose step has no span of its own (a role, the journal, a breaker)
    events: list[tuple[str, SpanEvent]] = field(default_factory=lambda: [])


class SpanMapper:
    """Turns one run's journal rows into spans, each handed out once.

    :meth:`add` takes rows (merged or as written) in journal order; :meth:`ready` hands
    out the spans whose rows have ended since; :meth:`finish` hands out the rest, the
    unfinished ones marked so, and the run's own span. ``skip_ready`` drops what is
    ready without handing it out (a resumed process: the process before it exported
    those).
    """

    def __init__(self, run: RunRecord) -> None:
        self.run = run
        self.run_id = run.run_id
        self.trace_id = trace_id_of(run.run_id)
        self.root = task_id(ROOT, 0, run.goal)
        self.rows: dict[str, StepRecord] = {}
        self.tasks: dict[str, _Task] = {}
        self.remits: dict[str, Remit | None] = {}
        self.replans: dict[tuple[str, int], Mapping[str, Any]] = {}
        #: step ids -> events on their spans
        self.events: dict[str, list[SpanEvent]] = {}
        self.emitted: set[str] = set()
        self._dirty: list[str] = []
        self._last = run.created_at
        meta = loads(run.meta)
        self.meta: Mapping[str, Any] = meta if isinstance(meta, Mapping) else {}  # pyright: ignore[reportUnknownMemberType]
        self._routes: Routes | None = None
        routes = self.meta.get("routes")
        if isinstance(routes, Mapping):
            try:
                self._routes = Routes.from_dict(cast(Mapping[str, Any], routes))
            except RemitError:
                self._routes = None

    # --- rows in -------------------------------------------------------------------

    def add(self, records: Iterable[StepRecord]) -> None:
        """Take rows of this run, merging a result into its intent as the journal does."""
        for rec in records:
            old = self.rows.get(rec.step_id)
            if old is None:
                self.rows[rec.step_id] = rec
                self._seen(rec, rec)
            elif old.status == "started" and (rec.status != "started" or rec.error is not None):
                merged = StepRecord(old.run_id, old.step_id, old.task_id, old.seq, old.kind,
                                    old.name, rec.status, old.input, rec.output, rec.error,
                                    rec.spent, old.started_at, rec.ended_at,
                                    old.proof or rec.proof)  # fmt: skip
                self.rows[rec.step_id] = merged
                self._seen(merged, rec)

    def _seen(self, row: StepRecord, rec: StepRecord) -> None:
        """Note what one new or changed row tells (``rec``: as it came)."""
        t = self.tasks.get(row.task_id)
        if t is None:
            t = self.tasks[row.task_id] = _Task()
        for when in (row.started_at, row.ended_at):
            if when:
                t.first = when if t.first is None else min(t.first, when)
                t.last = when if t.last is None else max(t.last, when)
                self._last = max(self._last, when)
        final = row.status in FINAL_STATUSES
        kind = row.kind
        if kind in EVENT_KINDS:
            if rec is row:  # events are written whole, once
                self._event(row, t)
        elif kind == "task":
            if final:
                t.end = row
                self._dirty.append(row.task_id)
        elif kind in EFFECT_KINDS:
            if final:
                if kind != "route":
                    t.calls += 1
                if row.status == "denied" or (
                    row.status == "error" and error_of(row.error)["code"] in DENIAL_CODES
                ):
                    t.denied += 1
                self._dirty.append(row.step_id)
        elif final and row.status == "ok":
            out = loads(row.output)
            if kind == "atomize":
                t.decision = "plan" if out in ("plan", False) else "execute"
            elif kind == "plan":
                t.decision = "plan"
                if isinstance(out, Mapping) and isinstance(out.get("subtasks"), list):  # pyright: ignore[reportUnknownMemberType]
                    t.plan = [s for s in out["subtasks"] if isinstance(s, Mapping)]  # pyright: ignore[reportUnknownVariableType]
            elif kind.startswith("replan.") and isinstance(out, Mapping):
                self.replans[(row.task_id, int(kind.split(".", 1)[1]))] = out  # pyright: ignore[reportUnknownArgumentType]
        elif final and row.status == "denied":
            t.denied += 1

    def _event(self, row: StepRecord, t: _Task) -> None:
        target, event = event_of(row)
        self.events.setdefault(target, []).append(event)
        t.events.append((target, event))

    # --- spans out -----------------------------------------------------------------

    def ready(self) -> list[SpanData]:
        """Spans whose rows have ended since the last call (each handed out once)."""
        dirty, self._dirty = self._dirty, []
        out: list[SpanData] = []
        for key in dirty:
            if key in self.emitted:
                continue
            span = self._task_span(key) if key in self.tasks and self.tasks[key].end else None
            if span is None:
                row = self.rows.get(key)
                if row is None or row.kind not in EFFECT_KINDS:
                    continue
                span = self._effect_span(row)
            self.emitted.add(key)
            out.append(span)
        return out

    def skip_ready(self) -> int:
        """Mark what is ready as handed out without handing it out; returns how many."""
        return len(self.ready())

    def finish(self, run: RunRecord | None = None) -> list[SpanData]:
        """What is ready, then every span not handed out yet (marked unfinished), and
        the run's span; ``run``: the run's record as it is now (its outcome)."""
        if run is not None:
            self.run = run
            self._last = max(self._last, run.updated_at)
        out = self.ready()
        for key, row in list(self.rows.items()):
            if key not in self.emitted and row.kind in EFFECT_KINDS:
                self.emitted.add(key)
                out.append(self._effect_span(row))
        # alternatives of a routed call that never recorded its outcome
        for key in list(self.rows):
            call = key.split("@", 1)[0] if "@" in key else None
            if call is not None and call not in self.emitted and call not in self.rows:
                self.emitted.add(call)
                out.append(self._open_route(call))
        for tid, t in list(self.tasks.items()):
            if tid not in self.emitted and t.first is not None:
                self.emitted.add(tid)
                out.append(self._task_span(tid))
        if RUN_KEY not in self.emitted:
            self.emitted.add(RUN_KEY)
            out.append(self._run_span())
        return out

    # --- the spans -----------------------------------------------------------------

    def _status(self, row: StepRecord) -> tuple[StatusName, str, dict[str, AttrValue]]:
        attrs: dict[str, AttrValue] = {"remit.step.status": row.status}
        if row.status == "ok" or (row.status == "started" and row.error is None):
            return "unset", "", attrs
        err = error_of(row.error)
        attrs.update(failure_attrs(err))
        if row.status == "denied" or err["code"] in DENIAL_CODES:
            attrs["remit.denial.reason"] = short(err["message"])
            attrs["remit.denial.code"] = err["code"]
        return "error", short(f"{err['code']}: {err['message']}"), attrs

    def _effect_span(self, row: StepRecord) -> SpanData:
        sid = row.step_id
        call, _, alternative = sid.partition("@")
        role = call.rsplit(":", 1)[-1].rsplit(".", 1)[0]
        attrs: dict[str, AttrValue] = {"remit.step.id": sid, "remit.task.id": row.task_id,
                                       "remit.role": role}  # fmt: skip
        status, message, more = self._status(row)
        attrs.update(more)
        spent = Usage.from_dict(loads(row.spent))
        attrs.update(spend_attrs("remit.spend", spent))
        kind = row.kind
        if kind == "route":
            capability = self._capability(row.name)
            kind = "model" if capability == "model" else "tool"
            attrs["remit.route.capability"] = capability
            if row.status == "ok":
                attrs["remit.route.served_by"] = row.name
        if alternative:
            attrs["remit.route.alternative"] = row.name
        if kind == "model":
            name = f"chat {row.name}"
            attrs["gen_ai.operation.name"] = "chat"
            attrs["gen_ai.request.model"] = row.name
            out = loads(row.output) if row.status == "ok" and row.kind == "model" else None
            usage = spent
            if isinstance(out, Mapping):
                answer = cast(Mapping[str, Any], out)
                usage = Usage(1, int(answer.get("input_tokens", 0) or 0),
                              int(answer.get("output_tokens", 0) or 0))  # fmt: skip
                if answer.get("model"):
                    attrs["gen_ai.response.model"] = str(answer["model"])
            if row.kind == "model":
                attrs["gen_ai.usage.input_tokens"] = usage.input_tokens
                attrs["gen_ai.usage.output_tokens"] = usage.output_tokens
        else:
            tool = attrs.get("remit.route.capability", row.name)
            name = f"execute_tool {tool}"
            attrs["gen_ai.operation.name"] = "execute_tool"
            attrs["gen_ai.tool.name"] = tool
            attrs["gen_ai.tool.call.id"] = sid
            attrs["gen_ai.tool.type"] = "function"
        parent = span_id_of(self.run_id, call) if alternative else self._task_span_id(row.task_id)
        end = row.ended_at if row.ended_at is not None else max(row.started_at, self._last)
        return SpanData(
            sid, name, self.trace_id, span_id_of(self.run_id, sid), parent,
            ns(row.started_at), ns(end), "client" if kind == "model" else "internal",
            status, message, attrs, tuple(self.events.get(sid, ())),
            finished=row.status in FINAL_STATUSES,
        )  # fmt: skip

    def _open_route(self, call: str) -> SpanData:
        """A routed call whose outcome was never recorded (its alternatives were)."""
        tried = [r for k, r in self.rows.items() if k.split("@", 1)[0] == call and "@" in k]
        first = min(r.started_at for r in tried)
        last = max((r.ended_at or r.started_at) for r in tried)
        capability = self._capability(tried[0].name)
        op = "chat" if capability == "model" else "execute_tool"
        attrs: dict[str, AttrValue] = {"remit.step.id": call, "remit.task.id": tried[0].task_id,
                                       "remit.step.status": "started",
                                       "remit.route.capability": capability,
                                       "gen_ai.operation.name": op}  # fmt: skip
        if op == "execute_tool":
            attrs.update({"gen_ai.tool.name": capability, "gen_ai.tool.call.id": call})
        return SpanData(
            call, f"{op} {capability}", self.trace_id, span_id_of(self.run_id, call),
            self._task_span_id(tried[0].task_id), ns(first), ns(last),
            "client" if op == "chat" else "internal", "unset", "", attrs,
            tuple(self.events.get(call, ())), finished=False,
        )  # fmt: skip

    def _capability(self, alternative: str) -> str:
        routes = self._routes
        if routes is not None:
            for c in sorted({r.capability for r in routes}):
                if alternative in routes.leaves(c):
                    return c
        return alternative

    def _task_span_id(self, tid: str) -> int:
        return span_id_of(self.run_id, tid)

    def _remit(self, tid: str) -> Remit | None:
        """The task's remit as the engine derived it (deadlines aside), or None."""
        if tid in self.remits:
            return self.remits[tid]
        remit: Remit | None = None
        parent = parent_of(tid)
        if parent is None:
            try:
                remit = Remit.from_json(self.run.remit)
            except RemitError:
                remit = None
        else:
            parent_remit = self._remit(parent)
            subs = self.tasks[parent].plan if parent in self.tasks else []
            pos = position_of(tid)[0]
            spec = subs[pos].get("remit") if pos < len(subs) else None
            if parent_remit is not None:
                args = dict(cast(Mapping[str, Any], spec)) if isinstance(spec, Mapping) else {}
                args.pop("deadline", None)
                try:
                    remit = parent_remit.narrow(**args)
                except (RemitError, TypeError):
                    remit = None
        self.remits[tid] = remit
        return remit

    def _goal(self, tid: str) -> tuple[str, str]:
        """(key, goal) of a task, from its parent's plan (or re-plan)."""
        parent = parent_of(tid)
        if parent is None:
            return "root", self.run.goal
        pos, attempt = position_of(tid)
        subs = self.tasks[parent].plan if parent in self.tasks else []
        sub = subs[pos] if pos < len(subs) else {}
        goal = str(sub.get("goal", ""))
        if attempt:
            goal = str(self.replans.get((parent, pos), {}).get("goal", goal))
        return str(sub.get("key", pos)), goal

    def _task_span(self, tid: str) -> SpanData:
        t = self.tasks[tid]
        key, goal = self._goal(tid)
        remit = self._remit(tid)
        agent = self.run.agent or "remit"
        attrs: dict[str, AttrValue] = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": agent,
            "gen_ai.conversation.id": self.run_id,
            "remit.task.id": tid,
            "remit.task.key": key,
            "remit.task.goal": short(goal),
            "remit.task.depth": tid.count("/"),
            "remit.task.calls": t.calls,
            "remit.task.denied": t.denied,
        }
        decision = t.decision
        if remit is not None:
            attrs["remit.remit.depth"] = remit.depth
            if decision is None and remit.depth == 0:
                decision = "execute"
                attrs["remit.task.forced"] = True
        if decision is None and t.end is not None and t.end.status == "ok":
            decision = "execute"
        if decision is not None:
            attrs["remit.task.decision"] = decision
        attempt = position_of(tid)[1]
        if attempt:
            attrs["remit.task.attempt"] = attempt
        attrs.update(budget_attrs(remit))
        status: StatusName = "unset"
        message = ""
        end = t.end
        if end is not None:
            attrs.update(spend_attrs("remit.spend", Usage.from_dict(loads(end.spent))))
            if end.status == "ok":
                attrs["remit.task.status"] = "done"
            else:
                err = error_of(end.error)
                attrs.update(failure_attrs(err))
                cancelled = err["code"] == "CANCELLED"
                attrs["remit.task.status"] = "cancelled" if cancelled else "failed"
                status, message = "error", short(f"{err['code']}: {err['message']}")
            start, stop = min(end.started_at, t.first or end.started_at), end.ended_at or t.last
        else:
            ended = self.run.status != "running"
            attrs["remit.task.status"] = "cancelled" if ended else "running"
            start, stop = t.first, max(t.last or 0.0, self._last if ended else 0.0)
        spanned = self.rows
        # a reroute belongs to its routed call's span, even one never recorded (finish)
        events = tuple(
            e for target, e in t.events
            if e.name != "remit.reroute"
            and (target not in spanned or spanned[target].kind not in EFFECT_KINDS)
        )  # fmt: skip
        parent = parent_of(tid)
        parent_id = span_id_of(self.run_id, RUN_KEY if parent is None else parent)
        return SpanData(
            tid, f"invoke_agent {agent}", self.trace_id, span_id_of(self.run_id, tid), parent_id,
            ns(start), ns(stop or start), "internal", status, message, attrs, events,
            finished=end is not None,
        )  # fmt: skip

    def _run_span(self) -> SpanData:
        run = self.run
        agent = run.agent or "remit"
        remit: Remit | None
        try:
            remit = Remit.from_json(run.remit)
        except RemitError:
            remit = None
        attrs: dict[str, AttrValue] = {
            "gen_ai.operation.name": "invoke_workflow",
            "gen_ai.agent.name": agent,
            "gen_ai.conversation.id": run.run_id,
            "remit.run.id": run.run_id,
            "remit.goal": short(run.goal),
            "remit.agent": agent,
            "remit.run.status": run.status,
            "remit.remit.digest": remit_digest(run.remit),
            "remit.tasks": sum(1 for t in self.tasks.values() if t.first is not None),
            "remit.signed": "principal_key" in self.meta,
        }
        if isinstance(self.meta.get("model"), str):
            attrs["remit.model"] = self.meta["model"]
        attrs.update(budget_attrs(remit))
        root = self.tasks.get(self.root)
        if root is not None and root.end is not None:
            attrs.update(spend_attrs("remit.spend", Usage.from_dict(loads(root.end.spent))))
        status: StatusName = "unset"
        message = ""
        if run.status == "failed":
            err = error_of(run.error)
            attrs.update(failure_attrs(err))
            status, message = "error", short(f"{err['code']}: {err['message']}")
        finished = run.status != "running"
        end = run.updated_at if finished else self._last
        return SpanData(
            RUN_KEY, f"invoke_workflow {agent}", self.trace_id, span_id_of(run.run_id, RUN_KEY),
            None, ns(run.created_at), ns(max(end, run.created_at)), "internal", status, message,
            attrs, (), finished=finished,
        )  # fmt: skip
