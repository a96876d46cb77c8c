"""The PostgreSQL schema: the migrations that build and upgrade it, the version this code
writes, and the checks made on open (that the schema is a remit journal of a version
this code understands, with the columns it needs).

The tables mirror the SQLite journal's, column for column, so that a row reads back the
same from either and a sealed run's hashes verify the same: ``meta`` (the
``schema_version``), ``runs``, ``steps`` (``pos``, an identity column, numbers rows in
the order they were first written), ``leases``, ``seals``, ``superseded`` and
``checkpoints``; version 2 adds the ledger's ``accounts`` and ``reservations``
(:mod:`remit.journal.postgres._ledger`). Migrations run in one transaction (PostgreSQL's
DDL is transactional) under an advisory lock, so two processes opening a new database
at once do not both build it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from remit.errors import JournalCorrupt, JournalError, JournalVersionError
from remit.journal.postgres._connection import LOCK_SPACE, Connection, sql

if TYPE_CHECKING:
    import psycopg


def _create_v1(conn: psycopg.Connection[Any]) -> None:
    """Version 0 (an empty schema) to 1: the journal as SQLite's version 5 holds it."""
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute(
        "CREATE TABLE runs ("
        " pos BIGINT GENERATED ALWAYS AS IDENTITY,"
        " run_id TEXT PRIMARY KEY,"
        " goal TEXT NOT NULL,"
        " agent TEXT NOT NULL,"
        " remit TEXT NOT NULL,"
        " status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),"
        " inputs TEXT, result TEXT, error TEXT, meta TEXT,"
        " created_at DOUBLE PRECISION NOT NULL,"
        " updated_at DOUBLE PRECISION NOT NULL)"
    )
    conn.execute("CREATE INDEX runs_by_created ON runs (created_at DESC, pos DESC)")
    conn.execute(
        "CREATE TABLE steps ("
        " pos BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
        " run_id TEXT NOT NULL,"
        " step_id TEXT NOT NULL,"
        " task_id TEXT NOT NULL,"
        " seq BIGINT NOT NULL,"
        " kind TEXT NOT NULL,"
        " name TEXT NOT NULL,"
        " status TEXT NOT NULL CHECK (status IN ('started', 'ok', 'error', 'denied')),"
        " input TEXT, output TEXT, error TEXT, spent TEXT,"
        " started_at DOUBLE PRECISION NOT NULL,"
        " ended_at DOUBLE PRECISION,"
        " proof TEXT,"
        " n BIGINT,"
        " entry BYTEA,"
        " UNIQUE (run_id, step_id))"
    )
    # "WHERE run_id = ? ORDER BY pos" without a sort; the partial index finds the rows
    # another process wrote to a sealed run (n = -1) for its owner to chain
    conn.execute("CREATE INDEX steps_by_run ON steps (run_id, pos)")
    conn.execute("CREATE INDEX steps_unchained ON steps (run_id) WHERE n < 0")
    conn.execute(
        "CREATE TABLE leases ("
        " run_id TEXT PRIMARY KEY,"
        " owner TEXT NOT NULL,"
        " pid BIGINT NOT NULL,"
        " host TEXT NOT NULL,"
        " acquired_at DOUBLE PRECISION NOT NULL,"
        " heartbeat DOUBLE PRECISION NOT NULL,"
        " expires DOUBLE PRECISION NOT NULL)"
    )
    conn.execute("CREATE TABLE seals (run_id TEXT PRIMARY KEY, key BYTEA NOT NULL)")
    conn.execute(
        "CREATE TABLE superseded ("
        " run_id TEXT NOT NULL, n BIGINT NOT NULL, step_id TEXT NOT NULL,"
        " entry BYTEA NOT NULL, PRIMARY KEY (run_id, n))"
    )
    conn.execute(
        "CREATE TABLE checkpoints ("
        " run_id TEXT NOT NULL, k BIGINT NOT NULL, n BIGINT NOT NULL,"
        " head BYTEA NOT NULL, run_hash BYTEA NOT NULL, signature BYTEA NOT NULL,"
        " at DOUBLE PRECISION NOT NULL, PRIMARY KEY (run_id, k))"
    )


def _add_ledger(conn: psycopg.Connection[Any]) -> None:
    """Version 1 to 2: the ledger, shared by every process of a run
    (:mod:`remit.journal.postgres._ledger`). An account per task, its limits (NULL:
    unlimited), what it spent and what is reserved on it; a reservation per open hold,
    with the process that holds it, so a dead process's holds can be given back."""
    conn.execute(
        "CREATE TABLE accounts ("
        " run_id TEXT NOT NULL, name TEXT NOT NULL, parent TEXT,"
        " lim_calls DOUBLE PRECISION, lim_input_tokens DOUBLE PRECISION,"
        " lim_output_tokens DOUBLE PRECISION, lim_cost_usd DOUBLE PRECISION,"
        " spent_calls DOUBLE PRECISION NOT NULL DEFAULT 0,"
        " spent_input_tokens DOUBLE PRECISION NOT NULL DEFAULT 0,"
        " spent_output_tokens DOUBLE PRECISION NOT NULL DEFAULT 0,"
        " spent_cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,"
        " res_calls DOUBLE PRECISION NOT NULL DEFAULT 0,"
        " res_input_tokens DOUBLE PRECISION NOT NULL DEFAULT 0,"
        " res_output_tokens DOUBLE PRECISION NOT NULL DEFAULT 0,"
        " res_cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,"
        " PRIMARY KEY (run_id, name))"
    )
    conn.execute(
        "CREATE TABLE reservations ("
        " run_id TEXT NOT NULL, id TEXT NOT NULL, holder TEXT NOT NULL,"
        " chain TEXT[] NOT NULL, amount DOUBLE PRECISION[] NOT NULL,"
        " at DOUBLE PRECISION NOT NULL, PRIMARY KEY (run_id, id))"
    )
    conn.execute("CREATE INDEX reservations_by_holder ON reservations (run_id, holder)")
    # a booking per step already charged, so a resumed process books each step once
    conn.execute(
        "CREATE TABLE booked (run_id TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (run_id, key))"
    )


