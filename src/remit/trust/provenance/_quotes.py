"""Verifying a run's answer against its tool receipts: quotes and carried receipts.

``remit verify`` remakes the receipt of every tool call from its row under the run's
receipt key, then checks the run's final result:

- every quote of tool output in it (:mod:`remit.core.quotes`) must occur in the result
  of a receipted call of that tool, else ``FABRICATED_QUOTE``;
- every receipt carried in it (a receipt's JSON form, as an aggregate may pass its
  children's on) must be genuine, else ``FORGED_RECEIPT``, and must still name its
  call's journaled arguments and result, else ``RESULT_ALTERED`` (the row was changed
  after the receipt was made).

Without the journal's secret (it sits beside the journal) the quotes are still checked against
the journal's rows, which the chain vouches for; carried receipts cannot be, and the
report says so (``receipts_checked``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from remit.core.quotes import check_quotes
from remit.core.receipts import RECEIPT_FIELDS, Receipt
from remit.journal import RunRecord, StepRecord
from remit.trust.provenance._report import Failure, RunVerification
from remit.trust.receipts import Receipter, receipted_calls

__all__ = ["audit_quotes", "carried_receipts"]


def audit_quotes(
    run: RunRecord, steps: Sequence[StepRecord], key: bytes | None, report: RunVerification
) -> None:
    """Check the quotes and the receipts in ``run``'s result; failures go to ``report``."""
    receipter = Receipter(key)  # no key: one of this check's own, for the rows as they are
    report.receipts_checked = key is not None
    calls: list[StepRecord] = []
    receipts: list[Receipt] = []
    for s in receipted_calls(steps):
        try:
            receipts.append(receipter.make(run.run_id, s.step_id, s.name, s.input, s.output))
        except ValueError:  # a name with NUL: an edited row (the chain names it), no call
            continue
        calls.append(s)
    report.receipts = len(calls)
    try:
        result = json.loads(run.result) if run.result else None
    except ValueError:
        return  # an unreadable result row is the chain's finding (ROW_ALTERED), not ours
    outputs = {s.step_id: s.output for s in calls}
    for c in check_quotes(result, receipts, outputs):
        report.quotes.append(c.to_dict())
        if not c.ok:
            report.failures.append(Failure("result", c.code, c.message()))
    carried = list(carried_receipts(result))
    report.carried = len(carried)
    if key is None:
        return
    rows = {s.step_id: s for s in steps}
    for where, r in carried:
        failure = _check_carried(run.run_id, r, rows, receipter)
        if failure is not None:
            report.failures.append(Failure(f"result {where}", *failure))


def _check_carried(
    run_id: str, r: Receipt, rows: Mapping[str, StepRecord], receipter: Receipter
) -> tuple[str, str] | None:
    if not receipter.genuine(r):
        return "FORGED_RECEIPT", (
            f"the receipt of step {r.step} (tool {r.tool!r}) was not made with this run's key"
        )
    if r.run != run_id:
        return "FORGED_RECEIPT", f"the receipt of step {r.step} is of run {r.run}, not this one"
    row = rows.get(r.step)
    if row is None or row.kind != "tool" or row.name != r.tool or row.status != "ok":
        return "RESULT_ALTERED", f"the receipted call of {r.tool!r} at step {r.step} is gone"
    if not r.covers(row.input, row.output):
        return "RESULT_ALTERED", (
            f"step {r.step}: the journaled arguments or result of {r.tool!r} are no longer "
            "the ones its receipt was made for"
        )
    return None


def carried_receipts(value: Any) -> Iterator[tuple[str, Receipt]]:
    """Every receipt's JSON form in ``value``, with where it sits (``$.a[0]``).

    >>> r = {"run": "r", "step": "s", "tool": "t", "args": "a", "result": "b", "mac": "m"}
    >>> [w for w, _ in carried_receipts({"proof": [r]})]
    ['$.proof[0]']
    """
    stack: list[tuple[Any, str]] = [(value, "$")]
    while stack:
        v, where = stack.pop()
        if isinstance(v, Mapping):
            if frozenset(v) == RECEIPT_FIELDS:  # pyright: ignore[reportUnknownArgumentType]
                try:
                    yield where, Receipt.from_dict(v)  # pyright: ignore[reportUnknownArgumentType]
                    continue
                except ValueError:
                    pass
            items = list(v.items())  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType, reportUnknownVariableType]
            stack.extend((x, f"{where}.{k}") for k, x in reversed(items))  # pyright: ignore[reportUnknownArgumentType]
        elif isinstance(v, list):
            stack.extend((x, f"{where}[{i}]") for i, x in reversed(list(enumerate(v))))  # pyright: ignore[reportUnknownArgumentType, reportUnknownVariableType]
