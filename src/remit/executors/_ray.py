"""Tasks' phases on a Ray cluster: actors as workers, batches as messages.

The driver keeps the tree (what is ready, what follows from an outcome); what leaves it
is a task's phase (ready: atomize, then execute or plan; aggregate), as a
:class:`~remit.executors._worker.TaskSpec` with a dispatch signed for the one worker
it goes to. Each worker is a Ray actor holding a :class:`~remit.executors._worker.Worker`
(its own key pair, its own Gate per run). Phases made ready in one turn of the driver's
loop go out together, up to ``batch`` per message, to the worker with the least work in
flight; a worker holds at most ``in_flight`` messages, and what finds every worker full
waits in the driver (back-pressure: the engine's own bound on tasks in flight stops
the tree from growing further meanwhile).

A worker that dies (SIGKILL, a lost node) fails its messages with a Ray actor error:
a new worker takes its place and the tasks it held are handed out again, each marked to
look up what its earlier attempt journaled, so no recorded step runs twice and none is
lost (a step whose intent was written and whose effect may have happened is the Gate's
business, as after any crash).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from remit.core.tasks import ChildResult
from remit.engine._phases import Outcome
from remit.errors import Cancelled, MissingExtra, RemitError
from remit.errors import from_dict as error_from_dict
from remit.executors._worker import Recipe, Replies, TaskSpec, Worker
from remit.gate import Gate
from remit.gate._node import Node
from remit.trust.dispatch import Dispatch
from remit.trust.provenance import DEFAULT_TTL_S
from remit.trust.warrant import AgentKey

__all__ = ["RayExecutor"]


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingExtra("the Ray executor needs Ray: pip install 'remit[ray]'") from None
    return ray


class _Actor:
    """The actor's body (made a Ray actor class on first use: Ray is optional)."""

    def __init__(self) -> None:
        self.worker = Worker()

    def public(self) -> bytes:
        return self.worker.public

    def pid(self) -> int:
        return os.getpid()

    def bind(self, recipe: Recipe) -> str | None:
        return self.worker.bind(recipe)

    async def work(self, run_id: str, specs: Sequence[TaskSpec]) -> AsyncIterator[Replies]:
        async for replies in self.worker.work(run_id, specs):
            yield replies

    def cancel(self, run_id: str, task_ids: Sequence[str]) -> None:
        self.worker.cancel(run_id, task_ids)

    def release(self, run_id: str) -> None:
        self.worker.release(run_id)


_made: dict[str, Any] = {}


def _actor_class() -> Any:
    made = _made.get("actor")
    if made is None:
        # max_restarts=0: a dead worker is replaced by the executor, which knows which
        # tasks it held; Ray's own restart would not give them back
        made = _made["actor"] = _ray().remote(num_cpus=0, max_restarts=0, max_task_retries=0)(
            _Actor
        )
    return made


@dataclass(slots=True)
class _Slot:
    """One worker as the driver sees it."""

    handle: Any
    public: bytes
    pid: int
    in_flight: int = 0
    alive: bool = True


@dataclass(slots=True)
class _Pending:
    spec: TaskSpec
    node: Node
    future: asyncio.Future[Outcome]
    tries: int = 0


@dataclass
class RayExecutor:
    """Run tasks on a Ray cluster: ``Runtime(executor=RayExecutor())`` or ``remit run
    --executor ray``. Needs a journal every worker reaches (``postgresql://``).

    ``address``: an existing cluster (``ray.init(address=...)``; ``"auto"`` finds a
    local one); None starts a local cluster (or uses the one this process is connected
    to). ``workers``: actors to run (default: the cluster's CPUs). ``batch``: phases per
    message. ``in_flight``: messages a worker may hold at once.

    >>> executor = RayExecutor(workers=2)                     # doctest: +SKIP
    >>> Runtime(agent=MyAgent(), journal="postgresql://...", executor=executor)  # doctest: +SKIP
    """

    address: str | None = None
    workers: int | None = None
    batch: int = 64
    in_flight: int = 2
    #: how many times a task is handed out again after the worker holding it died
    max_redispatch: int = 8
    #: passed on to ``ray.init`` when this executor starts the connection
    init_options: dict[str, Any] = field(default_factory=dict[str, Any])
    _slots: list[_Slot] = field(default_factory=list[_Slot], init=False, repr=False)
    #: workers found dead (and replaced) so far
    workers_lost: int = field(default=0, init=False)
    _started_ray: bool = field(default=False, init=False, repr=False)

    # --- the cluster ---------------------------------------------------------------------

    def connect(self) -> None:
        """Connect to the cluster and start the workers (done by the first run)."""
        ray = _ray()
        if not ray.is_initialized():
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if self.address in (None, "auto"):
                # workers on this host import what the driver imports (the agent's
                # module, the tools'): they get its search path
                paths = [p for p in sys.path if p and os.path.isdir(p)]
                options["runtime_env"] = {"env_vars": {"PYTHONPATH": os.pathsep.join(paths)}}
            options.update(self.init_options)
            ray.init(address=self.address, **options)
            self._started_ray = True
        want = self.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._slots = [s for s in self._slots if s.alive]
        while len(self._slots) < want:
            self._slots.append(self._start())

    def _start(self) -> _Slot:
        ray = _ray()
        handle = _actor_class().remote()
        public, pid = ray.get([handle.public.remote(), handle.pid.remote()])
        return _Slot(handle, public, pid)

    def capacity(self) -> int:
        """Phases this executor keeps in flight at most (every worker's batches full)."""
        return max(1, self.workers or len(self._slots) or 1) * self.batch * self.in_flight

    def worker_pids(self) -> list[int]:
        """The process ids of the live workers (on this host, for a local cluster)."""
        return [s.pid for s in self._slots if s.alive]

    def shutdown(self) -> None:
        """Stop the workers (and Ray, if this executor started it)."""
        ray = _ray()
        for s in self._slots:
            with contextlib.suppress(Exception):  # already gone
                ray.kill(s.handle)
        self._slots = []
        if self._started_ray and ray.is_initialized():
            ray.shutdown()
            self._started_ray = False

    def open_run(self, gate: Gate, recipe: Recipe, run_key: AgentKey | None) -> RayRun:
        """The engine's executor for one run (the Runtime calls this)."""
        self.connect()
        return RayRun(self, gate, recipe, run_key)


