"""The warrant chain behind one step: principal → … → the agent that acted, hop by hop.

``remit show RUN_ID --chain STEP`` prints it; :func:`chain_view` is the data.
"""

from __future__ import annotations

import json
import time
from typing import Any

from remit.core.remit import Remit
from remit.errors import JournalError, RemitError, WarrantError
from remit.journal import JournalStore
from remit.trace.tree import load
from remit.trust.provenance import (
    Delegations,
    narrowing,
    nonce_of,
    run_principal,
    signed_args,
    task_chain,
    verify_run,
)
from remit.trust.warrant import CallProof, Verifier


def _grants(remit_dict: dict[str, Any]) -> str:
    tools = ", ".join(sorted(remit_dict.get("tools", {}))) or "no tools"
    budget = ", ".join(f"{k} {v}" for k, v in sorted(remit_dict.get("budget", {}).items()))
    return f"{tools}; budget {budget or 'unlimited'}; depth {remit_dict.get('depth', 0)}"


def _sealed_view(
    store: JournalStore, run_id: str, step: str, task: str, principal: bytes
) -> dict[str, Any]:
    """The chain of a sealed run: the principal's grant to the run, then each delegation
    down to the task, as the plan rows recorded them."""
    run = store.get_run(run_id)
    steps = list(store.steps(run_id))
    rec = next((s for s in steps if s.step_id == step), None)
    if rec is None and not any(s.task_id == task for s in steps):
        raise JournalError(
            f"run {run_id} has no step or task {step!r}; `remit show {run_id}` lists them"
        )
    goals = {t.id: t.goal for t in load(store, run_id).root.walk()}
    key = store.seal_key(run_id) or b""
    hops: list[dict[str, Any]] = []
    parent: Remit | None = None
    for i, (tid, remit) in enumerate(Delegations(run, steps).path(task)):
        data = remit.to_dict() if remit is not None else {}
        expires = remit.deadline if remit is not None else None
        hops.append(
            {
                "position": i,
                "hop_id": "run" if i == 0 else tid,
                "task_id": tid,
                "goal": goals.get(tid, ""),
                # the grant names the run's key; a delegation inside the run is recorded
                # under the journal's chain, not signed by a key of its own
                "holder": key.hex() if i == 0 else "",
                "expires": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires))
                if expires is not None
                else None,
                "remit": data,
                "grants": _grants(data),
                "narrowing": narrowing(parent, remit) if parent and remit else [],
            }
        )
        parent = remit
    report = verify_run(store, run_id)
    view: dict[str, Any] = {
        "run_id": run_id,
        "principal": principal.hex(),
        "sealed": True,
        "hops": hops,
        "verified": True
        if report.ok
        else "; ".join(f"[{f.code}] {f.step_id}: {f.message}" for f in report.failures[:3]),
    }
    if rec is not None:
        view["step"] = {
            "step_id": rec.step_id,
            "kind": rec.kind,
            "name": rec.name,
            "status": rec.status,
            "signed": rec.kind != "tool" or rec.proof == nonce_of(rec.step_id),
        }
    return view


def chain_view(store: JournalStore, run_id: str, step: str) -> dict[str, Any]:
    """The chain of ``step`` (a step id, or a task id) as plain data.

    Keys: ``principal`` (hex), ``hops`` (root first: position, task id, goal, holder,
    expires, the remit it grants and how it narrows its parent's), ``step`` (the step
    itself, if a step id was given) and ``verified`` (True, or why not).
    """
    rec = store.get_step(run_id, step)
    task = rec.task_id if rec is not None else step
    principal = run_principal(store, run_id)
    if principal is None:
        raise JournalError(f"run {run_id} was not signed (it has no principal key)")
    if store.seal_key(run_id) is not None:
        return _sealed_view(store, run_id, step, task, principal)
    try:
        warrant, task_ids = task_chain(store, run_id, task)
    except WarrantError:
        known = rec is not None or store.get_step(run_id, f"{task}:warrant") is not None
        if not known:
            raise JournalError(
                f"run {run_id} has no step or task {step!r}; `remit show {run_id}` lists them"
            ) from None
        raise
    tree = load(store, run_id)
    goals = {t.id: t.goal for t in tree.root.walk()}
    hops: list[dict[str, Any]] = []
    parent = None
    for hop, tid in zip(warrant.hops, task_ids, strict=False):
        remit = hop.remit
        hops.append(
            {
                "position": hop.position,
                "hop_id": hop.hop_id,
                "task_id": tid,
                "goal": goals.get(tid, ""),
                "holder": hop.holder.hex(),
                "expires": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(hop.expires)),
                "remit": remit.to_dict(),
                "grants": _grants(remit.to_dict()),
                "narrowing": narrowing(parent, remit) if parent is not None else [],
            }
        )
        parent = remit
    view: dict[str, Any] = {"run_id": run_id, "principal": warrant.principal.hex(), "hops": hops}
    # verified at the time the step (or the task's hop) was made, as `remit verify` does
    when = rec.started_at if rec is not None else time.time()
    verifier = Verifier(warrant.principal, run_id)
    try:
        verifier.verify(warrant.encode(), now=when)
        view["verified"] = True
    except RemitError as e:
        view["verified"] = f"[{e.code}] {e.message}"
    if rec is not None and rec.kind != "warrant":
        signed = False
        if rec.proof is not None and rec.kind == "tool":
            try:
                proof = CallProof.decode(rec.proof)
                verifier.check(
                    warrant.encode(), proof, rec.name, signed_args(json.loads(rec.input or "{}")),
                    now=when,
                )  # fmt: skip
                signed = True
            except WarrantError:
                signed = False
            except RemitError:
                signed = True  # the proof verified; the remit refused (e.g. approved by a person)
        view["step"] = {
            "step_id": rec.step_id,
            "kind": rec.kind,
            "name": rec.name,
            "status": rec.status,
            "signed": signed,
        }
    return view
