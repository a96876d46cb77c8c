"""The runs table: creating a run (with its first lease), reading and listing runs, and
recording a run's outcome.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

from remit.errors import JournalError, RunNotFound
from remit.journal._rows import checked_run
from remit.journal._store import Lease, RunRecord, RunStatus
from remit.journal.sqlite._file import transaction
from remit.journal.sqlite._leases import PUT_LEASE, lease_params
from remit.journal.sqlite._seals import SealQueries

# --- statements (prepared once: sqlite3 caches each by its text) ------------------

RUN_FIELDS: Final = tuple(f.name for f in dataclasses.fields(RunRecord))
_RUN_COLUMNS: Final = ", ".join(RUN_FIELDS)
_INSERT_RUN: Final = (
    f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES ({', '.join('?' * len(RUN_FIELDS))})"
)
_SELECT_RUN: Final = f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?"
_LIST_RUNS: Final = f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY created_at DESC, rowid DESC LIMIT ?"
_FINISH_RUN: Final = (
    "UPDATE runs SET status = ?, result = ?, error = ?, updated_at = ? WHERE run_id = ?"
)


class RunQueries(SealQueries):
    """One row per run; a run's outcome is written under its lease."""

    def _run(self, row: Sequence[Any]) -> RunRecord:
        return checked_run(row, str(self.path))

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
            run.run_id,
            run.goal,
            run.agent,
            run.remit,
            run.status,
            run.inputs,
            run.result,
            run.error,
            run.meta,
            created,
            run.updated_at or created,
        )
        with self._lock:
            conn = self._live()
            try:
                with transaction(conn):
                    conn.execute(_INSERT_RUN, params)
                    if lease is not None:
                        conn.execute(PUT_LEASE, lease_params(lease))
                    held = (
                        None if seal is None else self._seal_in(conn, run.run_id, *seal, new=True)
                    )
                if held is not None:
                    self._held[run.run_id] = held
            except sqlite3.IntegrityError as e:
                if getattr(e, "sqlite_errorname", "") == "SQLITE_CONSTRAINT_PRIMARYKEY":
                    raise JournalError(
                        f"run {run.run_id!r} already exists in journal {self.path};"
                        f" resume it with `remit resume {run.run_id}`, or choose a new id"
                    ) from e
                self._raise(e, f"create run {run.run_id!r}")
            except sqlite3.Error as e:
                self._raise(e, f"create run {run.run_id!r}")

    def get_run(self, run_id: str) -> RunRecord:
        """The run, or ``RunNotFound`` naming the id and this journal."""
        with self._lock, self._errors(f"read run {run_id!r}"):
            row = self._live().execute(_SELECT_RUN, (run_id,)).fetchone()
        if row is None:
            raise RunNotFound(
                f"no run {run_id!r} in journal {self.path};"
                " `remit runs` lists the runs a journal holds"
            )
        return self._run(row)

    def list_runs(self, limit: int = 100) -> list[RunRecord]:
        """Up to ``limit`` runs, most recently created first."""
        if limit < 0:
            raise ValueError(f"limit must be >= 0, not {limit}")
        with self._lock, self._errors("list runs"):
            rows = self._live().execute(_LIST_RUNS, (limit,)).fetchall()
        return [self._run(row) for row in rows]

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
        with self._lock, self._errors(f"finish run {run_id!r}"):
            conn = self._live()
            with transaction(conn):
                if owner is not None:
                    self._fence(conn, run_id, owner)
                    conn.execute("DELETE FROM leases WHERE run_id = ?", (run_id,))
                cur = conn.execute(_FINISH_RUN, (status, result, error, time.time(), run_id))
                found = cur.rowcount > 0
                if found:
                    self._finish_checkpoint(conn, run_id)
        if not found:
            raise RunNotFound(
                f"cannot finish run {run_id!r}: no such run in journal {self.path};"
                " `remit runs` lists the runs a journal holds"
            )
