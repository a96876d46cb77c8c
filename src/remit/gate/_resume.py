"""What a resume checks before it acts (private; used by :mod:`remit.runtime._runtime`).

1. **Authority.** The journal is a file anyone with write access can edit. A signed
   run's root remit and principal are sealed, when the run begins, with a MAC under the
   run secret (kept beside the journal, never in it), and its root grant is signed by
   the principal. A resume re-checks both against ``runs.remit`` and refuses with
   ``WARRANT_ROOT_MISMATCH`` on any difference: a widened remit is never acted under.
2. **Uncertain effects.** A non-idempotent effect whose intent is on disk but whose
   result is not may or may not have happened. A resume lists every one of them and
   halts until a person has said which (``remit resolve``); a ``did-not-happen`` answer
   allows exactly one more attempt.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

from remit.core.remit import Remit
from remit.core.tasks import ROOT, task_id
from remit.errors import EffectUncertain, InvalidInput, WarrantError, WarrantRootMismatch
from remit.journal import JournalStore, RunRecord, StepRecord
from remit.journal.lease import run_state
from remit.tools import ToolRegistry
from remit.trust.provenance import RunKeys
from remit.trust.warrant import chain_token, verify

__all__ = [
    "check_authority",
    "halt_for",
    "may_retry",
    "resolution_of",
    "resolve",
    "uncertain_effects",
]


def check_authority(
    rec: RunRecord, meta: Mapping[str, Any], keys: RunKeys, recorded: Mapping[str, StepRecord]
) -> None:
    """Refuse to resume a signed run whose recorded authority is not what was granted."""
    principal = meta.get("principal_key")
    if not isinstance(principal, str):
        return
    seal = meta.get("root_seal")
    if isinstance(seal, str) and not hmac.compare_digest(seal, keys.seal(rec.remit, principal)):
        raise WarrantRootMismatch(
            f"run {rec.run_id}: its recorded remit or principal is not the one the run was "
            "started with (the journal was altered after the run began); refusing to resume. "
            "`remit verify` names what differs"
        )
    token = meta.get("grant")
    if isinstance(token, str):  # a sealed run: the principal granted the run's key
        _check_grant(rec, token, bytes.fromhex(principal), rec.created_at)
        return
    root = task_id(ROOT, 0, rec.goal)
    hop = recorded.get(f"{root}:warrant")
    if hop is None or hop.proof is None:
        return  # the root never started: its grant will be issued from the sealed remit
    token = chain_token(bytes.fromhex(principal), [hop.proof])
    _check_grant(rec, token, bytes.fromhex(principal), hop.started_at)


def _check_grant(rec: RunRecord, token: str, principal: bytes, now: float) -> None:
    """The principal's grant (a sealed run's, or an older run's root hop) verifies and
    grants exactly the run's recorded remit."""
    try:
        granted = verify(token, principal_public=principal, run_id=rec.run_id, now=now)
    except (WarrantError, ValueError) as e:
        raise WarrantRootMismatch(
            f"run {rec.run_id}: its principal's grant does not verify ({e}); refusing to resume"
        ) from None
    if granted != Remit.from_json(rec.remit):
        raise WarrantRootMismatch(
            f"run {rec.run_id}: the run's recorded remit differs from the one its principal "
            "granted (the journal was altered); refusing to resume"
        )


def resolution_of(recorded: Mapping[str, StepRecord], step_id: str) -> tuple[int, Any]:
    """How many times a person resolved ``step_id``, and the last answer (or None)."""
    n, answer = 0, None
    while (rec := recorded.get(f"{step_id}~resolution.{n + 1}")) is not None:
        n += 1
        answer = json.loads(rec.output or "null")
    return n, answer


def may_retry(recorded: Mapping[str, StepRecord], step_id: str) -> bool:
    """Whether a person said the effect did not happen, and it was not tried since."""
    n, answer = resolution_of(recorded, step_id)
    if n == 0 or not isinstance(answer, Mapping) or answer.get("happened") is not False:  # pyright: ignore[reportUnknownMemberType]
        return False
    return f"{step_id}~attempt.{n}" not in recorded


