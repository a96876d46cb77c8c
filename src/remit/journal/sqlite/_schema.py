"""The schema: the migrations that build and upgrade a journal file, the version this
code writes, and the checks made on open (that the file is a remit journal, of a version
this code understands, with the columns it needs).

Separate so that a change to the schema is made, and reviewed, in one place.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Final

from remit.errors import JournalCorrupt, JournalError, JournalVersionError
from remit.journal.sqlite._file import SQLiteFile, rollback
from remit.journal.sqlite._leases import LEASE_FIELDS
from remit.journal.sqlite._runs import RUN_FIELDS
from remit.journal.sqlite._steps import STEP_FIELDS

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


def _add_chain(conn: sqlite3.Connection) -> None:
    """Version 4 to 5: sealed runs, whose journal is a hash chain (``remit.journal._chain``).

    A step row of a sealed run carries ``n``, its place in the run's chain (of its last
    write), and ``entry``, its hash as written; an entry a later write replaced moves to
    ``superseded``, so the whole chain stays readable. A row another process wrote (a
    person's answer) waits with ``n = -1`` until the run's owner chains it (the partial
    index finds those, and costs nothing for the rest). ``seals`` names the sealed runs
    and their checkpoint key; ``checkpoints`` holds the signed heads."""
    conn.execute("ALTER TABLE steps ADD COLUMN n INTEGER")
    conn.execute("ALTER TABLE steps ADD COLUMN entry BLOB")
    conn.execute("CREATE INDEX steps_unchained ON steps (run_id) WHERE n < 0")
    conn.execute("CREATE TABLE seals (run_id TEXT PRIMARY KEY NOT NULL, key BLOB NOT NULL)")
    conn.execute(
        "CREATE TABLE superseded ("
        " run_id TEXT NOT NULL,"
        " n INTEGER NOT NULL,"
        " step_id TEXT NOT NULL,"
        " entry BLOB NOT NULL,"
        " PRIMARY KEY (run_id, n)) WITHOUT ROWID"
    )
    conn.execute(
        "CREATE TABLE checkpoints ("
        " run_id TEXT NOT NULL,"
        " k INTEGER NOT NULL,"
        " n INTEGER NOT NULL,"
        " head BLOB NOT NULL,"
        " run_hash BLOB NOT NULL,"
        " signature BLOB NOT NULL,"
        " at REAL NOT NULL,"
        " PRIMARY KEY (run_id, k)) WITHOUT ROWID"
    )


#: ``_MIGRATIONS[v]`` upgrades a version-``v`` file to version ``v + 1``; append only.
_MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _create_v1,
    _add_spent,
    _add_proof,
    _add_leases,
    _add_chain,
]

#: the schema version this code writes; a file with a higher version is refused
SCHEMA_VERSION: Final[int] = len(_MIGRATIONS)

#: the columns every current file must have, checked on open
_EXPECTED_COLUMNS: Final[dict[str, frozenset[str]]] = {
    "meta": frozenset({"key", "value"}),
    "runs": frozenset(RUN_FIELDS),
    "steps": frozenset({"pos", *STEP_FIELDS, "n", "entry"}),
    "leases": frozenset(LEASE_FIELDS),
    "seals": frozenset({"run_id", "key"}),
    "superseded": frozenset({"run_id", "n", "step_id", "entry"}),
    "checkpoints": frozenset({"run_id", "k", "n", "head", "run_hash", "signature", "at"}),
}


class Migrations(SQLiteFile):
    """Reads a file's schema version and brings it to :data:`SCHEMA_VERSION`."""

    _schema_version: int

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
            rollback(conn)
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
            rollback(conn)
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
