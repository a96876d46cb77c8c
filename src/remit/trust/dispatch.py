"""Dispatches: a task handed to a worker in another process, signed where it crosses.

Inside one process the runtime records delegation in the sealed journal and signs
nothing per task. A task that leaves the process is different: the worker that gets it
must be able to tell, before it acts, that the authority it is handed is the run's and
was handed to *it*. So the driver signs each dispatch with the run's key (the key the
principal's grant names as holder, see :func:`remit.trust.provenance.grant`), over:

- the run id, the task id, the phase and the dispatch number (no replay into another
  run, task or phase),
- the task's remit as canonical JSON (any change to the authority breaks the signature),
- the worker's own public key (a dispatch stolen from one worker is useless to another:
  each worker makes its key pair itself and the secret never leaves it),
- an expiry (the task's deadline, or the grant's).

:func:`check_dispatch` is the worker's side: the grant verifies against the principal's
public key (read from the journal, not from the driver), the dispatch against the key
the grant names, the remit is the task's and no wider than the grant's, and it has not
expired. Then, and only then, the worker acts, every effect through its own Gate.

>>> from remit.core.remit import Remit
>>> from remit.trust.warrant import issue
>>> principal, run_key, worker = (AgentKey.generate() for _ in range(3))
>>> root = Remit(tools={"t": {}}, depth=2)
>>> grant = issue(principal, run_id="r", remit=root, purpose="p", expires=2e9,
...               holder_public=run_key.public, hop_id="run").encode()
>>> d = Dispatch("r", "t.0", "ready", 0, root.narrow(depth=1), worker.public, 2e9)
>>> sig = d.sign(run_key)
>>> check_dispatch(d, sig, grant, principal.public, worker.public, now=1e9).depth
1
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass

from remit.core.remit import Remit
from remit.errors import (
    WarrantExpired,
    WarrantForged,
    WarrantMalformed,
    WarrantNotHolder,
    WarrantWidening,
)
from remit.trust._chain import Warrant
from remit.trust._keys import AgentKey, sig_ok
from remit.trust._verifier import Verifier

__all__ = ["Dispatch", "GrantCheck", "check_dispatch"]

_DOMAIN = b"remit.trust.dispatch.v1\0"


@dataclass(frozen=True, slots=True)
class Dispatch:
    """What a driver hands a worker for one phase of one task."""

    run_id: str
    task_id: str
    phase: str
    number: int
    remit: Remit
    worker: bytes
    expires: float

    def message(self) -> bytes:
        """The bytes the run's key signs."""
        remit = json.dumps(self.remit.to_dict(), sort_keys=True, separators=(",", ":"))
        head = "\0".join((self.run_id, self.task_id, self.phase)).encode("utf-8")
        return b"".join(
            (
                _DOMAIN,
                hashlib.sha256(head).digest(),
                struct.pack(">Qd", self.number, self.expires),
                hashlib.sha256(remit.encode("utf-8")).digest(),
                self.worker,
            )
        )

    def sign(self, run_key: AgentKey) -> bytes:
        return run_key.sign(self.message())


class GrantCheck:
    """A worker's check of a run's grant, kept per run (one signature, checked once)."""

    def __init__(self, grant: str, principal_public: bytes, run_id: str) -> None:
        self.grant, self.verifier = grant, Verifier(principal_public, run_id)
        #: the key the grant names (trusted once the grant verifies)
        self.holder = Warrant.decode(grant).holder

    def holder_and_remit(self, now: float) -> tuple[bytes, Remit]:
        """The run key and the run's remit, once the grant verifies (cached after once)."""
        return self.holder, self.verifier.verify(self.grant, now=now)


def check_dispatch(
    dispatch: Dispatch,
    signature: bytes,
    grant: str | GrantCheck,
    principal_public: bytes,
    worker_public: bytes,
    *,
    now: float,
) -> Remit:
    """The remit ``dispatch`` hands this worker, once every check passed; raises a
    ``WARRANT_*`` error naming what failed."""
    check = grant if isinstance(grant, GrantCheck) else GrantCheck(grant, principal_public,
                                                                   dispatch.run_id)  # fmt: skip
    holder, granted = check.holder_and_remit(now)
    where = f"dispatch of task {dispatch.task_id} ({dispatch.phase})"
    if dispatch.worker != worker_public:
        raise WarrantNotHolder(f"{where}: it was handed to another worker's key")
    if not isinstance(signature, bytes) or len(signature) != 64:  # pyright: ignore[reportUnnecessaryIsInstance]
        raise WarrantMalformed(f"{where}: the signature is not 64 bytes")
    if not sig_ok(holder, dispatch.message(), signature):
        raise WarrantForged(f"{where}: the signature does not verify against the run's key")
    if not now < dispatch.expires:
        raise WarrantExpired(f"{where}: expired {now - dispatch.expires:.1f}s ago")
    remit = dispatch.remit
    if remit != granted:
        wider = remit.is_within(granted)
        # a task's remit narrows the run's by every dimension but depth, which the root
        # task keeps: only a remit equal to the grant's may keep it
        if remit.principal != granted.principal:
            wider = "principal"
        elif wider == "depth" and remit.depth <= granted.depth:
            wider = None
        if wider is not None:
            raise WarrantWidening(
                f"{where}: the remit is wider than the run's grant in {wider}", dimension=wider
            )
    return remit
