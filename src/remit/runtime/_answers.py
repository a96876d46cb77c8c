"""A person's (or a check's) word on a run after the fact: ``resolve`` an uncertain
effect, ``invalidate`` a result so that exactly its dependents run again."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from remit.core.lineage import KIND, Invalidation, invalidation_id, plan_invalidation
from remit.gate._resume import resolve
from remit.journal import JournalStore, StepRecord
from remit.journal.lease import RunLease
from remit.trust.provenance import KeyFiles, RunKeys

__all__ = ["Answers", "invalidate"]


class Answers:
    """The methods of :class:`~remit.Runtime` that record a person's word on a run."""

    keys: KeyFiles
    lease_ttl: float

    @property
    def store(self) -> JournalStore:
        raise NotImplementedError

    def resolve(
        self,
        run_id: str,
        step_id: str,
        *,
        happened: bool,
        result: Any = None,
        by: str = "",
        why: str = "",
    ) -> None:
        """Say whether an uncertain effect happened, so ``resume`` can go on.

        >>> rt.resolve(run.id, "t.0.ab12cd:execute.1", happened=True,    # doctest: +SKIP
        ...            result={"charge": "ch_123"}, by="ana", why="seen in the bank log")

        ``happened=True`` records ``result`` as the call's result; ``False`` lets the
        resumed run make the call once more. Who and why are journaled.
        """
        resolve(self.store, run_id, step_id, happened=happened, result=result,
                by=by or os.environ.get("USER", "someone"), why=why)  # fmt: skip

    def invalidate(self, run_id: str, step: str, *, why: str, by: str = "") -> Invalidation:
        """Mark a result bad: ``step`` (a call, a role, ``TASK:end`` or a task id) and its
        transitive dependents run again at the next ``resume``; nothing else does.

        >>> inv = rt.invalidate(run.id, "t.0.ab12cd/1.9f00aa:execute.0",   # doctest: +SKIP
        ...                     why="the price feed was stale", by="check_prices")
        >>> rt.resume(run.id)                                             # doctest: +SKIP

        Journaled as a row of its own (who, why, the steps it invalidates); no row is
        changed. A finished run is open again (``running``) until the resume ends it.
        Refused (``RunLeased``) while a live process carries the run, and
        (``InvalidInput``) for a step the run does not have. A verifier, or any check of
        a run's result, calls this; ``remit invalidate`` is the same for a person.
        """
        who = by or os.environ.get("USER", "someone")
        return invalidate(self.store, self.keys, run_id, step, why=why, by=who, ttl=self.lease_ttl)


def invalidate(
    store: JournalStore, keys: KeyFiles, run_id: str, step: str, *, why: str, by: str, ttl: float
) -> Invalidation:
    """:meth:`Answers.invalidate`, on ``store`` (the run's key from ``keys`` if sealed)."""
    run = store.get_run(run_id)  # RunNotFound names the journal
    lease = RunLease(store, run_id, ttl)
    lease.acquire()  # RunLeased, naming the live process, while one carries the run
    try:
        inv = plan_invalidation(store.steps(run_id), step, why=why, by=by, at=time.time())
        if store.seal_key(run_id) is not None:
            # the row goes into the run's chain under a checkpoint its key signs, as the
            # owner's own rows do: `remit verify` holds at every moment
            run_keys = RunKeys(keys.load(run_id, json.loads(run.meta or "{}")))
            store.seal(run_id, run_keys.run.public, run_keys.run.sign)
        if run.status != "running":
            # open again first: a crash before the row below leaves a run whose resume
            # re-runs nothing, never a journaled invalidation that no resume takes up
            store.finish_run(run_id, "running", None, None)
        row = StepRecord(
            run_id, invalidation_id(inv.step, inv.generation), inv.step.partition(":")[0], 0,
            KIND, inv.step, "ok", None, json.dumps(inv.to_dict(), ensure_ascii=False), None,
            None, inv.at, inv.at,
        )  # fmt: skip
        store.write([row], owner=lease.owner)
    finally:
        lease.release()
    return inv
