"""Many processes writing one PostgreSQL journal at once: no row lost or doubled, and
every sealed run's chain has one order its checkpoints sign (the per-run advisory lock)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from remit.journal._chain import fold, genesis, link, row_hash
from remit.journal.postgres import PostgresJournal

from .journal_writer import KEY

pytestmark = pytest.mark.postgres

WRITER = Path(__file__).with_name("journal_writer.py")


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(WRITER), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def wait_all(procs: list[subprocess.Popen[str]]) -> None:
    for p in procs:
        _, err = p.communicate(timeout=90)
        assert p.returncode == 0, err


def chain_verifies(journal: PostgresJournal, run_id: str) -> int:
    """Every row chained once, in one gapless order; every checkpoint's head the fold
    of the chain up to it, signed; every row hashing to its last entry."""
    entries = journal.chain(run_id)
    assert all(e.n > 0 for e in entries), "rows left unchained"
    assert [e.n for e in entries] == list(range(1, len(entries) + 1))
    head, prev = genesis(run_id), 0
    for cp in journal.checkpoints(run_id):
        head = fold(head, [link(e.step_id, e.entry) for e in entries[prev : cp.n]])
        prev = cp.n
        assert head == cp.head
        KEY.verify_key.verify(cp.message(), cp.signature)
    assert prev == len(entries), "the last checkpoint does not cover the chain"
    last = {e.step_id: e.entry for e in entries}
    steps = list(journal.steps(run_id))
    assert all(row_hash(s) == last[s.step_id] for s in steps)
    return len(steps)


def test_four_processes_each_writing_its_own_sealed_run(pg_url: str, pg_schema: str) -> None:
    n = 40
    wait_all([spawn("owner", pg_url, pg_schema, f"run-{i}", str(n), str(n)) for i in range(4)])
    journal = PostgresJournal(pg_url, schema=pg_schema)
    for i in range(4):
        assert chain_verifies(journal, f"run-{i}") == n
        assert journal.get_run(f"run-{i}").status == "done"
    journal.close()


def test_an_owner_and_three_other_writers_of_one_sealed_run(pg_url: str, pg_schema: str) -> None:
    n, others = 40, 3
    total = n + others * n
    owner = spawn("owner", pg_url, pg_schema, "run-x", str(n), str(total))
    procs = [spawn("other", pg_url, pg_schema, "run-x", f"p{k}", str(n)) for k in range(others)]
    wait_all([owner, *procs])
    journal = PostgresJournal(pg_url, schema=pg_schema)
    steps = list(journal.steps("run-x"))
    ids = [s.step_id for s in steps]
    assert len(ids) == len(set(ids)) == total  # none lost, none doubled
    assert all(s.status == "ok" for s in steps)
    assert chain_verifies(journal, "run-x") == total
    journal.close()
