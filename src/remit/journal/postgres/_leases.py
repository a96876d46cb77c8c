"""The leases table: one owner per run, and the per-run lock and fence every write takes.

SQLite has one writer at a time for the whole file; PostgreSQL has many. So every
transaction that changes a run (its steps, its record, its lease, its seal) first takes
the run's *advisory lock* (``pg_advisory_xact_lock``, released at commit or rollback):
writers of one run queue behind each other as they do on SQLite, writers of different
runs do not wait. Under that lock the fence reads the lease, so a takeover can never
slip between a writer's check and its commit, and a sealed run's chain gets its places
``n`` in one order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final

from remit.errors import LeaseLost, RunLeased
from remit.journal._store import Lease
from remit.journal.postgres._connection import LOCK_SPACE, sql
from remit.journal.postgres._schema import Migrations
from remit.journal.sqlite._leases import describe_lease

if TYPE_CHECKING:
    import psycopg

LEASE_FIELDS: Final = tuple(f.name for f in dataclasses.fields(Lease))
_LEASE_COLUMNS: Final = ", ".join(LEASE_FIELDS)
_SELECT_LEASE: Final = sql(f"SELECT {_LEASE_COLUMNS} FROM leases WHERE run_id = %s")
PUT_LEASE: Final = sql(
    f"INSERT INTO leases ({_LEASE_COLUMNS}) VALUES ({', '.join(['%s'] * len(LEASE_FIELDS))})"
    " ON CONFLICT (run_id) DO UPDATE SET "
    + ", ".join(f"{f} = excluded.{f}" for f in LEASE_FIELDS[1:])
)
#: the run's lock, and its lease's owner, in one round trip
_LOCK_AND_OWNER: Final = (
    "SELECT pg_advisory_xact_lock(%s, hashtext(%s)), (SELECT owner FROM leases WHERE run_id = %s)"
)


def lease_params(lease: Lease) -> tuple[Any, ...]:
    return tuple(getattr(lease, f) for f in LEASE_FIELDS)


class LeaseQueries(Migrations):
    """The lease of a run, the run's lock, and the fence the run and step writes check."""

    def _lock_runs(self, conn: psycopg.Connection[Any], run_ids: Iterable[str]) -> None:
        """Take the advisory lock of each run, in one order (no two writers deadlock)."""
        for run_id in sorted(set(run_ids)):
            self._lock_run(conn, run_id)

    def _lock_run(self, conn: psycopg.Connection[Any], run_id: str) -> str | None:
        """Take run ``run_id``'s lock for this transaction; the owner of its lease."""
        row = conn.execute(
            _LOCK_AND_OWNER, (LOCK_SPACE, f"{self.schema}\x1f{run_id}", run_id)
        ).fetchone()
        return None if row is None else row[1]

    def _fence(self, run_id: str, owner: str, holder: str | None) -> None:
        """Refuse unless ``owner`` holds the run (``holder``: the lease's owner, read
        under the run's lock)."""
        if holder != owner:
            raise LeaseLost(
                f"this process no longer holds run {run_id} in journal {self.where}"
                f" ({'another process took it over' if holder else 'its lease was released'});"
                " nothing more is written: the other owner carries the run"
            )

    def acquire_lease(self, lease: Lease, takeover: Callable[[Lease], bool]) -> None:
        """Make ``lease`` the run's lease, atomically (under the run's lock): if no one
        holds one, if the holder's has expired, or if ``takeover(holder)`` says its
        holder is gone; else raise :class:`~remit.errors.RunLeased` naming it."""

        def body(conn: psycopg.Connection[Any]) -> None:
            self._lock_run(conn, lease.run_id)
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

        self._tx(f"take the lease of run {lease.run_id!r}", body)

    def renew_lease(self, run_id: str, owner: str, now: float, expires: float) -> bool:
        """Move ``owner``'s lease on (a heartbeat); False if ``owner`` holds it no more."""

        def body(conn: psycopg.Connection[Any]) -> bool:
            cur = conn.execute(
                "UPDATE leases SET heartbeat = %s, expires = %s WHERE run_id = %s AND owner = %s",
                (now, expires, run_id, owner),
            )
            return cur.rowcount > 0

        return self._tx(f"renew the lease of run {run_id!r}", body)

    def release_lease(self, run_id: str, owner: str) -> None:
        """Give up ``owner``'s lease (nothing happens if it holds none)."""

        def body(conn: psycopg.Connection[Any]) -> None:
            conn.execute("DELETE FROM leases WHERE run_id = %s AND owner = %s", (run_id, owner))

        self._tx(f"release the lease of run {run_id!r}", body)

    def get_lease(self, run_id: str) -> Lease | None:
        """The run's lease, expired or not, or ``None``."""

        def body(conn: psycopg.Connection[Any]) -> Lease | None:
            row = conn.execute(_SELECT_LEASE, (run_id,)).fetchone()
            return None if row is None else Lease(*row)

        return self._tx(f"read the lease of run {run_id!r}", body)
