"""Auditing a sealed run from its journal alone: the grant, the chain and its signed
checkpoints, every row against its last chain entry, every delegation and every call.

A sealed run (the default since the journal became a hash chain) carries one
signature from its principal, the *grant*: the run's remit given to the run's key
(``meta["grant"]``, a one-hop warrant), and one signature from the run's key per
group commit, the *checkpoints*. Inside the process nothing else is signed: a child's
remit is recorded in its parent's plan row, a call's nonce in its own row, and the
chain makes every row as tamper-evident as a signature would. What is checked:

1. the grant verifies against the principal's key, grants exactly the run's recorded
   remit, and names the key the journal was sealed with;
2. the chain has no gap, each checkpoint's head is the chain's head at that point and
   carries the run key's signature, and the last checkpoint covers the run's record as
   it stands (its goal, remit, outcome);
3. every row hashes to its step's last chain entry, no chained step is missing, and for
   a finished run every entry is covered by a checkpoint;
4. every task's remit narrows its parent's (the root's is the grant's), and every call
   lies within its task's remit at the time it started (or a person approved it), with
   a nonce derived from its step, used once.

>>> nonce_of("t.0.abc:execute.1")
'nonce:...'
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import nacl.exceptions
import nacl.signing

from remit.core.delegation import recorded_remit
from remit.core.remit import Remit
from remit.core.tasks import ROOT, task_id, task_parent, task_position
from remit.errors import WarrantError
from remit.journal import Checkpoint, JournalStore, RunRecord, StepRecord
from remit.journal._chain import checkpoint_message, fold, genesis, link, row_hash, run_hash
from remit.trust.provenance._report import Failure, RunVerification
from remit.trust.provenance._signing import signed_args
from remit.trust.warrant import Warrant, verify

__all__ = ["Delegations", "audit_sealed", "nonce_of"]


def _own_sha256() -> Callable[[bytes], Any]:
    """CPython's own SHA-256 (``_sha2`` from 3.12, ``_sha256`` before), else hashlib's.

    A sealed run makes a nonce once per tool call, between other work. hashlib's
    SHA-256 is OpenSSL's, which sets up each hash through its provider machinery: a
    long path that such a call finds cold (2.0 to 3.3 us a nonce in a 2,000-call run,
    0.8 in a tight loop). CPython's own has far less to set up (1.4 to 2.3 us in the
    same run, 0.6 in a loop); the bytes are the same. OpenSSL's is the faster on long
    inputs, so row hashes, made a batch at a time, keep it."""
    for name in ("_sha2", "_sha256"):
        try:
            return importlib.import_module(name).sha256
        except (ImportError, AttributeError):
            continue
    return hashlib.sha256


_nonce_sha256 = _own_sha256()


def nonce_of(step_id: str) -> str:
    """A call's nonce as its row records it: derived from its step id, so a resumed run
    that repeats an unfinished call uses the same one, and no two calls share one.
    ``"nonce:"`` and the first 16 bytes of the id's SHA-256, in hex.

    >>> nonce_of("s1") == nonce_of("s1") != nonce_of("s2")
    True
    >>> nonce_of("s1") == "nonce:" + hashlib.sha256(b"s1").hexdigest()[:32]
    True
    """
    return "nonce:" + _nonce_sha256(step_id.encode("utf-8")).digest()[:16].hex()


def audit_sealed(
    store: JournalStore,
    run: RunRecord,
    steps: list[StepRecord],
    principal: bytes,
    report: RunVerification,
) -> RunVerification:
    """Check a sealed run (see the module docstring); failures go to ``report``."""
    report.sealed = True
    fail = report.failures.append
    meta: Mapping[str, Any] = json.loads(run.meta or "{}")
    sealed_with = store.seal_key(run.run_id)
    if sealed_with is None:
        why = "the run records a grant, so its journal was sealed, but its seal is gone"
        fail(Failure("run", "SEAL_MISSING", why))
    run_key = _check_grant(run, meta, principal, sealed_with, fail, report)
    entries = store.chain(run.run_id)
    checkpoints = store.checkpoints(run.run_id)
    report.entries, report.checkpoints, report.rows = len(entries), len(checkpoints), len(steps)
    _check_chain(run, entries_of(entries), checkpoints, run_key or sealed_with, fail, report)
    last = {e.step_id: e.entry for e in entries}  # a row's own entry comes last
    seen: set[str] = set()
    for s in steps:
        seen.add(s.step_id)
        entry = last.get(s.step_id)
        if entry is None:
            fail(Failure(s.step_id, "ROW_UNCHAINED", "the row has no entry in the run's chain"))
        elif row_hash(s) != entry:
            fail(Failure(s.step_id, "ROW_ALTERED",
                         "the row is not as it was written: its hash differs from its last "
                         "chain entry"))  # fmt: skip
    for step_id in last.keys() - seen:
        fail(Failure(step_id, "ROW_DELETED", "the chain records this step; its row is gone"))
    _check_tree(run, steps, fail, report)
    return report


def entries_of(entries: Sequence[Any]) -> list[tuple[int, str, bytes]]:
    return [(e.n, e.step_id, e.entry) for e in entries]


def _check_grant(
    run: RunRecord,
    meta: Mapping[str, Any],
    principal: bytes,
    sealed_with: bytes | None,
    fail: Any,
    report: RunVerification,
) -> bytes | None:
    """The run key the principal granted the run's remit to (None if the grant fails)."""
    token = meta.get("grant")
    if not isinstance(token, str):
        fail(Failure("run", "GRANT_MISSING", "the run records no grant from its principal"))
        return None
    try:
        granted = verify(token, principal_public=principal, run_id=run.run_id, now=run.created_at)
        holder = Warrant.decode(token).holder
    except WarrantError as e:
        fail(Failure("run", e.code, f"the principal's grant does not verify: {e.message}"))
        return None
    if granted != Remit.from_json(run.remit):
        why = "the run's recorded remit differs from the one its principal granted"
        fail(Failure("run", "WARRANT_ROOT_MISMATCH", why))
    report.hops += 1  # the grant: principal to the run
    if sealed_with is not None and holder != sealed_with:
        why = "the journal is sealed with a key the principal did not grant the run"
        fail(Failure("run", "SEAL_KEY", why))
    return holder


