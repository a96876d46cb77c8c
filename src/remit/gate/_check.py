"""Phase 1, check: the remit and the deadline; a denial's fallback (tell, stop, ask a person)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

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
