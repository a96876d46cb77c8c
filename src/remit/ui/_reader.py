"""The web view's eyes on a journal: one read-only SQLite connection, never a writer.

The journal is SQLite in WAL mode: a reader never blocks the run that writes, and sees
only committed rows. The view must not change the file, so the connection is opened
read-only (``mode=ro``); SQLite still needs the ``-shm`` index beside the file, which
any run's writer has made. A person's answer to an approval is the one write the view
makes, and it goes through :func:`remit.gate.approvals.answer` on a store of its own
(see ``_app``), exactly as ``remit approve`` does.

``fingerprint`` is what the live updates poll: a handful of aggregates over the run's
rows (the ``steps_by_run`` index serves them), which change whenever a row is added or
a result lands on an intent. Only when it changes is the tree rebuilt.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from pathlib import Path
from typing import Any, Final

from remit.errors import JournalError, RunNotFound
from remit.journal import Lease, RunRecord, StepRecord
from remit.journal.lease import run_state
from remit.trace.tree import RunTree, build

_RUN_COLUMNS: Final = ", ".join(f.name for f in dataclasses.fields(RunRecord))
_STEP_COLUMNS: Final = ", ".join(f.name for f in dataclasses.fields(StepRecord))
_LEASE_COLUMNS: Final = ", ".join(f.name for f in dataclasses.fields(Lease))
#: how many step ids a search returns at most
SEARCH_LIMIT: Final = 50


class JournalReader:
    """Read-only queries over one journal file, safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.is_file():
            raise JournalError(f"no journal at {path}; pass --journal PATH (runs create one)")
        uri = f"{path.resolve().as_uri()}?mode=ro"
        try:
            self._conn = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=5.0)
            self._conn.execute("PRAGMA query_only = ON")
            self._conn.execute("SELECT count(*) FROM runs").fetchone()
        except sqlite3.Error as e:
            raise JournalError(f"cannot read journal {path}: {e}") from e
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _all(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as e:
                raise JournalError(f"reading journal {self.path} failed: {e}") from e

    # --- runs -----------------------------------------------------------------------

    def runs(self, limit: int = 100) -> list[tuple[RunRecord, str]]:
        """The newest runs, each with what a person should read of its state."""
        rows = self._all(
            f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY created_at DESC, rowid DESC LIMIT ?",
            (limit,),
        )
        leases = {row[0]: Lease(*row) for row in self._all(f"SELECT {_LEASE_COLUMNS} FROM leases")}
        out: list[tuple[RunRecord, str]] = []
        for row in rows:
            run = RunRecord(*row)
            out.append((run, run_state(run, leases.get(run.run_id))))
        return out

    def run(self, run_id: str) -> tuple[RunRecord, str]:
        """The run and its state (``RunNotFound`` if the journal has no such run)."""
        rows = self._all(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,))
        if not rows:
            raise RunNotFound(f"no run {run_id!r} in journal {self.path}")
        run = RunRecord(*rows[0])
        leases = self._all(f"SELECT {_LEASE_COLUMNS} FROM leases WHERE run_id = ?", (run_id,))
        return run, run_state(run, Lease(*leases[0]) if leases else None)

    def fingerprint(self, run_id: str) -> tuple[Any, ...]:
        """Changes whenever the run's rows or its state change (cheap: one indexed scan)."""
        run, state = self.run(run_id)
        (agg,) = self._all(
            "SELECT count(*), max(pos), sum(status <> 'started'), count(error)"
            " FROM steps WHERE run_id = ?",
            (run_id,),
        )
        return (state, run.updated_at, *agg)

    # --- steps ----------------------------------------------------------------------

    def steps(self, run_id: str, task_id: str | None = None) -> list[StepRecord]:
        """The run's steps in the order they were first written (one task's, if named)."""
        if task_id is None:
            sql, params = "WHERE run_id = ?", (run_id,)
        else:
            sql, params = "WHERE run_id = ? AND task_id = ?", (run_id, task_id)
        rows = self._all(f"SELECT {_STEP_COLUMNS} FROM steps {sql} ORDER BY pos", params)
        return [StepRecord(*row) for row in rows]

    def tree(self, run_id: str) -> RunTree:
        """The run's task tree, as ``remit show`` builds it."""
        run, state = self.run(run_id)
        tree = build(run, self.steps(run_id))
        tree.state = state
        return tree

    def search(self, run_id: str, text: str) -> list[dict[str, str]]:
        """Steps whose id or tool/model name contains ``text`` (case-insensitive)."""
        like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self._all(
            "SELECT step_id, task_id, kind, name, status FROM steps WHERE run_id = ?"
            " AND (step_id LIKE ? ESCAPE '\\' OR name LIKE ? ESCAPE '\\') ORDER BY pos LIMIT ?",
            (run_id, like, like, SEARCH_LIMIT),
        )
        keys = ("step_id", "task_id", "kind", "name", "status")
        return [dict(zip(keys, row, strict=True)) for row in rows]
