"""The engine's specification, run on both executors: ``on`` makes a Runtime whose tasks
work in this process over a SQLite file (``local``), or on the session's Ray cluster
over a PostgreSQL journal and ledger (``ray``, a schema of its own per test).

What these tests observe they read from results and the journal, never from the
agent's memory: on Ray the agent works in another process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from remit import Runtime


@pytest.fixture(params=["local", pytest.param("ray", marks=pytest.mark.ray)])
def executor_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def on(
    executor_name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., Runtime]]:
    """``on(agent=..., **kw)``: a Runtime on this test's executor and journal."""
    made: list[Runtime] = []
    if executor_name == "ray":
        from remit.journal.postgres import PostgresJournal

        executor = request.getfixturevalue("ray_executor")
        url: str = request.getfixturevalue("pg_url")
        schema: str = request.getfixturevalue("pg_schema")
        journal: Any = PostgresJournal(url, schema=schema, durability="normal")
        extra: dict[str, Any] = {"executor": executor}
    else:
        journal = tmp_path / "journal.db"
        extra = {"durability": "normal"}
    ws = tmp_path / "ws"
    ws.mkdir()

    def make(**kw: Any) -> Runtime:
        kw.setdefault("journal", journal)
        kw.setdefault("workspace", ws)
        kw.setdefault("keys_dir", tmp_path / "keys")
        for k, v in extra.items():
            kw.setdefault(k, v)
        rt = Runtime(**kw)
        made.append(rt)
        return rt

    yield make
    for rt in made:
        rt.close()
    if executor_name == "ray":
        journal.close()
