"""Phase 1, check: the remit and the deadline; a denial's fallback (tell, stop, ask a person)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any, cast

from remit.core.ledger import ZERO
from remit.core.remit import Decision
from remit.errors import (
    Cancelled,
    DeadlineExceeded,
    DeniedError,
    RemitError,
)
from remit.gate._lookup import Lookup
from remit.gate._node import Node
from remit.gate._state import what
from remit.journal import StepRecord


class Checks(Lookup):
    """Denies what the remit does not allow, with a journaled reason."""

    def _check_deadline(self, node: Node, step_id: str, kind: str, name: str) -> None:
        if node.deadline is not None and time.time() >= node.deadline:
            self._deny(
                node,
                step_id,
                kind,
                name,
                None,
                DeadlineExceeded(f"task {node.id}: deadline passed before {what(kind, name)}"),
            )

    def _deny(
        self, node: Node, step_id: str, kind: str, name: str, args: Any, error: RemitError
    ) -> None:
        self.denied += 1
        self._record_error(node, step_id, kind, name, error, ZERO, time.time(), "denied", args)
        raise error

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
        try:
            approved, reason = await self._approval(node, step_id, name, args, decision)
        except DeadlineExceeded as e:  # nobody answered in time: the call is denied
            self._deny(node, step_id, "tool", name, args, e)
            raise  # (not reached: _deny raises)
        if approved:
            return
        said = f": {reason}" if reason else ""
        self._deny(node, step_id, "tool", name, args,
                   DeniedError(f"{why}; a person denied the call{said}",
                               rule=decision.rule))  # fmt: skip

    async def _approval(
        self, node: Node, step_id: str, name: str, args: Mapping[str, Any], decision: Decision
    ) -> tuple[bool, str]:
        """Wait, durably, for a person's answer: ``remit approve|deny RUN_ID STEP`` or the
        web view (both write it with :func:`remit.gate.approvals.answer`).

        The request is a journaled step (``{step}~approval``, status ``started``); the
        answer is its result, written by another process. A restart finds the request
        and waits again; the task's deadline ends the wait, and the request is then
        recorded as expired (its result a ``DEADLINE`` error), the call as denied.
        Returns whether the call was approved, and the person's reason.
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
            rec = await self._await_answer(node, approval_id, name, args)
        if rec.status != "ok":  # expired (recorded so, maybe by an earlier process)
            raise DeadlineExceeded(
                f"task {node.id}: no answer to approval {approval_id} before the deadline"
            )
        answer = self.decode(rec)
        if not isinstance(answer, Mapping):
            return False, ""
        said = cast(Mapping[str, Any], answer)
        return bool(said.get("approved")), str(said.get("reason") or "")

    async def _await_answer(
        self, node: Node, approval_id: str, name: str, args: Mapping[str, Any]
    ) -> StepRecord:
        """Poll the journal for the answer; at the task's deadline the request expires,
        on the record (its result a ``DEADLINE`` error, so a late answer is refused: the
        first result wins) and to the caller (``DeadlineExceeded``)."""
        store = self.writer.store
        delay = 0.05
        while True:
            rec = store.get_step(self.run_id, approval_id)
            if rec is not None and rec.status != "started":
                return rec
            # the deadline first: a parent's watchdog cancels its subtree at the same
            # instant, and the request must still expire on the record
            if node.deadline is not None and time.time() >= node.deadline:
                err = self._expire(node, approval_id, name)
                await self.writer.durable()
                raise err
            if node.cancelled:
                raise Cancelled(f"task {node.id} was cancelled while awaiting approval")
            # wake at the deadline, not up to a poll later: the request expires on time
            left = None if node.deadline is None else max(0.0, node.deadline - time.time())
            try:
                await asyncio.sleep(delay if left is None else min(delay, left))
            except asyncio.CancelledError:
                # a parent's watchdog ends the subtree at the deadline, cancelling this
                # wait (the step's timeout moved to now): the request expired all the same
                if node.deadline is not None and time.time() >= node.deadline:
                    err = self._expire(node, approval_id, name)
                    # and the call, denied, as when this wait itself ends it
                    self.denied += 1
                    self._record_error(node, approval_id.removesuffix("~approval"), "tool",
                                       name, err, ZERO, time.time(), "denied", args)  # fmt: skip
                raise
            delay = min(delay * 2, self.approval_poll_s)

    def _expire(self, node: Node, approval_id: str, name: str) -> DeadlineExceeded:
        """Record that nobody answered ``approval_id`` in time (queued, not awaited)."""
        err = DeadlineExceeded(
            f"task {node.id}: no answer to approval {approval_id} before the deadline"
        )
        self._record_error(node, approval_id, "approval", name, err, ZERO, time.time(), "error")
        return err
