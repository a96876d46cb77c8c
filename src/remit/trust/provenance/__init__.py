"""Provenance: the runtime's side of warrants (keys, minting, call proofs, offline audit).

:mod:`remit.trust.warrant` is the pure format. This module is how a run uses it:

- **Keys.** Each run has a 32-byte secret, derived from the journal's secret and a salt
  the run's record keeps; the journal's secret is kept *beside* the journal (never in
  it, never shown to a model): ``<journal>.keys/journal.secret``, readable by its owner
  only. Every task's agent key is derived from the run's secret and the task id, so a
  resumed run signs with the same keys. The principal's key is the user's own
  (``Runtime(principal_key=...)``, ``remit run --principal-key FILE``) or, by default,
  one derived from the run secret; its public key is recorded in the run's metadata.
- **Minting.** When a task starts, the engine mints its hop: the root grant for the root
  task (signed by the principal), a delegation signed by the parent's agent key for
  every other task. The hop is journaled as the task's ``warrant`` step (its ``proof``
  column holds the hop) before any of the task's calls, so the journal on disk always
  holds the chain of every call it holds.
- **Calls.** Every tool call the Gate lets through carries its holder's
  :class:`~remit.trust.warrant.CallProof` over the validated arguments, in the call's own
  step row, written with its intent. The nonce is derived from the step id: unique in
  the run, and the same when a resumed run repeats a step that never finished.
- **Audit.** :func:`verify_run` re-verifies every call of a run from the journal alone
  and the principal's public key: each chain (signatures, links, narrowing, expiry at
  the time of the call), each proof (holder, digest, nonce used once) and each call
  against its task's remit. A call a person approved outside the remit is reported as
  such, with its approval step.

The runtime enforces the remit itself at the Gate; the signatures make that enforcement
checkable afterwards by anyone holding one public key (a journal edited after the fact,
or a call its chain does not authorize, fails verification).

A module per idea: ``_keys`` (run secrets, the journal's secret file, the principal's key),
``_signing`` (minting hops, call proofs: Signer), ``_narrowing`` (narrowing, for
people) and ``_verify`` (verify_run and the chains it reads).

>>> keys = RunKeys(b"s" * 32)
>>> keys.agent("t.0.abc").public == keys.agent("t.0.abc").public
True
"""

from __future__ import annotations

from remit.trust.provenance._audit import Delegations, nonce_of
from remit.trust.provenance._keys import KeyFiles, RunKeys, load_principal_key
from remit.trust.provenance._keys import hex32 as hex32
from remit.trust.provenance._narrowing import narrowing
from remit.trust.provenance._report import Failure as Failure
from remit.trust.provenance._report import RunVerification
from remit.trust.provenance._signing import DEFAULT_TTL_S, Signer, grant, hop_id_for
from remit.trust.provenance._signing import IDEMPOTENCY_ARG as IDEMPOTENCY_ARG
from remit.trust.provenance._signing import signed_args as signed_args
from remit.trust.provenance._verify import run_principal as run_principal
from remit.trust.provenance._verify import task_chain as task_chain
from remit.trust.provenance._verify import verify_run
from remit.trust.provenance._verify import warrant_frames as warrant_frames

__all__ = [
    "DEFAULT_TTL_S",
    "Delegations",
    "KeyFiles",
    "RunKeys",
    "RunVerification",
    "Signer",
    "grant",
    "hop_id_for",
    "load_principal_key",
    "narrowing",
    "nonce_of",
    "verify_run",
]
