"""Re-verifying a run from its journal alone. A sealed run (the chain and its signed
checkpoints) is audited by ``_audit``; a run signed before the journal was a chain
carries a warrant hop per task and a proof per call, checked here: each chain, each
call proof, each call against its task's remit.

Separate because it is the reading side: anyone with the principal's public key runs it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from remit.core.remit import Remit
from remit.core.tasks import task_parent
from remit.errors import JournalError, RemitError, WarrantError, WarrantMalformed
from remit.journal import JournalStore, StepRecord
from remit.trust.provenance._audit import audit_sealed
from remit.trust.provenance._quotes import audit_quotes
from remit.trust.provenance._report import Failure, RunVerification
from remit.trust.provenance._signing import signed_args
from remit.trust.warrant import (
    CallProof,
    Verifier,
    Warrant,
    chain_token,
)


class _Chains:
    """Chain tokens per task, assembled from the journal's warrant rows."""

    def __init__(self, principal: bytes, frames: Mapping[str, str]) -> None:
        self.principal = principal
        self.frames = frames
        self._tokens: dict[str, list[str]] = {}

    def frames_of(self, task_id: str) -> list[str]:
        got = self._tokens.get(task_id)
        if got is not None:
            return got
        frame = self.frames.get(task_id)
        if frame is None:
            raise WarrantMalformed(f"task {task_id} has no warrant hop in the journal")
        parent = task_parent(task_id)
        chain = [*self.frames_of(parent), frame] if parent is not None else [frame]
        self._tokens[task_id] = chain
        return chain

    def token(self, task_id: str) -> str:
        try:
            return chain_token(self.principal, self.frames_of(task_id))
        except WarrantMalformed as e:
            raise WarrantMalformed(f"task {task_id} warrant: {e.message}") from None


def run_principal(store: JournalStore, run_id: str) -> bytes | None:
    """The principal public key a run recorded in its metadata (None if unsigned)."""
    meta = json.loads(store.get_run(run_id).meta or "{}")
    text = meta.get("principal_key")
    return bytes.fromhex(text) if isinstance(text, str) else None


def warrant_frames(steps: Iterable[StepRecord]) -> dict[str, str]:
    """Each task's journaled hop frame, by task id."""
    return {s.task_id: s.proof for s in steps if s.kind == "warrant" and s.proof is not None}


def task_chain(store: JournalStore, run_id: str, task_id: str) -> tuple[Warrant, list[str]]:
    """The warrant of ``task_id`` as journaled, and the task ids along it (root first)."""
    principal = run_principal(store, run_id)
    if principal is None:
        raise JournalError(f"run {run_id} was not signed (it has no principal key)")
    chains = _Chains(principal, warrant_frames(store.steps(run_id)))
    ids: list[str] = []
    t: str | None = task_id
    while t is not None:
        ids.append(t)
        t = task_parent(t)
    return Warrant.decode(chains.token(task_id)), ids[::-1]


def _meta(text: str | None) -> dict[str, Any]:
    try:
        data = json.loads(text or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}  # pyright: ignore[reportUnknownVariableType]


def verify_run(
    store: JournalStore,
    run_id: str,
    *,
    principal_public: bytes | None = None,
    receipt_key: bytes | None = None,
) -> RunVerification:
    """Re-verify every tool call of a run from its journal alone, and its result's
    quotes of tool output (see ``_quotes``).

    ``principal_public`` pins the key the chains must lead to; without it the key the
    run recorded is used (which proves the journal is consistent, not who the
    principal was: pin the key to prove that). ``receipt_key``: the run's
    (``RunKeys.receipt_key``), to check the receipts its result carries.
    """
    run = store.get_run(run_id)
    recorded = run_principal(store, run_id)
    if principal_public is None and recorded is None:
        raise JournalError(
            f"run {run_id} was not signed (no principal key in its metadata); nothing to verify"
        )
    principal = principal_public if principal_public is not None else recorded
    assert principal is not None
    report = RunVerification(
        run_id, principal.hex(), "given" if principal_public is not None else "journal"
    )
    steps = list(store.steps(run_id))
    # a run that records a grant was sealed as it was created: its seal row going missing
    # must not make it look like a run signed before journals were chained
    audit_quotes(run, steps, receipt_key, report)
    if store.seal_key(run_id) is not None or "grant" in _meta(run.meta):
        return audit_sealed(store, run, steps, principal, report)
    # a run signed before the journal was a chain: a warrant hop per task, a proof per call
    frames = warrant_frames(steps)
    report.hops = len(frames)
    chains = _Chains(principal, frames)
    verifier = Verifier(principal, run_id)
    inputs_text = run.goal + "\n" + json.dumps(json.loads(run.inputs or "{}"), ensure_ascii=False)
    by_id = {s.step_id: s for s in steps}
    root_remit = Remit.from_json(run.remit)
    for s in steps:
        if s.kind == "warrant" and task_parent(s.task_id) is None:
            try:
                w = Warrant.decode(chains.token(s.task_id))
                if w.remit != root_remit:
                    report.failures.append(
                        Failure(
                            s.step_id,
                            "WARRANT_ROOT_MISMATCH",
                            "the root grant's remit differs from the run's recorded remit",
                        )
                    )
            except WarrantError as e:
                report.failures.append(Failure(s.step_id, e.code, e.message))
        if s.kind != "tool" or s.status == "denied":
            continue
        report.calls += 1
        try:
            _verify_call(s, chains, verifier, inputs_text, by_id, report)
        except RemitError as e:
            report.failures.append(Failure(s.step_id, e.code, e.message))
    report.longest_chain = max((len(chains.frames_of(t)) for t in frames), default=0)
    return report


def _verify_call(
    s: StepRecord,
    chains: _Chains,
    verifier: Verifier,
    inputs_text: str,
    by_id: Mapping[str, StepRecord],
    report: RunVerification,
) -> None:
    if s.proof is None:
        raise WarrantMalformed(f"tool call {s.name!r} carries no call proof")
    proof = CallProof.decode(s.proof)
    args = signed_args(json.loads(s.input or "{}"))
    token = chains.token(s.task_id)
    try:
        verifier.check(token, proof, s.name, args, now=s.started_at)
        return
    except WarrantError:
        raise
    except RemitError as denied:
        # chain and proof verified (the remit check comes last); the remit said no
        remit = verifier.verify(token, now=s.started_at)
        if remit.check(s.name, args, now=s.started_at, inputs_text=inputs_text).allowed:
            return  # an in_inputs rule: allowed by the user's own words, as at the Gate
        approval = by_id.get(f"{s.step_id}~approval")
        answer = json.loads(approval.output or "null") if approval is not None else None
        if isinstance(answer, Mapping) and answer.get("approved"):  # pyright: ignore[reportUnknownMemberType]
            report.approved += 1
            return
        raise denied
