"""The worker's side of a run whose tasks leave the driver's process.

A worker holds, per run it serves, what the driver's process holds for itself: the
agent, the tools and the model, a Gate of its own over the run's journal (every write
fenced with the driver's lease: a driver that lost its run takes its workers' writes
with it) and the run's shared ledger. For each task it is handed it checks the signed
dispatch (:mod:`remit.trust.dispatch`) before anything else, rebuilds the task from
what the dispatch says (nothing of the driver's memory is trusted beyond it), works the
phase as the driver would (:mod:`remit.engine._phases`), waits until everything the
phase wrote is on disk, and only then answers.

Pure Python, no Ray: :mod:`remit.executors._ray` wraps a :class:`Worker` in an actor,
and the tests drive one directly too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from remit.agents._agent import Agent
from remit.core.ledger import Account, Budget, Ledger
from remit.core.receipts import Receipt
from remit.core.remit import Remit
from remit.core.routes import Routes
from remit.core.tasks import ChildResult, Status
from remit.engine._phases import Outcome, aggregate_phase, ready_phase
from remit.errors import JournalError, RemitError
from remit.gate import Gate
from remit.gate._node import Node
from remit.journal._store import Durability, JournalStore, StepRecord
from remit.journal._writer import JournalWriter
from remit.models import Model, load_model
from remit.tools import ToolRegistry
from remit.trust.dispatch import Dispatch, GrantCheck, check_dispatch
from remit.trust.warrant import AgentKey

__all__ = ["Recipe", "Replies", "Reply", "TaskSpec", "Worker", "WorkerRun", "portable"]


@dataclass(slots=True)
class Recipe:
    """What a worker needs to serve one run, sent once per worker and run."""

    run_id: str
    #: the journal every process of the run reaches (a ``postgresql://`` URL), its
    #: schema and durability
    journal: str
    #: the driver's lease owner: every write is fenced with it
    owner: str
    agent: Agent
    tools: ToolRegistry
    #: a model travels as its spec when it has one (the embedded model's weights are
    #: loaded by each worker, not pickled): see :func:`portable`
    model: Model | str | None
    models: Sequence[Model | str] = ()
    routes: Routes | None = None
    max_output_bytes: int = 1 << 20
    #: the run's journal is sealed (the driver chains the rows the workers write)
    sealed: bool = False
    #: the run's receipt key (the runtime's, which agents never see)
    receipt_key: bytes | None = None
    inputs_text: str | None = None
    schema: str = "public"
    durability: Durability = "full"


@dataclass(slots=True)
class TaskSpec:
    """One phase of one task, as the driver hands it over (see :class:`Dispatch`)."""

    phase: str  # "ready" or "aggregate"
    task_id: str
    goal: str
    remit: Remit
    number: int
    expires: float
    #: the run key's signature over the dispatch (None: the run is not signed)
    signature: bytes | None
    #: the account chain: the task's own first, then each ancestor's, and their limits
    #: (the ledger checks limits in the database; a chain nothing limits needs no check)
    accounts: tuple[str, ...]
    limits: tuple[tuple[float | None, ...], ...] = ()
    key: str = "root"
    position: int = 0
    inputs: Mapping[str, Any] = field(default_factory=dict[str, Any])
    output_schema: Mapping[str, Any] | None = None
    deadline: float | None = None
    deps: Mapping[str, Any] = field(default_factory=dict[str, Any])
    attempt: int = 0
    results: Sequence[ChildResult] | None = None
    receipts: Sequence[Receipt] | None = None
    #: the journal may hold rows of this task (a resume, or a worker that died with it)
    lookup: bool = False


#: an outcome as it travels back: (its spec's place in the batch, kind, value, error as
#: a dict, spent, receipts)
Reply = tuple[int, str, Any, dict[str, Any] | None, tuple[float, ...], list[Any] | None]
#: replies that are ready together, and what the Gate counted meanwhile (executed,
#: replayed, denied)
Replies = tuple[list[Reply], tuple[int, int, int]]


class WorkerRun:
    """A worker's state for one run: a Gate of its own over the shared journal."""

    def __init__(self, recipe: Recipe, key: AgentKey, ledger: Ledger | None = None) -> None:
        self.recipe = recipe
        self.key = key
        from remit.journal.postgres import PostgresJournal, PostgresLedger

        self.store: JournalStore = PostgresJournal(
            recipe.journal, durability=recipe.durability, schema=recipe.schema
        )
        run = self.store.get_run(recipe.run_id)
        meta: dict[str, Any] = json.loads(run.meta or "{}")
        self.grant: GrantCheck | None = None
        if recipe.sealed:
            grant, principal = meta.get("grant"), meta.get("principal_key")
            if not isinstance(grant, str) or not isinstance(principal, str):
                raise JournalError(f"run {recipe.run_id}: its record holds no grant to check")
            # the principal's key as the journal holds it, not as the driver says
            self.grant = GrantCheck(grant, bytes.fromhex(principal), recipe.run_id)
        if ledger is None:
            ledger = PostgresLedger(recipe.journal, recipe.run_id, schema=recipe.schema)
        self.ledger = ledger
        self.writer = JournalWriter(self.store, owner=recipe.owner)
        self.recorded: dict[str, StepRecord] = {}
        gate = Gate(
            run_id=recipe.run_id,
            writer=self.writer,
            ledger=ledger,
            tools=recipe.tools,
            model=_built(recipe.model),
            recorded=self.recorded,
            max_output_bytes=recipe.max_output_bytes,
        )
        self.gate: Gate = gate
        gate.recorded = self.recorded  # (an empty mapping given is not kept)
        gate.inputs_text = recipe.inputs_text
        gate.models.update({m.name: m for m in map(_built, recipe.models) if m is not None})
        gate.use_routes(recipe.routes)
        gate.sealed = recipe.sealed
        if recipe.receipt_key is not None:
            gate.use_receipt_key(recipe.receipt_key)
        self._accounts: dict[str, Account] = {}
        #: the tasks whose phase runs here now, by id (a cancel reaches them)
        self._live: dict[str, Node] = {}

    def cancel(self, task_ids: Sequence[str]) -> None:
        """The driver cancelled these tasks: their step in flight stops now (as in the
        driver's own process: the step's timeout scope fires), and nothing more starts."""
        loop = asyncio.get_running_loop()
        for tid in task_ids:
            node = self._live.get(tid)
            if node is None:
                continue
            node.cancelled = True
            scope = node.scope
            if scope is not None and not scope.expired():
                with contextlib.suppress(RuntimeError):
                    scope.reschedule(loop.time())

    def close(self) -> None:
        # a write failure already raised to the batch that met it is not raised again
        reported = self.writer.failure is not None
        try:
            self.writer.close()
        except BaseException:
            if not reported:
                raise
        finally:
            self.ledger.close()
            self.store.close()

    async def work(self, specs: Sequence[TaskSpec]) -> AsyncIterator[Replies]:
        """Work every phase of ``specs`` at once, answering as they end: whatever has
        ended goes back together, once all it wrote is on disk (a phase that takes long
        holds nobody else's answer back; answers that end together travel together)."""
        lookup = [s.task_id for s in specs if s.lookup]
        if lookup:
            self._load(lookup)
        gate = self.gate
        counted = _counts(gate)
        pending = {asyncio.ensure_future(self._one(i, s)) for i, s in enumerate(specs)}
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                await self.writer.durable()  # (meanwhile more may end: they go too)
                more = {t for t in pending if t.done()}
                pending -= more
                if not pending:
                    self.ledger.flush()  # the spend booked per batch (PostgresLedger.flush)
                now = _counts(gate)
                counts = (now[0] - counted[0], now[1] - counted[1], now[2] - counted[2])
                counted = now
                yield [t.result() for t in (*done, *more)], counts
        finally:
            for t in pending:  # the driver stopped listening: the run is over
                t.cancel()

    def _load(self, task_ids: Sequence[str]) -> None:
        """The rows earlier attempts at these tasks left, served as a resume serves them."""
        rows = self.store.task_steps(self.recipe.run_id, task_ids)  # type: ignore[attr-defined]
        self.recorded.update(rows)

    def _authorize(self, spec: TaskSpec) -> Remit:
        if self.grant is None:
            return spec.remit  # an unsigned run: nothing crosses signed
        if spec.signature is None:
            raise RemitError(f"task {spec.task_id}: a signed run's dispatch came unsigned")
        dispatch = Dispatch(self.recipe.run_id, spec.task_id, spec.phase, spec.number,
                            spec.remit, self.key.public, spec.expires)  # fmt: skip
        return check_dispatch(dispatch, spec.signature, self.grant, b"", self.key.public,
                              now=time.time())  # fmt: skip

    def _account(self, spec: TaskSpec, remit: Remit) -> Account:
        """The task's account under its ancestors' (their limits as the driver holds
        them; the database holds what each spent and has reserved)."""
        parent: Account | None = None
        names, limits = spec.accounts, spec.limits
        for i in range(len(names) - 1, 0, -1):
            name = names[i]
            acc = self._accounts.get(name)
            if acc is None or acc.parent is not parent:
                acc = self._accounts[name] = Account(name, Budget(), parent)
                if i < len(limits):
                    acc.limits = limits[i]
            parent = acc
        return Account(names[0], remit.budget, parent)

    async def _one(self, i: int, spec: TaskSpec) -> Reply:
        try:
            remit = self._authorize(spec)
        except RemitError as e:
            return (i, "failed", None, e.to_dict(), (0.0, 0.0, 0.0, 0.0), None)
        account = self._account(spec, remit)
        node = Node(
            spec.task_id,
            spec.goal,
            remit,
            account,
            key=spec.key,
            position=spec.position,
            inputs=spec.inputs,
            output_schema=spec.output_schema,
            deadline=spec.deadline,
            attempt=spec.attempt,
        )
        node.status = Status.RUNNING if spec.phase == "ready" else Status.AGGREGATING
        node.receipts = list(spec.receipts) if spec.receipts else None
        made = len(node.receipts) if node.receipts else 0
        gate, agent = self.gate, self.recipe.agent
        self._live[node.id] = node
        try:
            if spec.phase == "ready":
                out: Outcome = await ready_phase(gate, agent, node, spec.deps)
            else:
                out = await aggregate_phase(gate, agent, node, spec.deps, spec.results or ())
        finally:
            del self._live[node.id]
        receipts = node.receipts[made:] if node.receipts else None
        error = out.error.to_dict() if out.error is not None else None
        return (i, out.kind, out.value, error, tuple(account.spent_vec), receipts or None)


