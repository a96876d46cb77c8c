"""A person's answer to a call that waits for approval, written from outside the run.

The Gate asks by journaling ``{step}~approval`` (status ``started``, on disk before it
waits) and polls that row; whoever answers writes the row's result. This module is the
one way to write that answer, so ``remit approve|deny`` and the web view (``remit ui``)
write the same row, and a run restarted between the question and the answer finds it
the same way.

An answer is ``{"approved": bool, "by": str, "at": float}`` plus ``"reason"`` when the
person gave one (a denial's reason reaches the agent with the denial). A request whose
task's deadline passed is answered by the Gate itself, with a ``DEADLINE`` error: it
expired, and a later answer is refused (``ALREADY_ANSWERED``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

from remit.errors import AlreadyAnswered, NoApproval
from remit.journal import JournalStore, StepRecord

__all__ = ["SUFFIX", "answer", "answer_of", "approval_id", "waiting"]

#: what the Gate appends to a call's step id to name its approval request
SUFFIX = "~approval"


def approval_id(step: str) -> str:
    """The approval request's step id, given it or the id of the call it asks about."""
    return step if step.endswith(SUFFIX) else f"{step}{SUFFIX}"


def waiting(steps: Iterable[StepRecord]) -> list[StepRecord]:
    """The approval requests among ``steps`` that have no answer yet."""
    return [s for s in steps if s.kind == "approval" and s.status == "started"]


def answer_of(rec: StepRecord) -> Mapping[str, Any] | None:
    """A request's answer as recorded (``None`` while it waits or if unreadable)."""
    if rec.status != "ok" or rec.output is None:
        return None
    try:
        data = json.loads(rec.output)
    except ValueError:
        return None
    return data if isinstance(data, Mapping) else None  # pyright: ignore[reportUnknownVariableType]


def answer(
    store: JournalStore,
    run_id: str,
    step: str,
    *,
    approved: bool,
    by: str,
    reason: str = "",
    now: float | None = None,
) -> StepRecord:
    """Record a person's answer to the call ``step`` of run ``run_id``; returns the row.

    Raises ``RunNotFound``, ``NoApproval`` (no such request; the message lists those
    that wait) or ``AlreadyAnswered`` (answered before, or expired at its deadline).
    """
    step_id = approval_id(step)
    store.get_run(run_id)
    rec = store.get_step(run_id, step_id)
    if rec is None or rec.kind != "approval":
        pending = [s.step_id for s in waiting(store.steps(run_id))]
        hint = ", ".join(pending) if pending else "none"
        raise NoApproval(f"run {run_id} has no approval request {step_id!r} (waiting: {hint})")
    if rec.status != "started":
        was = rec.output if rec.status == "ok" else f"expired: {rec.error}"
        raise AlreadyAnswered(f"{step_id} was already answered ({was})")
    at = time.time() if now is None else now
    data: dict[str, Any] = {"approved": approved, "by": by, "at": at}
    if reason:
        data["reason"] = reason
    record = StepRecord(run_id, step_id, rec.task_id, rec.seq, "approval", rec.name, "ok",
                        None, json.dumps(data), None, None, rec.started_at, at)  # fmt: skip
    store.write([record])
    # the first answer wins (the Gate may have marked it expired a moment ago)
    now_rec = store.get_step(run_id, step_id)
    if now_rec is None or now_rec.output != record.output:
        was = now_rec.output or now_rec.error if now_rec is not None else None
        raise AlreadyAnswered(f"{step_id} was answered first by another ({was})")
    return record
