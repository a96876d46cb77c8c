"""The steps table: writing intents and results in batches (whole, or staged and then
committed), reading a run's steps back, and checking each row as it is read so that a
damaged one is reported, never mistaken for a value (:func:`load_json` is that check
for a JSON field read by others).

Separate because it is the hot path: the statements are built once, here.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import operator
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Final

from remit.errors import JournalCorrupt
from remit.journal._rows import STEP_STATUSES, checked_step
from remit.journal._store import StepRecord
from remit.journal.sqlite._file import insert_rows, rollback
from remit.journal.sqlite._seals import Mispredicted, SealQueries, on_conflict

# --- statements (prepared once: sqlite3 caches each by its text) ------------------

STEP_FIELDS: Final = tuple(f.name for f in dataclasses.fields(StepRecord))
STEP_COLUMNS: Final = ", ".join(STEP_FIELDS)
_step_params = operator.attrgetter(*STEP_FIELDS)

# a batch's rows go in under the step protocol (see _seals.on_conflict)
_INSERT_STEPS: Final = f"INSERT INTO steps ({STEP_COLUMNS})"
_ON_CONFLICT: Final = on_conflict()
_SELECT_STEPS: Final = f"SELECT {STEP_COLUMNS} FROM steps WHERE run_id = ? ORDER BY pos"
_SELECT_STEP: Final = f"SELECT {STEP_COLUMNS} FROM steps WHERE run_id = ? AND step_id = ?"
#: ids per IN list; with run_id, stays under the 999 variables of older SQLite builds
_IN_CHUNK: Final = 900

_decode_json = json.JSONDecoder().decode


@functools.lru_cache(maxsize=8)
def _select_steps_in(n: int) -> str:
    return (
        f"SELECT {STEP_COLUMNS} FROM steps WHERE run_id = ? AND step_id IN ({', '.join('?' * n)})"
    )


def load_json(text: str | None, *, where: str) -> Any:
    """Parse a JSON field of a journal record; ``None`` stays ``None``.

    ``where`` names the field for the error (``"run r1, step s3, output"``): text that
    does not parse raises :class:`~remit.errors.JournalCorrupt` with it, so a damaged
    row is reported, never mistaken for a value.
    """
    if text is None:
        return None
    try:
        return _decode_json(text)
    except (ValueError, TypeError) as e:
        raise JournalCorrupt(
            f"{where} holds unreadable JSON ({e}); the journal row is damaged"
        ) from e


class StepQueries(SealQueries):
    """One row per step; a batch is written under the run's lease."""

    def _step(self, row: Sequence[Any]) -> StepRecord:
        """A row as a record, after checking what a damaged row would get wrong."""
        return checked_step(row, str(self.path))

    def _put_batch(
        self, conn: sqlite3.Connection, records: Sequence[StepRecord], owner: str | None
    ) -> None:
        """Begin a write transaction and put a batch in it (fenced by ``owner``'s lease).
        A sealed run's owner that mispredicted what its writes change (see
        :meth:`_put_sealed`) has written part of the batch: the transaction is rolled
        back and the batch written again in a new one, chained from what the rows hold."""
        for exact in (False, True):
            conn.execute("BEGIN IMMEDIATE")
            try:
                if owner is not None:
                    self._fence(conn, records[0].run_id, owner)
                self._put(conn, records, exact=exact)
                return
            except Mispredicted:
                rollback(conn)
            except BaseException:
                rollback(conn)
                raise
        raise AssertionError("an exact write cannot be mispredicted")  # pragma: no cover

    def _put(
        self, conn: sqlite3.Connection, records: Sequence[StepRecord], *, exact: bool = False
    ) -> None:
        """The rows of a batch, in ``conn``'s open transaction: a sealed run's chained."""
        run_id = records[0].run_id
        if any(r.run_id != run_id for r in records):
            by_run: dict[str, list[StepRecord]] = {}
            for r in records:
                by_run.setdefault(r.run_id, []).append(r)
            for batch in by_run.values():
                self._put(conn, batch, exact=exact)
            return
        if self._is_sealed(conn, run_id):
            self._put_sealed(conn, run_id, records, exact=exact)
        else:
            insert_rows(
                conn, _INSERT_STEPS, _ON_CONFLICT, len(STEP_FIELDS), map(_step_params, records)
            )

    def write(self, records: Sequence[StepRecord], owner: str | None = None) -> None:
        """Write intents and results in one transaction, durable on return.

        An intent for a step that already has a row is ignored; a result updates the
        row unless it already holds a final status (then it is ignored: the first
        recorded result wins). An *interruption mark* (status ``started`` with an
        ``error``) sets ``error``, ``spent`` and ``ended_at`` of a row still
        ``started``: the step never finished, and says why. A result with no prior
        intent inserts the row whole.
        When a result lands on an intent, the row keeps the intent's ``task_id``,
        ``seq``, ``kind``, ``name``, ``input`` and ``started_at`` and takes the
        result's ``status``, ``output``, ``error``, ``spent`` and ``ended_at``.

        If any record is refused (an unknown status, a missing required field, a
        value that is not text) nothing of the batch is written.
        """
        if not records:
            return
        with self._lock:
            conn = self._live()
            try:
                self._put_batch(conn, records, owner)
                try:
                    conn.execute("COMMIT")
                except BaseException:
                    rollback(conn)
                    raise
            except sqlite3.Error as e:
                self._raise(e, f"write {len(records)} step records{_first_bad(records)}")

    def stage(self, records: Sequence[StepRecord], owner: str | None = None) -> None:
        """The first half of :meth:`write`: the rows, in an open transaction, not yet on disk.

        The journal stays locked until :meth:`commit_staged`, which may be called from
        another thread: that is how the writer overlaps the fsync with the run's work
        without fighting it for the GIL row by row.
        """
        self._lock.acquire()
        try:
            self._put_batch(self._live(), records, owner)
        except sqlite3.Error as e:
            self._lock.release()
            self._raise(e, f"write {len(records)} step records{_first_bad(records)}")
        except BaseException:
            self._lock.release()
            raise

    def commit_staged(self) -> None:
        """The second half of :meth:`write`: commit (and, with ``full``, fsync) the stage."""
        try:
            conn = self._live()
            try:
                conn.execute("COMMIT")
            except BaseException:
                rollback(conn)
                self._held.clear()  # what this process knew of its chains is ahead of the file
                raise
        except sqlite3.Error as e:
            self._raise(e, "commit staged step records")
        finally:
            self._lock.release()

    def steps(self, run_id: str) -> Iterator[StepRecord]:
        """All steps of a run, in the order they were first written.

        The steps are read in one snapshot before this returns; a damaged row raises
        ``JournalCorrupt`` here, naming the run and step.
        """
        with self._lock, self._errors(f"read steps of run {run_id!r}"):
            rows = self._live().execute(_SELECT_STEPS, (run_id,)).fetchall()
        return iter([self._step(row) for row in rows])

    def get_step(self, run_id: str, step_id: str) -> StepRecord | None:
        """The step, or ``None`` if it has no row."""
        with self._lock, self._errors(f"read step {step_id!r} of run {run_id!r}"):
            row = self._live().execute(_SELECT_STEP, (run_id, step_id)).fetchone()
        return None if row is None else self._step(row)

    def get_steps(self, run_id: str, step_ids: Iterable[str]) -> dict[str, StepRecord]:
        """The steps among ``step_ids`` that have rows, by step id (one snapshot)."""
        ids = list(dict.fromkeys(step_ids))
        if not ids:
            return {}
        rows: list[Any] = []
        with self._lock, self._errors(f"read {len(ids)} steps of run {run_id!r}"):
            conn = self._live()
            conn.execute("BEGIN")
            try:
                for start in range(0, len(ids), _IN_CHUNK):
                    chunk = ids[start : start + _IN_CHUNK]
                    rows += conn.execute(_select_steps_in(len(chunk)), (run_id, *chunk))
            finally:
                rollback(conn)
        return {row[1]: self._step(row) for row in rows}


def _first_bad(records: Sequence[StepRecord]) -> str:
    """Name the first record with an unknown status, for the error message only."""
    for r in records:
        if r.status not in STEP_STATUSES:
            return f" (step {r.step_id!r} of run {r.run_id!r} has status {r.status!r})"
    return ""
