"""A run as its caller sees it: the outcome (:class:`Run`) and the run's id."""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from remit.core.ledger import Usage
from remit.core.lineage import at_generation, generation_of
from remit.core.receipts import Receipt
from remit.core.tasks import ROOT, task_id
from remit.errors import InvalidInput
from remit.journal import JournalStore, RunRecord, StepRecord
from remit.trust.provenance import KeyFiles, RunKeys
from remit.trust.receipts import Receipter, receipted_calls

__all__ = ["RUN_ID", "Run", "check_run_id", "finished_run", "new_run_id", "recorded_receipts"]


@dataclass(frozen=True, slots=True)
class Run:
    """The outcome of a run (or of one resume of it)."""

    id: str
    status: str
    result: Any = None
    error: dict[str, Any] | None = None
    spent: Usage = field(default_factory=Usage)
    #: steps executed by this process / served from the journal / denied
    executed: int = 0
    replayed: int = 0
    denied: int = 0
    tasks: int = 0
    seconds: float = 0.0
    #: whether its tasks hold signed warrants and its calls proofs (``remit verify``)
    signed: bool = False
    #: the receipts of the run's tool calls (this process's run or resume; for a run
    #: read back, ``Runtime.receipts``)
    receipts: Sequence[Receipt] = ()

    @property
    def ok(self) -> bool:
        return self.status == "done"


def finished_run(store: JournalStore, rec: RunRecord) -> Run:
    """The outcome of a run that has ended, as its journal records it."""
    result = json.loads(rec.result) if rec.result else None
    error = json.loads(rec.error) if rec.error else None
    spent = Usage()
    end = _root_end(store, rec)
    if end is not None and end.spent:
        spent = Usage.from_dict(json.loads(end.spent))
    signed = "principal_key" in json.loads(rec.meta or "{}")
    return Run(rec.run_id, rec.status, result, error, spent, signed=signed)


def _root_end(store: JournalStore, rec: RunRecord) -> StepRecord | None:
    """The root's end row of the latest generation that ran it (every invalidation
    re-runs the root: its result derives from everything)."""
    end = f"{task_id(ROOT, 0, rec.goal)}:end"
    found = store.get_step(rec.run_id, end)
    start = 1
    while True:  # generations a batch at a time: a run is rarely invalidated at all
        ids = [at_generation(end, g) for g in range(start, start + 32)]
        later = store.get_steps(rec.run_id, ids)
        if not later:
            return found
        found = later[max(later, key=generation_of)]
        start += 32


def recorded_receipts(store: JournalStore, keys: KeyFiles, run_id: str) -> tuple[Receipt, ...]:
    """The receipts of every tool call ``run_id`` recorded, made again from its journal
    under the run's key: the very receipts the Gate made while it ran (the journal's secret
    must be at hand). A run made with ``sign=False`` had a key of its process only: none.
    """
    rec = store.get_run(run_id)
    meta = json.loads(rec.meta or "{}")
    if "principal_key" not in meta:
        return ()
    receipter = Receipter(RunKeys(keys.load(run_id, meta)).receipt_key)
    return tuple(
        receipter.make(run_id, s.step_id, s.name, s.input, s.output)
        for s in receipted_calls(store.steps(run_id))
    )


#: what a run id may be: it appears in commands people type (and names the key file of a
#: run signed before journal secrets)
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_run_id(run_id: str) -> str:
    """``run_id`` if it is a valid run id, else ``InvalidInput`` saying what one is.

    >>> check_run_id("nightly-2026.12.05")
    'nightly-2026.12.05'
    """
    if not isinstance(run_id, str) or RUN_ID.fullmatch(run_id) is None:  # pyright: ignore[reportUnnecessaryIsInstance]
        raise InvalidInput(
            f"run id {run_id!r} is not valid: use 1 to 128 letters, digits, '.', '_' or '-',"
            " starting with a letter or digit"
        )
    return run_id


def new_run_id() -> str:
    """A fresh run id: sortable by time, unique by chance."""
    return time.strftime("run-%Y%m%d-%H%M%S-", time.gmtime()) + secrets.token_hex(3)
