"""The journal: the append-only record of every run, and the source of truth for
resume, replay, audit and traces.

:class:`JournalStore` is the interface the engine uses; :class:`SQLiteJournal` is the
default backend. :func:`open_journal` turns what a user passes (a path, or a store
they built) into a store.

>>> from remit.journal import open_journal, RunRecord
>>> journal = open_journal(":memory:")
>>> journal.create_run(RunRecord("r1", goal="g", agent="a", remit="{}"))
>>> journal.get_run("r1").status
'running'
>>> journal.close()
"""

from __future__ import annotations

import os

from remit.journal._chain import ChainEntry, Checkpoint
from remit.journal._store import (
    FINAL_STATUSES,
    Durability,
    JournalStore,
    Lease,
    RunRecord,
    RunStatus,
    StepRecord,
    StepStatus,
)
from remit.journal.sqlite import SCHEMA_VERSION, SQLiteJournal, load_json

__all__ = [
    "FINAL_STATUSES",
    "SCHEMA_VERSION",
    "ChainEntry",
    "Checkpoint",
    "Durability",
    "JournalStore",
    "Lease",
    "RunRecord",
    "RunStatus",
    "SQLiteJournal",
    "StepRecord",
    "StepStatus",
    "is_journal_url",
    "load_json",
    "open_journal",
]


def is_journal_url(where: str | os.PathLike[str]) -> bool:
    """Whether ``where`` names a PostgreSQL journal (a ``postgresql://`` URL), not a file."""
    return isinstance(where, str) and where.startswith(("postgres://", "postgresql://"))


def open_journal(
    path_or_store: str | os.PathLike[str] | JournalStore, durability: Durability = "full"
) -> JournalStore:
    """A journal store for ``path_or_store``.

    A path (``str`` or path-like) opens, or creates, a :class:`SQLiteJournal` with the
    given ``durability``; a ``postgresql://`` URL a
    :class:`~remit.journal.postgres.PostgresJournal` (psycopg is imported then, and its
    absence is :class:`~remit.errors.MissingExtra`); a store is returned as it is (its
    own durability stands).
    """
    if isinstance(path_or_store, str | os.PathLike):
        where = os.fspath(path_or_store)
        if is_journal_url(where):
            # imported here: psycopg is an optional extra
            from remit.journal.postgres import PostgresJournal

            return PostgresJournal(where, durability=durability)
        return SQLiteJournal(where, durability=durability)
    if not isinstance(path_or_store, JournalStore):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise TypeError(
            f"open_journal() takes a path or a JournalStore, not {type(path_or_store).__name__}"
        )
    return path_or_store
