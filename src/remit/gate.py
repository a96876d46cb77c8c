"""The Gate: the one place where effects happen.

Model calls, tool calls, delegations and spending all pass through here, in this
order (see DESIGN.md):

1. check against the task's remit (tool granted? arguments inside? deadline?) and
   record a denial with its reason;
2. look up the journal by the step's deterministic id: a recorded result or error is
   returned or re-raised without executing, and its recorded spend is booked;
3. reserve the worst case on the ledger, on the task and every ancestor;
4. record the intent (for an effect: on disk before it runs);
5. execute, with timeout and retry of retryable errors;
6. record the result or the error;
7. settle the actual spend, releasing the rest of the reservation.

The engine decides *what* to do; the Gate decides *whether and how*; the Journal
remembers *what happened*.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import inspect
import json
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import pydantic

from . import _json
from ._node import Node
from ._resume import may_retry, resolution_of
from .errors import (
    BudgetExceeded,
    Cancelled,
    DeadlineExceeded,
    DeniedError,
    DeterminismError,
    EffectUncertain,
    JournalCorrupt,
    OutputTooLarge,
    RemitError,
    SchemaError,
    StepFailed,
    StepTimeout,
    WarrantDigestMismatch,
    WarrantMalformed,
)
from .errors import from_dict as error_from_dict
from .journal import StepRecord
from .journal._writer import JournalWriter
from .ledger import ZERO, Ledger, Usage
from .models import Completion, Message, Model
from .provenance import DEFAULT_TTL_S, Signer
from .remit import Decision
from .schemas import validate as validate_schema
from .tools import ToolRegistry

DEFAULT_MAX_OUTPUT_BYTES = 1_000_000
#: the error an unfinished step's row carries when the run stopped while it ran
_INTERRUPTED = json.dumps(
    {
        "code": "INTERRUPTED",
        "message": "the run stopped while this step ran; a resume runs it again",
    }
)
_PRIMITIVES = (str, int, float, bool, type(None))


#: input tokens reserved per model call beyond its messages' characters, for the chat
#: template (a model may say its own with a ``template_tokens`` attribute)
TEMPLATE_TOKENS = 128
#: the longest Retry-After a retry waits for (longer ones fail the call instead)
MAX_RETRY_AFTER_S = 60.0


def idempotency_key(run_id: str, step_id: str) -> str:
    """The key an effectful tool receives: stable across resumes, unique per step."""
    return hashlib.blake2b(f"{run_id}\x00{step_id}".encode(), digest_size=16).hexdigest()


def _json_default(value: Any) -> Any:
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)  # pyright: ignore[reportUnknownArgumentType]
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    raise TypeError(f"{type(value).__name__} is not JSON-serializable")


# results and arguments, as json.dumps(ensure_ascii=False) writes them
_encode_json = _json.encoder(default=_json_default)


def _spent_text(spent: tuple[float, ...]) -> str | None:
    """The ``spent`` column for a (calls, input, output, cost) vector (memoized:
    spends repeat)."""
    text = _SPENT.get(spent, _MISS)
    if text is _MISS:
        u = Usage(int(spent[0]), int(spent[1]), int(spent[2]), float(spent[3]))
        text = None if u.is_zero() else json.dumps(u.to_dict())
        if len(_SPENT) < 4096:
            _SPENT[spent] = text
    return text


_SPENT: dict[tuple[float, ...], str | None] = {}


def _spent_json(u: Usage) -> str | None:
    return _spent_text((u.calls, u.input_tokens, u.output_tokens, u.cost_usd))


class Gate:
    """Checks, journals, budgets and executes every effect of one run."""

    def __init__(
        self,
        *,
        run_id: str,
        writer: JournalWriter,
        ledger: Ledger,
        tools: ToolRegistry,
        model: Model | None = None,
        recorded: Mapping[str, StepRecord] | None = None,
        max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
        retry_base_s: float = 0.05,
        retry_cap_s: float = 2.0,
    ) -> None:
        self.run_id = run_id
        self.writer = writer
        self.ledger = ledger
        self.tools = tools
        self.model = model
        self.recorded: Mapping[str, StepRecord] = recorded or {}
        #: what the recorded calls of each role spent, by role step id: a role served
        #: from the journal books its calls' spend, which its own row does not hold
        self._role_spent: dict[str, Usage] = _spend_by_role(self.recorded)
        self.max_output_bytes = max_output_bytes
        #: the user's own words (root goal and inputs): what ``in_inputs`` rules check
        #: against, so a planner cannot smuggle a value in through a child's inputs
        self.inputs_text: str | None = None
        #: called when a call waits for a person (the CLI tells the user how to answer)
        self.on_approval: Callable[[str, Node], None] | None = None
        self.approval_poll_s = 1.0
        self.retry_base_s = retry_base_s
        self.retry_cap_s = retry_cap_s
        self._last: tuple[Any, str] = (_MISS, "")
        #: mints hops and signs calls (None: this run is not signed)
        self.signer: Signer | None = None
        # proofs made for steps not yet recorded: the step's first row carries its proof
        self._proofs: dict[str, str] = {}
        #: counters a run reports: steps executed, served from the journal, denied
        self.executed = 0
        self.replayed = 0
        self.denied = 0

    # --- what roles call ---------------------------------------------------------

    async def call_tool(self, node: Node, name: str, args: Mapping[str, Any]) -> Any:
        """Call tool ``name`` for ``node``; returns its (JSON-shaped) output."""
        step_id = self._next_effect(node)
        self._check_deadline(node, step_id, "tool", name)
        decision = node.remit.check(name, args, now=time.time(), inputs_text=self.inputs_text)
        if not decision.allowed:
            await self._on_denied(node, step_id, name, args, decision)
        t = self.tools.get(name)
        valid = t.validate(args)
        hit = self._replay(node, step_id, "tool", name, effect=t.effect and not t.idempotent)
        if hit is not _MISS:
            return hit
        worst = t.worst
        signer = self.signer
        if signer is not None:
            warrant, key = node.warrant, node.agent_key
            if warrant is None or key is None:
                raise Cancelled(f"task {node.id} holds no warrant (it has ended)")
            # signed over the validated arguments: what the tool will actually receive
            try:
                proof = signer.sign_call(warrant, key, step_id, name, valid)
            except WarrantDigestMismatch:  # a value JSON cannot hold as is: sign its JSON form
                as_json = json.loads(self._encode_input(valid) or "{}")
                proof = signer.sign_call(warrant, key, step_id, name, as_json)
            self._proofs[step_id] = proof
        if t.takes_key:
            valid["idempotency_key"] = idempotency_key(self.run_id, step_id)
        fn = t.fn
        if t.inline:
            return await self._call_inline(node, step_id, name, t.retries, fn, valid, worst)

        async def execute() -> tuple[Any, Usage]:
            if t.is_async:
                return await fn(**valid), worst
            if t.thread:
                return await asyncio.to_thread(fn, **valid), worst
            return fn(**valid), worst

        return await self._execute(
            node,
            step_id,
            "tool",
            name,
            valid,
            worst,
            execute,
            effect=t.effect,
            timeout=t.timeout,
            retries=t.retries,
            interruptible=t.is_async or t.thread,
        )

    async def _on_denied(
        self, node: Node, step_id: str, name: str, args: Mapping[str, Any], decision: Decision
    ) -> None:
        """Apply a denial's fallback: tell the agent, stop the task, or ask a person.

        Returns only when a person approved the call; otherwise raises.
        """
        if decision.code == "DEADLINE":
            self._deny(node, step_id, "tool", name, args, DeadlineExceeded(decision.reason))
        # a rule's denial reads as its explanation ("denied: ...; rule send#2")
        why = decision.explain() if decision.rule else decision.reason
        err = DeniedError(why, rule=decision.rule)
        if decision.fallback == "stop":
            # the task fails even if its role catches the error
            node.stopped = err
            self._deny(node, step_id, "tool", name, args, err)
        if decision.fallback != "ask":
            self._deny(node, step_id, "tool", name, args, err)
        if await self._approval(node, step_id, name, args, decision):
            return
        self._deny(node, step_id, "tool", name, args,
                   DeniedError(f"{why}; a person denied the call",
                               rule=decision.rule))  # fmt: skip

    async def _approval(
        self, node: Node, step_id: str, name: str, args: Mapping[str, Any], decision: Decision
    ) -> bool:
        """Wait, durably, for a person's answer: ``remit approve|deny RUN_ID STEP``.

        The request is a journaled step (``{step}~approval``, status ``started``); the
        answer is its result, written by another process. A restart finds the request
        and waits again; the task's deadline ends the wait.
        """
        approval_id = f"{step_id}~approval"
        rec = self.recorded.get(approval_id) if self.recorded else None
        if rec is None or rec.status == "started":
            if rec is None:
                now = time.time()
                request = {"tool": name, "args": dict(args), "why": decision.explain(),
                           "rule": decision.rule}  # fmt: skip
                self._record(node, approval_id, "approval", name, "started", request,
                             None, None, ZERO, now, False)  # fmt: skip
                await self.writer.durable()
            if self.on_approval is not None:
                self.on_approval(approval_id, node)
            rec = await self._await_answer(node, approval_id)
        answer = self.decode(rec) if rec.status == "ok" else None
        return bool(isinstance(answer, Mapping) and answer.get("approved"))  # pyright: ignore[reportUnknownMemberType]

    async def _await_answer(self, node: Node, approval_id: str) -> StepRecord:
        store = self.writer.store
        delay = 0.05
        while True:
            if node.cancelled:
                raise Cancelled(f"task {node.id} was cancelled while awaiting approval")
            if node.deadline is not None and time.time() >= node.deadline:
                raise DeadlineExceeded(
                    f"task {node.id}: no answer to approval {approval_id} before the deadline"
                )
            rec = store.get_step(self.run_id, approval_id)
            if rec is not None and rec.status != "started":
                return rec
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.approval_poll_s)

    async def _call_inline(
        self,
        node: Node,
        step_id: str,
        name: str,
        retries: int,
        fn: Callable[..., Any],
        valid: dict[str, Any],
        worst: Usage,
    ) -> Any:
        """A plain, pure tool: nothing can interrupt it and nothing must reach the disk
        before it runs, so it runs inline and its step is recorded once, whole."""
        ledger = self.ledger
        started = time.time()
        spent = ZERO
        attempt = 0
        while True:
            try:
                reservation = ledger.reserve(node.account, worst)
            except BudgetExceeded as e:
                self.denied += 1
                self._record_error(node, step_id, "tool", name, e, spent, started, "denied", valid)
                raise
            try:
                value = fn(**valid)
            except Exception as exc:
                err, used = self._attempt_failed(exc, reservation, worst, "tool", name)
                spent = spent + used
                if err.retryable and attempt < retries and not node.cancelled:
                    attempt += 1
                    await self._backoff(attempt, err)
                    continue
                self._record_error(node, step_id, "tool", name, err, spent, started, "error", valid)
                if err is exc:
                    raise
                raise err from exc
            ledger.settle(reservation, worst)
            spent = worst if spent is ZERO else spent + worst
            return self._record_ok(node, step_id, "tool", name, valid, value, spent, started, True)

    async def complete(
        self,
        node: Node,
        messages: Sequence[Message],
        *,
        schema: Mapping[str, Any] | None = None,
        max_tokens: int = 512,
        tools: Sequence[Mapping[str, Any]] | None = None,
    ) -> Completion:
        """A model call for ``node``; with ``schema``, the output must be valid JSON for it."""
        model = self.model
        if model is None:
            raise RemitError("this runtime has no model; pass model=... to Runtime")
        step_id = self._next_effect(node)
        self._check_deadline(node, step_id, "model", model.name)
        hit = self._replay(node, step_id, "model", model.name)
        if hit is not _MISS:
            return Completion(**hit)
        # Characters bound tokens from above for every tokenizer we know of; the chat
        # template adds its own (role markers, a default system prompt) and tools their
        # schema, so those are reserved too: a budget is never overshot by the settle.
        worst_in = sum(len(str(m.get("content", ""))) + 8 for m in messages)
        worst_in += getattr(model, "template_tokens", TEMPLATE_TOKENS)
        if tools:
            worst_in += len(json.dumps(list(tools), default=str))
        worst = Usage(
            calls=1,
            input_tokens=worst_in,
            output_tokens=max_tokens,
            cost_usd=worst_in * model.usd_per_input_token + max_tokens * model.usd_per_output_token,
        )

        async def execute() -> tuple[Any, Usage]:
            c = await model.complete(messages, schema=schema, tools=tools, max_tokens=max_tokens)
            used = Usage(1, c.input_tokens, c.output_tokens, c.cost_usd)
            if schema is not None:
                try:
                    try:
                        parsed = json.loads(c.content)
                    except json.JSONDecodeError as e:
                        raise SchemaError(
                            f"model {model.name} output is not JSON ({e.msg} at char {e.pos}): "
                            f"{c.content[:120]!r}"
                        ) from None
                    validate_schema(parsed, schema, where=f"model {model.name} output")
                except SchemaError as e:
                    e.spent = used  # the tokens were spent all the same
                    raise
            return dataclasses.asdict(c), used

        out = await self._execute(
            node,
            step_id,
            "model",
            model.name,
            {"messages": list(messages), "schema": schema},
            worst,
            execute,
            effect=False,
            timeout=None,
            # transient failures (429, 5xx, timeouts) retry with backoff; each attempt
            # is reserved and settled on its own, so retries are charged
            retries=getattr(model, "retries", 0),
        )
        return Completion(**out)

    async def role(
        self, node: Node, role: str, fn: Callable[..., Any], *args: Any, normalize: bool = True
    ) -> Any:
        """Run a role (atomize, plan, execute, aggregate...) of ``node`` as a journaled step.

        Effects the role makes get ids nested under the role's, so a role served from
        the journal on resume skips its effects without shifting anyone's position.
        """
        step_id = f"{node.id}:{role}"
        if node.cancelled:
            raise Cancelled(f"task {node.id} was cancelled")
        self._check_deadline(node, step_id, role, role)
        hit = self._replay(node, step_id, role, role)
        if hit is not _MISS:
            return hit
        node.scope_role, node.scope_n = role, 0
        key = getattr(fn, "__func__", fn)
        is_coro = _IS_CORO.get(key)
        if is_coro is None:
            is_coro = _IS_CORO[key] = inspect.iscoroutinefunction(fn)

        if role == "execute":
            # A leaf's result is its task's result: the task's end row records it (and
            # its error), so the role gets no row of its own. Its calls have theirs: a
            # resume that finds no end runs the role again and is served every call.
            return await self._unrecorded(node, role, fn, args, is_coro)
        if not is_coro:
            # a plain function cannot be interrupted and spends nothing: run it inline
            started = time.time()
            try:
                value = fn(*args)
            except Exception as exc:
                err = _as_remit_error(exc, role, role)
                self._record_error(node, step_id, role, role, err, ZERO, started, "error")
                if err is exc:
                    raise
                raise err from exc
            return self._record_ok(node, step_id, role, role, None, value, ZERO, started, normalize)

        async def execute() -> tuple[Any, Usage]:
            return await fn(*args), ZERO

        # a role's own awaits are Gate calls, which are interruptible themselves
        return await self._execute(
            node,
            step_id,
            role,
            role,
            None,
            ZERO,
            execute,
            effect=False,
            timeout=None,
            retries=0,
            interruptible=False,
            normalize=normalize,
            intent=is_coro,
        )

    async def _unrecorded(
        self, node: Node, role: str, fn: Callable[..., Any], args: tuple[Any, ...], is_coro: bool
    ) -> Any:
        """Run a role whose outcome the task's end row records (see :meth:`role`)."""
        try:
            if not is_coro:
                return fn(*args)

            async def execute() -> tuple[Any, Usage]:
                return await fn(*args), ZERO

            return (await self._run_bounded(node, execute, None, role, role, False))[0]
        except Exception as exc:
            err = _as_remit_error(exc, role, role)
            if err is exc:
                raise
            raise err from exc
        finally:
            self.executed += 1

    # --- what the engine calls ---------------------------------------------------

    def recorded_end(self, node_id: str) -> StepRecord | None:
        """The recorded end of a task, if a previous process finished it."""
        if not self.recorded:
            return None
        rec = self.recorded.get(f"{node_id}:end")
        return rec if rec is not None and rec.status != "started" else None

    def end(self, node: Node, ok: bool, result: Any, error: RemitError | None) -> Any:
        """Record how a task ended, with what its subtree spent; returns the result as a
        replay will read it."""
        now = time.time()
        text: str | None = None
        if ok:
            last_value, last_text = self._last
            # the result is usually the last role step's output: encode it once
            if last_value is result:
                text = last_text
            else:
                text = self._encode(result, f"{node.id}:end")
                if type(result) not in _PRIMITIVES:
                    # the parent sees exactly what a resumed run will (lists, not tuples)
                    result = json.loads(text)
        self.writer.add(
            StepRecord(
                self.run_id,
                f"{node.id}:end",
                node.id,
                1_000_000,
                "task",
                "done" if ok else "failed",
                "ok" if ok else "error",
                None,
                text,
                json.dumps(error.to_dict()) if error is not None else None,
                _spent_text(tuple(node.account.spent_vec)),
                node.started_at or now,
                now,
            )
        )
        return result

    def decode(self, record: StepRecord, field: str = "output") -> Any:
        text = getattr(record, field)
        if text is None:
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise JournalCorrupt(
                f"run {self.run_id} step {record.step_id}: {field} is not valid JSON ({e.msg})"
            ) from None

    # --- internals ----------------------------------------------------------------

    def _next_effect(self, node: Node) -> str:
        if node.cancelled:
            raise Cancelled(f"task {node.id} was cancelled")
        n = node.scope_n
        node.scope_n = n + 1
        return f"{node.id}:{node.scope_role}.{n}"

    def _check_deadline(self, node: Node, step_id: str, kind: str, name: str) -> None:
        if node.deadline is not None and time.time() >= node.deadline:
            self._deny(
                node,
                step_id,
                kind,
                name,
                None,
                DeadlineExceeded(f"task {node.id}: deadline passed before {_what(kind, name)}"),
            )

    def _deny(
        self, node: Node, step_id: str, kind: str, name: str, args: Any, error: RemitError
    ) -> None:
        self.denied += 1
        self._record_error(node, step_id, kind, name, error, ZERO, time.time(), "denied", args)
        raise error

    def _attempt_failed(
        self, exc: Exception, reservation: Any, worst: Usage, kind: str, name: str
    ) -> tuple[RemitError, Usage]:
        """Settle a failed attempt: it cost what it reports, else a tool's worst case,
        else (a model that gave no usage) the call itself."""
        used = getattr(exc, "spent", None)
        if not isinstance(used, Usage):
            used = Usage(calls=worst.calls) if kind == "model" else worst
        if reservation is not None:
            self.ledger.settle(reservation, used)
        return _as_remit_error(exc, kind, name), used

    async def _backoff(self, attempt: int, err: RemitError | None = None) -> None:
        # exponential, with jitter so that retrying siblings do not march in step
        delay = min(self.retry_cap_s, self.retry_base_s * 2**attempt) * (0.5 + random.random())
        # a server that said when to come back (Retry-After) is believed, within reason
        after = getattr(err, "retry_after_s", None)
        if isinstance(after, int | float) and after > delay:
            delay = min(float(after), MAX_RETRY_AFTER_S)
        await asyncio.sleep(delay)

    def _replay(self, node: Node, step_id: str, kind: str, name: str, effect: bool = False) -> Any:
        if not self.recorded:
            return _MISS
        rec = self.recorded.get(step_id)
        if rec is None:
            return _MISS
        if rec.kind != kind or rec.name != name:
            raise DeterminismError(
                f"run {self.run_id} step {step_id}: the journal recorded {rec.kind} "
                f"{rec.name!r} here but this run asked for {kind} {name!r}; the agent's code "
                "or plan changed since the run started; resume it with the original code"
            )
        if rec.status == "started":
            if effect:
                n, _ = resolution_of(self.recorded, step_id)
                if not may_retry(self.recorded, step_id):
                    raise EffectUncertain(
                        f"step {step_id}: {kind} {name!r} was started but its result was "
                        "never recorded, and the tool is not idempotent; a person must say "
                        f"whether it happened: remit resolve {self.run_id} {step_id} "
                        "--happened RESULT_JSON | --did-not-happen",
                        (step_id,),
                    )
                # a person said it did not happen: one more attempt, on disk before it runs
                self._record(node, f"{step_id}~attempt.{n}", "attempt", name, "ok", None,
                             None, None, ZERO, time.time())  # fmt: skip
            return _MISS
        self.replayed += 1
        if rec.spent:
            self.ledger.charge(node.account, Usage.from_dict(self.decode(rec, "spent")))
        nested = self._role_spent.get(step_id) if self._role_spent else None
        if nested is not None:
            # a role's calls are not looked up when the role itself is served: book them
            # here, so a resumed run is held to the budget an uninterrupted one would be
            self.ledger.charge(node.account, nested)
        if rec.status == "ok":
            return self.decode(rec)
        raise error_from_dict(self.decode(rec, "error") or {})

    async def _execute(
        self,
        node: Node,
        step_id: str,
        kind: str,
        name: str,
        args: Any,
        worst: Usage,
        execute: Callable[[], Awaitable[tuple[Any, Usage]]],
        *,
        effect: bool,
        timeout: float | None,
        retries: int,
        interruptible: bool = True,
        normalize: bool = True,
        intent: bool = True,
    ) -> Any:
        writer, ledger = self.writer, self.ledger
        started = time.time()
        # a plain function's intent would only ever be seen beside its result
        if intent:
            self._record(
                node, step_id, kind, name, "started", args, None, None, ZERO, started, False
            )
        if effect:
            # write-ahead: the intent is on disk before the world changes
            await writer.durable()
        attempt = 0
        spent = ZERO
        while True:
            reservation = None
            if not worst.is_zero():
                try:
                    reservation = ledger.reserve(node.account, worst)
                except BudgetExceeded as e:
                    self._record_error(node, step_id, kind, name, e, spent, started, "denied")
                    self.denied += 1
                    raise
            try:
                value, used = await self._run_bounded(
                    node, execute, timeout, kind, name, interruptible
                )
            except EffectUncertain:
                # the run halts for a person: the step stays unfinished, not failed
                if reservation is not None:
                    ledger.release(reservation)
                raise
            except asyncio.CancelledError:
                # the whole run is being torn down: the step keeps no result, so a
                # resume runs it again (under the same idempotency key); its row says why
                if reservation is not None:
                    ledger.release(reservation)
                if intent:
                    self._record(node, step_id, kind, name, "started", None, None,
                                 _INTERRUPTED, spent, started)  # fmt: skip
                raise
            except Exception as exc:
                err, used = self._attempt_failed(exc, reservation, worst, kind, name)
                spent = spent + used
                if err.retryable and attempt < retries and not node.cancelled:
                    attempt += 1
                    await self._backoff(attempt, err)
                    continue
                self._record_error(node, step_id, kind, name, err, spent, started, "error")
                if err is exc:
                    raise
                raise err from exc
            if reservation is not None:
                ledger.settle(reservation, used)
            spent = spent + used
            break
        return self._record_ok(
            node, step_id, kind, name, None if intent else args, value, spent, started, normalize
        )

    def _record_ok(
        self,
        node: Node,
        step_id: str,
        kind: str,
        name: str,
        args: Any,
        value: Any,
        spent: Usage,
        started: float,
        normalize: bool,
    ) -> Any:
        """Record a step's result (with its input when no intent row holds it)."""
        self.executed += 1
        try:
            text = self._encode(value, step_id)
        except RemitError as err:
            self._record_error(node, step_id, kind, name, err, spent, started, "error", args)
            raise
        self._record(node, step_id, kind, name, "ok", args, text, None, spent, started)
        if normalize and type(value) not in _PRIMITIVES:
            # the caller sees exactly what a replay will see (tuples become lists, ...)
            value = json.loads(text)
        self._last = (value, text)
        return value

    async def _run_bounded(
        self,
        node: Node,
        execute: Callable[[], Awaitable[tuple[Any, Usage]]],
        timeout: float | None,
        kind: str,
        name: str,
        interruptible: bool,
    ) -> tuple[Any, Usage]:
        if node.deadline is None and timeout is None and not interruptible:
            # nothing could fire a timeout and nothing can interrupt a plain function
            return await execute()
        loop = asyncio.get_running_loop()
        when: float | None = None
        if node.deadline is not None:
            when = loop.time() + (node.deadline - time.time())
        if timeout is not None:
            t = loop.time() + timeout
            when = t if when is None else min(when, t)
        scope = asyncio.timeout_at(when)
        outer = node.scope
        node.scope = scope
        try:
            async with scope:
                return await execute()
        except TimeoutError:
            if node.cancelled:
                raise Cancelled(
                    f"task {node.id} was cancelled during {_what(kind, name)}"
                ) from None
            if node.deadline is not None and time.time() >= node.deadline:
                raise DeadlineExceeded(
                    f"task {node.id}: deadline passed during {_what(kind, name)}"
                ) from None
            raise StepTimeout(f"{_what(kind, name)} timed out after {timeout}s") from None
        finally:
            node.scope = outer

    def _record_error(
        self,
        node: Node,
        step_id: str,
        kind: str,
        name: str,
        err: RemitError,
        spent: Usage,
        started: float,
        status: str,
        args: Any = None,
    ) -> None:
        self._record(node, step_id, kind, name, status, args, None, json.dumps(err.to_dict()),
                     spent, started)  # fmt: skip

    def _record(
        self,
        node: Node,
        step_id: str,
        kind: str,
        name: str,
        status: str,
        args: Any,
        output: str | None,
        error: str | None,
        spent: Usage,
        started: float,
        ended: bool = True,
    ) -> None:
        """Queue one step record of ``node`` (the one shape every row of a step takes)."""
        self.writer.add(
            StepRecord(
                self.run_id,
                step_id,
                node.id,
                node.scope_n,
                kind,
                name,
                status,  # pyright: ignore[reportArgumentType]
                None if args is None else self._encode_input(args),
                output,
                error,
                _spent_json(spent),
                started,
                time.time() if ended else None,
                self._proofs.pop(step_id, None) if self._proofs else None,
            )
        )

    # --- warrants ------------------------------------------------------------------

    def mint(self, node: Node) -> None:
        """Give ``node`` its warrant as it starts: the root grant, or a hop delegated by
        its parent's agent; journaled (``{task}:warrant``) before any of its calls.

        A resumed run reuses the journaled hop, so calls signed before and after the
        crash hang off the same chain.
        """
        signer = self.signer
        if signer is None:
            return
        step_id = f"{node.id}:warrant"
        parent = node.parent
        parent_warrant = parent_key = None
        if parent is not None:
            parent_warrant, parent_key = parent.warrant, parent.agent_key
            if parent_warrant is None or parent_key is None:
                raise Cancelled(f"task {node.id}: its parent {parent.id} has ended")
        rec = self.recorded.get(step_id) if self.recorded else None
        if rec is not None and rec.proof is not None:
            warrant, key = signer.restore(parent_warrant, node.id, rec.proof, step_id)
            if warrant.remit != node.remit:
                # the engine derives every remit from the root's; a journaled hop that
                # grants something else was altered
                raise WarrantMalformed(
                    f"{step_id}: the journaled warrant hop grants a different remit than "
                    "the task's; the journal was altered"
                )
            node.warrant, node.agent_key = warrant, key
            return
        if parent_warrant is None or parent_key is None:
            expires = node.deadline if node.deadline is not None else time.time() + DEFAULT_TTL_S
            warrant, key = signer.root(node.id, node.remit, node.goal, expires)
        else:
            expires = node.deadline if node.deadline is not None else parent_warrant.expires
            warrant, key = signer.delegate(parent_warrant, parent_key, node.id, node.remit, expires)
        node.warrant, node.agent_key = warrant, key
        self._proofs[step_id] = warrant.hops[-1].frame()
        out = f'{{"hop": {warrant.depth - 1}, "holder": "{warrant.holder.hex()}"}}'
        self._record(node, step_id, "warrant", warrant.hop_id, "ok", None, out, None, ZERO,
                     time.time())  # fmt: skip

    def _encode(self, value: Any, where: str) -> str:
        try:
            text = _encode_json(value)
        except RecursionError:
            raise StepFailed(
                f"step {where}: result cannot be journaled as JSON: it refers to itself"
                " (or nests too deeply)"
            ) from None
        except (TypeError, ValueError) as e:
            raise StepFailed(f"step {where}: result cannot be journaled as JSON: {e}") from None
        if len(text) > self.max_output_bytes:
            raise OutputTooLarge(
                f"step {where}: output of {len(text)} bytes exceeds the limit of "
                f"{self.max_output_bytes}; return less, or write it to a file with a tool"
            )
        return text

    def _encode_input(self, args: Any) -> str | None:
        if args is None:
            return None
        try:
            text = _encode_json(args)
        except (TypeError, ValueError, RecursionError):
            text = json.dumps(repr(args))
        return text if len(text) <= self.max_output_bytes else json.dumps(text[:1000] + "...")


