"""Phases 2, 5 and 7: reserve the worst case, execute (timeout, retries with backoff), settle.

A failed attempt is classified (:mod:`remit.gate._taxonomy`): a transient one is retried
while attempts are left, each retry journaled as its own row (``<step>~retry.<n>``) with
the error that caused it; the last failure is journaled on the step itself, marked
``fail``, or ``reroute`` when the call is routed and another alternative may serve it
(the router then goes on).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from remit.core.ledger import ZERO, Usage
from remit.errors import (
    BudgetExceeded,
    Cancelled,
    DeadlineExceeded,
    EffectUncertain,
    RemitError,
    StepTimeout,
)
from remit.gate._faults import HANG_S, Injection
from remit.gate._node import Node
from remit.gate._record import INTERRUPTED
from remit.gate._state import MAX_RETRY_AFTER_S, as_remit_error, what
from remit.gate._taxonomy import mark, reroutable


class Execution(Injection):
    """Runs a step between its reservation and its settlement."""

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
        route: bool = False,
        encoded_args: str | None = None,
    ) -> Any:
        """Run one step; ``route``: the step is one alternative of a routed call, so a
        failure another alternative may not share is marked ``reroute``;
        ``encoded_args``: ``args`` as the row records them, when the caller has them so
        (a step without an intent row)."""
        writer, ledger = self.writer, self.ledger
        started = time.time()
        # a plain function's intent would only ever be seen beside its result
        input_text = None if intent else encoded_args
        if intent:
            input_text = None if args is None else self._encode_input(args)
            self._record(node, step_id, kind, name, "started", args, None, None, ZERO, started,
                         False, input_text=input_text)  # fmt: skip
        if effect:
            # write-ahead: the intent is on disk before the world changes
            await writer.durable()
        attempt = 0
        spent = ZERO
        while True:
            reservation = None
            if not worst.is_zero():
                try:
                    reservation = ledger.reserve(node.account, worst, step_id)
                except BudgetExceeded as e:
                    self._record_error(node, step_id, kind, name, e, spent, started, "denied")
                    self.denied += 1
                    raise
            try:
                value, used = await self._run_bounded(
                    node, execute, timeout, kind, name, interruptible
                )
                # output that cannot be journaled fails the attempt (it may be retried
                # or rerouted), not the step after it
                try:
                    text = self._encode(value, step_id)
                except RemitError as e:
                    e.spent = used
                    raise
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
                                 INTERRUPTED, spent, started)  # fmt: skip
                raise
            except Exception as exc:
                err, used = self._attempt_failed(exc, reservation, worst, kind, name)
                spent = spent + used
                if err.retryable and attempt < retries and not node.cancelled:
                    attempt += 1
                    self._retry_row(node, step_id, kind, name, err, used, attempt)
                    await self._backoff(attempt, err)
                    continue
                mark(err, "reroute" if route and reroutable(err) else "fail")
                self._record_error(node, step_id, kind, name, err, spent, started, "error")
                if err is exc:
                    raise
                raise err from exc
            if reservation is not None:
                ledger.settle(reservation, used)
            spent = spent + used
            break
        return self._record_ok(
            node, step_id, kind, name, None if intent else args, value, spent, started, normalize,
            text, input_text,
        )  # fmt: skip

    def _retry_row(
        self, node: Node, step_id: str, kind: str, name: str, err: RemitError, used: Usage, n: int
    ) -> None:
        """Journal one failed attempt that will be retried (its spend is in the step's)."""
        mark(err, "retry", attempt=n)
        self._record(node, f"{step_id}~retry.{n}", "retry", name, "error", None, None,
                     json.dumps(err.to_dict()), used, time.time())  # fmt: skip

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
                reservation = ledger.reserve(node.account, worst, step_id)
            except BudgetExceeded as e:
                self.denied += 1
                self._record_error(node, step_id, "tool", name, e, spent, started, "denied", valid)
                raise
            try:
                value = fn(**valid)
                text = self._encode(value, step_id)
            except Exception as exc:
                err, used = self._attempt_failed(exc, reservation, worst, "tool", name)
                spent = spent + used
                if err.retryable and attempt < retries and not node.cancelled:
                    attempt += 1
                    self._retry_row(node, step_id, "tool", name, err, used, attempt)
                    await self._backoff(attempt, err)
                    continue
                mark(err, "fail")
                self._record_error(node, step_id, "tool", name, err, spent, started, "error", valid)
                if err is exc:
                    raise
                raise err from exc
            ledger.settle(reservation, worst)
            spent = worst if spent is ZERO else spent + worst
            return self._record_ok(
                node, step_id, "tool", name, valid, value, spent, started, True, text
            )

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
                raise Cancelled(f"task {node.id} was cancelled during {what(kind, name)}") from None
            if node.deadline is not None and time.time() >= node.deadline:
                raise DeadlineExceeded(
                    f"task {node.id}: deadline passed during {what(kind, name)}"
                ) from None
            raise StepTimeout(f"{what(kind, name)} timed out after {timeout}s") from None
        finally:
            node.scope = outer

    async def _never_return(self, node: Node, role: str) -> None:
        """A task that never comes back (``child_never_returns``): it hangs until its
        deadline, or until its parent gives up on it and cancels it."""

        async def hang() -> tuple[Any, Usage]:
            await asyncio.sleep(HANG_S)
            return None, ZERO

        await self._run_bounded(node, hang, None, role, role, True)

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
        return as_remit_error(exc, kind, name), used

    async def _backoff(self, attempt: int, err: RemitError | None = None) -> None:
        # exponential, with jitter so that retrying siblings do not march in step
        delay = min(self.retry_cap_s, self.retry_base_s * 2**attempt) * (0.5 + random.random())
        # a server that said when to come back (Retry-After) is believed, within reason
        after = getattr(err, "retry_after_s", None)
        if isinstance(after, int | float) and after > delay:
            delay = min(float(after), MAX_RETRY_AFTER_S)
        await asyncio.sleep(delay)