class RayRun:
    """One run's phases on the executor's workers (the engine's ``Executor``)."""

    def __init__(
        self, executor: RayExecutor, gate: Gate, recipe: Recipe, run_key: AgentKey | None
    ) -> None:
        self.executor, self.gate, self.recipe, self.run_key = executor, gate, recipe, run_key
        self.run_id = recipe.run_id
        self._queue: list[_Pending] = []
        self._kicked = False
        #: the workers bound to this run, and the names their ledger holds go by
        self._bound: dict[bytes, str | None] = {}
        self._numbers: dict[tuple[str, str], int] = {}
        self._sends: set[asyncio.Task[None]] = set()
        #: the worker each task handed out is with, until it answers
        self._holding: dict[str, _Slot] = {}

    # --- the engine's Executor --------------------------------------------------------

    async def ready(self, node: Node, deps: Mapping[str, Any]) -> Outcome:
        return await self._submit(node, "ready", deps, None)

    async def aggregate(
        self, node: Node, deps: Mapping[str, Any], results: Sequence[ChildResult]
    ) -> Outcome:
        # what travels is plain data: receipts made now (a lazy sequence holds the Gate)
        plain = [
            ChildResult(r.key, r.goal, r.ok, r.value, r.error, r.code, tuple(r.receipts))
            for r in results
        ]
        return await self._submit(node, "aggregate", deps, plain)

    def cancel(self, nodes: Sequence[Node]) -> None:
        """Cancelled while their phase waits here or runs on a worker: the waiting ones
        never leave, the running ones are told to stop (an answer already on its way is
        taken as cancelled by the engine)."""
        ids = {n.id for n in nodes}
        kept: list[_Pending] = []
        for p in self._queue:
            if p.spec.task_id in ids and not p.future.done():
                p.future.set_result(Outcome("failed", error=Cancelled(
                    f"task {p.spec.task_id} was cancelled")))  # fmt: skip
            else:
                kept.append(p)
        self._queue = kept
        by_slot: dict[int, tuple[_Slot, list[str]]] = {}
        for tid in ids:
            slot = self._holding.get(tid)
            if slot is not None and slot.alive:
                by_slot.setdefault(id(slot), (slot, []))[1].append(tid)
        for slot, tids in by_slot.values():
            slot.handle.cancel.remote(self.run_id, tids)  # answered by the outcome

    async def close(self) -> None:
        for t in list(self._sends):
            t.cancel()
        for s in self.executor._slots:  # pyright: ignore[reportPrivateUsage]
            if s.alive and s.public in self._bound:
                with contextlib.suppress(Exception):  # a dead worker holds nothing
                    await s.handle.release.remote(self.run_id)

    # --- handing out ------------------------------------------------------------------

    async def _submit(
        self,
        node: Node,
        phase: str,
        deps: Mapping[str, Any],
        results: list[ChildResult] | None,
    ) -> Outcome:
        receipts = None
        if phase == "aggregate" and node.receipts:
            receipts = list(self.gate.receipts_of(node))
        now = time.time()
        spec = TaskSpec(
            phase=phase,
            task_id=node.id,
            goal=node.goal,
            remit=node.remit,
            number=0,
            expires=node.deadline if node.deadline is not None else now + DEFAULT_TTL_S,
            signature=None,
            accounts=tuple(a.name for a in node.account.ancestry()),
            limits=tuple(a.limits for a in node.account.ancestry()),
            key=node.key,
            position=node.position,
            inputs=node.inputs,
            output_schema=node.output_schema,
            deadline=node.deadline,
            deps=deps,
            attempt=node.attempt,
            results=results,
            receipts=receipts,
            # a resumed run may hold rows of any task; a fresh one only of tasks that
            # were handed out before (and came back from a dead worker)
            lookup=bool(self.gate.recorded),
        )
        fut: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(spec, node, fut))
        if not self._kicked:
            self._kicked = True
            asyncio.get_running_loop().call_soon(self._dispatch)
        return await fut

    def _dispatch(self) -> None:
        """Hand out what is queued, a batch per worker with room, least loaded first."""
        self._kicked = False
        ex = self.executor
        self.gate.ledger.flush()  # the accounts the workers reserve on exist before they do
        while self._queue:
            slots = [s for s in ex._slots if s.alive and s.in_flight < ex.in_flight]  # pyright: ignore[reportPrivateUsage]
            if not slots:
                return  # a batch that comes back makes room, and dispatches again
            slot = min(slots, key=lambda s: s.in_flight)
            batch, self._queue = self._queue[: ex.batch], self._queue[ex.batch :]
            slot.in_flight += 1
            task = asyncio.get_running_loop().create_task(self._send(slot, batch))
            self._sends.add(task)
            task.add_done_callback(self._sends.discard)

    def _sign(self, slot: _Slot, p: _Pending) -> None:
        spec = p.spec
        n = self._numbers.get((spec.task_id, spec.phase), -1) + 1
        self._numbers[(spec.task_id, spec.phase)] = n
        spec.number = n
        if self.run_key is not None:
            spec.signature = Dispatch(self.run_id, spec.task_id, spec.phase, n, spec.remit,
                                      slot.public, spec.expires).sign(self.run_key)  # fmt: skip

    async def _send(self, slot: _Slot, batch: list[_Pending]) -> None:
        ray = _ray()
        try:
            if slot.public not in self._bound:
                self._bound[slot.public] = await slot.handle.bind.remote(self.recipe)
            for p in batch:
                self._sign(slot, p)
                self._holding[p.spec.task_id] = slot
            # answers stream back as phases end: a long one holds nobody else's back
            stream = slot.handle.work.options(num_returns="streaming").remote(
                self.run_id, [p.spec for p in batch]
            )
            async for ref in stream:
                self._answer(batch, await ref)
        except ray.exceptions.RayActorError:
            self._lost(slot, [p for p in batch if not p.future.done()])
            return
        except asyncio.CancelledError:
            raise
        except BaseException as e:
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(e)
            return
        finally:
            slot.in_flight -= 1
            for p in batch:
                if self._holding.get(p.spec.task_id) is slot:
                    del self._holding[p.spec.task_id]
            if self._queue and not self._kicked:
                self._kicked = True
                asyncio.get_running_loop().call_soon(self._dispatch)

    def _answer(self, batch: list[_Pending], replies: Replies) -> None:
        chunk, counts = replies
        gate = self.gate
        gate.executed += counts[0]
        gate.replayed += counts[1]
        gate.denied += counts[2]
        for i, kind, value, error, spent, receipts in chunk:
            p = batch[i]
            if p.future.done():
                continue
            out = Outcome(kind, value, remote=True)  # type: ignore[arg-type]
            if error is not None:
                out.error = error_from_dict(error)
            out.spent = spent if any(spent) else None
            out.receipts = receipts
            p.future.set_result(out)

    def _lost(self, slot: _Slot, batch: list[_Pending]) -> None:
        """``slot``'s worker died holding ``batch``: replace it, hand the tasks out again."""
        if slot.alive:
            slot.alive = False
            self.executor.workers_lost += 1
            holder = self._bound.pop(slot.public, None)
            if holder is not None:
                self._give_back(holder)
            self._spawn_replacement()
        again: list[_Pending] = []
        for p in batch:
            p.tries += 1
            if p.tries > self.executor.max_redispatch:
                p.future.set_exception(
                    RemitError(
                        f"task {p.spec.task_id}: {p.tries} workers died while holding it; "
                        "the run stops (resume it once the cluster is sound)"
                    )
                )
                continue
            p.spec.lookup = True  # what the dead worker journaled is served, not redone
            again.append(p)
        self._queue[:0] = again

    def _give_back(self, holder: str) -> None:
        """The dead worker's budget holds: settled where the journal has the step's
        result, released where it has not (the step runs again and reserves again)."""
        recover = getattr(self.gate.ledger, "recover", None)
        if not callable(recover):
            return

        def is_gone(h: str) -> bool:
            return h == holder

        async def give_back() -> None:
            await asyncio.to_thread(recover, is_gone)

        task = asyncio.get_running_loop().create_task(give_back())
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    def _spawn_replacement(self) -> None:
        async def start() -> None:
            ex = self.executor
            try:
                slot = await asyncio.to_thread(ex._start)  # pyright: ignore[reportPrivateUsage]
            except Exception as e:  # no worker can be had: what waits fails, loudly
                if any(s.alive for s in ex._slots):  # pyright: ignore[reportPrivateUsage]
                    return
                queued, self._queue = self._queue, []
                for p in queued:
                    if not p.future.done():
                        p.future.set_exception(
                            RemitError(f"no Ray worker could be started to replace a dead one: {e}")
                        )
                return
            ex._slots.append(slot)  # pyright: ignore[reportPrivateUsage]
            if self._queue and not self._kicked:
                self._kicked = True
                asyncio.get_running_loop().call_soon(self._dispatch)

        task = asyncio.get_running_loop().create_task(start())
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)