def _spend_by_role(recorded: Mapping[str, StepRecord]) -> dict[str, Usage]:
    """The recorded spend of every role's calls (``<task>:<role>.<n>``), by role step id."""
    spent: dict[str, Usage] = {}
    for rec in recorded.values():
        if rec.spent is None or rec.status == "started" or rec.kind not in ("tool", "model"):
            continue
        role = rec.step_id.rpartition(".")[0]
        try:
            used = Usage.from_dict(json.loads(rec.spent))
        except (ValueError, TypeError, AttributeError) as e:
            raise JournalCorrupt(
                f"step {rec.step_id}: spent is not a valid spend ({e}); the journal row is damaged"
            ) from None
        spent[role] = spent.get(role, ZERO) + used
    return spent


_IS_CORO: dict[Any, bool] = {}


class _Miss:
    __slots__ = ()


_MISS: Any = _Miss()


def _what(kind: str, name: str) -> str:
    """``tool read_file``, ``model smollm2``; a role is named once: ``role plan``."""
    return f"role {kind}" if kind == name else f"{kind} {name}"


def _as_remit_error(exc: BaseException, kind: str, name: str) -> RemitError:
    if isinstance(exc, RemitError):
        return exc
    return StepFailed(
        f"{_what(kind, name)} raised {type(exc).__name__}: {exc}", cause_type=type(exc).__name__
    )