def _check_chain(
    run: RunRecord,
    entries: list[tuple[int, str, bytes]],
    checkpoints: list[Checkpoint],
    key: bytes | None,
    fail: Any,
    report: RunVerification,
) -> None:
    chained = [e for e in entries if e[0] > 0]
    # rows another process wrote, not chained by the owner yet (a person's answer)
    waiting = [step_id for n, step_id, _ in entries if n <= 0]
    links: list[bytes] = []
    for i, (n, step_id, entry) in enumerate(chained, start=1):
        if n != i:
            why = f"entry {i} is missing or out of order (found {n}, for {step_id})"
            fail(Failure(f"chain#{i}", "CHAIN_BROKEN", why))
            return
        links.append(link(step_id, entry))
    try:
        verify_key = nacl.signing.VerifyKey(key) if key is not None else None
    except (ValueError, TypeError, nacl.exceptions.CryptoError):
        fail(Failure("run", "SEAL_KEY", "the run's checkpoint key is not an Ed25519 key"))
        return
    prev_n, head = 0, genesis(run.run_id)
    for i, cp in enumerate(checkpoints, start=1):
        where = f"checkpoint#{cp.k}"
        if cp.k != i or cp.n < prev_n:
            fail(Failure(where, "CHECKPOINT_ORDER", "checkpoints are missing or out of order"))
            return
        # each checkpoint signs the head over the entries it adds to the previous one's
        before = head
        head = fold(head, links[prev_n : cp.n]) if cp.n <= len(links) else b""
        if not _signed(verify_key, cp.message(), cp.signature):
            why = _altered_after_signing(verify_key, run.run_id, cp, before, prev_n, links[prev_n:])
            if why is not None:
                fail(Failure(where, "CHAIN_ALTERED", why))
            else:
                why = (
                    "the checkpoint's signature does not verify under the run's granted key: "
                    "it was forged, or altered after it was signed"
                )
                fail(Failure(where, "CHECKPOINT_SIGNATURE", why))
            return
        prev_n = cp.n
        if head != cp.head:
            fail(Failure(where, "CHAIN_ALTERED",
                         f"the chain up to entry {cp.n} is not the one this checkpoint signed "
                         "(a row was edited, removed, reordered or inserted)"))  # fmt: skip
            return
    if not checkpoints:
        fail(Failure("run", "CHECKPOINT_MISSING", "the run has no signed checkpoint"))
        return
    last = checkpoints[-1]
    if last.run_hash != run_hash(run):
        fail(Failure("run", "RUN_ALTERED",
                     "the run's record (goal, remit, inputs, outcome) is not the one its last "
                     "checkpoint signed"))  # fmt: skip
    # the owner signs a checkpoint in the transaction of every batch it writes: a chained
    # entry after the last one was not written by it
    tail = chained[last.n :]
    if tail:
        names = ", ".join(step_id for _, step_id, _ in tail[:5])
        fail(Failure(f"chain#{last.n + 1}", "UNSIGNED_ROWS",
                     f"{len(tail)} chained row write(s) after the last signed checkpoint "
                     f"({names})"))  # fmt: skip
    report.uncovered = len(waiting)
    if waiting and run.status != "running":
        names = ", ".join(waiting[:5])
        fail(Failure("run", "UNSIGNED_ROWS",
                     f"{len(waiting)} row(s) written after the run finished, never chained "
                     f"by it ({names})"))  # fmt: skip


def _signed(key: nacl.signing.VerifyKey | None, message: bytes, signature: bytes) -> bool:
    if key is None:
        return False
    try:
        key.verify(message, signature)
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        return False
    return True


