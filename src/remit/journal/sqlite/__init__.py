"""The SQLite journal: one file, no server, safe to read while a run writes it.

The file holds four tables. ``meta`` maps keys to values and records the
``schema_version``; ``runs`` holds one row per :class:`RunRecord`; ``leases`` one row
per run that a process holds (:class:`Lease`); ``steps`` holds one
row per :class:`StepRecord` plus ``pos``, an ``INTEGER PRIMARY KEY`` that numbers rows
in the order they were first written (an explicit alias of the rowid, because VACUUM
may renumber a rowid that has no alias). ``(run_id, step_id)`` is unique.

The schema changes only through ``_schema._MIGRATIONS``: entry ``v`` turns a version-``v``
file into a version-``v + 1`` file. A new file is built by running every migration
from version 0, so new and migrated files cannot drift apart.

:class:`SQLiteJournal` is built from layers, a module each: ``_file`` (the file and its
connection: checks before opening, pragmas and durability, sqlite3 errors as
JournalErrors), ``_schema`` (migrations and the version and column checks on open),
``_leases``, ``_runs`` and ``_steps`` (each table's statements and queries; run and
step writes are fenced by the lease), and ``_journal`` (the class: opening, closing,
the full check).
"""

from __future__ import annotations

from remit.journal.sqlite._journal import SQLiteJournal
from remit.journal.sqlite._schema import SCHEMA_VERSION
from remit.journal.sqlite._steps import load_json

__all__ = ["SCHEMA_VERSION", "SQLiteJournal", "load_json"]
