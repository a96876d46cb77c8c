"""Phase 3, look up: a step recorded by an earlier process is served, not executed again."""

from __future__ import annotations

import json
import time
from typing import Any

from remit.core.ledger import ZERO, Usage
from remit.errors import (
    DeterminismError,
    EffectUncertain,
    JournalCorrupt,
)
from remit.errors import from_dict as error_from_dict
from remit.gate._node import Node
from remit.gate._record import Recording
from remit.gate._resume import may_retry, resolution_of
from remit.gate._state import MISS
from remit.journal import StepRecord


class Lookup(Recording):
    """Serves recorded results and errors, and books what they spent."""

    def recorded_end(self, node_id: str) -> StepRecord | None:
        """The recorded end of a task, if a previous process finished it."""
        if not self.recorded:
            return None
        rec = self.recorded.get(self.current_id(f"{node_id}:end"))
        return rec if rec is not None and rec.status != "started" else None

    def decode(self, record: StepRecord, field: str = "output") -> Any:
        text = getattr(record, field)
        if text is None:
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise JournalCorrupt(
                f"run {self.run_id} step {record.step_id}: {field} is not valid JSON ({e.msg})"
            ) from None

    def _replay(self, node: Node, step_id: str, kind: str, name: str, effect: bool = False) -> Any:
        if not self.recorded:
            return MISS
        rec = self.recorded.get(step_id)
        if rec is None:
            return MISS
        if rec.kind != kind or rec.name != name:
            raise DeterminismError(
                f"run {self.run_id} step {step_id}: the journal recorded {rec.kind} "
                f"{rec.name!r} here but this run asked for {kind} {name!r}; the agent's code "
                "or plan changed since the run started; resume it with the original code"
            )
        if rec.status == "started":
            if effect:
                n, _ = resolution_of(self.recorded, step_id)
                if not may_retry(self.recorded, step_id):
                    raise EffectUncertain(
                        f"step {step_id}: {kind} {name!r} was started but its result was "
                        "never recorded, and the tool is not idempotent; a person must say "
                        f"whether it happened: remit resolve {self.run_id} {step_id} "
                        "--happened RESULT_JSON | --did-not-happen",
                        (step_id,),
                    )
                # a person said it did not happen: one more attempt, on disk before it runs
                self._record(node, f"{step_id}~attempt.{n}", "attempt", name, "ok", None,
                             None, None, ZERO, time.time())  # fmt: skip
            return MISS
        self.replayed += 1
        if rec.spent:
            self.ledger.charge(node.account, Usage.from_dict(self.decode(rec, "spent")), step_id)
        nested = self._role_spent.get(step_id) if self._role_spent else None
        # (a shared ledger booked each call under its own step as it settled)
        if nested is not None and not self.ledger.shared:
            # a role's calls are not looked up when the role itself is served: book them
            # here, so a resumed run is held to the budget an uninterrupted one would be
            self.ledger.charge(node.account, nested)
        if rec.status == "ok":
            return self.decode(rec)
        raise error_from_dict(self.decode(rec, "error") or {})
