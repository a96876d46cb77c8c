"""A row read back as a record, checked for what a damaged row would get wrong: the
same on every backend (pure: the backend names itself in ``where``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final, NoReturn

from remit.errors import JournalCorrupt
from remit.journal._chain import STEP_FIELDS
from remit.journal._store import RunRecord, StepRecord

__all__ = ["RUN_STATUSES", "STEP_STATUSES", "checked_run", "checked_step"]

RUN_STATUSES: Final = frozenset({"running", "done", "failed"})
STEP_STATUSES: Final = frozenset({"started", "ok", "error", "denied"})
#: positions of the JSON columns in a row selected with every step column, in order
_STEP_JSON: Final = tuple(
    (i, f) for i, f in enumerate(STEP_FIELDS) if f in {"input", "output", "error", "spent"}
)
_decode_json = json.JSONDecoder().decode


def _damaged(where: str, row: Sequence[Any], detail: str) -> NoReturn:
    raise JournalCorrupt(f"journal {where}: step {row[1]!r} of run {row[0]!r} is damaged: {detail}")


def checked_step(row: Sequence[Any], where: str) -> StepRecord:
    """Step ``row`` (every column, in order) as a record; ``JournalCorrupt`` naming the
    journal ``where``, the run and the step if a JSON column or the status is damaged."""
    for i, field in _STEP_JSON:
        text = row[i]
        if text is not None:
            try:
                _decode_json(text)
            except (ValueError, TypeError) as e:
                _damaged(where, row, f"{field} holds unreadable JSON ({e})")
    if row[6] not in STEP_STATUSES:
        _damaged(where, row, f"unknown status {row[6]!r}")
    return StepRecord(*row)


def checked_run(row: Sequence[Any], where: str) -> RunRecord:
    """Run ``row`` as a record; ``JournalCorrupt`` if its status is damaged."""
    if row[4] not in RUN_STATUSES:
        raise JournalCorrupt(
            f"journal {where}: run {row[0]!r} is damaged: unknown status {row[4]!r}"
        )
    return RunRecord(*row)
