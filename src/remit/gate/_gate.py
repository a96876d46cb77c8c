"""The Gate: every effect of a run, in the order of its phases (see :mod:`remit.gate`)."""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from remit.core.ledger import ZERO, Usage
from remit.core.schemas import validate as validate_schema
from remit.core.voting import Vote, Voted
from remit.errors import (
    Cancelled,
    RemitError,
    SchemaError,
    WarrantDigestMismatch,
)
from remit.gate._faults import injected
from remit.gate._node import Node
from remit.gate._state import MISS, TEMPLATE_TOKENS, as_remit_error, idempotency_key
from remit.gate._vote import draw_vote
from remit.gate._warrants import Warrants
from remit.models import Completion, Message, Model
from remit.trust.provenance import nonce_of


class Gate(Warrants):
    """Checks, journals, budgets and executes every effect of one run."""

    async def call_tool(self, node: Node, name: str, args: Mapping[str, Any]) -> Any:
        """Call tool ``name`` for ``node``; returns its (JSON-shaped) output."""
        step_id = self._next_effect(node)
        self._check_deadline(node, step_id, "tool", name)
        if self.routes is not None and name in self.routes:
            return await self._call_capability(node, step_id, name, args)
        decision = node.remit.check(name, args, now=time.time(), inputs_text=self.inputs_text)
        if not decision.allowed:
            await self._on_denied(node, step_id, name, args, decision)
        return await self._call_one(node, step_id, name, args)

    async def _call_capability(
        self, node: Node, step_id: str, capability: str, args: Mapping[str, Any]
    ) -> Any:
        """A call to a capability with routes: each alternative tried is a step of its own
        (``<step>@<alternative>``), and the call's outcome is the step's ``route`` row."""
        assert self.routes is not None
        served = self._served_route(node, step_id)
        if served is not MISS:
            return served
        first = self._first_route(node, capability, args)
        if first is None:
            now = time.time()
            granted = sorted(
                n for n in self.routes.leaves(capability)
                if node.remit.check(n, args, now=now, inputs_text=self.inputs_text).allowed
            )  # fmt: skip
            if not granted:  # nothing the remit grants: a denial, as for any tool
                cheapest = self.routes.cheapest(capability)
                name = capability if cheapest is None else cheapest[0]
                decision = node.remit.check(name, args, now=now, inputs_text=self.inputs_text)
                await self._on_denied(node, step_id, name, args, decision)
                return await self._call_one(node, step_id, name, args)
            raise self._all_out(node, step_id, capability, granted)

        async def try_one(alt: str, sub_id: str) -> Any:
            return await self._call_one(node, sub_id, alt, args, route=True)

        return await self._routed(node, step_id, capability, args, first, try_one)

    async def _call_one(
        self,
        node: Node,
        step_id: str,
        name: str,
        args: Mapping[str, Any],
        *,
        route: bool = False,
    ) -> Any:
        """Phases 2 to 7 of one tool call the remit allows."""
        t = self.tools.get(name)
        valid = t.validate(args)
        hit = self._replay(node, step_id, "tool", name, effect=t.effect and not t.idempotent)
        if hit is not MISS:
            self._receipt_served(node, self.recorded[step_id])
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
        elif self.sealed:
            self._proofs[step_id] = nonce_of(step_id)
        if t.takes_key:
            valid["idempotency_key"] = idempotency_key(self.run_id, step_id)
        fn = t.fn
        faults = self.faults
        if t.inline and faults is None and not route:
            return await self._call_inline(node, step_id, name, t.retries, fn, valid, worst)

        async def execute() -> tuple[Any, Usage]:
            if t.is_async:
                return await fn(**valid), worst
            if t.thread:
                return await asyncio.to_thread(fn, **valid), worst
            return fn(**valid), worst

        if faults is not None:
            plain = execute

            async def execute() -> tuple[Any, Usage]:  # a fault may strike every attempt
                fault = self.strike("tool", node, step_id, name)
                if fault is None:
                    return await plain()
                return await self.faulty_tool(fault, plain, name, self.max_output_bytes)()

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
            interruptible=t.is_async or t.thread or faults is not None,
            route=route,
        )

    async def complete(
        self,
        node: Node,
        messages: Sequence[Message],
        *,
        schema: Mapping[str, Any] | None = None,
        max_tokens: int = 512,
        tools: Sequence[Mapping[str, Any]] | None = None,
        sample: int | None = None,
        encoded_args: str | None = None,
    ) -> Completion:
        """A model call for ``node``; with ``schema``, the output must be valid JSON for it.
        ``sample``: the call is independent sample number ``sample`` of the same messages
        (a vote's), which a model that can draws with a seed of its own; its row's input
        ``encoded_args`` if given (a vote encodes its messages once for every sample).

        With routes for the capability ``model``, the call goes to the cheapest healthy
        model of :attr:`models` and around the ones that fail (as a tool call does)."""
        model = self.model
        if model is None:
            raise RemitError("this runtime has no model; pass model=... to Runtime")
        step_id = self._next_effect(node)
        self._check_deadline(node, step_id, "model", model.name)
        routes = self.routes
        if routes is None or "model" not in routes:
            return await self._complete_one(
                node, step_id, model, messages, schema, max_tokens, tools,
                sample=sample, encoded_args=encoded_args,
            )  # fmt: skip
        served = self._served_route(node, step_id)
        if served is not MISS:
            return Completion(**served)
        first = routes.cheapest("model", usable=self._healthy)
        if first is None:
            raise self._all_out(node, step_id, "model", sorted(routes.leaves("model")), "model")

        async def try_one(name: str, sub_id: str) -> Any:
            return await self._complete_one(node, sub_id, self.models[name], messages,
                                            schema, max_tokens, tools, route=True,
                                            sample=sample)  # fmt: skip

        return await self._routed(node, step_id, "model", {}, first[0], try_one, kind="model")

    async def _complete_one(
        self,
        node: Node,
        step_id: str,
        model: Model,
        messages: Sequence[Message],
        schema: Mapping[str, Any] | None,
        max_tokens: int,
        tools: Sequence[Mapping[str, Any]] | None,
        *,
        route: bool = False,
        sample: int | None = None,
        encoded_args: str | None = None,
    ) -> Completion:
        """Phases 2 to 7 of one model call."""
        hit = self._replay(node, step_id, "model", model.name)
        if hit is not MISS:
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

        extra: dict[str, Any] = {}
        if sample is not None and takes_sample(model):
            extra["sample"] = sample

        async def execute() -> tuple[Any, Usage]:
            fault = None if self.faults is None else self.strike("model", node, step_id, model.name)
            if fault is None:
                c = await model.complete(
                    messages, schema=schema, tools=tools, max_tokens=max_tokens, **extra
                )
            else:
                c = await self.faulty_completion(
                    fault,
                    lambda: model.complete(
                        messages, schema=schema, tools=tools, max_tokens=max_tokens, **extra
                    ),
                    step_id,
                    model.name,
                    self.max_output_bytes,
                )
            self.remember_answer(step_id, c.content)
            used = Usage(1, c.input_tokens, c.output_tokens, c.cost_usd)
            # a vote's sample off its schema is red-flagged by the vote, not an error
            if schema is not None and sample is None:
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
                    if fault is not None:
                        injected(e, fault)
                    raise
            return _completion_dict(c), used

        out = await self._execute(
            node,
            step_id,
            "model",
            model.name,
            {"messages": list(messages), "schema": schema}
            if sample is None
            else {"messages": list(messages), "schema": schema, "sample": sample},
            worst,
            execute,
            effect=False,
            timeout=None,
            # transient failures (429, 5xx, timeouts) retry with backoff; each attempt
            # is reserved and settled on its own, so retries are charged
            retries=getattr(model, "retries", 0),
            route=route,
            # a sample a crash interrupts is drawn again, and nothing shows it live: it
            # is recorded once, whole
            intent=sample is None,
            # a completion is JSON-shaped already (a replay sees the same); with tool
            # calls, their arguments are read back as a replay would read them
            normalize=bool(tools),
            encoded_args=None if sample is None else encoded_args,
        )
        return Completion(**out)

    async def vote(
        self, node: Node, messages: Sequence[Message], vote: Vote, *, max_tokens: int = 512
    ) -> Voted:
        """Samples of one model call for ``node`` until ``vote`` decides (see
        :mod:`remit.gate._vote`)."""
        if self.model is None:
            raise RemitError("this runtime has no model; pass model=... to Runtime")
        return await draw_vote(self, node, messages, vote, max_tokens=max_tokens)

    async def role(
        self, node: Node, role: str, fn: Callable[..., Any], *args: Any, normalize: bool = True
    ) -> Any:
        """Run a role (atomize, plan, execute, aggregate...) of ``node`` as a journaled step.

        Effects the role makes get ids nested under the role's, so a role served from
        the journal on resume skips its effects without shifting anyone's position.
        """
        step_id = f"{node.id}:{role}"
        if self.generations:
            step_id = self.current_id(step_id)
        if node.cancelled:
            raise Cancelled(f"task {node.id} was cancelled")
        self._check_deadline(node, step_id, role, role)
        hit = self._replay(node, step_id, role, role)
        if hit is not MISS:
            return hit
        node.scope_role, node.scope_n = role, 0
        if self.faults is not None and self.strike("role", node, step_id, role) is not None:
            await self._never_return(node, role)
        key = getattr(fn, "__func__", fn)
        is_coro = IS_CORO.get(key)
        if is_coro is None:
            is_coro = IS_CORO[key] = inspect.iscoroutinefunction(fn)

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
                err = as_remit_error(exc, role, role)
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
            err = as_remit_error(exc, role, role)
            if err is exc:
                raise
            raise err from exc
        finally:
            self.executed += 1


IS_CORO: dict[Any, bool] = {}


def _completion_dict(c: Completion) -> dict[str, Any]:
    """A completion as its row records it (``dataclasses.asdict`` costs ten times more)."""
    return {
        "content": c.content, "input_tokens": c.input_tokens, "output_tokens": c.output_tokens,
        "cost_usd": c.cost_usd, "model": c.model,
        "tool_calls": [dict(t) for t in c.tool_calls],
    }  # fmt: skip


_TAKES_SAMPLE: dict[type, bool] = {}


def takes_sample(model: Model) -> bool:
    """Whether ``model.complete`` accepts ``sample=`` (adapters written before votes
    need not: they are then called as for any model call)."""
    kind = type(model)
    known = _TAKES_SAMPLE.get(kind)
    if known is None:
        try:
            params = inspect.signature(model.complete).parameters
        except (TypeError, ValueError):
            params = {}
        known = _TAKES_SAMPLE[kind] = "sample" in params or any(
            p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()
        )
    return known
