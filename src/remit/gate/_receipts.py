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
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, overload

from remit.core.quotes import QuoteCheck, check_quotes, find_quotes
from remit.core.receipts import Receipt
from remit.core.tasks import ChildResult
from remit.gate._node import Node
from remit.gate._state import GateState
from remit.journal import StepRecord
from remit.trust.receipts import Receipter, receipted_calls

#: a call a receipt is owed for: its step, tool, and journaled input and output
Call = tuple[str, str, "str | None", "str | None"]


class Receipts(Sequence[Receipt]):
    """A subtree's receipts, made when first read.

    A receipt is a pure function of its call's row and the key, so when it is made
    changes nothing: a parent that never reads its children's receipts (most
    aggregates) pays a tuple per call, not three hashes.
    """

    __slots__ = ("_made", "_make", "calls")

    def __init__(self, calls: Sequence[Call | Receipt], make: Callable[[Call], Receipt]) -> None:
        #: what the receipts are made of: calls owed one, or receipts made already
        self.calls = calls
        self._make = make
        self._made: tuple[Receipt, ...] | None = None

    def _all(self) -> tuple[Receipt, ...]:
        made = self._made
        if made is None:
            make = self._make
            made = self._made = tuple(c if isinstance(c, Receipt) else make(c) for c in self.calls)
        return made

    @overload
    def __getitem__(self, i: int) -> Receipt: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[Receipt]: ...
    def __getitem__(self, i: int | slice) -> Receipt | Sequence[Receipt]:
        return self._all()[i]

    def __len__(self) -> int:
        return len(self.calls)

    def __iter__(self) -> Iterator[Receipt]:
        return iter(self._all())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence):
            return self._all() == tuple(other)  # pyright: ignore[reportUnknownArgumentType]
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # like a list: equal by content

    def __repr__(self) -> str:
        return f"Receipts({len(self.calls)} call(s))"


class Receipting(GateState):
    """Makes, gathers and checks the receipts of a run's tool calls."""

    def use_receipt_key(self, key: bytes) -> None:
        """Receipt this run's calls under ``key`` (derived from the run's secret, so the
        same on every resume); without it, a key of this process only."""
        self.receipter = Receipter(key)

    def _receipt(
        self, node: Node, step_id: str, tool: str, args: str | None, result: str | None
    ) -> None:
        """A call just recorded or served is owed a receipt (made when first read)."""
        call = (step_id, tool, args, result)
        self._owed[step_id] = call
        self.receipts.pop(step_id, None)  # a result landing again: made anew if read
        mine = node.receipts
        if mine is None:
            node.receipts = [call]
        else:
            mine.append(call)

    def _receipt_served(self, node: Node, rec: StepRecord) -> None:
        if rec.kind == "tool" and rec.status == "ok":
            self._receipt(node, rec.step_id, rec.name, rec.input, rec.output)

    def _make_receipt(self, call: Call) -> Receipt:
        step = call[0]
        made = self.receipts.get(step)
        if made is None or (made.step, made.tool) != (step, call[1]):
            made = self.receipter.make(self.run_id, *call)
            if self._owed.get(step) == call:
                self.receipts[step] = made
        return made

    def receipts_of(self, node: Node) -> Sequence[Receipt]:
        """The receipts of ``node``'s subtree: made or served in this process, or, for a
        task an earlier process finished, from the journal's rows (made when read)."""
        mine = node.receipts
        if mine is not None:
            return Receipts(tuple(mine), self._make_receipt)
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
                got = c.receipts
                mine.extend(got.calls if isinstance(got, Receipts) else got)

    def take_receipts(self, node: Node, receipts: Iterable[Receipt | Call]) -> None:
        """``node``'s subtree receipts take in those its phase made in another process."""
        mine = node.receipts
        if mine is None:
            mine = node.receipts = []
        mine.extend(receipts)

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
            yield from Receipts(
                [c for c in self._recorded_calls if c[0] not in self._owed], self._make_receipt
            )
        yield from Receipts(list(self._owed.values()), self._make_receipt)

    def _recorded_subtree(self, task_id: str) -> Sequence[Receipt]:
        keys = self._recorded_index()
        # a subtree's task ids are the task's own and those under "<task id>/"
        lo = bisect.bisect_left(keys, task_id)
        hi = bisect.bisect_left(keys, task_id + "0", lo)  # "0" follows "/"
        prefix = task_id + "/"
        calls = [
            c
            for k, c in zip(keys[lo:hi], self._recorded_calls[lo:hi], strict=True)
            if k == task_id or k.startswith(prefix)
        ]
        return Receipts(calls, self._make_receipt)

    def _recorded_index(self) -> Sequence[str]:
        """The calls the journal held when this process began, sorted by task id (once,
        on first use; their receipts are made when read)."""
        if self._recorded_keys is None:
            rows = sorted(receipted_calls(self.recorded.values()), key=lambda s: s.task_id)
            self._recorded_calls = [(s.step_id, s.name, s.input, s.output) for s in rows]
            self._recorded_keys = [s.task_id for s in rows]
        return self._recorded_keys
