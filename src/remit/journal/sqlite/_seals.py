"""Sealed runs: each step row chained as it is written, and the checkpoints the owner signs.

A run is sealed once (:meth:`SealQueries.seal`, with the public key its checkpoints
verify with). From then on every write that changes one of its step rows gives the row
its place in the run's chain (``n``) and its hash as written (``entry``); an entry a
later write replaces (a result landing on its intent) moves to ``superseded``, so the
whole chain stays readable (``remit.journal._chain`` says what is hashed).

The process that sealed the run (its owner, holding the signing function) chains its
own writes without reading anything back: it knows which of its rows are still
``started`` (the only rows a later write may change) and checks the database changed
exactly the rows it expected, else it writes the batch again, in a new transaction,
chained from what the rows hold. It signs a checkpoint in the same transaction as each
batch and when the run ends. A row another process writes (a person's answer to an
approval) waits with ``n = -1`` until the owner chains it at its next batch.

Separate because it is the one part of the file that holds a signing function: the
journal itself never sees a key, only a callable that signs bytes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Final

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
from remit.journal.sqlite._file import insert_rows, transaction
from remit.journal.sqlite._leases import LeaseQueries

Sign = Callable[[bytes], bytes]

_COLUMNS: Final = ", ".join(STEP_FIELDS)


def on_conflict(*also: str) -> str:
    """The step protocol, as the tail of an ``INSERT INTO steps``; ``also``: columns a
    result sets besides (a sealed row's place and hash).

    The WHERE clause carries the whole protocol: an intent never touches an existing
    row, and a result lands only on a row still "started" (the first result wins). An
    intent that carries an error marks an unfinished step as interrupted (it stays
    "started": a resume runs it again). Identity and input stay as first written; the
    result supplies what it learned."""
    return (
        " ON CONFLICT (run_id, step_id) DO UPDATE SET"
        " status = excluded.status, output = excluded.output, error = excluded.error,"
        " spent = excluded.spent, ended_at = excluded.ended_at,"
        " proof = COALESCE(steps.proof, excluded.proof)"
        + "".join(f", {column} = excluded.{column}" for column in also)
        + " WHERE steps.status = 'started'"
        "  AND (excluded.status <> 'started' OR excluded.error IS NOT NULL)"
    )


#: the upsert of ``_steps`` (same protocol) with the row's place and hash
_INSERT_SEALED: Final = f"INSERT INTO steps ({_COLUMNS}, n, entry)"
_SEALED_WIDTH: Final = len(STEP_FIELDS) + 2
_ON_CONFLICT_SEALED: Final = on_conflict("n", "entry")
UPSERT_SEALED: Final = (
    f"{_INSERT_SEALED} VALUES ({', '.join('?' * _SEALED_WIDTH)}){_ON_CONFLICT_SEALED}"
)
_RUN_ROW: Final = (
    "SELECT run_id, goal, agent, remit, status, inputs, result, error, meta, created_at,"
    " updated_at FROM runs WHERE run_id = ?"
)
_LAST_CHECKPOINT: Final = (
    "SELECT k, n, head FROM checkpoints WHERE run_id = ? ORDER BY k DESC LIMIT 1"
)
_PUT_CHECKPOINT: Final = "INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?, ?, ?)"
_PUT_SUPERSEDED: Final = "INSERT INTO superseded VALUES (?, ?, ?, ?)"
_UNCHAINED: Final = f"SELECT {_COLUMNS} FROM steps WHERE run_id = ? AND n < 0 ORDER BY pos"
#: at a seal, rows written before it too (none, when a run is sealed as it is created)
_NOT_CHAINED: Final = (
    f"SELECT {_COLUMNS} FROM steps WHERE run_id = ? AND (n IS NULL OR n < 0) ORDER BY pos"
)
_SET_PLACE: Final = "UPDATE steps SET n = ?, entry = ? WHERE run_id = ? AND step_id = ?"
#: whether the file holds anything of a run besides its record (a run just created holds
#: nothing: then its seal needs none of the queries that continue a chain)
_ANY_OF_RUN: Final = (
    "SELECT EXISTS (SELECT 1 FROM seals WHERE run_id = ?1)"
    " OR EXISTS (SELECT 1 FROM steps WHERE run_id = ?1)"
    " OR EXISTS (SELECT 1 FROM superseded WHERE run_id = ?1)"
    " OR EXISTS (SELECT 1 FROM checkpoints WHERE run_id = ?1)"
)


class Mispredicted(Exception):
    """The file changed other rows than the run's owner predicted (another process wrote
    some, or a write the file ignores): the batch's transaction must be rolled back and
    the batch written again with ``exact`` placement (see :meth:`StepQueries._put_batch`)."""


class SealQueries(LeaseQueries):
    """Seals, the chain and its checkpoints (see the module docstring)."""

    _held: dict[str, Held]

    def seal(self, run_id: str, key: bytes, sign: Sign) -> None:
        """Chain run ``run_id``'s step writes from now on, and sign a checkpoint with
        ``sign`` after each batch and at the run's end; ``key`` is the public key the
        checkpoints verify with. Sealing again (a resumed run) with the same key
        continues the chain; another key is refused. The first checkpoint, signed here,
        covers the run's record as created."""
        with self._lock, self._errors(f"seal run {run_id!r}"):
            conn = self._live()
            with transaction(conn):
                held = self._seal_in(conn, run_id, key, sign)
            self._held[run_id] = held

    def _seal_in(
        self, conn: sqlite3.Connection, run_id: str, key: bytes, sign: Sign, *, new: bool = False
    ) -> Held:
        """:meth:`seal`, in ``conn``'s open transaction (``create_run`` seals a new run in
        its own, ``new``); the caller keeps the state it returns once the transaction
        commits."""
        if new and not conn.execute(_ANY_OF_RUN, (run_id,)).fetchone()[0]:
            # the chain starts here: one query in place of the six that read where an
            # existing chain stands (each prepared anew on a fresh connection, so about
            # 0.3 ms of a short run's start)
            conn.execute("INSERT INTO seals (run_id, key) VALUES (?, ?)", (run_id, key))
            held = Held(sign, 0, 0, genesis(run_id), self._run_hash(conn, run_id), 1)
            self._checkpoint(conn, run_id, held, [], force=True)
            return held
        row = conn.execute("SELECT key FROM seals WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            conn.execute("INSERT INTO seals (run_id, key) VALUES (?, ?)", (run_id, key))
        elif blob(row[0]) != key:
            raise JournalError(
                f"run {run_id!r} in journal {self.path} is sealed with another key"
                f" ({blob(row[0]).hex()[:16]}...); its checkpoints cannot be"
                " continued with this one"
            )
        held = self._load_held(conn, run_id, sign)
        entries = self._chain_others(conn, run_id, held, [], _NOT_CHAINED)
        self._checkpoint(conn, run_id, held, entries, force=held.k == 0)
        return held

    def _load_held(self, conn: sqlite3.Connection, run_id: str, sign: Sign) -> Held:
        last = conn.execute(_LAST_CHECKPOINT, (run_id,)).fetchone()
        k, n, head = (0, 0, genesis(run_id)) if last is None else last
        top = max(
            # (rows another process wrote wait at n = -1: they hold no place yet)
            conn.execute(
                f"SELECT MAX(n) FROM {table} WHERE run_id = ? AND n > 0", (run_id,)
            ).fetchone()[0]
            or 0
            for table in ("steps", "superseded")
        )
        held = Held(sign, k, n, blob(head), self._run_hash(conn, run_id), top + 1)
        for *values, at, entry in conn.execute(
            f"SELECT {_COLUMNS}, n, entry FROM steps"
            " WHERE run_id = ? AND status = 'started' AND n > 0",
            (run_id,),
        ):
            held.open[values[1]] = (StepRecord(*values), at, blob(entry))
        return held

    def _run_hash(self, conn: sqlite3.Connection, run_id: str) -> bytes:
        row = conn.execute(_RUN_ROW, (run_id,)).fetchone()
        if row is None:
            raise JournalError(f"cannot seal run {run_id!r}: no such run in journal {self.path}")
        return run_hash(RunRecord(*row))

    # --- writing (inside the caller's transaction) ----------------------------------------

    def _is_sealed(self, conn: sqlite3.Connection, run_id: str) -> bool:
        if run_id in self._held:
            return True
        return (
            conn.execute("SELECT 1 FROM seals WHERE run_id = ?", (run_id,)).fetchone() is not None
        )

    def _put_sealed(
        self,
        conn: sqlite3.Connection,
        run_id: str,
        records: Sequence[StepRecord],
        *,
        exact: bool = False,
    ) -> None:
        """Write a sealed run's records, chained; the owner signs a checkpoint. The
        owner predicts what its writes change (:meth:`_put_predicted`); ``exact`` (the
        batch again, after a misprediction rolled it back) first reads the chain's state
        from the file and chains from what the rows hold."""
        held = self._held.get(run_id)
        if held is None:  # another process's run: its owner chains these rows later
            self._put_exact(conn, run_id, records, None)
            return
        try:
            if exact:  # the rolled-back attempt may have moved it past the file
                held = self._held[run_id] = self._load_held(conn, run_id, held.sign)
            entries = self._chain_others(conn, run_id, held, [])
            put = self._put_exact if exact else self._put_predicted
            put(conn, run_id, records, held, entries)
            self._checkpoint(conn, run_id, held, entries)
        except Mispredicted:
            raise  # the caller rolls back and writes the batch again, exactly
        except BaseException:
            # the transaction rolls back: what this process knew of the chain may be ahead
            # of the file; a later seal() reads it again
            self._held.pop(run_id, None)
            raise

    def _put_predicted(
        self,
        conn: sqlite3.Connection,
        run_id: str,
        records: Sequence[StepRecord],
        held: Held,
        entries: list[bytes],
    ) -> None:
        """The owner's fast path: chain from what it knows of its open rows (see
        :func:`~remit.journal._sealing.predict`), and keep it only if the database
        changed exactly the rows expected; else raise :class:`Mispredicted`.

        Not inside a SAVEPOINT that could undo just this: while one is open, SQLite
        copies every page a statement first changes to a statement journal, which cost
        a third more per row than the insert itself (2.5 µs a row against 7.5 here). A
        misprediction is rare (another process's row, a result the file ignores), and
        rolling back the whole transaction serves it."""
        p = predict(run_id, records, held)
        changed = insert_rows(conn, _INSERT_SEALED, _ON_CONFLICT_SEALED, _SEALED_WIDTH, p.params)
        if changed != p.count:  # a row this process did not know of: chain exactly
            raise Mispredicted(run_id)
        if p.superseded:
            conn.executemany(_PUT_SUPERSEDED, p.superseded)
        keep(held, p, entries)

    def _put_exact(
        self,
        conn: sqlite3.Connection,
        run_id: str,
        records: Sequence[StepRecord],
        held: Held | None,
        entries: list[bytes] | None = None,
    ) -> None:
        """Chain a batch from what the rows hold (``held`` None: not the owner, so the
        rows wait, ``n = -1``, for the owner to chain them)."""
        ids = list(dict.fromkeys(r.step_id for r in records))
        rows: dict[str, Stored] = {}
        for start in range(0, len(ids), 900):
            chunk = ids[start : start + 900]
            for *values, at, entry in conn.execute(
                f"SELECT {_COLUMNS}, n, entry FROM steps WHERE run_id = ?"
                f" AND step_id IN ({', '.join('?' * len(chunk))})",
                (run_id, *chunk),
            ):
                rows[values[1]] = (StepRecord(*values), at, entry)
        place_exact(
            run_id, records, rows, held, entries,
            lambda row: conn.execute(UPSERT_SEALED, row),
            lambda old: conn.execute(_PUT_SUPERSEDED, old),
        )  # fmt: skip

    def _chain_others(
        self,
        conn: sqlite3.Connection,
        run_id: str,
        held: Held,
        entries: list[bytes],
        query: str = _UNCHAINED,
    ) -> list[bytes]:
        """Chain the rows other processes wrote since (``n = -1``), as they stand."""
        for values in conn.execute(query, (run_id,)).fetchall():
            row = StepRecord(*values)
            entry = row_hash(row)
            conn.execute(_SET_PLACE, (place(held, row, entry, entries), entry, run_id, row.step_id))
        return entries

    def _checkpoint(
        self,
        conn: sqlite3.Connection,
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

    def _finish_checkpoint(self, conn: sqlite3.Connection, run_id: str) -> None:
        """The checkpoint that covers a run's outcome (its record changed)."""
        held = self._held.get(run_id)
        if held is None:
            return
        try:
            held.run_hash = self._run_hash(conn, run_id)
            entries = self._chain_others(conn, run_id, held, [])
            self._checkpoint(conn, run_id, held, entries, force=True)
        except BaseException:
            self._held.pop(run_id, None)
            raise

    # --- reading -----------------------------------------------------------------------

    def seal_key(self, run_id: str) -> bytes | None:
        """The public key run ``run_id``'s checkpoints verify with (None: not sealed)."""
        with self._lock, self._errors(f"read the seal of run {run_id!r}"):
            row = (
                self._live().execute("SELECT key FROM seals WHERE run_id = ?", (run_id,)).fetchone()
            )
        return None if row is None else blob(row[0])

    def chain(self, run_id: str) -> list[ChainEntry]:
        """Run ``run_id``'s chain in order; then, with ``n = -1``, rows other processes
        wrote that its owner has not chained yet (empty if the run is not sealed)."""
        with self._lock, self._errors(f"read the chain of run {run_id!r}"):
            conn = self._live()
            conn.execute("BEGIN")
            try:
                rows = conn.execute(
                    "SELECT n, step_id, entry FROM steps WHERE run_id = ? AND n IS NOT NULL",
                    (run_id,),
                ).fetchall()
                rows += conn.execute(
                    "SELECT n, step_id, entry FROM superseded WHERE run_id = ?", (run_id,)
                ).fetchall()
            finally:
                conn.execute("ROLLBACK")
        entries = [ChainEntry(n, sid, blob(e)) for n, sid, e in rows]
        entries.sort(key=lambda e: (e.n < 0, e.n))
        return entries

    def checkpoints(self, run_id: str) -> list[Checkpoint]:
        """Run ``run_id``'s signed checkpoints, in order."""
        with self._lock, self._errors(f"read the checkpoints of run {run_id!r}"):
            rows = (
                self._live()
                .execute(
                    "SELECT run_id, k, n, head, run_hash, signature, at FROM checkpoints"
                    " WHERE run_id = ? ORDER BY k",
                    (run_id,),
                )
                .fetchall()
            )
        return [
            Checkpoint(r, k, n, blob(h), blob(rh), blob(sig), at)
            for r, k, n, h, rh, sig, at in rows
        ]
