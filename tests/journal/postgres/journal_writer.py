"""A process that writes a PostgreSQL journal at the same time as others (run by
test_concurrent_writers).

``owner URL SCHEMA RUN N TOTAL``: create run RUN sealed (a fixed test key) and leased,
write N steps (intent, then result, a batch each), wait until the run holds TOTAL rows
(other processes write the rest), then finish it (its checkpoint chains them all).
``other URL SCHEMA RUN TAG N``: write N results into RUN without its lease, as a person
answering an approval does (they wait, unchained, for the owner).
"""

from __future__ import annotations

import os
import sys
import time

from nacl.signing import SigningKey

from remit.journal import Lease, RunRecord, StepRecord
from remit.journal.postgres import PostgresJournal

KEY = SigningKey(b"\x07" * 32)


def sign(message: bytes) -> bytes:
    return KEY.sign(message).signature


def step(run_id: str, sid: str, i: int, status: str) -> StepRecord:
    ended = None if status == "started" else 2.0
    return StepRecord(run_id, sid, "t", i, "tool", "calc", status, '{"i": 1}',  # type: ignore[arg-type]
                      output=None if status == "started" else f'"{sid}"', started_at=1.0,
                      ended_at=ended)  # fmt: skip


def main() -> None:
    mode, url, schema, run_id = sys.argv[1:5]
    journal = PostgresJournal(url, schema=schema)
    if mode == "owner":
        n, total = int(sys.argv[5]), int(sys.argv[6])
        owner = f"owner-{os.getpid()}"
        now = time.time()
        lease = Lease(run_id, owner, os.getpid(), "h", now, now, now + 600)
        journal.create_run(RunRecord(run_id, "g", "a", "{}"), lease, (bytes(KEY.verify_key), sign))
        for i in range(n):
            journal.write([step(run_id, f"own.{i}", i, "started")], owner=owner)
            journal.write([step(run_id, f"own.{i}", i, "ok")], owner=owner)
        deadline = time.monotonic() + 60
        while len(list(journal.steps(run_id))) < total:  # bounded by the deadline
            if time.monotonic() > deadline:
                sys.exit("the other writers never finished")
            time.sleep(0.02)
        journal.finish_run(run_id, "done", '"ok"', None, owner=owner)
    else:
        tag, n = sys.argv[5], int(sys.argv[6])
        deadline = time.monotonic() + 60
        while True:  # the run must exist first (its owner creates it)
            try:
                journal.get_run(run_id)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        for i in range(n):
            journal.write([step(run_id, f"{tag}.{i}", i, "ok")])
    journal.close()


if __name__ == "__main__":
    main()
