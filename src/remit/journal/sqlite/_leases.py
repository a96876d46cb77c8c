"""The leases table: one owner per run, taken, renewed and released atomically, and the
fence that keeps a process that lost its run from writing to it.

The heartbeat thread and the lease policy are in :mod:`remit.journal.lease`; this is
only what the file holds and how it is changed.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable
from typing import Any, Final

from remit.errors import LeaseLost, RunLeased
from remit.journal._store import Lease
from remit.journal.sqlite._file import SQLiteFile, transaction

# --- statements (prepared once: sqlite3 caches each by its text) ------------------

LEASE_FIELDS: Final = tuple(f.name for f in dataclasses.fields(Lease))
_LEASE_COLUMNS: Final = ", ".join(LEASE_FIELDS)
_SELECT_LEASE: Final = f"SELECT {_LEASE_COLUMNS} FROM leases WHERE run_id = ?"
PUT_LEASE: Final = (
    f"INSERT OR REPLACE INTO leases ({_LEASE_COLUMNS})"
    f" VALUES ({', '.join('?' * len(LEASE_FIELDS))})"
)
_LEASE_OWNER: Final = "SELECT owner FROM leases WHERE run_id = ?"


class LeaseQueries(SQLiteFile):
    """The lease of a run, and the fence the run and step writes check."""

    def acquire_lease(self, lease: Lease, takeover: Callable[[Lease], bool]) -> None:
        """Make ``lease`` the run's lease, atomically (under SQLite's write lock): if
        no one holds one, if the holder's has expired, or if ``takeover(holder)`` says
        its holder is gone; else raise :class:`~remit.errors.RunLeased` naming it."""
        with self._lock, self._errors(f"take the lease of run {lease.run_id!r}"):
            conn = self._live()
            with transaction(conn):
                row = conn.execute(_SELECT_LEASE, (lease.run_id,)).fetchone()
                if row is not None:
                    held = Lease(*row)
                    if (
                        held.owner != lease.owner
                        and held.expires >= lease.acquired_at
                        and not takeover(held)
                    ):
                        raise RunLeased(
                            f"run {lease.run_id} is being carried by another process:"
                            f" {describe_lease(held, lease.acquired_at)}; wait for it to end,"
                            " or stop that process first"
                        )
                conn.execute(PUT_LEASE, lease_params(lease))

    def renew_lease(self, run_id: str, owner: str, now: float, expires: float) -> bool:
        """Move ``owner``'s lease on (a heartbeat); False if ``owner`` holds it no more."""
        with self._lock, self._errors(f"renew the lease of run {run_id!r}"):
            cur = self._live().execute(
                "UPDATE leases SET heartbeat = ?, expires = ? WHERE run_id = ? AND owner = ?",
                (now, expires, run_id, owner),
            )
            return cur.rowcount > 0

    def release_lease(self, run_id: str, owner: str) -> None:
        """Give up ``owner``'s lease (nothing happens if it holds none)."""
        with self._lock, self._errors(f"release the lease of run {run_id!r}"):
            self._live().execute(
                "DELETE FROM leases WHERE run_id = ? AND owner = ?", (run_id, owner)
            )

    def get_lease(self, run_id: str) -> Lease | None:
        """The run's lease, expired or not, or ``None``."""
        with self._lock, self._errors(f"read the lease of run {run_id!r}"):
            row = self._live().execute(_SELECT_LEASE, (run_id,)).fetchone()
        return None if row is None else Lease(*row)

    def _fence(self, conn: sqlite3.Connection, run_id: str, owner: str) -> None:
        """Inside a write transaction: refuse unless ``owner`` holds the run."""
        row = conn.execute(_LEASE_OWNER, (run_id,)).fetchone()
        if row is None or row[0] != owner:
            raise LeaseLost(
                f"this process no longer holds run {run_id} in journal {self.path}"
                f" ({'another process took it over' if row else 'its lease was released'});"
                " nothing more is written: the other owner carries the run"
            )


def lease_params(lease: Lease) -> tuple[Any, ...]:
    return tuple(getattr(lease, f) for f in LEASE_FIELDS)


def describe_lease(lease: Lease, now: float) -> str:
    """``pid 4242 on host-a (heartbeat 2.0 s ago, owner 7f3a...)``, for messages."""
    ago = max(0.0, now - lease.heartbeat)
    return f"pid {lease.pid} on {lease.host} (heartbeat {ago:.1f} s ago, owner {lease.owner})"