def uncertain_effects(recorded: Mapping[str, StepRecord], tools: ToolRegistry) -> list[StepRecord]:
    """The calls of non-idempotent effects that started, never recorded a result, and
    no person has resolved."""
    out: list[StepRecord] = []
    for rec in recorded.values():
        if rec.kind != "tool" or rec.status != "started" or rec.name not in tools:
            continue
        t = tools.get(rec.name)
        if t.effect and not t.idempotent and not may_retry(recorded, rec.step_id):
            out.append(rec)
    return out


def halt_for(run_id: str, steps: list[StepRecord]) -> EffectUncertain:
    """The error a resume raises for unresolved uncertain effects: every step, named."""
    listed = "; ".join(f"{s.step_id} ({s.name})" for s in steps[:20])
    more = f" and {len(steps) - 20} more" if len(steps) > 20 else ""
    return EffectUncertain(
        f"run {run_id} halted: {len(steps)} non-idempotent effect(s) started before the "
        f"process stopped and never recorded a result: {listed}{more}. Check whether each "
        f"happened, then `remit resolve {run_id} STEP --happened RESULT_JSON` or "
        f"`--did-not-happen`, and resume",
        tuple(s.step_id for s in steps),
    )


def resolve(
    store: JournalStore,
    run_id: str,
    step_id: str,
    *,
    happened: bool,
    result: Any = None,
    by: str,
    why: str = "",
) -> StepRecord:
    """Record a person's word on an uncertain effect; returns the resolution row.

    ``happened=True``: the call's result becomes ``result`` (what the tool returned, as
    the person found it) and a resume serves it. ``happened=False``: a resume runs the
    call once more (a crash during that attempt makes it uncertain again). Refused while
    a live process carries the run (the call may be in flight right now).
    """
    run = store.get_run(run_id)
    if run_state(run, store.get_lease(run_id)) == "running":
        raise InvalidInput(
            f"run {run_id} is being carried by a live process; an effect can only be resolved "
            "once the run is interrupted (its call may be in flight right now)"
        )
    mine = {s.step_id: s for s in store.steps(run_id) if s.step_id.startswith(step_id)}
    step = mine.get(step_id)
    if step is None or step.kind != "tool":
        waiting = [
            s.step_id for s in store.steps(run_id) if s.kind == "tool" and s.status == "started"
        ]
        raise InvalidInput(
            f"run {run_id} has no tool call {step_id!r} (unfinished calls: "
            f"{', '.join(waiting[:10]) or 'none'})"
        )
    if step.status != "started":
        raise InvalidInput(
            f"step {step_id} of run {run_id} already has a result ({step.status}); "
            "nothing to resolve"
        )
    n, _ = resolution_of(mine, step_id)
    if n and f"{step_id}~attempt.{n}" not in mine:
        raise InvalidInput(
            f"step {step_id} of run {run_id} was already resolved and has not been tried "
            f"since; resume the run (remit resume {run_id})"
        )
    now = time.time()
    answer = {"happened": happened, "by": by, "why": why, "at": now}
    resolution = StepRecord(
        run_id, f"{step_id}~resolution.{n + 1}", step.task_id, step.seq, "resolution",
        step.name, "ok", None, json.dumps(answer), None, None, now, now,
    )  # fmt: skip
    records = [resolution]
    if happened:
        try:
            output = json.dumps(result, ensure_ascii=False)
        except (TypeError, ValueError) as e:
            raise InvalidInput(f"the result given for {step_id} is not JSON: {e}") from None
        records.append(
            StepRecord(
                run_id,
                step_id,
                step.task_id,
                step.seq,
                "tool",
                step.name,
                "ok",
                None,
                output,
                None,
                None,
                step.started_at,
                now,
            )
        )
    store.write(records)
    return resolution
