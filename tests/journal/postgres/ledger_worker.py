"""A process that reserves against a shared PostgreSQL ledger (run by test_ledger).

``python ledger_worker.py URL SCHEMA RUN CHILD MODE``: opens the run's ``root`` and its
own account ``CHILD`` under it, then, in ``MODE``

- ``spend``: reserve one call and settle it, again and again, until the budget refuses;
  prints each settled call's number as it commits, and ``done N`` at the end;
- ``hold``: reserve one call three times without settling, print ``held``, then sleep
  (the test SIGKILLs it while its reservations are open).
"""

from __future__ import annotations

import sys
import time

from remit.core.ledger import Usage
from remit.core.remit import Budget
from remit.errors import BudgetExceeded
from remit.journal.postgres import PostgresLedger


def main() -> None:
    url, schema, run_id, child, mode = sys.argv[1:6]
    ledger = PostgresLedger(url, run_id, schema=schema)
    root = ledger.open("root", Budget(calls=int(sys.argv[6]) if len(sys.argv) > 6 else 40))
    mine = ledger.open(child, Budget(calls=1000), parent=root)
    one = Usage(calls=1)
    if mode == "hold":
        for _ in range(3):
            ledger.reserve(mine, one)
        print("held", flush=True)
        time.sleep(120)
        return
    n = 0
    for _ in range(10_000):  # bounded: the budget ends it far sooner
        try:
            r = ledger.reserve(mine, one)
        except BudgetExceeded:
            break
        ledger.settle(r, one)
        n += 1
        print(n, flush=True)
    print(f"done {n}", flush=True)
    ledger.close()


if __name__ == "__main__":
    main()
