"""What verifying a run found: the extent of what was checked, and each failure named
by the row, hop, call or checkpoint it is about."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Failure", "RunVerification"]


@dataclass(frozen=True, slots=True)
class Failure:
    """One step that did not verify."""

    step_id: str
    code: str
    message: str


@dataclass(slots=True)
class RunVerification:
    """What :func:`verify_run` found. ``ok`` when every call verified."""

    run_id: str
    principal: str
    #: where the principal key came from: "given" (pinned by the caller) or "journal"
    principal_source: str
    calls: int = 0
    approved: int = 0
    hops: int = 0
    longest_chain: int = 0
    #: a sealed run: its journal is a hash chain with signed checkpoints
    sealed: bool = False
    rows: int = 0
    entries: int = 0
    checkpoints: int = 0
    #: chain entries no checkpoint covers yet (rows another process wrote since)
    uncovered: int = 0
    failures: list[Failure] = field(default_factory=list[Failure])
    #: tool calls with a receipt; receipts carried in the result; whether the run's
    #: receipt key was at hand (without it, carried receipts are not checked)
    receipts: int = 0
    carried: int = 0
    receipts_checked: bool = False
    #: the verdict on each quote of tool output in the run's result
    quotes: list[dict[str, Any]] = field(default_factory=list[dict[str, Any]])

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "ok": self.ok,
            "principal": self.principal,
            "principal_source": self.principal_source,
            "calls": self.calls,
            "approved": self.approved,
            "hops": self.hops,
            "longest_chain": self.longest_chain,
            "sealed": self.sealed,
            "rows": self.rows,
            "entries": self.entries,
            "checkpoints": self.checkpoints,
            "uncovered": self.uncovered,
            "receipts": self.receipts,
            "carried": self.carried,
            "receipts_checked": self.receipts_checked,
            "quotes": self.quotes,
            "failures": [
                {"step_id": f.step_id, "code": f.code, "message": f.message} for f in self.failures
            ],
        }