def _counts(gate: Gate) -> tuple[int, int, int]:
    executed: int = gate.executed
    replayed: int = gate.replayed
    denied: int = gate.denied
    return executed, replayed, denied


def portable(model: Model | None) -> Model | str | None:
    """``model`` as it travels to a worker: its spec, if it has one (see
    :func:`remit.models.load_model`), else the model itself (which must pickle)."""
    spec = getattr(model, "spec", None)
    return spec if isinstance(spec, str) else model


def _built(model: Model | str | None) -> Model | None:
    return load_model(model) if isinstance(model, str) else model


class Worker:
    """One worker: its own key pair (the secret never leaves it) and the runs it serves."""

    def __init__(self) -> None:
        self.key = AgentKey.generate()
        self.runs: dict[str, WorkerRun] = {}

    @property
    def public(self) -> bytes:
        return self.key.public

    def bind(self, recipe: Recipe) -> str | None:
        """Serve run ``recipe.run_id`` (again: a new recipe replaces the old); returns
        the name its reservations go by in the shared ledger (a driver that sees this
        worker die gives them back: ``PostgresLedger.recover``)."""
        old = self.runs.pop(recipe.run_id, None)
        if old is not None:
            old.close()
        run = self.runs[recipe.run_id] = WorkerRun(recipe, self.key)
        holder = getattr(run.ledger, "holder", None)
        return holder if isinstance(holder, str) else None

    async def work(self, run_id: str, specs: Sequence[TaskSpec]) -> AsyncIterator[Replies]:
        """Work ``specs`` for run ``run_id``: replies as they end (see WorkerRun.work)."""
        run = self.runs.get(run_id)
        if run is None:
            raise RemitError(f"this worker does not serve run {run_id}; bind it first")
        async for replies in run.work(specs):
            yield replies

    def cancel(self, run_id: str, task_ids: Sequence[str]) -> None:
        run = self.runs.get(run_id)
        if run is not None:
            run.cancel(task_ids)

    def release(self, run_id: str) -> None:
        run = self.runs.pop(run_id, None)
        if run is not None:
            run.close()
