"""Fault injection, between look-up and execution: a fault plan's faults, struck on purpose.

A struck fault is journaled before it acts, as a row of its own
(``<step>~fault.<plan index>.<n>``, kind ``fault``), and the error it causes carries
``injected`` (the fault type), so ``remit show`` and an audit tell it from a real one.
Each fault acts through the path a real failure takes: an injected timeout is a
:class:`~remit.errors.StepTimeout`, garbage output fails the same JSON check real
garbage does, an oversized answer the same size limit. Counters (``after``, ``times``)
count from the journal on resume, so a fault already struck is not struck again.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Final

from remit.core.faults import Fault, FaultPlan
from remit.core.ledger import ZERO, Usage
from remit.errors import JournalError, RemitError, StepFailed, StepTimeout
from remit.gate._check import Checks
from remit.gate._node import Node
from remit.journal import JournalStore, Lease, RunRecord, StepRecord
from remit.models import Completion

__all__ = ["HANG_S", "FaultyJournal", "Garbage", "Injection"]

#: how long an injected hang lasts when no timeout or deadline ends it first
HANG_S: Final = 3600.0

#: what an injected refusal says
REFUSAL: Final = "I'm sorry, but I can't help with that request."


class Garbage:
    """Malformed output: a value no JSON encoder accepts (what a broken tool returns)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<malformed output>"


Execute = Callable[[], Awaitable[tuple[Any, Usage]]]


