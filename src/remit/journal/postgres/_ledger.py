"""A ledger whose accounts live in the journal's PostgreSQL database, so that siblings
running in different processes reserve against one parent's budget and never overshoot.

It is :class:`remit.core.ledger.Ledger` with the same methods the Gate calls (``open``,
``reserve``, ``settle``, ``release``, ``charge``), but the truth is in two tables:
``accounts`` (per task: limits, spent, reserved) and ``reservations`` (per open hold:
its account chain, its amount, the process holding it). Each operation is one
transaction that locks the rows of the account and every ancestor with ``SELECT ...
FOR UPDATE`` *in name order* (every process takes them in the same order, so two
reservations on sibling chains never deadlock: one waits for the other), checks every
dimension of every account on the chain, and applies the change to all of them, or
to none. Nothing is held in memory that a crash would lose: a process killed mid-way
leaves either its whole transaction or nothing (the server rolls back a transaction
whose connection died).

**A dead process's reservations are settled from the journal, or released**
(:meth:`recover`, which a resume calls before it carries the run on, and the Ray
executor when a worker dies). Each hold names its step (``key``), and the journal lives
in the same database: a step whose result is recorded is booked at what the journal says
it spent; any other hold is given back, and the step runs again and reserves again
(settling it at the worst case would charge a step that never ran). :meth:`charge` and
:meth:`settle` take the step id as ``key``: a step booked once under its key is never
booked again, so a resumed process replaying a step another process settled does not
charge it twice.

Accounts are opened lazily: :meth:`open` queues the row and the next operation (or
:meth:`flush`) writes every queued one in a single transaction, so a plan's thousand
children cost one round trip, not a thousand.

>>> ledger = PostgresLedger(url, "run-1")                  # doctest: +SKIP
>>> root = ledger.open("root", Budget(calls=2))             # doctest: +SKIP
>>> r = ledger.reserve(ledger.open("child", Budget(), root), Usage(calls=1))  # doctest: +SKIP
>>> ledger.settle(r, Usage(calls=1))                        # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

from remit.core.ledger import DIMENSIONS, Account, Budget, Ledger, Reservation, Usage
from remit.errors import BudgetExceeded, JournalError
from remit.journal._store import FINAL_STATUSES, Lease
from remit.journal.lease import holder_is_gone
from remit.journal.postgres._connection import RECONNECT_TIMEOUT_S, require_psycopg, sql
from remit.journal.postgres._schema import Migrations

if TYPE_CHECKING:
    import psycopg

_EPS: Final = 1e-12
_LIM: Final = ", ".join(f"lim_{d}" for d in DIMENSIONS)
_SPENT: Final = ", ".join(f"spent_{d}" for d in DIMENSIONS)
_RES: Final = ", ".join(f"res_{d}" for d in DIMENSIONS)
#: the chain's rows, locked in one order (the sort runs below the lock, so rows are
#: locked as sorted): the whole of the deadlock avoidance
_LOCK_CHAIN: Final = sql(
    f"SELECT name, {_LIM}, {_SPENT}, {_RES} FROM accounts"
    " WHERE run_id = %s AND name = ANY(%s) ORDER BY name FOR UPDATE"
)
_OPEN: Final = sql(
    f"INSERT INTO accounts (run_id, name, parent, {_LIM})"
    " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
)
#: a dead holder's reservations, with what the journal recorded of each one's step
_DEAD: Final = sql(
    "SELECT r.chain, r.amount, r.key, s.status, s.spent FROM reservations r"
    " LEFT JOIN steps s ON s.run_id = r.run_id AND s.step_id = r.key"
    " WHERE r.run_id = %s AND r.holder = ANY(%s)"
)
_ADD: Final = sql(
    "UPDATE accounts SET "
    + ", ".join(f"spent_{d} = spent_{d} + %s" for d in DIMENSIONS)
    + ", "
    + ", ".join(f"res_{d} = res_{d} + %s" for d in DIMENSIONS)
    + " WHERE run_id = %s AND name = ANY(%s)"
)


class _Database(Migrations):
    """The ledger's own connection to the journal's database (its transactions never
    wait behind the journal's batches)."""

    def __init__(self, url: str, schema: str, reconnect_timeout: float) -> None:
        require_psycopg()
        # the ledger's commits need not wait for the disk: a hold or a booking lost in a
        # crash is made again from the journal (recover() settles from it, a replayed
        # step is booked under its key), and what one process commits the others see
        # at once, durable or not
        self.url, self.schema, self.durability = url, schema, "normal"
        self.reconnect_timeout = reconnect_timeout
        self._lock = threading.RLock()
        self._conn = None
        self._closed = False
        self._schema_version = self._migrate()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()


class PgAccount(Account):
    """An account of a :class:`PostgresLedger`: its limits and, as of this process's last
    operation on it, what it spent and has reserved (the database holds the truth)."""

    __slots__ = ()


class PgReservation(Reservation):
    """A hold recorded in the ``reservations`` table under ``id``."""

    __slots__ = ("id", "key")

    def __init__(
        self, account: Account, amount: tuple[float, ...], dims: tuple[int, ...], id: str
    ) -> None:
        super().__init__(account, amount, dims)
        self.id = id
        #: the step it is for, if the caller named one (settling books it once)
        self.key: str | None = None


def _holder() -> str:
    """This process, as reservations name it: host, pid and a token of its own."""
    return f"{socket.gethostname()}|{os.getpid()}|{secrets.token_hex(4)}"


def holder_gone(holder: str) -> bool:
    """Whether the process that holds reservations as ``holder`` is provably dead (it ran
    on this host and is gone; see :func:`remit.journal.lease.holder_is_gone`)."""
    host, _, rest = holder.partition("|")
    pid = rest.partition("|")[0]
    if not pid.isdigit():
        return False
    return holder_is_gone(Lease("", holder, int(pid), host, 0.0, 0.0, 0.0))


class PostgresLedger(Ledger):
    """The budget accounts of run ``run_id``, shared by every process that opens them."""

    shared = True

    def __init__(
        self,
        url: str,
        run_id: str,
        *,
        schema: str = "public",
        reconnect_timeout: float = RECONNECT_TIMEOUT_S,
    ) -> None:
        super().__init__()
        self.run_id = run_id
        self._pending: list[tuple[Any, ...]] = []
        #: spend on chains nothing limits, booked with the next flush
        self._bookings: list[tuple[str | None, tuple[str, ...], tuple[float, ...]]] = []
        self._pending_lock = threading.Lock()
        #: this process, as its reservations name it
        self.holder = _holder()
        self._db = _Database(url, schema, reconnect_timeout)

    def close(self) -> None:
        """Close the ledger's connection."""
        self._db.close()

    # --- the Ledger interface ---------------------------------------------------------

    def open(self, name: str, budget: Budget, parent: Account | None = None) -> PgAccount:
        """The account ``name`` under ``parent``, made with ``budget``'s limits unless it
        exists (another process, or this run before a crash, made it): then it is the
        same account, with what it has spent.

        Written with the next operation of this ledger, or :meth:`flush`: a plan's
        children are opened in one transaction, not one each."""
        account = PgAccount(name, budget, parent)
        row = (self.run_id, name, None if parent is None else parent.name, *account.limits)
        with self._pending_lock:
            self._pending.append(row)
        return account

    def flush(self) -> None:
        """Write the accounts opened since the last operation (before another process
        reserves on them: the Ray executor flushes before it hands tasks out)."""
        with self._pending_lock:
            rows, self._pending = self._pending, []
            bookings, self._bookings = self._bookings, []
        if not rows and not bookings:
            return

        def body(conn: psycopg.Connection[Any]) -> None:
            if rows:
                conn.cursor().executemany(_OPEN, rows)
            if bookings:
                self._write_bookings(conn, bookings)

        try:
            self._db._tx(f"open {len(rows)} accounts, book {len(bookings)} steps", body)  # pyright: ignore[reportPrivateUsage]
        except BaseException:
            with self._pending_lock:
                # nothing was written: the next one tries again
                self._pending[:0] = rows
                self._bookings[:0] = bookings
            raise

    def _book_later(self, key: str | None, chain: Sequence[str], vec: tuple[float, ...]) -> None:
        with self._pending_lock:
            self._bookings.append((key, tuple(chain), vec))

    def _write_bookings(
        self,
        conn: psycopg.Connection[Any],
        bookings: Sequence[tuple[str | None, tuple[str, ...], tuple[float, ...]]],
    ) -> None:
        """Book spend on unlimited chains: each step once (by its key), one update per
        account, in name order (as ``_lock_chain`` locks: no deadlock)."""
        first: dict[str, int] = {}
        for i, (key, _, _) in enumerate(bookings):
            if key is not None:
                first.setdefault(key, i)
        fresh: set[str] = set()
        if first:
            fresh = {
                k
                for (k,) in conn.execute(
                    "INSERT INTO booked (run_id, key) SELECT %s, unnest(%s::text[])"
                    " ON CONFLICT DO NOTHING RETURNING key",
                    (self.run_id, list(first)),
                )
            }
        totals: dict[str, list[float]] = {}
        for i, (key, chain, vec) in enumerate(bookings):
            if key is not None and (key not in fresh or first[key] != i):
                continue
            for name in chain:
                t = totals.setdefault(name, [0.0, 0.0, 0.0, 0.0])
                for d in range(4):
                    t[d] += vec[d]
        if totals:
            conn.cursor().executemany(
                _ADD, [(*t, 0, 0, 0, 0, self.run_id, [n]) for n, t in sorted(totals.items())]
            )

    def reserve(self, account: Account, worst: Usage, key: str | None = None) -> PgReservation:
        """Hold ``worst`` on ``account`` and every ancestor, in one transaction with their
        rows locked, or raise :class:`~remit.errors.BudgetExceeded` holding nothing."""
        amount = (worst.calls, worst.input_tokens, worst.output_tokens, worst.cost_usd)
        dims = tuple(i for i in range(4) if amount[i])
        if _unlimited(account, dims):
            # no account on the chain limits what this holds: nothing to check, no row to
            # lock; the hold is this process's own and the spend is booked in a batch
            local = PgReservation(account, amount, dims, "")
            local.key = key
            self._mirror(account, amount, None)
            return local
        chain = _chain(account)
        rid = f"{self.holder}|{secrets.token_hex(8)}"
        self.flush()

        def body(conn: psycopg.Connection[Any]) -> None:
            rows = self._lock_chain(conn, chain)
            for name in chain:  # the account first: its refusal names the nearest limit
                limits, spent, reserved = rows[name]
                for i in dims:
                    limit = limits[i]
                    if limit is not None and spent[i] + reserved[i] + amount[i] > limit + _EPS:
                        left = max(limit - spent[i] - reserved[i], 0)
                        raise BudgetExceeded(
                            f"budget.{DIMENSIONS[i]} of {name} would be exceeded: needs"
                            f" {amount[i]:g}, {left:g} of {limit:g} left ({spent[i]:g} spent,"
                            f" {reserved[i]:g} reserved, by every process of the run)",
                            dimension=DIMENSIONS[i],
                            account=name,
                        )
            conn.execute(_ADD, (0, 0, 0, 0, *amount, self.run_id, chain))
            conn.execute(
                "INSERT INTO reservations (run_id, id, holder, chain, amount, at, key)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (
                    self.run_id,
                    rid,
                    self.holder,
                    chain,
                    [float(a) for a in amount],
                    time.time(),
                    key,
                ),
            )

        self._db._tx(f"reserve on account {account.name!r}", body)  # pyright: ignore[reportPrivateUsage]
        self._mirror(account, amount, None)
        reservation = PgReservation(account, amount, dims, rid)
        reservation.key = key
        return reservation

    def settle(self, reservation: Reservation, actual: Usage) -> None:
        """Replace the hold by the actual use on the whole chain (once: settling or
        releasing it again does nothing)."""
        vec = (actual.calls, actual.input_tokens, actual.output_tokens, actual.cost_usd)
        self._end(reservation, vec)

    def release(self, reservation: Reservation) -> None:
        """Give the whole hold back (the step did not spend)."""
        self._end(reservation, None)

    def charge(self, account: Account, actual: Usage, key: str | None = None) -> None:
        """Book spend that already happened (a result served from the journal) on the
        chain; with ``key``, only if nothing was booked under it yet."""
        vec = (actual.calls, actual.input_tokens, actual.output_tokens, actual.cost_usd)
        if not any(vec):
            return
        chain = _chain(account)
        if _unlimited(account, tuple(i for i in range(4) if vec[i])):
            self._book_later(key, chain, vec)
            self._mirror(account, None, vec)
            return
        self.flush()

        def body(conn: psycopg.Connection[Any]) -> bool:
            if key is not None and not self._book(conn, key):
                return False
            self._lock_chain(conn, chain)
            conn.execute(_ADD, (*vec, 0, 0, 0, 0, self.run_id, chain))
            return True

        if self._db._tx(f"charge account {account.name!r}", body):  # pyright: ignore[reportPrivateUsage]
            self._mirror(account, None, vec)

    # --- beyond the interface ---------------------------------------------------------

    def recover(self, is_gone: Callable[[str], bool] = holder_gone) -> int:
        """Give back every reservation of the run whose holder ``is_gone`` (by default: a
        process of this host that no longer runs), and say how many. A hold whose step's
        result is in the journal is settled at what the journal says it spent (booked
        once, under the step); any other is released (the step runs again, and reserves
        again). A resume calls it before it carries the run on, and the Ray executor
        when a worker dies."""
        self.flush()

        def body(conn: psycopg.Connection[Any]) -> int:
            holders = [
                h
                for (h,) in conn.execute(
                    "SELECT DISTINCT holder FROM reservations WHERE run_id = %s", (self.run_id,)
                )
                if h != self.holder and is_gone(h)
            ]
            if not holders:
                return 0
            dead = conn.execute(_DEAD, (self.run_id, holders)).fetchall()
            self._lock_chain(conn, sorted({name for chain, *_ in dead for name in chain}))
            for chain, amount, key, status, spent in dead:
                vec = (0.0, 0.0, 0.0, 0.0)
                if key is not None and status in FINAL_STATUSES and spent:
                    used = Usage.from_dict(json.loads(spent))
                    if self._book(conn, key):
                        vec = (used.calls, used.input_tokens, used.output_tokens, used.cost_usd)
                conn.execute(_ADD, (*vec, *(-a for a in amount), self.run_id, chain))
            conn.execute(
                "DELETE FROM reservations WHERE run_id = %s AND holder = ANY(%s)",
                (self.run_id, holders),
            )
            return len(dead)

        return self._db._tx("recover reservations", body)  # pyright: ignore[reportPrivateUsage]

    def spent_of(self, account: Account) -> Usage:
        """What ``account``'s subtree spent, by every process (read from the database)."""
        return self.state(account.name)[0]

    def state(self, name: str) -> tuple[Usage, Usage]:
        """Account ``name``'s (spent, reserved), by every process, as the database holds it."""
        self.flush()

        def body(conn: psycopg.Connection[Any]) -> Any:
            return conn.execute(
                sql(f"SELECT {_SPENT}, {_RES} FROM accounts WHERE run_id = %s AND name = %s"),
                (self.run_id, name),
            ).fetchone()

        row = self._db._tx(f"read account {name!r}", body)  # pyright: ignore[reportPrivateUsage]
        if row is None:
            raise JournalError(f"no account {name!r} in run {self.run_id!r}")
        return _usage(row[:4]), _usage(row[4:])

    # --- inside a transaction -----------------------------------------------------------

    def _lock_chain(
        self, conn: psycopg.Connection[Any], chain: Sequence[str]
    ) -> dict[str, tuple[tuple[float | None, ...], tuple[float, ...], tuple[float, ...]]]:
        rows = {
            r[0]: (tuple(r[1:5]), tuple(r[5:9]), tuple(r[9:13]))
            for r in conn.execute(_LOCK_CHAIN, (self.run_id, list(chain)))
        }
        missing = [n for n in chain if n not in rows]
        if missing:
            raise JournalError(
                f"ledger of run {self.run_id!r}: no account {missing[0]!r}; open() it first"
            )
        return rows

    def _book(self, conn: psycopg.Connection[Any], key: str) -> bool:
        cur = conn.execute(
            "INSERT INTO booked (run_id, key) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (self.run_id, key),
        )
        return cur.rowcount > 0

    def _end(self, reservation: Reservation, actual: tuple[float, ...] | None) -> None:
        if not reservation.open:
            return
        if not isinstance(reservation, PgReservation):
            raise TypeError("this reservation was not made by a PostgresLedger")
        key = reservation.key
        chain = _chain(reservation.account)
        if not reservation.id:  # held by this process alone (nothing limits it)
            reservation.open = False
            if actual is not None and any(actual):
                self._book_later(key, chain, actual)
            self._mirror(reservation.account, tuple(-a for a in reservation.amount), actual)
            return

        def body(conn: psycopg.Connection[Any]) -> bool:
            row = conn.execute(
                "DELETE FROM reservations WHERE run_id = %s AND id = %s RETURNING amount",
                (self.run_id, reservation.id),
            ).fetchone()
            if row is None:  # already settled, or released by recover()
                return False
            spend = actual
            if spend is not None and key is not None and not self._book(conn, key):
                spend = None  # booked already: only the hold goes
            self._lock_chain(conn, chain)
            spent = spend or (0, 0, 0, 0)
            conn.execute(_ADD, (*spent, *(-a for a in row[0]), self.run_id, chain))
            return True

        if self._db._tx(f"settle on account {reservation.account.name!r}", body):  # pyright: ignore[reportPrivateUsage]
            reservation.open = False
            self._mirror(reservation.account, tuple(-a for a in reservation.amount), actual)
        reservation.open = False

    def _mirror(
        self,
        account: Account,
        reserved: tuple[float, ...] | None,
        spent: tuple[float, ...] | None,
    ) -> None:
        """Apply a committed change to this process's view of the chain's accounts."""
        with self._lock:
            acc: Account | None = account
            while acc is not None:
                for i in range(4):
                    if reserved is not None:
                        acc.reserved[i] += reserved[i]
                    if spent is not None:
                        acc.spent_vec[i] += spent[i]
                acc = acc.parent


def _unlimited(account: Account, dims: Sequence[int]) -> bool:
    """Whether no account on ``account``'s chain limits any of ``dims``."""
    return all(a.limits[i] is None for a in account.ancestry() for i in dims)


def _chain(account: Account) -> list[str]:
    return [a.name for a in account.ancestry()]


def _usage(v: Sequence[float]) -> Usage:
    return Usage(int(v[0]), int(v[1]), int(v[2]), float(v[3]))