def _add_workers(conn: psycopg.Connection[Any]) -> None:
    """Version 2 to 3: what workers in other processes need. A task's rows found by its
    id (a worker handed a task an earlier attempt began reads what it journaled), and
    each reservation's step, so that a dead process's hold on a step whose result is in
    the journal is settled at what the journal says it spent, not given back."""
    conn.execute("CREATE INDEX steps_by_task ON steps (run_id, task_id)")
    conn.execute("ALTER TABLE reservations ADD COLUMN key TEXT")


#: ``_MIGRATIONS[v]`` upgrades a version-``v`` schema to version ``v + 1``; append only.
_MIGRATIONS: list[Callable[[psycopg.Connection[Any]], None]] = [
    _create_v1,
    _add_ledger,
    _add_workers,
]

#: the schema version this code writes; a database with a higher version is refused
SCHEMA_VERSION: Final[int] = len(_MIGRATIONS)

#: the columns every current schema must have, checked on open
_EXPECTED_COLUMNS: Final[dict[str, frozenset[str]]] = {
    "meta": frozenset({"key", "value"}),
    "runs": frozenset({"run_id", "goal", "status", "created_at", "updated_at"}),
    "steps": frozenset({"pos", "run_id", "step_id", "status", "spent", "proof", "n", "entry"}),
    "leases": frozenset({"run_id", "owner", "expires"}),
    "seals": frozenset({"run_id", "key"}),
    "superseded": frozenset({"run_id", "n", "step_id", "entry"}),
    "checkpoints": frozenset({"run_id", "k", "n", "head", "run_hash", "signature", "at"}),
    "accounts": frozenset({"run_id", "name", "parent", "spent_calls", "res_calls"}),
    "reservations": frozenset({"run_id", "id", "holder", "chain", "amount", "key"}),
    "booked": frozenset({"run_id", "key"}),
}


class Migrations(Connection):
    """Reads the schema's version and brings it to :data:`SCHEMA_VERSION`."""

    _schema_version: int

    def _read_version(self, conn: psycopg.Connection[Any]) -> int:
        names = {
            name
            for (name,) in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (self.schema,),
            )
        }
        if not names:
            return 0
        if "meta" not in names:
            raise JournalCorrupt(
                f"{self.where} is not a remit journal: it has no meta table (it has"
                f" {', '.join(sorted(names))}); name an empty database or schema"
            )
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        try:
            version = int(row[0]) if row is not None else 0
        except (TypeError, ValueError):
            version = 0
        if version < 1:
            raise JournalCorrupt(
                f"journal {self.where} is damaged: its meta table holds no valid schema_version"
            )
        return version

    def _migrate(self) -> int:
        """Bring the schema up to date (creating it, and the schema, if need be)."""

        def body(conn: psycopg.Connection[Any]) -> int:
            # one migrator at a time per schema; the others wait, then find it done
            conn.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                (LOCK_SPACE, "schema:" + self.schema),
            )
            conn.execute(sql(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
            start = version = self._read_version(conn)
            if version > SCHEMA_VERSION:
                raise JournalVersionError(
                    f"journal {self.where} has schema version {version}, but this remit"
                    f" understands versions up to {SCHEMA_VERSION}; upgrade remit to open it"
                )
            while version < SCHEMA_VERSION:
                try:
                    _MIGRATIONS[version](conn)
                except Exception as e:
                    raise JournalError(
                        f"migrating journal {self.where} from schema version {version} to"
                        f" {version + 1} failed: {e}; nothing was changed (still version {start})"
                    ) from e
                version += 1
            if version != start:
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', %s)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (str(version),),
                )
            self._check_structure(conn)
            return version

        return self._tx("open", body)

    def _check_structure(self, conn: psycopg.Connection[Any]) -> None:
        have: dict[str, set[str]] = {}
        for table, column in conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = %s",
            (self.schema,),
        ):
            have.setdefault(table, set()).add(column)
        for table, expected in _EXPECTED_COLUMNS.items():
            missing = expected - have.get(table, set())
            if missing:
                what = (
                    "is missing"
                    if table not in have
                    else f"lacks columns {', '.join(sorted(missing))}"
                )
                raise JournalCorrupt(f"journal {self.where} is damaged: table {table} {what}")