class Injection(Checks):
    """Strikes the faults of the run's plan at the points they name."""

    def use_faults(self, plan: FaultPlan | None) -> None:
        """Apply ``plan`` from now on (None: no faults); faults the journal shows struck
        count toward their ``times``."""
        self.faults = plan if plan is not None and plan.faults else None
        self._fault_seen = {}
        self._fault_fired = {}
        self._answers = {}
        for rec in self.recorded.values():
            if rec.kind == "fault" and rec.output:
                index = json.loads(rec.output).get("index")
                if isinstance(index, int):
                    self._fault_fired[index] = self._fault_fired.get(index, 0) + 1

    def strike(self, point: str, node: Node, step_id: str, name: str) -> Fault | None:
        """The fault that strikes here, journaled; None (the common case) if none does."""
        plan = self.faults
        if plan is None:
            return None
        for fault in plan.at(point, name, node.id, node.scope_role, node.goal):
            i = fault.index
            seen = self._fault_seen[i] = self._fault_seen.get(i, 0) + 1
            fired = self._fault_fired.get(i, 0)
            if seen <= fault.after or (fault.times and fired >= fault.times):
                continue
            if not fault.draws(plan.seed, f"{step_id}#{seen}"):
                continue
            self._fault_fired[i] = fired + 1
            now = time.time()
            detail = {"type": fault.type, "level": fault.level, "index": i, "at": point,
                      "target": name, "step": step_id}  # fmt: skip
            self._record(node, f"{step_id}~fault.{i}.{fired}", "fault", fault.type, "ok",
                         None, json.dumps(detail), None, ZERO, now)  # fmt: skip
            if fault.type == "process_kill":
                self._kill(node)
            return fault
        return None

    def _kill(self, node: Node) -> None:
        # the fault's row reaches the disk first: show tells this kill from a real one
        self.writer.close()
        os.kill(os.getpid(), signal.SIGKILL)

    def faulty_tool(self, fault: Fault, execute: Execute, name: str, limit: int) -> Execute:
        """``execute`` with ``fault`` acting on the tool call."""

        async def run() -> tuple[Any, Usage]:
            kind = fault.type
            if kind == "tool_error":
                raise injected(StepFailed(f"tool {name!r} failed (injected tool_error)"), fault)
            if kind == "timeout":
                raise injected(StepTimeout(f"tool {name!r} timed out (injected)"), fault)
            if kind == "hang":
                await asyncio.sleep(HANG_S)
            value, used = await execute()
            if kind == "malformed_output":
                value = Garbage()
            elif kind == "oversized_output":
                value = "x" * (limit + 1)
            try:  # the check real output gets; its error says the fault was injected
                self._encode(value, f"tool {name!r}")
            except RemitError as e:
                e.spent = used
                raise injected(e, fault) from None
            return value, used

        return run

    async def faulty_completion(
        self,
        fault: Fault,
        call: Callable[[], Awaitable[Completion]],
        step_id: str,
        model_name: str,
        limit: int,
    ) -> Completion:
        """A model call with ``fault`` acting on it (the answer the Gate then checks)."""
        kind = fault.type
        if kind == "timeout":
            raise injected(StepTimeout(f"model {model_name!r} timed out (injected)"), fault)
        if kind == "hang":
            await asyncio.sleep(HANG_S)
        c = await call()
        if kind == "model_refusal":
            content = REFUSAL
        elif kind == "wrong_schema_output":
            content = json.dumps({"unexpected": "an answer in another shape"})
        elif kind == "wrong_question":
            # the answer the model gave to another question of this run, if any
            others = [t for s, t in self._answers.items() if s != step_id]
            content = others[-1] if others else json.dumps({"answer": "something else"})
        elif kind == "malformed_output":
            content = c.content[: max(1, len(c.content) // 2)] + "\x00\ufffd"
        elif kind == "oversized_output":
            content = "x" * (limit + 1)
        else:
            content = c.content
        return Completion(content, c.input_tokens, c.output_tokens, c.cost_usd, c.model)

    def remember_answer(self, step_id: str, content: str) -> None:
        if self.faults is not None:
            self._answers[step_id] = content
            if len(self._answers) > 64:
                self._answers.pop(next(iter(self._answers)))


def injected(err: Any, fault: Fault) -> Any:
    """Mark ``err`` as caused by ``fault`` (its journaled form says so)."""
    err.injected = fault.type
    err.fault = fault.index
    return err


class FaultyJournal:
    """A journal store whose writes fail when the plan says (``journal_write_failure``).

    Wraps any :class:`~remit.journal.JournalStore`; everything else passes through.
    """

    def __init__(self, store: JournalStore, plan: FaultPlan) -> None:
        self._store = store
        self._faults = [f for f in plan.faults if f.type == "journal_write_failure"]
        self._seed = plan.seed
        self._writes = 0
        self._records = 0
        self._fired: dict[int, int] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def write(self, records: Sequence[StepRecord], owner: str | None = None) -> None:
        self._strike(records, owner)
        self._store.write(records, owner)

    def stage(self, records: Sequence[StepRecord], owner: str | None = None) -> None:
        """The group-commit path of a store that has one (staging, then a commit)."""
        self._strike(records, owner)
        self._store.stage(records, owner=owner)  # type: ignore[attr-defined]

    def _strike(self, records: Sequence[StepRecord], owner: str | None) -> None:
        # before the batch touches the file: nothing of it lands, as in a real failure.
        # ``after`` counts records, not batches: how records are batched is timing
        self._writes += 1
        before, self._records = self._records, self._records + len(records)
        for fault in self._faults:
            fired = self._fired.get(fault.index, 0)
            if self._records <= fault.after or (fault.times and fired >= fault.times):
                continue
            if not records or not fault.draws(self._seed, f"write#{self._writes}"):
                continue
            self._fired[fault.index] = fired + 1
            # the fault's own row lands (its own transaction): show tells it apart
            first = records[0]
            detail = {"type": fault.type, "level": fault.level, "index": fault.index,
                      "at": "journal", "target": "write", "write": self._writes}  # fmt: skip
            now = time.time()
            row = StepRecord(first.run_id, f"journal~fault.{fault.index}.{fired}",
                             first.task_id, 0, "fault", fault.type, "ok", None,
                             json.dumps(detail), None, None, now, now)  # fmt: skip
            self._store.write([row], owner)
            raise injected(
                JournalError(
                    f"journal write {self._writes} (records {before + 1} to {self._records}) "
                    "failed (injected journal_write_failure); "
                    "nothing of that batch was written: resume the run"
                ),
                fault,
            )

    # the protocol's other methods, spelled out for type checkers
    def create_run(
        self,
        run: RunRecord,
        lease: Lease | None = None,
        seal: tuple[bytes, Callable[[bytes], bytes]] | None = None,
    ) -> None:
        self._store.create_run(run, lease, seal)

    def steps(self, run_id: str) -> Iterable[StepRecord]:
        return self._store.steps(run_id)
