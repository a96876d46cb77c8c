"""The backends the conformance suite runs against.

To put a new backend through the spec, append one factory to :data:`BACKENDS`. A
factory receives a directory private to the test and returns a store; called again
with the same directory, it must open the same journal again (the suite closes and
reopens stores to check what is durable). The suite closes every store it opened.

The PostgreSQL backends need a server: their factories are made per test from the
session's throwaway server (``tests/postgres_server.py``), each test in a schema of its
own, and they carry the ``postgres`` marker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from remit.journal import Durability, JournalStore, SQLiteJournal

#: opens (or reopens) the journal that lives at a test's private location
BackendFactory = Callable[[Path], JournalStore]


def sqlite_full(where: Path) -> JournalStore:
    return SQLiteJournal(where / "journal.db", durability="full")


def sqlite_normal(where: Path) -> JournalStore:
    return SQLiteJournal(where / "journal.db", durability="normal")


def postgres(url: str, schema: str, durability: Durability) -> BackendFactory:
    from remit.journal.postgres import PostgresJournal

    def open_store(where: Path) -> JournalStore:
        return PostgresJournal(url, durability=durability, schema=schema)

    return open_store


BACKENDS = [
    pytest.param(sqlite_full, id="sqlite-full"),
    pytest.param(sqlite_normal, id="sqlite-normal"),
    pytest.param("full", id="postgres-full", marks=pytest.mark.postgres),
    pytest.param("normal", id="postgres-normal", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
def journal_factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], JournalStore]]:
    """Opens this test's journal; each call opens it again (after a close, say)."""
    param: BackendFactory | Durability = request.param
    if isinstance(param, str):  # a PostgreSQL backend: a schema of this test's own
        url: str = request.getfixturevalue("pg_url")
        factory = postgres(url, request.getfixturevalue("pg_schema"), param)
    else:
        factory = param
    opened: list[JournalStore] = []

    def open_store() -> JournalStore:
        store = factory(tmp_path)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


@pytest.fixture
def journal(journal_factory: Callable[[], JournalStore]) -> JournalStore:
    """A fresh, empty journal of the backend under test."""
    return journal_factory()
