"""The backends the conformance suite runs against.

To put a new backend through the spec, append one factory to :data:`BACKENDS`. A
factory receives a directory private to the test and returns a store; called again
with the same directory, it must open the same journal again (the suite closes and
reopens stores to check what is durable). The suite closes every store it opened.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from remit.journal import JournalStore, SQLiteJournal

#: opens (or reopens) the journal that lives at a test's private location
BackendFactory = Callable[[Path], JournalStore]


def sqlite_full(where: Path) -> JournalStore:
    return SQLiteJournal(where / "journal.db", durability="full")


def sqlite_normal(where: Path) -> JournalStore:
    return SQLiteJournal(where / "journal.db", durability="normal")


BACKENDS = [
    pytest.param(sqlite_full, id="sqlite-full"),
    pytest.param(sqlite_normal, id="sqlite-normal"),
]


@pytest.fixture(params=BACKENDS)
def journal_factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], JournalStore]]:
    """Opens this test's journal; each call opens it again (after a close, say)."""
    factory: BackendFactory = request.param
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
