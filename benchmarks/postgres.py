"""The journal on SQLite and on PostgreSQL, side by side: what each guarantee costs there.

W2 (a 1,000-child fan-out and aggregate, every step through the full Gate) on:

- ``sqlite``: a SQLite file, durability "full" (fsync per group commit);
- ``pg_full``: PostgreSQL, ``synchronous_commit = on`` (a commit waits for the WAL flush);
- ``pg_normal``: PostgreSQL, ``synchronous_commit = off`` (survives a crash of the
  process, not of the server's machine);

each unsigned (the core) and signed (sealed: every row hashed into the run's chain, a
checkpoint signed per batch, the default). Then the cross-process ledger: one
reservation + settle round trip on :class:`~remit.journal.postgres.PostgresLedger`
against the in-memory ledger's, and a batch of 1 and of 100 step records written with
``write`` on each backend.

The PostgreSQL server is a throwaway one this script starts (Debian's ``postgresql``
binaries, ``fsync = on``, on 127.0.0.1: a socket round trip, not a network). Figures are
medians of ``--repeat`` runs; ``--json`` prints one JSON object as the last line.

    python benchmarks/postgres.py [--repeat 5] [--json]
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from durable import FanOut
from remit import Budget, Remit, Runtime
from remit.core.ledger import Ledger, Usage
from remit.journal import JournalStore, SQLiteJournal, StepRecord
from remit.journal.postgres import PostgresJournal, PostgresLedger
from remit.journal.postgres.throwaway import ThrowawayServer

_schemas = itertools.count()


def w2(open_store: Callable[[], JournalStore], sign: bool, n: int = 1000) -> float:
    """Seconds for W2 on a fresh journal the callable opens (opened before the clock)."""
    store = open_store()
    with tempfile.TemporaryDirectory() as keys:
        rt = Runtime(journal=store, agent=FanOut(n), sign=sign, keys_dir=keys)
        remit = Remit(tools={"step": {}}, budget=Budget(calls=1_000_000), depth=1)
        gc.collect()
        t = time.perf_counter()
        run = rt.run("benchmark", remit=remit, inputs={"i": 0})
        dt = time.perf_counter() - t
        rt.close()
    store.close()
    if not run.ok:
        raise SystemExit(f"benchmark run failed: {run.error}")
    return dt


def write_ms(open_store: Callable[[], JournalStore], batch: int, rounds: int = 50) -> float:
    """Milliseconds per ``write`` of ``batch`` new step records (each its own commit)."""
    store = open_store()
    t = time.perf_counter()
    for r in range(rounds):
        store.write(
            [
                StepRecord(
                    "w", f"s{r}.{i}", "t", i, "tool", "step", "ok", "{}", "1", started_at=1.0
                )
                for i in range(batch)
            ]
        )
    dt = (time.perf_counter() - t) / rounds * 1000
    store.close()
    return dt


def ledger_us(ledger: Ledger, rounds: int = 300) -> float:
    """Microseconds per reserve + settle on a child under a root."""
    from remit.core.remit import Budget as B

    root = ledger.open("root", B(calls=10**9))
    child = ledger.open("child", B(calls=10**9), root)
    one = Usage(calls=1)
    t = time.perf_counter()
    for _ in range(rounds):
        ledger.settle(ledger.reserve(child, one), one)
    return (time.perf_counter() - t) / rounds * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", action="store_true", help="print a JSON object as the last line")
    args = ap.parse_args()
    server = ThrowawayServer.start()
    try:
        url = server.create_database("bench")
        tmp = tempfile.mkdtemp(prefix="remit-bench-")
        files = itertools.count()

        def sqlite() -> JournalStore:
            return SQLiteJournal(f"{tmp}/j{next(files)}.db", durability="full")

        def pg(durability: str) -> Callable[[], JournalStore]:
            def open_store() -> JournalStore:
                schema = f"b{next(_schemas)}"
                return PostgresJournal(url, durability=durability, schema=schema)  # type: ignore[arg-type]

            return open_store

        backends = {"sqlite": sqlite, "pg_full": pg("full"), "pg_normal": pg("normal")}
        samples: dict[str, list[float]] = {}
        for _ in range(args.repeat):  # interleaved, so a slow minute hits every backend
            for name, open_store in backends.items():
                for sign in (False, True):
                    key = f"w2_{name}{'_signed' if sign else ''}_s"
                    samples.setdefault(key, []).append(w2(open_store, sign))
                for batch in (1, 100):
                    key = f"write{batch}_{name}_ms"
                    samples.setdefault(key, []).append(write_ms(open_store, batch))
            samples.setdefault("ledger_memory_us", []).append(ledger_us(Ledger()))
            pl = PostgresLedger(url, f"bench-{next(_schemas)}")
            samples.setdefault("ledger_pg_us", []).append(ledger_us(pl))
            pl.close()
        out = {k: round(statistics.median(v), 4) for k, v in samples.items()}
        out["repeat"] = args.repeat
    finally:
        server.stop()
    rows = [
        ("W2 1,000-child fan-out, core (s)", "w2_{}_s"),
        ("W2 signed (s)", "w2_{}_signed_s"),
        ("write of 1 record (ms)", "write1_{}_ms"),
        ("write of 100 records (ms)", "write100_{}_ms"),
    ]
    print(f"{'':34} {'sqlite':>10} {'pg_full':>10} {'pg_normal':>10}")
    for label, key in rows:
        vals = [out[key.format(b)] for b in backends]
        print(f"{label:34} " + " ".join(f"{v:10.4f}" for v in vals))
    print(
        f"ledger reserve+settle (us): in memory {out['ledger_memory_us']:.1f},"
        f" PostgreSQL {out['ledger_pg_us']:.1f}"
    )
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
