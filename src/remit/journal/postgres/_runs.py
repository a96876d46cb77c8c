"""The runs table: creating a run (with its first lease and its seal), reading and
listing runs, and recording a run's outcome.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

from remit.errors import JournalError, RunNotFound
from remit.journal._rows import checked_run
from remit.journal._sealing import Held
from remit.journal._store import Lease, RunRecord, RunStatus
from remit.journal.postgres._connection import sql
from remit.journal.postgres._leases import PUT_LEASE, lease_params
from remit.journal.postgres._seals import SealQueries

if TYPE_CHECKING:
    import psycopg

RUN_FIELDS: Final = tuple(f.name for f in dataclasses.fields(RunRecord))
_RUN_COLUMNS: Final = ", ".join(RUN_FIELDS)
_INSERT_RUN: Final = sql(
    f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES ({', '.join(['%s'] * len(RUN_FIELDS))})"
    " ON CONFLICT (run_id) DO NOTHING"
)
_SELECT_RUN: Final = sql(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = %s")
_LIST_RUNS: Final = sql(
    f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY created_at DESC, pos DESC LIMIT %s"
)
_FINISH_RUN: Final = (
    "UPDATE runs SET status = %s, result = %s, error = %s, updated_at = %s WHERE run_id = %s"
)


class RunQueries(SealQueries):
    """One row per run; a run's outcome is written under its lease."""

    def _run(self, row: Sequence[Any]) -> RunRecord:
        return checked_run(row, str(self.where))

    def create_run(
        self,
        run: RunRecord,
        lease: Lease | None = None,
        seal: tuple[bytes, Callable[[bytes], bytes]] | None = None,
    ) -> None:
        """Insert a new run (with ``lease``, its first owner's, and ``seal``, its key and
        signing function as :meth:`seal` takes them, in the same transaction); raises
        ``JournalError`` if the id exists.

        A ``created_at`` of 0 means now; an ``updated_at`` of 0 means ``created_at``.
        """
        created = run.created_at or time.time()
        params = (
            run.run_id, run.goal, run.agent, run.remit, run.status, run.inputs, run.result,
            run.error, run.meta, created, run.updated_at or created,
        )  # fmt: skip

        attempts = 0

        def body(conn: psycopg.Connection[Any]) -> Held | None:
            nonlocal attempts
            attempts += 1
            self._lock_run(conn, run.run_id)
            if conn.execute(_INSERT_RUN, params).rowcount == 0:
                # ON CONFLICT DO NOTHING rather than a unique violation: the transaction
                # stays usable, so a retried create whose first commit did land (its
                # answer lost with the connection) can tell, and is not refused
                if attempts > 1 and self._same_run(conn, run.run_id, params):
                    return self._held.get(run.run_id)
                raise JournalError(
                    f"run {run.run_id!r} already exists in journal {self.where};"
                    f" resume it with `remit resume {run.run_id}`, or choose a new id"
                )
            if lease is not None:
                conn.execute(PUT_LEASE, lease_params(lease))
            return self._seal_in(conn, run.run_id, *seal) if seal is not None else None

        held = self._tx(f"create run {run.run_id!r}", body)
        if held is not None:
            self._held[run.run_id] = held

    def _same_run(
        self, conn: psycopg.Connection[Any], run_id: str, params: tuple[Any, ...]
    ) -> bool:
        """Whether the run that exists is this very record, written by an earlier
        attempt of this call whose commit landed but whose answer was lost."""
        row = conn.execute(_SELECT_RUN, (run_id,)).fetchone()
        return row is not None and tuple(row[:10]) == params[:10]

    def get_run(self, run_id: str) -> RunRecord:
        """The run, or ``RunNotFound`` naming the id and this journal."""

        def body(conn: psycopg.Connection[Any]) -> Any:
            return conn.execute(_SELECT_RUN, (run_id,)).fetchone()

        row = self._tx(f"read run {run_id!r}", body)
        if row is None:
            raise RunNotFound(
                f"no run {run_id!r} in journal {self.where};"
                " `remit runs` lists the runs a journal holds"
            )
        return self._run(row)

    def list_runs(self, limit: int = 100) -> list[RunRecord]:
        """Up to ``limit`` runs, most recently created first."""
        if limit < 0:
            raise ValueError(f"limit must be >= 0, not {limit}")

        def body(conn: psycopg.Connection[Any]) -> list[Any]:
            return conn.execute(_LIST_RUNS, (limit,)).fetchall()

        return [self._run(row) for row in self._tx("list runs", body)]

    def finish_run(
        self,
        run_id: str,
        status: RunStatus,
        result: str | None,
        error: str | None,
        owner: str | None = None,
    ) -> None:
        """Record a run's outcome (durably, like a step result); ``RunNotFound`` if
        there is no such run. A later call replaces the outcome (a resumed run).

        With ``owner``: only while ``owner`` holds the run's lease (``LeaseLost``
        otherwise), which is given up in the same transaction."""
        attempts = 0

        def body(conn: psycopg.Connection[Any]) -> bool:
            nonlocal attempts
            attempts += 1
            holder = self._lock_run(conn, run_id)
            if owner is not None:
                if holder is None and attempts > 1 and self._finished_as(conn, run_id, status):
                    return True  # an earlier attempt committed; its answer was lost
                self._fence(run_id, owner, holder)
                conn.execute("DELETE FROM leases WHERE run_id = %s", (run_id,))
            cur = conn.execute(_FINISH_RUN, (status, result, error, time.time(), run_id))
            found = cur.rowcount > 0
            if found:
                self._finish_checkpoint(conn, run_id)
            return found

        if not self._tx(f"finish run {run_id!r}", body):
            raise RunNotFound(
                f"cannot finish run {run_id!r}: no such run in journal {self.where};"
                " `remit runs` lists the runs a journal holds"
            )

    def _finished_as(self, conn: psycopg.Connection[Any], run_id: str, status: str) -> bool:
        row = conn.execute("SELECT status FROM runs WHERE run_id = %s", (run_id,)).fetchone()
        return row is not None and row[0] == status
