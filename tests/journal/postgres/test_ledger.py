"""The PostgreSQL ledger across real processes: siblings in different processes reserve
against one parent's budget; it never overshoots, loses or doubles a booking, and a
SIGKILLed process's open reservations are released by ``recover``."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from remit.core.ledger import Usage
from remit.core.remit import Budget
from remit.errors import BudgetExceeded
from remit.journal.postgres import PostgresLedger

pytestmark = pytest.mark.postgres

WORKER = Path(__file__).with_name("ledger_worker.py")


def worker(url: str, schema: str, child: str, mode: str, limit: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), url, schema, "run-1", child, mode, str(limit)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_reservations_in_one_process(pg_url: str, pg_schema: str) -> None:
    ledger = PostgresLedger(pg_url, "run-1", schema=pg_schema)
    root = ledger.open("root", Budget(calls=3, cost_usd=1.0))
    a = ledger.open("a", Budget(calls=10), root)
    b = ledger.open("b", Budget(calls=1), root)
    r1 = ledger.reserve(a, Usage(calls=1, cost_usd=0.5))
    r2 = ledger.reserve(b, Usage(calls=1))
    with pytest.raises(BudgetExceeded, match=r"budget\.calls of b"):
        ledger.reserve(b, Usage(calls=1))
    with pytest.raises(BudgetExceeded, match=r"budget\.cost_usd of root"):
        ledger.reserve(a, Usage(calls=1, cost_usd=0.6))
    ledger.settle(r1, Usage(calls=1, cost_usd=0.25))
    ledger.settle(r1, Usage(calls=1, cost_usd=0.25))  # twice: booked once
    ledger.release(r2)
    assert ledger.state("root") == (Usage(calls=1, cost_usd=0.25), Usage())
    assert root.spent == Usage(calls=1, cost_usd=0.25)  # this process's view agrees
    # a step booked under its key is booked once, however often it is replayed
    ledger.charge(a, Usage(calls=1), key="t:execute.0")
    ledger.charge(a, Usage(calls=1), key="t:execute.0")
    r3 = ledger.reserve(a, Usage(calls=1), key="t:execute.0")
    ledger.settle(r3, Usage(calls=1))  # its spend was booked: only the hold goes
    assert ledger.state("a") == (Usage(calls=2, cost_usd=0.25), Usage())
    # another process opening the same accounts sees the same spend
    again = PostgresLedger(pg_url, "run-1", schema=pg_schema)
    assert again.state("root")[0] == Usage(calls=2, cost_usd=0.25)
    again.close()
    ledger.close()


def test_siblings_in_four_processes_never_overshoot_the_parent(pg_url: str, pg_schema: str) -> None:
    limit = 60
    procs = [worker(pg_url, pg_schema, f"child-{i}", "spend", limit) for i in range(4)]
    counts = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        counts.append(int(out.split()[-1]))
    ledger = PostgresLedger(pg_url, "run-1", schema=pg_schema)
    # exactly the budget: none lost, none doubled, none over
    assert sum(counts) == limit, counts
    assert ledger.state("root") == (Usage(calls=limit), Usage())
    for i, n in enumerate(counts):
        assert ledger.state(f"child-{i}") == (Usage(calls=n), Usage())
    ledger.close()


def test_a_killed_process_reservations_are_released_on_recover(pg_url: str, pg_schema: str) -> None:
    limit = 40
    holder = worker(pg_url, pg_schema, "child-h", "hold", limit)
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    # one process killed while it holds, one killed at a random instant of its spending
    spender = worker(pg_url, pg_schema, "child-k", "spend", limit)
    assert spender.stdout is not None
    spender.stdout.readline()
    time.sleep(0.05)
    for p in (holder, spender):
        p.send_signal(signal.SIGKILL)
        p.wait()
    ledger = PostgresLedger(pg_url, "run-1", schema=pg_schema)
    spent, reserved = ledger.state("root")
    # the holder's three, and the spender's one if it died between reserve and settle
    assert reserved.calls in (3, 4)
    assert ledger.recover() == reserved.calls
    assert ledger.recover() == 0
    spent_after, reserved = ledger.state("root")
    assert reserved == Usage() and spent_after == spent
    k_spent, k_reserved = ledger.state("child-k")
    assert k_reserved == Usage() and k_spent == spent  # the chain moved as one
    # the released budget is usable again: the others spend exactly what is left
    procs = [worker(pg_url, pg_schema, f"child-{i}", "spend", limit) for i in range(2)]
    total = sum(int(p.communicate(timeout=60)[0].split()[-1]) for p in procs)
    assert total == limit - spent.calls
    assert ledger.state("root") == (Usage(calls=limit), Usage())
    ledger.close()
