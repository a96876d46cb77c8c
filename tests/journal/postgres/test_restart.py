"""A PostgreSQL restart while a run writes: the writer waits and carries on, or, past
its deadline, fails with a clear error; either way the journal stays whole (every
committed batch there once, the chain of the sealed run verifying)."""

from __future__ import annotations

import threading
import time

import pytest

from remit.errors import JournalError
from remit.journal import Lease, RunRecord
from remit.journal.postgres import PostgresJournal
from remit.journal.postgres.throwaway import ThrowawayServer

from .journal_writer import KEY, sign, step
from .test_concurrent_writers import chain_verifies

pytestmark = pytest.mark.postgres


def sealed_run(journal: PostgresJournal, run_id: str) -> str:
    now = time.time()
    journal.create_run(
        RunRecord(run_id, "g", "a", "{}"),
        Lease(run_id, "me", 1, "h", now, now, now + 600),
        (bytes(KEY.verify_key), sign),
    )
    return "me"


def test_a_restart_mid_run_is_waited_out(
    pg_server: ThrowawayServer, pg_url: str, pg_schema: str
) -> None:
    journal = PostgresJournal(pg_url, schema=pg_schema, reconnect_timeout=60)
    owner = sealed_run(journal, "run-r")
    n = 150
    errors: list[BaseException] = []
    progress = threading.Event()

    def writer() -> None:
        try:
            for i in range(n):
                journal.write([step("run-r", f"s{i}", i, "started")], owner=owner)
                journal.write([step("run-r", f"s{i}", i, "ok")], owner=owner)
                if i == 20:
                    progress.set()
        except BaseException as e:
            errors.append(e)
            progress.set()

    t = threading.Thread(target=writer)
    t.start()
    assert progress.wait(30)
    pg_server.restart(mode="fast")  # every session is ended; the server comes back
    t.join(90)
    assert not t.is_alive() and not errors, errors
    journal.finish_run("run-r", "done", '"ok"', None, owner=owner)
    journal.close()
    again = PostgresJournal(pg_url, schema=pg_schema)
    assert chain_verifies(again, "run-r") == n
    assert [s.status for s in again.steps("run-r")] == ["ok"] * n
    again.close()


def test_past_its_deadline_a_write_fails_clearly_and_nothing_is_torn(
    pg_server: ThrowawayServer, pg_url: str, pg_schema: str
) -> None:
    journal = PostgresJournal(pg_url, schema=pg_schema, reconnect_timeout=1.0)
    owner = sealed_run(journal, "run-d")
    journal.write([step("run-d", "s0", 0, "ok")], owner=owner)
    pg_server.pause(mode="immediate")  # a crash of the server
    try:
        started = time.monotonic()
        with pytest.raises(JournalError, match=r"unreachable for 1 s.*remit resume"):
            journal.write([step("run-d", "s1", 1, "ok")], owner=owner)
        assert time.monotonic() - started < 10
    finally:
        pg_server.resume()
    # the same store carries on once the server is back, its chain read again
    journal.write([step("run-d", "s1", 1, "ok"), step("run-d", "s2", 2, "ok")], owner=owner)
    journal.finish_run("run-d", "done", '"ok"', None, owner=owner)
    journal.close()
    again = PostgresJournal(pg_url, schema=pg_schema)
    assert chain_verifies(again, "run-d") == 3
    again.close()


def test_a_connection_left_in_doubt_is_replaced_not_reused(pg_url: str, pg_schema: str) -> None:
    # A server that ends a session mid-pipeline can leave psycopg's connection
    # unmarked yet refusing every query ("cannot exit pipeline mode while busy"): the
    # error that reports it must not be retried on the same connection for the whole
    # reconnect timeout. Here the body meets that error once, as psycopg raises it.
    import psycopg

    journal = PostgresJournal(pg_url, schema=pg_schema, reconnect_timeout=30)
    backends: list[int] = []

    def body(conn: psycopg.Connection[object]) -> int:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        backends.append(int(row[0]))  # pyright: ignore[reportArgumentType]
        if len(backends) == 1:
            raise psycopg.OperationalError(
                "sending query failed: cannot exit pipeline mode while busy"
            )
        return len(backends)

    started = time.monotonic()
    assert journal._tx("a transaction", body) == 2  # pyright: ignore[reportPrivateUsage]
    assert backends[0] != backends[1], "the second attempt ran on the connection in doubt"
    assert time.monotonic() - started < 5
    journal.close()
