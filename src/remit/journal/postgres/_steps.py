"""The steps table: writing intents and results in batches, reading a run's steps back,
and checking each row as it is read so that a damaged one is reported, never mistaken
for a value.

The upsert carries the same protocol as SQLite's: an intent never touches an existing
row, a result lands only on a row still ``started`` (the first result wins), an
interruption mark (``started`` with an ``error``) annotates a row still ``started``.
A batch is one transaction under the run's advisory lock, fenced by its lease; the rows
go to the server in one pipeline (psycopg's ``executemany``), not one round trip each.
"""

from __future__ import annotations

import operator
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final

from remit.journal._rows import STEP_STATUSES, checked_step
from remit.journal._store import StepRecord
from remit.journal.postgres._connection import sql
from remit.journal.postgres._seals import SealQueries
from remit.journal.sqlite._steps import STEP_COLUMNS, STEP_FIELDS, load_json

if TYPE_CHECKING:
    import psycopg

__all__ = ["StepQueries", "load_json"]

_STEP_JSON: Final = tuple(
    (i, f) for i, f in enumerate(STEP_FIELDS) if f in {"input", "output", "error", "spent"}
)
_step_params = operator.attrgetter(*STEP_FIELDS)

_UPSERT_STEP: Final = sql(
    f"INSERT INTO steps ({STEP_COLUMNS}) VALUES ({', '.join(['%s'] * len(STEP_FIELDS))})"
    " ON CONFLICT (run_id, step_id) DO UPDATE SET"
    " status = excluded.status, output = excluded.output, error = excluded.error,"
    " spent = excluded.spent, ended_at = excluded.ended_at,"
    " proof = COALESCE(steps.proof, excluded.proof)"
    " WHERE steps.status = 'started'"
    "  AND (excluded.status <> 'started' OR excluded.error IS NOT NULL)"
)
_SELECT_STEPS: Final = sql(f"SELECT {STEP_COLUMNS} FROM steps WHERE run_id = %s ORDER BY pos")
_SELECT_STEP: Final = sql(f"SELECT {STEP_COLUMNS} FROM steps WHERE run_id = %s AND step_id = %s")
_SELECT_STEPS_IN: Final = sql(
    f"SELECT {STEP_COLUMNS} FROM steps WHERE run_id = %s AND step_id = ANY(%s)"
)
_SELECT_TASK_STEPS: Final = sql(
    f"SELECT {STEP_COLUMNS} FROM steps WHERE run_id = %s AND task_id = ANY(%s) ORDER BY pos"
)


class StepQueries(SealQueries):
    """One row per step; a batch is written under the run's lock and lease."""

    def _step(self, row: Sequence[Any]) -> StepRecord:
        """A row as a record, after checking what a damaged row would get wrong."""
        return checked_step(row, str(self.where))

    def write(self, records: Sequence[StepRecord], owner: str | None = None) -> None:
        """Write intents and results in one transaction, durable on return (see
        :meth:`remit.journal.JournalStore.write`; the protocol is the same). If any
        record is refused nothing of the batch is written. A lost connection is waited
        out and the batch written again (see ``_connection``)."""
        if not records:
            return
        by_run: dict[str, list[StepRecord]] = defaultdict(list)
        for r in records:
            by_run[r.run_id].append(r)
        first = records[0].run_id

        def body(conn: psycopg.Connection[Any]) -> None:
            for run_id in sorted(by_run):  # one lock order: no two writers deadlock
                holder = self._lock_run(conn, run_id)
                if owner is not None and run_id == first:
                    self._fence(run_id, owner, holder)
            for run_id, batch in by_run.items():
                if self._is_sealed(conn, run_id):
                    self._put_sealed(conn, run_id, batch)
                else:
                    conn.cursor().executemany(_UPSERT_STEP, map(_step_params, batch))

        self._tx(f"write {len(records)} step records{_first_bad(records)}", body)

    def steps(self, run_id: str) -> Iterator[StepRecord]:
        """All steps of a run, in the order they were first written (read in one
        snapshot before this returns; a damaged row raises ``JournalCorrupt`` here)."""

        def body(conn: psycopg.Connection[Any]) -> list[Any]:
            return conn.execute(_SELECT_STEPS, (run_id,)).fetchall()

        rows = self._tx(f"read steps of run {run_id!r}", body)
        return iter([self._step(row) for row in rows])

    def get_step(self, run_id: str, step_id: str) -> StepRecord | None:
        """The step, or ``None`` if it has no row."""

        def body(conn: psycopg.Connection[Any]) -> Any:
            return conn.execute(_SELECT_STEP, (run_id, step_id)).fetchone()

        row = self._tx(f"read step {step_id!r} of run {run_id!r}", body)
        return None if row is None else self._step(row)

    def get_steps(self, run_id: str, step_ids: Iterable[str]) -> dict[str, StepRecord]:
        """The steps among ``step_ids`` that have rows, by step id (one snapshot)."""
        ids = list(dict.fromkeys(step_ids))
        if not ids:
            return {}

        def body(conn: psycopg.Connection[Any]) -> list[Any]:
            return conn.execute(_SELECT_STEPS_IN, (run_id, ids)).fetchall()

        rows = self._tx(f"read {len(ids)} steps of run {run_id!r}", body)
        return {row[1]: self._step(row) for row in rows}

    def task_steps(self, run_id: str, task_ids: Iterable[str]) -> dict[str, StepRecord]:
        """Every row of the tasks ``task_ids``, by step id (one snapshot): what a worker
        handed a task again reads of its earlier attempts."""
        ids = list(dict.fromkeys(task_ids))
        if not ids:
            return {}

        def body(conn: psycopg.Connection[Any]) -> list[Any]:
            return conn.execute(_SELECT_TASK_STEPS, (run_id, ids)).fetchall()

        rows = self._tx(f"read the steps of {len(ids)} tasks of run {run_id!r}", body)
        return {row[1]: self._step(row) for row in rows}


def _first_bad(records: Sequence[StepRecord]) -> str:
    """Name the first record with an unknown status, for the error message only."""
    for r in records:
        if r.status not in STEP_STATUSES:
            return f" (step {r.step_id!r} of run {r.run_id!r} has status {r.status!r})"
    return ""
