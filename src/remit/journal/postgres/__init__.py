"""The PostgreSQL journal: the same storage protocol as the SQLite file, in a database
that many processes (and machines) can write at once.

:class:`PostgresJournal` is built from layers, a module each, mirroring ``sqlite/``:
``_connection`` (connecting with the durability asked for, one transaction per
operation, waiting out a server restart until a deadline, errors as JournalErrors),
``_schema`` (migrations and the checks on open), ``_leases`` (one owner per run, and the
per-run advisory lock every write takes), ``_runs``, ``_steps`` and ``_seals`` (each
table's statements; sealed runs chained and checkpointed in the write's transaction),
and ``_journal`` (the class). :class:`PostgresLedger` (``_ledger``) keeps a run's budget
accounts in the same database, so siblings in different processes reserve against one
parent atomically. :mod:`~remit.journal.postgres.throwaway` starts a private server for
tests and benchmarks.

psycopg 3 is an optional extra (``pip install 'remit[postgres]'``); without it, opening
a PostgreSQL journal raises :class:`~remit.errors.MissingExtra`.
"""

from __future__ import annotations

from remit.journal.postgres._connection import MISSING, require_psycopg
from remit.journal.postgres._journal import PostgresJournal
from remit.journal.postgres._ledger import PostgresLedger, holder_gone
from remit.journal.postgres._schema import SCHEMA_VERSION

__all__ = [
    "MISSING",
    "SCHEMA_VERSION",
    "PostgresJournal",
    "PostgresLedger",
    "holder_gone",
    "is_url",
    "require_psycopg",
]


def is_url(where: str) -> bool:
    """Whether ``where`` names a PostgreSQL database rather than a SQLite file."""
    return where.startswith(("postgres://", "postgresql://"))
