"""The storage interface every journal backend implements.

A journal holds runs and, per run, one record per step keyed by ``(run_id, step_id)``.
A step is written twice at most: its *intent* (status ``started``) before it runs and
its *result* (``ok``, ``error`` or ``denied``) after. Backends must pass the
conformance suite in ``tests/journal_conformance`` unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from remit.journal._chain import ChainEntry, Checkpoint

StepStatus = Literal["started", "ok", "error", "denied"]
RunStatus = Literal["running", "done", "failed"]
Durability = Literal["full", "normal"]

#: step statuses that end a step; a result, once recorded, is never overwritten
FINAL_STATUSES: frozenset[str] = frozenset({"ok", "error", "denied"})


@dataclass(slots=True)
class StepRecord:
    """One step of a run, as the journal stores it.

    ``input``, ``output``, ``error`` and ``spent`` are JSON text (or None); the
    journal never interprets them beyond checking they parse on read. ``proof`` is
    opaque text, kept as first written, like ``input``.
    """

    run_id: str
    step_id: str
    task_id: str
    seq: int
    kind: str
    name: str
    status: StepStatus
    input: str | None = None
    output: str | None = None
    error: str | None = None
    spent: str | None = None
    started_at: float = 0.0
    ended_at: float | None = None
    #: a signature that authorizes the step, as written with its intent (never updated):
    #: a tool call's holder proof, or a delegation's warrant hop (see ``remit.trust.provenance``)
    proof: str | None = None


@dataclass(slots=True)
class RunRecord:
    """One run: its goal, the agent that works it, its root remit, its outcome."""

    run_id: str
    goal: str
    agent: str
    remit: str
    status: RunStatus = "running"
    inputs: str | None = None
    result: str | None = None
    error: str | None = None
    meta: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Lease:
    """Who carries a run now: one process at a time (see :mod:`remit.journal.lease`).

    ``owner`` is unique per process and run; ``expires`` moves forward with every
    heartbeat. A lease whose ``expires`` has passed may be taken over.
    """

    run_id: str
    owner: str
    pid: int
    host: str
    acquired_at: float
    heartbeat: float
    expires: float


@runtime_checkable
class JournalStore(Protocol):
    """What the engine needs from a journal backend."""

    durability: Durability

    @property
    def schema_version(self) -> int: ...

    def create_run(
        self,
        run: RunRecord,
        lease: Lease | None = None,
        seal: tuple[bytes, Callable[[bytes], bytes]] | None = None,
    ) -> None:
        """Insert a new run (and its first owner's lease, and its seal as :meth:`seal`
        takes it, in the same transaction); raises ``JournalError`` if the id exists."""
        ...

    def get_run(self, run_id: str) -> RunRecord:
        """The run, or ``RunNotFound``."""
        ...

    def list_runs(self, limit: int = 100) -> list[RunRecord]:
        """Most recent first."""
        ...

    def finish_run(
        self,
        run_id: str,
        status: RunStatus,
        result: str | None,
        error: str | None,
        owner: str | None = None,
    ) -> None:
        """Record a run's outcome (durably, like a step result). With ``owner``, only
        while that owner holds the run's lease (``LeaseLost`` otherwise), which it
        gives up in the same transaction."""
        ...

    def acquire_lease(self, lease: Lease, takeover: Callable[[Lease], bool]) -> None:
        """Make ``lease`` the run's lease, atomically: if no one holds one, if the
        holder's has expired (``expires`` before ``lease.acquired_at``) or if
        ``takeover(holder)`` says its holder is gone; else raise ``RunLeased``."""
        ...

    def renew_lease(self, run_id: str, owner: str, now: float, expires: float) -> bool:
        """Move ``owner``'s lease on (a heartbeat); False if ``owner`` holds it no more."""
        ...

    def release_lease(self, run_id: str, owner: str) -> None:
        """Give up ``owner``'s lease (nothing happens if it holds none)."""
        ...

    def get_lease(self, run_id: str) -> Lease | None:
        """The run's lease, expired or not, or ``None``."""
        ...

    def write(self, records: Sequence[StepRecord], owner: str | None = None) -> None:
        """Write intents and results in one transaction, durable on return.

        An intent for a step that already has a row is ignored; a result updates the
        row unless it already holds a final status (then it is ignored: the first
        recorded result wins). An *interruption mark* (status ``started`` with an
        ``error``) sets ``error``, ``spent`` and ``ended_at`` of a row still
        ``started``: the step never finished, and says why. A result with no prior
        intent inserts the row whole. With ``owner``, the records are written only while
        ``owner`` holds the run's lease; else nothing is written and ``LeaseLost`` is
        raised (a fencing token: a process that lost its run cannot write into it).
        """
        ...

    def steps(self, run_id: str) -> Iterator[StepRecord]:
        """All steps of a run, in the order they were first written."""
        ...

    def get_step(self, run_id: str, step_id: str) -> StepRecord | None: ...

    def get_steps(self, run_id: str, step_ids: Iterable[str]) -> dict[str, StepRecord]: ...

    # --- the tamper-evident chain of sealed runs (see remit.journal._chain) -----------

    def seal(self, run_id: str, key: bytes, sign: Callable[[bytes], bytes]) -> None:
        """Chain every later change to run ``run_id``'s step rows, and sign a checkpoint
        (with ``sign``; ``key`` is its public key) with each batch written through this
        store and when the run finishes. Sealing again with the same key continues."""
        ...

    def seal_key(self, run_id: str) -> bytes | None:
        """The key run ``run_id`` was sealed with, or None."""
        ...

    def chain(self, run_id: str) -> list[ChainEntry]:
        """The run's chain entries, in order."""
        ...

    def checkpoints(self, run_id: str) -> list[Checkpoint]:
        """The run's signed checkpoints, in order."""
        ...

    def close(self) -> None: ...
