"""The SQLite journal: one file, no server, safe to read while a run writes it.

The file holds four tables. ``meta`` maps keys to values and records the
``schema_version``; ``runs`` holds one row per :class:`RunRecord`; ``leases`` one row
per run that a process holds (:class:`Lease`); ``steps`` holds one
row per :class:`StepRecord` plus ``pos``, an ``INTEGER PRIMARY KEY`` that numbers rows
in the order they were first written (an explicit alias of the rowid, because VACUUM
may renumber a rowid that has no alias). ``(run_id, step_id)`` is unique.

The schema changes only through :data:`_MIGRATIONS`: entry ``v`` turns a version-``v``
file into a version-``v + 1`` file. A new file is built by running every migration
from version 0, so new and migrated files cannot drift apart.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import operator
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, NoReturn, Self

from remit.errors import (
    JournalCorrupt,
    JournalError,
    JournalVersionError,
    LeaseLost,
    RunLeased,
    RunNotFound,
)
from remit.journal._store import Durability, Lease, RunRecord, RunStatus, StepRecord

__all__ = ["SCHEMA_VERSION", "SQLiteJournal", "load_json"]

# --- schema and migrations --------------------------------------------------------


def _create_v1(conn: sqlite3.Connection) -> None:
    """Version 0 (an empty file) to 1: the first journal schema, whose steps had no
    ``spent`` column."""
    # CHECKs use OR chains, not IN lists: SQLite builds an ephemeral table for each
    # evaluation of an IN list, which tripled the cost of a batched write.
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL)")
    conn.execute(
        "CREATE TABLE runs ("
        " run_id TEXT PRIMARY KEY NOT NULL,"
        " goal TEXT NOT NULL,"
        " agent TEXT NOT NULL,"
        " remit TEXT NOT NULL,"
        " status TEXT NOT NULL"
        "  CHECK (status = 'running' OR status = 'done' OR status = 'failed'),"
        " inputs TEXT,"
        " result TEXT,"
        " error TEXT,"
        " meta TEXT,"
        " created_at REAL NOT NULL,"
        " updated_at REAL NOT NULL)"
    )
    conn.execute("CREATE INDEX runs_by_created ON runs (created_at)")
    conn.execute(
        "CREATE TABLE steps ("
        " pos INTEGER PRIMARY KEY,"
        " run_id TEXT NOT NULL,"
        " step_id TEXT NOT NULL,"
        " task_id TEXT NOT NULL,"
        " seq INTEGER NOT NULL,"
        " kind TEXT NOT NULL,"
        " name TEXT NOT NULL,"
        " status TEXT NOT NULL CHECK (status = 'started' OR status = 'ok'"
        "  OR status = 'error' OR status = 'denied'),"
        " input TEXT,"
        " output TEXT,"
        " error TEXT,"
        " started_at REAL NOT NULL,"
        " ended_at REAL,"
        " UNIQUE (run_id, step_id))"
    )
    # An index on run_id alone carries pos (the rowid) as its last key, so it serves
    # "WHERE run_id = ? ORDER BY pos" without a sort.
    conn.execute("CREATE INDEX steps_by_run ON steps (run_id)")


def _add_spent(conn: sqlite3.Connection) -> None:
    """Version 1 to 2: steps record what they spent (JSON), as the ledger settled it."""
    conn.execute("ALTER TABLE steps ADD COLUMN spent TEXT")


def _add_proof(conn: sqlite3.Connection) -> None:
    """Version 2 to 3: steps carry the signature that authorizes them (call proofs and
    warrant hops), so a run can be verified offline from the journal alone."""
    conn.execute("ALTER TABLE steps ADD COLUMN proof TEXT")


def _add_leases(conn: sqlite3.Connection) -> None:
    """Version 3 to 4: one owner per run, a lease with a heartbeat (``remit.journal.lease``)."""
    conn.execute(
        "CREATE TABLE leases ("
        " run_id TEXT PRIMARY KEY NOT NULL,"
        " owner TEXT NOT NULL,"
        " pid INTEGER NOT NULL,"
        " host TEXT NOT NULL,"
        " acquired_at REAL NOT NULL,"
        " heartbeat REAL NOT NULL,"
        " expires REAL NOT NULL)"
    )


#: ``_MIGRATIONS[v]`` upgrades a version-``v`` file to version ``v + 1``; append only.
_MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _create_v1,
    _add_spent,
    _add_proof,
    _add_leases,
]

#: the schema version this code writes; a file with a higher version is refused
SCHEMA_VERSION: Final[int] = len(_MIGRATIONS)

# --- statements (prepared once: sqlite3 caches each by its text) ------------------

_STEP_FIELDS: Final = tuple(f.name for f in dataclasses.fields(StepRecord))
_STEP_COLUMNS: Final = ", ".join(_STEP_FIELDS)
#: positions of the JSON columns in a row selected with _STEP_COLUMNS
_STEP_JSON: Final = tuple(
    (i, f) for i, f in enumerate(_STEP_FIELDS) if f in {"input", "output", "error", "spent"}
)
_STEP_STATUSES: Final = frozenset({"started", "ok", "error", "denied"})
_step_params = operator.attrgetter(*_STEP_FIELDS)

# The WHERE clause carries the whole protocol: an intent never touches an existing
# row, and a result lands only on a row still "started" (the first result wins). An
# intent that carries an error marks an unfinished step as interrupted (it stays
# "started": a resume runs it again).
# Identity and input stay as first written; the result supplies what it learned.
_UPSERT_STEP: Final = (
    f"INSERT INTO steps ({_STEP_COLUMNS}) VALUES ({', '.join('?' * len(_STEP_FIELDS))})"
    " ON CONFLICT (run_id, step_id) DO UPDATE SET"
    " status = excluded.status, output = excluded.output, error = excluded.error,"
    " spent = excluded.spent, ended_at = excluded.ended_at,"
    " proof = COALESCE(steps.proof, excluded.proof)"
    " WHERE steps.status = 'started'"
    "  AND (excluded.status <> 'started' OR excluded.error IS NOT NULL)"
)
_SELECT_STEPS: Final = f"SELECT {_STEP_COLUMNS} FROM steps WHERE run_id = ? ORDER BY pos"
_SELECT_STEP: Final = f"SELECT {_STEP_COLUMNS} FROM steps WHERE run_id = ? AND step_id = ?"
#: ids per IN list; with run_id, stays under the 999 variables of older SQLite builds
_IN_CHUNK: Final = 900

_RUN_FIELDS: Final = tuple(f.name for f in dataclasses.fields(RunRecord))
_RUN_COLUMNS: Final = ", ".join(_RUN_FIELDS)
_RUN_STATUSES: Final = frozenset({"running", "done", "failed"})
_INSERT_RUN: Final = (
    f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES ({', '.join('?' * len(_RUN_FIELDS))})"
)
_SELECT_RUN: Final = f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?"
_LIST_RUNS: Final = f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY created_at DESC, rowid DESC LIMIT ?"
_FINISH_RUN: Final = (
    "UPDATE runs SET status = ?, result = ?, error = ?, updated_at = ? WHERE run_id = ?"
)

_LEASE_FIELDS: Final = tuple(f.name for f in dataclasses.fields(Lease))
_LEASE_COLUMNS: Final = ", ".join(_LEASE_FIELDS)
_SELECT_LEASE: Final = f"SELECT {_LEASE_COLUMNS} FROM leases WHERE run_id = ?"
_PUT_LEASE: Final = (
    f"INSERT OR REPLACE INTO leases ({_LEASE_COLUMNS})"
    f" VALUES ({', '.join('?' * len(_LEASE_FIELDS))})"
)
_LEASE_OWNER: Final = "SELECT owner FROM leases WHERE run_id = ?"

_SQLITE_MAGIC: Final = b"SQLite format 3\x00"
_HEADER_SIZE: Final = 100
#: SQLite result codes (low byte of the extended code) that mean a damaged file
_CORRUPT_CODES: Final = frozenset({11, 26})  # SQLITE_CORRUPT, SQLITE_NOTADB
_BUSY_CODES: Final = frozenset({5, 6})  # SQLITE_BUSY, SQLITE_LOCKED

_decode_json = json.JSONDecoder().decode

#: the columns every current file must have, checked on open
_EXPECTED_COLUMNS: Final[dict[str, frozenset[str]]] = {
    "meta": frozenset({"key", "value"}),
    "runs": frozenset(_RUN_FIELDS),
    "steps": frozenset({"pos", *_STEP_FIELDS}),
    "leases": frozenset(_LEASE_FIELDS),
}


@functools.lru_cache(maxsize=8)
def _select_steps_in(n: int) -> str:
    return (
        f"SELECT {_STEP_COLUMNS} FROM steps WHERE run_id = ? AND step_id IN ({', '.join('?' * n)})"
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


# --- the journal ---------------------------------------------------------------------


class SQLiteJournal:
    """A journal in one SQLite file, in WAL mode.

    ``durability`` says when :meth:`write`, :meth:`create_run` and :meth:`finish_run`
    may return:

    - ``"full"`` (default): ``PRAGMA synchronous=FULL``. Each transaction's WAL frames
      are fsynced before the call returns, so a recorded step survives a process
      crash, a kernel panic and a power loss (given a disk that honours fsync; on
      macOS ``fullfsync`` is also on).
    - ``"normal"``: ``PRAGMA synchronous=NORMAL``. The transaction is in the WAL (in
      the OS page cache) when the call returns, and is fsynced at the next checkpoint.
      It survives a crash of the process (kill -9 included), not a power loss or an OS
      crash, which may lose the last transactions but never corrupts the file.

    WAL lets other connections and processes (``remit show``) read committed steps
    while a run writes; a second writer waits up to ``busy_timeout`` seconds for the
    write lock, then fails with :class:`~remit.errors.JournalError`.

    One instance may be shared by threads: every call holds an internal lock. Every
    SQLite error surfaces as a :class:`~remit.errors.JournalError` naming the file
    and the operation; a damaged file as :class:`~remit.errors.JournalCorrupt`.
    ``":memory:"`` opens a private, non-durable journal (for tests).
    """

    durability: Durability

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: Literal["full", "normal"] = "full",
        busy_timeout: float = 5.0,
    ) -> None:
        if durability not in ("full", "normal"):
            raise ValueError(f"durability must be 'full' or 'normal', not {durability!r}")
        self.path: Path = Path(path)
        self.durability = durability
        self._lock = threading.Lock()
        self._memory = os.fspath(path) == ":memory:"
        if not self._memory:
            self._check_file()
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=busy_timeout,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                check_same_thread=False,  # the lock makes sharing safe
            )
        except sqlite3.Error as e:
            raise JournalError(f"cannot open journal {self.path}: {e}") from e
        self._conn: sqlite3.Connection | None = conn
        try:
            with self._errors("open"):
                conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
                # Identify the file before changing anything in it: a foreign SQLite
                # database opened by mistake must not be switched to WAL mode.
                found = self._read_version_once(conn)
                self._configure(conn)
                self._schema_version = self._migrate(conn, found)
                self._check_structure(conn)
        except BaseException:
            conn.close()
            self._conn = None
            raise

    # --- opening -----------------------------------------------------------------

    def _check_file(self) -> None:
        """Refuse, with a clear message, what SQLite would report as a bare error."""
        path = self.path
        if not path.parent.is_dir():
            raise JournalError(
                f"cannot open journal {path}: directory {path.parent} does not exist;"
                " create it first"
            )
        if path.is_dir():
            raise JournalError(f"cannot open journal {path}: it is a directory")
        try:
            size = path.stat().st_size
            if size == 0:
                return  # SQLite treats an empty file as a new database
            with path.open("rb") as f:
                header = f.read(_HEADER_SIZE)
            wal = Path(f"{path}-wal")
            wal_size = wal.stat().st_size if wal.exists() else 0
        except FileNotFoundError:
            return
        except OSError as e:
            raise JournalError(f"cannot open journal {path}: {e}") from e
        if not _SQLITE_MAGIC.startswith(header[: len(_SQLITE_MAGIC)]):
            raise JournalCorrupt(
                f"{path} is not a remit journal: it is not a SQLite database"
                f" (it starts with {header[:16]!r})"
            )
        if len(header) < _HEADER_SIZE:
            raise JournalCorrupt(
                f"journal {path} is truncated: {size} bytes, less than a SQLite header;"
                " restore it from a backup"
            )
        page_size = int.from_bytes(header[16:18], "big")
        page_size = 65536 if page_size == 1 else page_size
        pages = int.from_bytes(header[28:32], "big")
        # The header's page count is trusted by SQLite only when the change counter
        # matches "version valid for"; a non-empty WAL may legitimately hold pages the
        # main file does not have yet.
        if pages and header[24:28] == header[92:96] and wal_size == 0:
            expected = pages * page_size
            if size < expected:
                raise JournalCorrupt(
                    f"journal {path} is truncated: its header counts {pages} pages of"
                    f" {page_size} bytes ({expected} bytes) but the file holds {size};"
                    " restore it from a backup"
                )

    def _configure(self, conn: sqlite3.Connection) -> None:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal" and not (self._memory and mode == "memory"):
            raise JournalError(
                f"journal {self.path} cannot use WAL mode (SQLite chose {mode!r});"
                " keep journals on a local file system"
            )
        if self.durability == "full":
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA fullfsync = ON")
            conn.execute("PRAGMA checkpoint_fullfsync = ON")
        else:
            conn.execute("PRAGMA synchronous = NORMAL")
        # The unique index is probed once per written step; keep more of it cached
        # than SQLite's 2 MB default (negative = KiB).
        conn.execute("PRAGMA cache_size = -16384")

    def _read_version(self, conn: sqlite3.Connection) -> int:
        names = {
            name
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master"
                " WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
            )
        }
        if not names:
            return 0
        if "meta" not in names:
            raise JournalCorrupt(
                f"{self.path} is a SQLite database but not a remit journal: it has no"
                f" meta table (it has {', '.join(sorted(names))})"
            )
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            raise JournalCorrupt(
                f"journal {self.path} is damaged: its meta table holds no schema_version"
            )
        try:
            version = int(row[0])
        except (TypeError, ValueError):
            version = 0
        if version < 1:
            raise JournalCorrupt(
                f"journal {self.path} is damaged: schema_version is {row[0]!r},"
                " not a positive integer"
            )
        return version

    def _read_version_once(self, conn: sqlite3.Connection) -> int:
        """The file's schema version, refusing files that are not ours or too new."""
        conn.execute("BEGIN")  # one snapshot for the table list and the version
        try:
            version = self._read_version(conn)
        finally:
            _rollback(conn)
        if version > SCHEMA_VERSION:
            raise JournalVersionError(
                f"journal {self.path} has schema version {version}, but this remit"
                f" understands versions up to {SCHEMA_VERSION}; upgrade remit to open it"
            )
        return version

    def _migrate(self, conn: sqlite3.Connection, version: int) -> int:
        if version == SCHEMA_VERSION:
            return version
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-read under the write lock: another process may have migrated meanwhile.
            start = version = self._read_version(conn)
            if version > SCHEMA_VERSION:
                raise JournalVersionError(
                    f"journal {self.path} was just upgraded to schema version {version} by"
                    f" a newer remit; this one understands versions up to {SCHEMA_VERSION}"
                )
            while version < SCHEMA_VERSION:
                try:
                    _MIGRATIONS[version](conn)
                except sqlite3.Error as e:
                    raise JournalError(
                        f"migrating journal {self.path} from schema version {version} to"
                        f" {version + 1} failed: {e}; the file is unchanged"
                        f" (still version {start})"
                    ) from e
                version += 1
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(version),),
            )
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        return version

    def _check_structure(self, conn: sqlite3.Connection) -> None:
        for table, expected in _EXPECTED_COLUMNS.items():
            have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            missing = expected - have
            if missing:
                what = "is missing" if not have else f"lacks columns {', '.join(sorted(missing))}"
                raise JournalCorrupt(
                    f"journal {self.path} is damaged: table {table} {what}"
                    f" (schema version {self._schema_version})"
                )

    # --- errors ------------------------------------------------------------------

    @contextlib.contextmanager
    def _errors(self, operation: str) -> Generator[None]:
        """Turn any sqlite3 error into a JournalError naming the file and operation."""
        try:
            yield
        except sqlite3.Error as e:
            self._raise(e, operation)

    def _raise(self, e: sqlite3.Error, operation: str) -> NoReturn:
        code = getattr(e, "sqlite_errorcode", None)
        primary = code & 0xFF if isinstance(code, int) else None
        if primary in _CORRUPT_CODES:
            raise JournalCorrupt(
                f"journal {self.path} is corrupt ({operation}: {e}); restore it from a"
                " backup, or start a new journal"
            ) from e
        if primary in _BUSY_CODES:
            raise JournalError(
                f"journal {self.path} is locked by another connection ({operation}: {e});"
                " is another run writing this journal?"
            ) from e
        raise JournalError(f"{operation} failed on journal {self.path}: {e}") from e

    def _live(self) -> sqlite3.Connection:
        if self._conn is None:
            raise JournalError(f"journal {self.path} is closed")
        return self._conn

    def _corrupt_step(self, row: Sequence[Any], detail: str) -> NoReturn:
        raise JournalCorrupt(
            f"journal {self.path}: step {row[1]!r} of run {row[0]!r} is damaged: {detail}"
        )

    def _step(self, row: Sequence[Any]) -> StepRecord:
        """A row as a record, after checking what a damaged row would get wrong."""
        for i, field in _STEP_JSON:
            text = row[i]
            if text is not None:
                try:
                    _decode_json(text)
                except (ValueError, TypeError) as e:
                    self._corrupt_step(row, f"{field} holds unreadable JSON ({e})")
        if row[6] not in _STEP_STATUSES:
            self._corrupt_step(row, f"unknown status {row[6]!r}")
        return StepRecord(*row)

    def _run(self, row: Sequence[Any]) -> RunRecord:
        if row[4] not in _RUN_STATUSES:
            raise JournalCorrupt(
                f"journal {self.path}: run {row[0]!r} is damaged: unknown status {row[4]!r}"
            )
        return RunRecord(*row)

    # --- JournalStore ----------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        """The schema version of the open file (always :data:`SCHEMA_VERSION`)."""
        return self._schema_version

    def create_run(self, run: RunRecord, lease: Lease | None = None) -> None:
        """Insert a new run (with ``lease``, its first owner's, in the same transaction);
        raises ``JournalError`` if the id exists.

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
                with _transaction(conn):
                    conn.execute(_INSERT_RUN, params)
                    if lease is not None:
                        conn.execute(_PUT_LEASE, _lease_params(lease))
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
            with _transaction(conn):
                if owner is not None:
                    self._fence(conn, run_id, owner)
                    conn.execute("DELETE FROM leases WHERE run_id = ?", (run_id,))
                cur = conn.execute(_FINISH_RUN, (status, result, error, time.time(), run_id))
                found = cur.rowcount > 0
        if not found:
            raise RunNotFound(
                f"cannot finish run {run_id!r}: no such run in journal {self.path};"
                " `remit runs` lists the runs a journal holds"
            )

    def acquire_lease(self, lease: Lease, takeover: Callable[[Lease], bool]) -> None:
        """Make ``lease`` the run's lease, atomically (under SQLite's write lock): if
        no one holds one, if the holder's has expired, or if ``takeover(holder)`` says
        its holder is gone; else raise :class:`~remit.errors.RunLeased` naming it."""
        with self._lock, self._errors(f"take the lease of run {lease.run_id!r}"):
            conn = self._live()
            with _transaction(conn):
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
                conn.execute(_PUT_LEASE, _lease_params(lease))

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
                conn.execute("BEGIN IMMEDIATE")
                try:
                    if owner is not None:
                        self._fence(conn, records[0].run_id, owner)
                    conn.executemany(_UPSERT_STEP, map(_step_params, records))
                    conn.execute("COMMIT")
                except BaseException:
                    _rollback(conn)
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
            conn = self._live()
            conn.execute("BEGIN IMMEDIATE")
            try:
                if owner is not None:
                    self._fence(conn, records[0].run_id, owner)
                conn.executemany(_UPSERT_STEP, map(_step_params, records))
            except BaseException:
                _rollback(conn)
                raise
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
                _rollback(conn)
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
                _rollback(conn)
        return {row[1]: self._step(row) for row in rows}

    def close(self) -> None:
        """Close the file (idempotent); later calls raise ``JournalError``."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                with self._errors("close"):
                    conn.close()

    # --- beyond the protocol ---------------------------------------------------------

    def check(self) -> None:
        """Read the whole file and raise ``JournalCorrupt`` listing what is damaged.

        Runs SQLite's ``quick_check`` and validates every step row. It reads every
        page, so it is for ``remit verify`` and after a crash, not for each open.
        """
        problems: list[str] = []
        with self._lock, self._errors("check"):
            conn = self._live()
            problems += [msg for (msg,) in conn.execute("PRAGMA quick_check(20)") if msg != "ok"]
            if not problems:
                for row in conn.execute(f"SELECT {_STEP_COLUMNS} FROM steps ORDER BY pos"):
                    try:
                        self._step(row)
                    except JournalCorrupt as e:
                        problems.append(e.message)
                        if len(problems) >= 20:
                            break
        if problems:
            raise JournalCorrupt(f"journal {self.path} is damaged: " + "; ".join(problems))

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else f"schema v{self._schema_version}"
        return f"SQLiteJournal({str(self.path)!r}, durability={self.durability!r}, {state})"


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Generator[None]:
    """One write transaction (``BEGIN IMMEDIATE``): committed whole, or rolled back."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise


def _lease_params(lease: Lease) -> tuple[Any, ...]:
    return tuple(getattr(lease, f) for f in _LEASE_FIELDS)


def describe_lease(lease: Lease, now: float) -> str:
    """``pid 4242 on host-a (heartbeat 2.0 s ago, owner 7f3a...)``, for messages."""
    ago = max(0.0, now - lease.heartbeat)
    return f"pid {lease.pid} on {lease.host} (heartbeat {ago:.1f} s ago, owner {lease.owner})"


def _rollback(conn: sqlite3.Connection) -> None:
    """End any open transaction without masking the error that got us here."""
    with contextlib.suppress(sqlite3.Error):
        conn.rollback()


def _first_bad(records: Sequence[StepRecord]) -> str:
    """Name the first record with an unknown status, for the error message only."""
    for r in records:
        if r.status not in _STEP_STATUSES:
            return f" (step {r.step_id!r} of run {r.run_id!r} has status {r.status!r})"
    return ""
