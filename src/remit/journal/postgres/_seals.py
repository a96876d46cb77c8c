"""Sealed runs: each step row chained as it is written, and the checkpoints the owner signs.

A run is sealed once (:meth:`SealQueries.seal`, with the public key its checkpoints
verify with). From then on every write that changes one of its step rows gives the row
its place in the run's chain (``n``) and its hash as written (``entry``); an entry a
later write replaces (a result landing on its intent) moves to ``superseded``, so the
whole chain stays readable (``remit.journal._chain`` says what is hashed).

The process that sealed the run (its owner, holding the signing function) chains its
own writes without reading anything back: it knows which of its rows are still
``started`` (the only rows a later write may change) and checks the database changed
exactly the rows it expected, else it chains the batch again from what the rows hold.
It signs a checkpoint in the same transaction as each batch and when the run ends. A
row another process writes (a person's answer to an approval) waits with ``n = -1``
until the owner chains it at its next batch.

This is SQLite's ``_seals`` on PostgreSQL, with one difference that matters: there,
one writer holds the whole file; here, every transaction that writes a run's rows first
takes the run's advisory lock (``_leases``), so the owner's batches and other processes'
rows get their places one after another. The owner's picture of its chain lives in
this process; when a transaction fails (a lost connection, a server restart) it is
marked stale and read again from the database by the next write, which may then be
the same batch again (the step protocol makes that a no-op for what was committed).

Separate because it is the one part of the database that holds a signing function: the
journal itself never sees a key, only a callable that signs bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, LiteralString

from remit.errors import JournalError
from remit.journal._chain import (
    STEP_FIELDS,
    ChainEntry,
    Checkpoint,
    genesis,
    row_hash,
    run_hash,
)
from remit.journal._sealing import (
    Held,
    Stored,
    blob,
    keep,
    next_checkpoint,
    place,
    place_exact,
    predict,
)
from remit.journal._store import RunRecord, StepRecord
from remit.journal.postgres._connection import sql
from remit.journal.postgres._leases import LeaseQueries

if TYPE_CHECKING:
    import psycopg

Sign = Callable[[bytes], bytes]

_COLUMNS: Final = ", ".join(STEP_FIELDS)
#: the upsert of ``_steps`` (same protocol) with the row's place and hash
UPSERT_SEALED: Final = sql(
    f"INSERT INTO steps ({_COLUMNS}, n, entry)"
    f" VALUES ({', '.join(['%s'] * (len(STEP_FIELDS) + 2))})"
    " ON CONFLICT (run_id, step_id) DO UPDATE SET"
    " status = excluded.status, output = excluded.output, error = excluded.error,"
    " spent = excluded.spent, ended_at = excluded.ended_at,"
    " proof = COALESCE(steps.proof, excluded.proof), n = excluded.n, entry = excluded.entry"
    " WHERE steps.status = 'started'"
    "  AND (excluded.status <> 'started' OR excluded.error IS NOT NULL)"
)
_RUN_ROW: Final = (
    "SELECT run_id, goal, agent, remit, status, inputs, result, error, meta, created_at,"
    " updated_at FROM runs WHERE run_id = %s"
)
_LAST_CHECKPOINT: Final = (
    "SELECT k, n, head FROM checkpoints WHERE run_id = %s ORDER BY k DESC LIMIT 1"
)
_PUT_CHECKPOINT: Final = "INSERT INTO checkpoints VALUES (%s, %s, %s, %s, %s, %s, %s)"
_PUT_SUPERSEDED: Final = "INSERT INTO superseded VALUES (%s, %s, %s, %s)"
_UNCHAINED: Final = sql(f"SELECT {_COLUMNS} FROM steps WHERE run_id = %s AND n < 0 ORDER BY pos")
#: at a seal, rows written before it too (none, when a run is sealed as it is created)
_NOT_CHAINED: Final = sql(
    f"SELECT {_COLUMNS} FROM steps WHERE run_id = %s AND (n IS NULL OR n < 0) ORDER BY pos"
)
_SET_PLACE: Final = "UPDATE steps SET n = %s, entry = %s WHERE run_id = %s AND step_id = %s"


class SealQueries(LeaseQueries):
    """Seals, the chain and its checkpoints (see the module docstring)."""

    _held: dict[str, Held]

    def seal(self, run_id: str, key: bytes, sign: Sign) -> None:
        """Chain run ``run_id``'s step writes from now on, and sign a checkpoint with
        ``sign`` after each batch and at the run's end; ``key`` is the public key the
        checkpoints verify with. Sealing again (a resumed run) with the same key
        continues the chain; another key is refused. The first checkpoint, signed here,
        covers the run's record as created."""

        def body(conn: psycopg.Connection[Any]) -> Held:
            self._lock_run(conn, run_id)
            return self._seal_in(conn, run_id, key, sign)

        self._held[run_id] = self._tx(f"seal run {run_id!r}", body)

    def _on_retry(self, error: BaseException) -> None:
        # the transaction rolled back: what this process knew of its chains may be
        # ahead of the database; the next write reads it again
        for held in self._held.values():
            held.stale = True

    def _seal_in(self, conn: psycopg.Connection[Any], run_id: str, key: bytes, sign: Sign) -> Held:
        """:meth:`seal`, in ``conn``'s open transaction (``create_run`` seals a new run in
        its own); the caller keeps the state it returns once the transaction commits."""
        row = conn.execute("SELECT key FROM seals WHERE run_id = %s", (run_id,)).fetchone()
        if row is None:
            conn.execute("INSERT INTO seals (run_id, key) VALUES (%s, %s)", (run_id, key))
        elif blob(row[0]) != key:
            raise JournalError(
                f"run {run_id!r} in journal {self.where} is sealed with another key"
                f" ({blob(row[0]).hex()[:16]}...); its checkpoints cannot be"
                " continued with this one"
            )
        held = self._load_held(conn, run_id, sign)
        entries = self._chain_others(conn, run_id, held, [], _NOT_CHAINED)
        self._checkpoint(conn, run_id, held, entries, force=held.k == 0)
        return held

    def _load_held(self, conn: psycopg.Connection[Any], run_id: str, sign: Sign) -> Held:
        last = conn.execute(_LAST_CHECKPOINT, (run_id,)).fetchone()
        k, n, head = (0, 0, genesis(run_id)) if last is None else last
        row = conn.execute(
            # (rows another process wrote wait at n = -1: they hold no place yet)
            "SELECT GREATEST((SELECT MAX(n) FROM steps WHERE run_id = %s AND n > 0),"
            " (SELECT MAX(n) FROM superseded WHERE run_id = %s))",
            (run_id, run_id),
        ).fetchone()
        top = (row[0] if row is not None else None) or 0
        held = Held(sign, k, n, blob(head), self._run_hash(conn, run_id), top + 1)
        for *values, at, entry in conn.execute(
            sql(f"SELECT {_COLUMNS}, n, entry FROM steps")
            + " WHERE run_id = %s AND status = 'started' AND n > 0",
            (run_id,),
        ):
            held.open[values[1]] = (StepRecord(*values), at, blob(entry))
        return held

    def _run_hash(self, conn: psycopg.Connection[Any], run_id: str) -> bytes:
        row = conn.execute(_RUN_ROW, (run_id,)).fetchone()
        if row is None:
            raise JournalError(f"cannot seal run {run_id!r}: no such run in journal {self.where}")
        return run_hash(RunRecord(*row))

    # --- writing (inside the caller's transaction) ----------------------------------------

    def _is_sealed(self, conn: psycopg.Connection[Any], run_id: str) -> bool:
        if run_id in self._held:
            return True
        return (
            conn.execute("SELECT 1 FROM seals WHERE run_id = %s", (run_id,)).fetchone() is not None
        )

    def _put_sealed(
        self, conn: psycopg.Connection[Any], run_id: str, records: Sequence[StepRecord]
    ) -> None:
        """Write a sealed run's records, chained; the owner signs a checkpoint."""
        held = self._held.get(run_id)
        if held is None:  # another process's run: its owner chains these rows later
            self._put_exact(conn, run_id, records, None)
            return
        if held.stale:
            held = self._held[run_id] = self._load_held(conn, run_id, held.sign)
        try:
            entries = self._chain_others(conn, run_id, held, [])
            if not self._put_predicted(conn, run_id, records, held, entries):
                self._put_exact(conn, run_id, records, held, entries)
            self._checkpoint(conn, run_id, held, entries)
        except BaseException:
            held.stale = True  # the transaction rolls back; see _on_retry
            raise

    def _put_predicted(
        self,
        conn: psycopg.Connection[Any],
        run_id: str,
        records: Sequence[StepRecord],
        held: Held,
        entries: list[bytes],
    ) -> bool:
        """The owner's fast path: chain from what it knows of its open rows (see
        :func:`~remit.journal._sealing.predict`), and keep it only if the database
        changed exactly the rows expected (False: nothing was kept)."""
        p = predict(run_id, records, held)
        conn.execute("SAVEPOINT remit_chain")
        changed = 0
        if p.count:
            cur = conn.cursor()
            cur.executemany(UPSERT_SEALED, p.params)
            changed = cur.rowcount
        if changed != p.count:  # a row this process did not know of: chain exactly
            conn.execute("ROLLBACK TO remit_chain")
            conn.execute("RELEASE remit_chain")
            return False
        if p.superseded:
            conn.cursor().executemany(_PUT_SUPERSEDED, p.superseded)
        conn.execute("RELEASE remit_chain")
        keep(held, p, entries)
        return True

    def _put_exact(
        self,
        conn: psycopg.Connection[Any],
        run_id: str,
        records: Sequence[StepRecord],
        held: Held | None,
        entries: list[bytes] | None = None,
    ) -> None:
        """Chain a batch from what the rows hold (``held`` None: not the owner, so the
        rows wait, ``n = -1``, for the owner to chain them)."""
        ids = list(dict.fromkeys(r.step_id for r in records))
        rows: dict[str, Stored] = {}
        for *values, at, entry in conn.execute(
            sql(f"SELECT {_COLUMNS}, n, entry FROM steps WHERE run_id = %s AND step_id = ANY(%s)"),
            (run_id, ids),
        ):
            rows[values[1]] = (StepRecord(*values), at, entry)
        # sent together, in order (a result after its intent in one batch lands on it):
        # a worker's batch is one round trip, not one per row
        puts: list[tuple[Any, ...]] = []
        olds: list[tuple[str, int, str, bytes]] = []
        place_exact(run_id, records, rows, held, entries, puts.append, olds.append)
        cur = conn.cursor()
        if olds:
            cur.executemany(_PUT_SUPERSEDED, olds)
        if puts:
            cur.executemany(UPSERT_SEALED, puts)

    def _chain_others(
        self,
        conn: psycopg.Connection[Any],
        run_id: str,
        held: Held,
        entries: list[bytes],
        query: LiteralString = _UNCHAINED,
    ) -> list[bytes]:
        """Chain the rows other processes wrote since (``n = -1``), as they stand."""
        places: list[tuple[Any, ...]] = []
        for values in conn.execute(query, (run_id,)).fetchall():
            row = StepRecord(*values)
            entry = row_hash(row)
            places.append((place(held, row, entry, entries), entry, run_id, row.step_id))
        if places:
            conn.cursor().executemany(_SET_PLACE, places)
        return entries

    def _checkpoint(
        self,
        conn: psycopg.Connection[Any],
        run_id: str,
        held: Held,
        entries: Sequence[bytes],
        *,
        force: bool = False,
    ) -> None:
        """Sign the head over ``entries`` (the links of the places after the last
        checkpoint)."""
        row = next_checkpoint(run_id, held, entries, force=force)
        if row is not None:
            conn.execute(_PUT_CHECKPOINT, row)

    def _finish_checkpoint(self, conn: psycopg.Connection[Any], run_id: str) -> None:
        """The checkpoint that covers a run's outcome (its record changed)."""
        held = self._held.get(run_id)
        if held is None:
            return
        if held.stale:
            held = self._held[run_id] = self._load_held(conn, run_id, held.sign)
        try:
            held.run_hash = self._run_hash(conn, run_id)
            entries = self._chain_others(conn, run_id, held, [])
            self._checkpoint(conn, run_id, held, entries, force=True)
        except BaseException:
            held.stale = True
            raise

    # --- reading -----------------------------------------------------------------------

    def seal_key(self, run_id: str) -> bytes | None:
        """The public key run ``run_id``'s checkpoints verify with (None: not sealed)."""

        def body(conn: psycopg.Connection[Any]) -> bytes | None:
            row = conn.execute("SELECT key FROM seals WHERE run_id = %s", (run_id,)).fetchone()
            return None if row is None else blob(row[0])

        return self._tx(f"read the seal of run {run_id!r}", body)

    def chain(self, run_id: str) -> list[ChainEntry]:
        """Run ``run_id``'s chain in order; then, with ``n = -1``, rows other processes
        wrote that its owner has not chained yet (empty if the run is not sealed)."""

        def body(conn: psycopg.Connection[Any]) -> list[Any]:
            # one snapshot for both tables: a batch moves an entry from one to the other
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            rows = conn.execute(
                "SELECT n, step_id, entry FROM steps WHERE run_id = %s AND n IS NOT NULL",
                (run_id,),
            ).fetchall()
            return (
                rows
                + conn.execute(
                    "SELECT n, step_id, entry FROM superseded WHERE run_id = %s", (run_id,)
                ).fetchall()
            )

        rows = self._tx(f"read the chain of run {run_id!r}", body)
        entries = [ChainEntry(n, sid, blob(e)) for n, sid, e in rows]
        entries.sort(key=lambda e: (e.n < 0, e.n))
        return entries

    def checkpoints(self, run_id: str) -> list[Checkpoint]:
        """Run ``run_id``'s signed checkpoints, in order."""

        def body(conn: psycopg.Connection[Any]) -> list[Any]:
            return conn.execute(
                "SELECT run_id, k, n, head, run_hash, signature, at FROM checkpoints"
                " WHERE run_id = %s ORDER BY k",
                (run_id,),
            ).fetchall()

        rows = self._tx(f"read the checkpoints of run {run_id!r}", body)
        return [
            Checkpoint(r, k, n, blob(h), blob(rh), blob(sig), at)
            for r, k, n, h, rh, sig, at in rows
        ]
