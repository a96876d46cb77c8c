"""Phase 6's receipts: every tool result the Gate records gets one, and they travel up.

The receipt of a call (:class:`~remit.core.receipts.Receipt`) is made where its result
is recorded, from the texts the row holds, so a call served from the journal on resume
gets the same receipt from its row. A task gathers the receipts of its subtree: its own
calls', then each child's as the task aggregates (the children's
:class:`~remit.core.tasks.ChildResult` carry them), so a parent, and a verifier, see
which calls stand behind a result. The key stays in the Gate's
:class:`~remit.trust.receipts.Receipter`; a role asks for verdicts
(:meth:`Receipting.check_quotes`), never for the key.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from typing import Any

from remit.core.quotes import QuoteCheck, check_quotes, find_quotes
from remit.core.receipts import Receipt
from remit.core.tasks import ChildResult
from remit.gate._node import Node
from remit.gate._state import GateState
from remit.journal import StepRecord
from remit.trust.receipts import Receipter, receipted_calls


class Receipting(GateState):
    """Makes, gathers and checks the receipts of a run's tool calls."""

    def use_receipt_key(self, key: bytes) -> None:
        """Receipt this run's calls under ``key`` (derived from the run's secret, so the
        same on every resume); without it, a key of this process only."""
        self.receipter = Receipter(key)

    def _receipt(
        self, node: Node, step_id: str, tool: str, args: str | None, result: str | None
    ) -> None:
        """The receipt of a call just recorded or served (one MAC: the hot path)."""
        r = self.receipter.make(self.run_id, step_id, tool, args, result)
        self.receipts[step_id] = r
        mine = node.receipts
        if mine is None:
            node.receipts = [r]
        else:
            mine.append(r)

    def _receipt_served(self, node: Node, rec: StepRecord) -> None:
        if rec.kind == "tool" and rec.status == "ok":
            self._receipt(node, rec.step_id, rec.name, rec.input, rec.output)

    def receipts_of(self, node: Node) -> tuple[Receipt, ...]:
        """The receipts of ``node``'s subtree: made or served in this process, or, for a
        task an earlier process finished, from the journal's rows."""
        mine = node.receipts
        if mine is not None:
            return tuple(mine)
        if not self.recorded:
            return ()
        return self._recorded_subtree(node.id)

    def gather_receipts(self, node: Node, results: Iterable[ChildResult]) -> None:
        """``node``'s subtree receipts take in its children's (before it aggregates)."""
        mine = node.receipts
        for c in results:
            if c.receipts:
                if mine is None:
                    mine = node.receipts = []
                mine.extend(c.receipts)

    async def check_quotes(self, node: Node, value: Any) -> list[QuoteCheck]:
        """The verdict on every quote of tool output in ``value`` (see
        :mod:`remit.core.quotes`), against the receipts of every call of this run and
        the results the journal holds for them now."""
        quotes = find_quotes(value)
        if not quotes:
            return []
        tools = {q.tool for q in quotes}
        steps = {q.step for q in quotes if q.step is not None}
        wanted = [r for r in self._all_receipts() if r.tool in tools or r.step in steps]
        await self.writer.durable()  # the rows of this process's calls are on disk
        store = self.writer.store
        results: dict[str, str | None] = {}
        for r in wanted:
            rec = self.recorded.get(r.step) if self.recorded else None
            if rec is None or rec.output is None:
                rec = store.get_step(self.run_id, r.step)
            results[r.step] = rec.output if rec is not None else None
        return check_quotes(value, wanted, results)

    def _all_receipts(self) -> Iterable[Receipt]:
        if self.recorded:
            self._recorded_index()
            yield from (r for r in self._recorded_receipts if r.step not in self.receipts)
        yield from self.receipts.values()

    def _recorded_subtree(self, task_id: str) -> tuple[Receipt, ...]:
        keys = self._recorded_index()
        # a subtree's task ids are the task's own and those under "<task id>/"
        lo = bisect.bisect_left(keys, task_id)
        hi = bisect.bisect_left(keys, task_id + "0", lo)  # "0" follows "/"
        prefix = task_id + "/"
        return tuple(
            r
            for k, r in zip(keys[lo:hi], self._recorded_receipts[lo:hi], strict=True)
            if k == task_id or k.startswith(prefix)
        )

    def _recorded_index(self) -> Sequence[str]:
        """The receipts of every call the journal held when this process began, sorted
        by task id (made once, on first use)."""
        if self._recorded_keys is None:
            rows = sorted(receipted_calls(self.recorded.values()), key=lambda s: s.task_id)
            make, run = self.receipter.make, self.run_id
            self._recorded_receipts = [
                make(run, s.step_id, s.name, s.input, s.output) for s in rows
            ]
            self._recorded_keys = [s.task_id for s in rows]
        return self._recorded_keys
