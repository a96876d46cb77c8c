"""Shared fixtures: a journal file per test, runtimes that close themselves, and a
reader that looks at the journal through a connection of its own (what is on disk,
not what a runtime holds in memory)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from remit import Runtime
from remit.journal import SQLiteJournal, StepRecord

# the throwaway PostgreSQL server of the `postgres` tests (pg_server, pg_url, pg_schema)
# and the local Ray cluster of the `ray` tests (ray_executor)
pytest_plugins = ["tests.postgres_server", "tests.ray_cluster"]


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    """A fresh SQLite journal file (not yet created) private to the test."""
    return tmp_path / "journal.db"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws


@pytest.fixture
def make_runtime(journal_path: Path, workspace: Path) -> Iterator[Callable[..., Runtime]]:
    """``make_runtime(agent=..., tools=[...], **kw)``: a Runtime on this test's journal.

    Defaults: ``durability="normal"`` (fast; crash-safe for a process), the test's
    workspace. Every runtime made is closed when the test ends.
    """
    made: list[Runtime] = []

    def make(**kw: Any) -> Runtime:
        kw.setdefault("journal", journal_path)
        kw.setdefault("durability", "normal")
        kw.setdefault("workspace", workspace)
        rt = Runtime(**kw)
        made.append(rt)
        return rt

    yield make
    for rt in made:
        rt.close()


@pytest.fixture
def read_steps(journal_path: Path) -> Callable[..., list[StepRecord]]:
    """``read_steps(run_id)``: every step row of a run, read with a new connection."""

    def read(run_id: str, path: Path | None = None) -> list[StepRecord]:
        store = SQLiteJournal(path or journal_path)
        try:
            return list(store.steps(run_id))
        finally:
            store.close()

    return read