def _altered_after_signing(
    key: nacl.signing.VerifyKey | None,
    run_id: str,
    cp: Checkpoint,
    head: bytes,
    prev_n: int,
    links: Sequence[bytes],
) -> str | None:
    """Why a checkpoint whose signature fails was signed by the run's key after all, if
    the chain's own entries show it: its head or its count was edited after signing
    (the entries after the previous checkpoint, ``links``, fold from ``head`` to a head
    and a count the signature covers). None if they do not: then it was forged."""
    h = hashlib.sha256(head)  # fold(head, links[:m]) for every m, in one pass
    for m in range(len(links) + 1):
        if m:
            h.update(links[m - 1])
        n, folded = prev_n + m, h.digest()
        if n != cp.n and folded != cp.head:
            continue  # neither the count it reads nor the head it holds: not what it signed
        if not _signed(key, checkpoint_message(run_id, n, folded, cp.run_hash), cp.signature):
            continue
        if n == cp.n:
            return (
                f"the checkpoint's recorded head was altered after it was signed: the chain's "
                f"entries up to {n} fold to the head its signature covers"
            )
        return (
            f"the checkpoint's recorded count was altered after it was signed: it signed "
            f"the chain up to entry {n}, and reads {cp.n}"
        )
    return None


class Delegations:
    """Each task's remit, as the run recorded it: the root's is the run's (the grant's);
    a child's, the one its parent's plan (or re-plan) row recorded, checked to narrow
    its parent's. Failures are reported once per task."""

    def __init__(self, run: RunRecord, steps: Sequence[StepRecord], fail: Any = None) -> None:
        self.by_id = {s.step_id: s for s in steps}
        self.root_id = task_id(ROOT, 0, run.goal)
        self.remits: dict[str, Remit | None] = {self.root_id: Remit.from_json(run.remit)}
        self.fail = fail if fail is not None else (lambda _f: None)  # pyright: ignore[reportUnknownLambdaType]
        self.hops = 0

    def path(self, tid: str) -> list[tuple[str, Remit | None]]:
        """The tasks from the root down to ``tid``, each with its remit."""
        ids: list[str] = []
        t: str | None = tid
        while t is not None:
            ids.append(t)
            t = _parent_of(t)[0]
        return [(i, self.remit_of(i)) for i in reversed(ids)]

    def remit_of(self, tid: str) -> Remit | None:
        if tid in self.remits:
            return self.remits[tid]
        self.remits[tid] = None
        parent_id, pos, attempt = _parent_of(tid)
        parent = self.remit_of(parent_id) if parent_id is not None else None
        child = _recorded_remit(self.by_id, parent_id, pos, attempt) if parent_id else None
        if parent is None or child is None:
            why = "no plan row records this task's remit"
            self.fail(Failure(tid, "DELEGATION_UNRECORDED", why))
            return None
        self.hops += 1
        wider = child.is_within(parent)
        if wider is not None:
            why = f"the task's remit is wider than its parent's in {wider}"
            self.fail(Failure(tid, "NARROWING", why))
            return None
        self.remits[tid] = child
        return child


def _check_tree(
    run: RunRecord, steps: list[StepRecord], fail: Any, report: RunVerification
) -> None:
    """Every task's remit narrows its parent's; every call lies within its task's."""
    tree = Delegations(run, steps, fail)
    inputs_text = run.goal + "\n" + json.dumps(json.loads(run.inputs or "{}"), ensure_ascii=False)
    nonces: dict[str, str] = {}
    for s in steps:
        if s.kind != "tool" or s.status == "denied":
            continue
        report.calls += 1
        nonce = s.proof
        if nonce is None or nonce != nonce_of(s.step_id):
            fail(Failure(s.step_id, "NONCE", "the call's nonce is not the one its step derives"))
        elif nonce in nonces:
            why = f"the call reuses the nonce of {nonces[nonce]}"
            fail(Failure(s.step_id, "NONCE_REPLAYED", why))
        else:
            nonces[nonce] = s.step_id
        remit = tree.remit_of(s.task_id)
        if remit is None:
            continue
        args = signed_args(json.loads(s.input or "{}"))
        decision = remit.check(s.name, args, now=s.started_at, inputs_text=inputs_text)
        if decision.allowed:
            continue
        approval = tree.by_id.get(f"{s.step_id}~approval")
        answer = json.loads(approval.output or "null") if approval is not None else None
        if isinstance(answer, Mapping) and answer.get("approved"):  # pyright: ignore[reportUnknownMemberType]
            report.approved += 1
            continue
        fail(Failure(s.step_id, "CALL_OUTSIDE_REMIT",
                     f"{s.name}: {decision.code}: {decision.reason}"))  # fmt: skip
    # every task that journaled anything has a recorded remit
    for t in {s.task_id for s in steps}:
        tree.remit_of(t)
    report.hops += tree.hops


def _parent_of(tid: str) -> tuple[str | None, int, int]:
    """A task's parent id, its position in the parent's plan and its attempt."""
    return (task_parent(tid), *task_position(tid))


def _recorded_remit(
    by_id: Mapping[str, StepRecord], parent_id: str, pos: int, attempt: int
) -> Remit | None:
    """The remit the parent's plan (or re-plan) row recorded for child ``pos``."""
    row = by_id.get(f"{parent_id}:replan.{pos}" if attempt else f"{parent_id}:plan")
    if row is None or row.status != "ok":
        return None
    try:
        return recorded_remit(json.loads(row.output or "null"), pos)
    except ValueError:
        return None
