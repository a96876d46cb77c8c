"""The recursive scheduler: atomize → execute, or plan → children → aggregate.

A ready queue on asyncio, not waves: a task starts the moment its dependencies are
done, on one of ``concurrency`` workers. A parent does not hold a worker while its
children run; it is queued again to aggregate when the last one ends. The engine
decides what happens next and never performs an effect itself: every role runs as a
Gate step, and the Gate alone touches tools, models, the ledger and the journal.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from remit.agents._agent import Agent, Context
from remit.core.delegation import recorded_remit, recorded_remits
from remit.core.ledger import Ledger, Usage
from remit.core.remit import Remit
from remit.core.schemas import validate as validate_schema
from remit.core.tasks import ChildResult, Plan, Status, Subtask
from remit.engine._phases import Executor, Inline, Outcome
from remit.engine._tree import (
    cancel_subtree,
    child_remits,
    child_result,
    dep_results,
    link_dependents,
    make_child,
    narrow_for,
    replanned,
)
from remit.engine._turns import YIELD_AFTER_S, Turns
from remit.errors import (
    Cancelled,
    ChildFailed,
    DeadlineExceeded,
    DelegationError,
    JournalError,
    RemitError,
)
from remit.errors import from_dict as error_from_dict
from remit.gate import Gate
from remit.gate._node import Node

#: hook called as (event, node) with event in "start", "plan", "done", "failed", "replayed"
Observer = Callable[[str, Node], None]


class Engine:
    """Runs one task tree to its end. One engine per run (or resume)."""

    def __init__(
        self,
        gate: Gate,
        agent: Agent,
        ledger: Ledger,
        *,
        concurrency: int = 64,
        observer: Observer | None = None,
        executor: Executor | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self.gate = gate
        self.agent = agent
        self.ledger = ledger
        self.concurrency = concurrency
        self.observer = observer
        #: where tasks' phases run (in this process unless given another)
        self.executor: Executor = executor if executor is not None else Inline(gate, agent)
        #: how long cancelled branches may take to record their end once the run is over
        self.grace_s = 1.0
        #: how long a parent waits before it reads a child's end whose message was lost
        self.redeliver_s = 0.05
        self.tasks_total = 0
        self.tasks_replayed = 0
        self._queue: asyncio.Queue[Node | None] = asyncio.Queue()
        self._done: asyncio.Future[None] | None = None
        self._fatal: BaseException | None = None
        self._root: Node | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._turns = Turns()

    async def run(self, root: Node) -> Node:
        """Drive ``root`` to a final status; raises only for failures of the runtime itself
        (the journal cannot be written), never for a failed task."""
        loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        self.gate.writer.on_failure = self._stop
        self._root = root
        self.tasks_total = 1
        if not self._serve_recorded(root):
            self._make_ready(root)
        workers = [asyncio.create_task(self._worker()) for _ in range(self.concurrency)]
        try:
            if not self._done.done():
                await self._done
            # the run has its outcome; what workers still hold belongs to cancelled
            # branches, whose in-flight steps were told to stop: let them record how
            # they ended, briefly
            for _ in workers:
                self._queue.put_nowait(None)
            if self._fatal is None:
                await asyncio.wait(workers, timeout=self.grace_s)
        finally:
            # torn down (or out of grace): a step cut short leaves an intent without a
            # result, which a resume runs again
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            for t in list(self._background):
                t.cancel()
        if self._fatal is not None:
            raise self._fatal
        return root

    # --- the worker loop ---------------------------------------------------------

    async def _worker(self) -> None:
        queue, turns = self._queue, self._turns
        clock = time.monotonic
        while True:
            # checked before each task too: a worker woken by a turn must not run one
            # task of its own before the next turn if the others used the time up
            if clock() - turns.turned > YIELD_AFTER_S:
                await turns.wait()  # returns with a fresh time slice
            node = await queue.get()
            if node is None:
                return
            try:
                await self._advance(node)
            except JournalError as e:
                self._stop(e)
                return
            except Exception as e:  # a bug in the engine: stop loudly, never hang
                self._stop(e)
                return

    def interrupt(self, error: BaseException) -> None:
        """Stop the run now (a signal, a lost lease): in-flight steps are cancelled and
        marked interrupted; ``run`` raises ``error`` once the journal has the rest."""
        self._stop(error)

    def _stop(self, error: BaseException) -> None:
        if self._fatal is None:
            self._fatal = error
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    async def _advance(self, node: Node) -> None:
        if node.cancelled or node.status in (Status.CANCELLED, Status.FAILED, Status.DONE):
            if node.status not in (Status.CANCELLED, Status.FAILED, Status.DONE):
                node.move(Status.CANCELLED)
            return
        if node.status is Status.READY:
            node.move(Status.RUNNING)
            node.started_at = time.time()
            wall = node.remit.budget.wall_seconds
            if wall is not None:
                end = node.started_at + wall
                node.deadline = end if node.deadline is None else min(node.deadline, end)
            if self.observer:
                self.observer("start", node)
            self._apply(node, await self.executor.ready(node, dep_results(node)))
        elif node.status is Status.AGGREGATING:
            gate = self.gate
            children = node.children or []
            results = [child_result(c, gate.receipts_of(c)) for c in children]
            gate.gather_receipts(node, results)
            outcome = await self.executor.aggregate(node, dep_results(node), results)
            self._apply(node, outcome)
            if outcome.kind == "done":
                # the children's results now live in the journal (and in this one's)
                node.children = None
                node.by_key = None
                node.plan = None

    def _apply(self, node: Node, outcome: Outcome) -> None:
        """What follows from a phase's outcome: the task ends, or its children start."""
        if outcome.spent is not None:  # it ran elsewhere: this process's view learns of it
            self.ledger.mirror(node.account, outcome.spent)
        if outcome.receipts:
            self.gate.take_receipts(node, outcome.receipts)
        kind = outcome.kind
        if node.cancelled and outcome.remote and kind in ("done", "plan"):
            # it ended elsewhere before the word to stop reached it: cancelled all the same
            kind, outcome.error = "failed", Cancelled(f"task {node.id} was cancelled")
        if kind == "done":
            self._finish(node, outcome.value)
        elif kind == "plan":
            try:
                plan, remits = outcome.plan, outcome.remits
                if plan is None or remits is None:
                    # served from the journal, or decided by another process: checked
                    # again here, where the children are made
                    plan, remits = self._checked_recorded(node, outcome.value)
                self._spawn(node, plan, remits)
            except RemitError as e:
                self._fail(node, e)
        elif kind == "halt":
            assert outcome.error is not None
            self._stop(outcome.error)  # the run halts for a person; the task has not failed
        else:
            assert outcome.error is not None
            self._fail(node, outcome.error)

    def _checked_recorded(self, node: Node, plan_data: Any) -> tuple[Plan, list[Remit]]:
        plan = Plan.from_dict(plan_data, where=f"task {node.id} plan")
        remits = recorded_remits(plan_data, len(plan.subtasks))
        if remits is None:  # a plan row written before remits were recorded
            return plan, child_remits(node, plan)
        for sub, remit in zip(plan.subtasks, remits, strict=True):
            wider = remit.is_within(node.remit)
            if wider is not None:
                raise DelegationError(
                    f"task {node.id}: the recorded remit of subtask {sub.key!r} is wider "
                    f"than the task's own in {wider}; the plan was altered"
                )
        return plan, remits

    # --- planning and delegation ---------------------------------------------------

    def _spawn(self, node: Node, plan: Plan, remits: list[Remit]) -> None:
        node.plan = plan
        children: list[Node] = []
        by_key: dict[str, Node] = {}
        for i, (sub, remit) in enumerate(zip(plan.subtasks, remits, strict=True)):
            child = make_child(self.ledger, node, i, sub, remit)
            children.append(child)
            by_key[sub.key] = child
        link_dependents(children, by_key, plan)
        node.children = children
        node.by_key = by_key
        node.waiting_on = len(children)
        node.move(Status.WAITING)
        self.tasks_total += len(children)
        if self.observer:
            self.observer("plan", node)
        if node.deadline is not None:
            loop = asyncio.get_running_loop()
            node.timer = loop.call_at(
                loop.time() + max(0.0, node.deadline - time.time()), self._watchdog, node
            )
        # finished children first: their dependents' counters must be right before
        # anything starts
        pending: list[Node] = []
        for child in children:
            if not self._serve_recorded(child):
                pending.append(child)
        for child in pending:
            if node.status is not Status.WAITING:
                break
            if child.status is Status.PENDING and child.waiting_on == 0:
                self._make_ready(child)

    def _make_ready(self, node: Node) -> None:
        node.move(Status.READY)
        self._queue.put_nowait(node)

    # --- ending tasks ----------------------------------------------------------------

    def _serve_recorded(self, node: Node) -> bool:
        """Finish ``node`` from its recorded end, if a previous process got that far."""
        rec = self.gate.recorded_end(node.id)
        if rec is None:
            return False
        spent = Usage.from_dict(self.gate.decode(rec, "spent"))
        if self.ledger.shared:
            # its calls' spend was booked, each under its own step, as they settled
            self.ledger.mirror(
                node.account,
                (spent.calls, spent.input_tokens, spent.output_tokens, spent.cost_usd),
            )
        else:
            self.ledger.charge(node.account, spent)
        self.tasks_replayed += 1
        self.gate.replayed += 1
        if rec.status == "ok":
            node.result = self.gate.decode(rec)
            node.status = Status.DONE
        else:
            node.error = error_from_dict(self.gate.decode(rec, "error") or {})
            node.status = Status.FAILED
        if self.observer:
            self.observer("replayed", node)
        self._on_final(node)
        return True

    def _finish(self, node: Node, value: Any) -> None:
        if node.stopped is not None:
            self._fail(node, node.stopped)  # a "stop" denial the role swallowed
            return
        if node.output_schema is not None:
            try:
                validate_schema(value, node.output_schema, where=f"result of task {node.id}")
            except RemitError as e:
                self._fail(node, e)
                return
        try:
            value = self.gate.end(node, True, value, None)
        except RemitError as e:  # an oversized or unserializable result fails the task
            self._fail(node, e)
            return
        if node.status in (Status.CANCELLED, Status.FAILED):
            return
        node.result = value
        node.move(Status.DONE)
        # its children are done: nobody delegates from it or signs for it again
        node.warrant = node.agent_key = None
        # Dependents and the parent may go on now: the journal reaches the disk in
        # queue order, so no later record can survive a crash without this one.
        # Whatever is seen outside (a report, an effect, the run's result) waits for
        # the disk.
        self._report("done", node)
        self._on_final(node)

    def _report(self, event: str, node: Node) -> None:
        observer = self.observer
        if observer is not None:
            self.gate.writer.when_durable(lambda: observer(event, node))

    def _fail(self, node: Node, error: RemitError) -> None:
        if node.status in (Status.DONE, Status.FAILED, Status.CANCELLED):
            return
        if node.cancelled and not isinstance(error, Cancelled):
            error = Cancelled(f"task {node.id} was cancelled ({error.message})")
        node.error = error
        running = cancel_subtree(node)
        if running:
            self.executor.cancel(running)
        node.move(Status.FAILED)
        node.warrant = node.agent_key = None
        self.gate.end(node, False, None, error)
        self._report("failed", node)
        self._on_final(node)

    def _watchdog(self, node: Node) -> None:
        node.timer = None
        if node.status is not Status.WAITING:
            return
        err = DeadlineExceeded(
            f"task {node.id}: its children did not finish before its deadline; "
            "the unfinished ones were cancelled"
        )
        try:
            self._fail(node, err)
        except Exception as e:
            self._stop(e)

    async def _guard(self, coro: Any) -> None:
        try:
            await coro
        except Exception as e:
            self._stop(e)

    def _on_final(self, node: Node) -> None:
        parent = node.parent
        if parent is None:
            if self._done is not None and not self._done.done():
                self._done.set_result(None)
            return
        gate = self.gate
        if gate.faults is not None:  # the message to the parent may be lost, sent twice, late
            fault = gate.strike("message", node, f"{node.id}:result", "result")
            if fault is not None:
                loop = asyncio.get_running_loop()
                if fault.type == "message_lost":
                    # the parent finds the end in the journal when it looks again
                    loop.call_later(self.redeliver_s, self._redeliver, node)
                    return
                if fault.type == "message_reordered":
                    loop.call_soon(self._deliver, node)  # after the messages behind it
                    return
                if fault.type == "message_duplicated":
                    loop.call_soon(self._deliver, node)  # the copy is dropped on arrival
        self._deliver(node)

    def _redeliver(self, node: Node) -> None:
        """A child's end whose message never arrived: read from the journal, delivered."""
        if node.delivered or node.parent is None or node.parent.status is not Status.WAITING:
            return
        gate = self.gate
        if gate.writer.store.get_step(gate.run_id, gate.current_id(f"{node.id}:end")) is None:
            # not on disk yet: look again once it is
            gate.writer.when_durable(lambda: self._redeliver(node))
            return
        self._deliver(node)

    def _deliver(self, node: Node) -> None:
        """The child's end reaches its parent: exactly once, whatever the messages did."""
        if node.delivered:
            return
        node.delivered = True
        parent = node.parent
        assert parent is not None
        if parent.status is not Status.WAITING:
            return  # the parent already failed or was cancelled
        failed = node.status is not Status.DONE
        if failed:
            policy = parent.plan.on_failure if parent.plan is not None else "fail"
            # a task that found no route escalates: its parent re-plans the branch
            escalated = getattr(node.error, "outcome", None) == "escalate"
            if (policy == "replan" or escalated) and node.attempt == 0 and not node.cancelled:
                self._replan(parent, node)
                return
            if policy != "aggregate":
                err = ChildFailed(
                    f"subtask {node.key!r} ({node.id}) failed: "
                    f"{getattr(node.error, 'message', node.error)}"
                )
                self._fail(parent, err)
                return
        for dep in node.dependents or ():
            if dep.status is not Status.PENDING:
                continue
            if failed:
                dep.error = ChildFailed(f"dependency {node.key!r} of subtask {dep.key!r} failed")
                dep.status = Status.FAILED
                self._record_skipped(dep)
                continue
            dep.waiting_on -= 1
            if dep.waiting_on == 0:
                self._make_ready(dep)
        parent.waiting_on -= 1
        if parent.waiting_on == 0:
            if parent.timer is not None:
                parent.timer.cancel()
                parent.timer = None
            parent.move(Status.AGGREGATING)
            self._queue.put_nowait(parent)

    def _record_skipped(self, node: Node) -> None:
        err = node.error if isinstance(node.error, RemitError) else ChildFailed(str(node.error))
        self.gate.end(node, False, None, err)
        self._report("failed", node)
        self._on_final(node)

    def _replan(self, parent: Node, failed: Node) -> None:
        self._spawn_bg(self._replan_async(parent, failed))

    async def _replan_async(self, parent: Node, failed: Node) -> None:
        result = child_result(failed, self.gate.receipts_of(failed))
        ctx = Context(self.gate, parent, failed=result)
        sub: Subtask = parent.plan.subtasks[failed.position]
        try:
            raw = await self.gate.role(
                parent, f"replan.{failed.position}", self._replan_step, parent, ctx, result, sub
            )
            new = Subtask(
                sub.key,
                raw["goal"],
                sub.deps,
                raw.get("inputs", sub.inputs),
                sub.output_schema,
                sub.remit,
            )
            remit = recorded_remit(raw, failed.position) or narrow_for(parent, new)
        except JournalError:
            raise
        except RemitError as e:
            self._fail(parent, e)
            return
        if parent.status is not Status.WAITING:
            return
        child = make_child(self.ledger, parent, failed.position, new, remit, attempt=1)
        child.dependents = failed.dependents
        child.waiting_on = 0  # its dependencies were done when the first attempt ran
        assert parent.children is not None
        parent.children[failed.position] = child
        if parent.by_key is not None:
            parent.by_key[new.key] = child  # dependents read the replacement's result
        self.tasks_total += 1
        if not self._serve_recorded(child):
            self._make_ready(child)

    async def _replan_step(
        self, parent: Node, ctx: Context, failed: ChildResult, sub: Subtask
    ) -> dict[str, Any]:
        raw = self.agent.replan(ctx, failed)
        if asyncio.iscoroutine(raw):
            raw = await raw
        out = replanned(raw, sub)
        new = Subtask(sub.key, out["goal"], sub.deps, out.get("inputs", sub.inputs),
                      sub.output_schema, sub.remit)  # fmt: skip
        out["remit"] = narrow_for(parent, new).to_dict()  # recorded, as a plan's are
        return out

    def _spawn_bg(self, coro: Any) -> None:
        t = asyncio.get_running_loop().create_task(self._guard(coro))
        self._background.add(t)
        t.add_done_callback(self._background.discard)

    # --- helpers -------------------------------------------------------------------
