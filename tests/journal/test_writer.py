"""The journal writer: group commit on a thread, durable(), when_durable(), failures, close()."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from remit.errors import JournalError
from remit.journal import RunRecord, SQLiteJournal, StepRecord
from remit.journal._writer import SWITCH_INTERVAL_S, JournalWriter

RUN = "run-w"


def rec(i: int, status: str = "ok", run: str = RUN) -> StepRecord:
    return StepRecord(
        run,
        f"t.0.x:execute.{i}",
        "t.0.x",
        i,
        "tool",
        "calc",
        status,  # type: ignore[arg-type]
        f'{{"i": {i}}}',
        "1" if status == "ok" else None,
        None,
        None,
        1.0,
        2.0 if status != "started" else None,
    )


@pytest.fixture
def store(journal_path: Path) -> SQLiteJournal:
    s = SQLiteJournal(journal_path, durability="normal")
    s.create_run(RunRecord(RUN, "g", "a", "{}"))
    yield s  # type: ignore[misc]
    s.close()


def rows_on_disk(path: Path, run: str = RUN) -> dict[str, str]:
    """step_id -> status, read through a connection of its own."""
    conn = sqlite3.connect(path)
    try:
        return dict(conn.execute("SELECT step_id, status FROM steps WHERE run_id = ?", (run,)))
    finally:
        conn.close()


class CountingStore:
    """Wraps a store: counts write() calls and can be made slow or broken."""

    def __init__(self, inner: Any, *, delay: float = 0.0, fail_after: int | None = None) -> None:
        self.inner = inner
        self.delay = delay
        self.fail_after = fail_after
        self.writes: list[int] = []
        self.durability = inner.durability

    def write(self, records: Sequence[StepRecord], owner: str | None = None) -> None:
        if self.fail_after is not None and len(self.writes) >= self.fail_after:
            raise JournalError("disk on fire")
        time.sleep(self.delay)
        self.inner.write(records, owner=owner)
        self.writes.append(len(records))

    # the two-phase write the writer prefers: rows now, the commit (fsync) on a thread
    def stage(self, records: Sequence[StepRecord], owner: str | None = None) -> None:
        if self.fail_after is not None and len(self.writes) >= self.fail_after:
            raise JournalError("disk on fire")
        self.inner.stage(records, owner=owner)
        self._staged = len(records)

    def commit_staged(self) -> None:
        time.sleep(self.delay)
        self.inner.commit_staged()
        self.writes.append(self._staged)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_many_records_are_committed_in_few_batches(
    store: SQLiteJournal, journal_path: Path
) -> None:
    counting = CountingStore(store)

    async def main() -> None:
        w = JournalWriter(counting)  # type: ignore[arg-type]
        for i in range(2000):
            w.add(rec(i))
        await w.durable()
        assert w.batches == len(counting.writes)
        w.close()

    asyncio.run(main())
    assert sum(counting.writes) == 2000
    assert len(counting.writes) <= 3, counting.writes
    assert len(rows_on_disk(journal_path)) == 2000


def test_records_queued_while_a_commit_waits_for_the_disk_form_the_next_batch(
    store: SQLiteJournal, journal_path: Path
) -> None:
    counting = CountingStore(store, delay=0.05)

    async def main() -> None:
        w = JournalWriter(counting)  # type: ignore[arg-type]
        for turn in range(10):
            for i in range(100):
                w.add(rec(turn * 100 + i))
            await asyncio.sleep(0.01)  # a few loop turns while the slow commit runs
        await w.durable()
        w.close()

    asyncio.run(main())
    assert sum(counting.writes) == 1000
    # 10 loop turns of records, but commits overlap the work: fewer batches than turns
    assert len(counting.writes) < 10, counting.writes
    assert len(rows_on_disk(journal_path)) == 1000


def test_durable_returns_only_once_another_connection_sees_the_rows(
    store: SQLiteJournal, journal_path: Path
) -> None:
    counting = CountingStore(store, delay=0.05)  # a slow disk makes an early return visible

    async def main() -> None:
        w = JournalWriter(counting)  # type: ignore[arg-type]
        for i in range(50):
            w.add(rec(i))
        await w.durable()
        assert len(rows_on_disk(journal_path)) == 50
        w.add(rec(50, "started"))
        await w.durable()
        assert rows_on_disk(journal_path)["t.0.x:execute.50"] == "started"
        await w.durable()  # nothing new queued: returns at once
        w.close()

    asyncio.run(main())


def test_when_durable_callbacks_run_in_the_loop_after_the_commit(
    store: SQLiteJournal, journal_path: Path
) -> None:
    counting = CountingStore(store, delay=0.02)
    seen: list[tuple[int, int, bool]] = []

    async def main() -> None:
        loop_thread = threading.get_ident()
        w = JournalWriter(counting)  # type: ignore[arg-type]
        for batch in range(3):
            for i in range(10):
                w.add(rec(batch * 10 + i))
            n = (batch + 1) * 10
            w.when_durable(
                lambda n=n: seen.append(
                    (n, len(rows_on_disk(journal_path)), threading.get_ident() == loop_thread)
                )
            )
        await w.durable()
        await asyncio.sleep(0)
        # nothing pending: the callback runs at once
        w.when_durable(lambda: seen.append((-1, len(rows_on_disk(journal_path)), True)))
        w.close()

    asyncio.run(main())
    assert [s[0] for s in seen] == [10, 20, 30, -1]
    for n, on_disk, in_loop in seen[:3]:
        assert on_disk >= n, "a callback ran before its records were committed"
        assert in_loop, "callbacks must run in the event loop thread"


def test_an_intent_and_its_result_in_one_batch_make_one_row(
    store: SQLiteJournal, journal_path: Path
) -> None:
    async def main() -> None:
        w = JournalWriter(store)
        w.add(rec(1, "started"))
        w.add(rec(1, "ok"))
        w.add(rec(2, "started"))
        w.add(rec(2, "error"))
        w.add(rec(2, "ok"))  # the first result wins
        w.close()

    asyncio.run(main())
    steps = {s.step_id: s for s in store.steps(RUN)}
    assert steps["t.0.x:execute.1"].status == "ok"
    assert steps["t.0.x:execute.1"].input == '{"i": 1}'
    assert steps["t.0.x:execute.2"].status == "error"


def test_a_write_failure_reaches_waiters_and_every_later_call(store: SQLiteJournal) -> None:
    broken = CountingStore(store, fail_after=0)
    failures: list[BaseException] = []

    async def main() -> None:
        w = JournalWriter(broken)  # type: ignore[arg-type]
        w.on_failure = failures.append
        w.add(rec(1))
        with pytest.raises(JournalError, match="disk on fire"):
            await asyncio.wait_for(w.durable(), 5)
        await asyncio.sleep(0)
        with pytest.raises(JournalError, match="disk on fire"):
            w.add(rec(2))
        with pytest.raises(JournalError, match="disk on fire"):
            await w.durable()
        with pytest.raises(JournalError, match="disk on fire"):
            w.when_durable(lambda: None)
        with pytest.raises(JournalError, match="disk on fire"):
            w.close()

    asyncio.run(main())
    assert len(failures) == 1 and "disk on fire" in str(failures[0])


def test_a_failure_after_some_good_batches_keeps_what_was_committed(
    store: SQLiteJournal, journal_path: Path
) -> None:
    flaky = CountingStore(store, fail_after=1)

    async def main() -> None:
        w = JournalWriter(flaky)  # type: ignore[arg-type]
        w.add(rec(1))
        await w.durable()
        waiter_done: list[BaseException] = []
        w.add(rec(2))
        w.when_durable(lambda: waiter_done.append(RuntimeError("ran")))
        with pytest.raises(JournalError):
            await asyncio.wait_for(w.durable(), 5)
        assert not waiter_done, "a callback must not run for records that never committed"
        with pytest.raises(JournalError):
            w.close()

    asyncio.run(main())
    assert rows_on_disk(journal_path) == {"t.0.x:execute.1": "ok"}


def test_close_commits_everything_queued(store: SQLiteJournal, journal_path: Path) -> None:
    counting = CountingStore(store, delay=0.02)

    async def main() -> None:
        w = JournalWriter(counting)  # type: ignore[arg-type]
        for i in range(500):
            w.add(rec(i))
            if i % 100 == 0:
                await asyncio.sleep(0)
        w.close()  # no durable() first

    asyncio.run(main())
    assert len(rows_on_disk(journal_path)) == 500


def test_close_without_records_is_harmless(store: SQLiteJournal) -> None:
    async def main() -> None:
        w = JournalWriter(store)
        w.close()
        w.close()

    asyncio.run(main())


def test_the_disk_holds_a_prefix_of_what_was_queued(
    store: SQLiteJournal, journal_path: Path
) -> None:
    """Read concurrently while writing: whenever row k is on disk, so is every row < k."""
    counting = CountingStore(store, delay=0.002)
    violations: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            ids = {int(k.rsplit(".", 1)[1]) for k in rows_on_disk(journal_path)}
            if ids and ids != set(range(max(ids) + 1)):
                violations.append(f"holes below {max(ids)}")

    async def main() -> None:
        w = JournalWriter(counting)  # type: ignore[arg-type]
        for i in range(600):
            w.add(rec(i))
            if i % 7 == 0:
                await asyncio.sleep(0.0005)  # an idle loop: batches overlap the commits
        await w.durable()
        w.close()

    t = threading.Thread(target=reader)
    t.start()
    try:
        asyncio.run(main())
    finally:
        stop.set()
        t.join()
    assert not violations, violations[:3]
    assert len(counting.writes) > 1, "the test needs several batches"


def test_a_busy_loop_commits_on_its_own_thread_every_few_milliseconds(
    store: SQLiteJournal, journal_path: Path
) -> None:
    """A loop that computes and never idles, turning only now and then: batches start from
    ``add`` and land, each within a few milliseconds."""
    lags: list[float] = []

    async def main() -> None:
        w = JournalWriter(store)
        queued_at: dict[int, float] = {}
        for i in range(400):
            until = time.perf_counter() + 0.0005  # half a millisecond of work per record
            while time.perf_counter() < until:
                pass
            queued_at[i] = time.perf_counter()
            w.add(rec(i))
            if i % 20 == 0:
                on_disk = len(rows_on_disk(journal_path))
                if on_disk:
                    lags.append(time.perf_counter() - queued_at[on_disk - 1])
                await asyncio.sleep(0)  # a loop turn now and then, as the engine gives
        w.close()

    asyncio.run(main())
    assert len(rows_on_disk(journal_path)) == 400
    assert len(lags) >= 15, "nothing reached the disk while the loop computed"


def test_a_loop_that_waits_on_io_lets_a_batch_grow_while_nobody_waits(
    store: SQLiteJournal, journal_path: Path
) -> None:
    """A call every millisecond, the loop idle in between (a tool server's answers):
    records are committed a batch per few calls, not a commit per call, and each within
    about ``IDLE_BATCH_S`` + a commit."""
    from remit.journal._writer import IDLE_BATCH_S

    counting = CountingStore(store)
    lags: list[float] = []

    async def main() -> None:
        w = JournalWriter(counting)  # type: ignore[arg-type]
        queued_at: dict[int, float] = {}
        for i in range(200):
            queued_at[i] = time.perf_counter()
            w.add(rec(i))
            await asyncio.sleep(0.001)
            on_disk = len(rows_on_disk(journal_path))
            if on_disk:
                lags.append(time.perf_counter() - queued_at[on_disk - 1])
        await w.durable()
        w.close()

    asyncio.run(main())
    assert sum(counting.writes) == 200 and len(rows_on_disk(journal_path)) == 200
    assert len(counting.writes) <= 200 / 3, counting.writes  # ~1 per IDLE_BATCH_S
    assert max(lags) < IDLE_BATCH_S + 0.1, max(lags)


def test_a_waiter_gets_its_commit_at_once_from_a_quiet_loop(
    store: SQLiteJournal, journal_path: Path
) -> None:
    """An effect's write-ahead (``durable()``) does not wait for a quiet loop's batch to
    grow: its commit starts at once."""
    waits: list[float] = []

    async def main() -> None:
        w = JournalWriter(store)
        for i in range(20):
            w.add(rec(i))
            await asyncio.sleep(0)  # a loop turn: the batch is left to grow
            t0 = time.perf_counter()
            await w.durable()
            waits.append(time.perf_counter() - t0)
            assert len(rows_on_disk(journal_path)) == i + 1
            await asyncio.sleep(0.002)
        w.close()

    asyncio.run(main())
    # a commit of one row (durability normal) takes well under a millisecond; waiting
    # for the batch to grow would take IDLE_BATCH_S (5 ms) every time
    assert sorted(waits)[len(waits) // 2] < 0.004, waits


def test_a_commit_in_flight_shortens_the_switch_interval_and_puts_it_back(
    store: SQLiteJournal,
) -> None:
    """The helper needs the GIL to start and to end its commit: while one is in flight a
    computing loop must hand it over within a fraction of a millisecond, not 5 ms."""
    seen: list[float] = []

    class Watching(CountingStore):
        def commit_staged(self) -> None:
            seen.append(sys.getswitchinterval())
            super().commit_staged()

    before = sys.getswitchinterval()

    async def main() -> None:
        w = JournalWriter(Watching(store))  # type: ignore[arg-type]
        for i in range(50):
            w.add(rec(i))
            await asyncio.sleep(0.002)
        await w.durable()
        w.close()

    asyncio.run(main())
    assert seen and all(s == pytest.approx(SWITCH_INTERVAL_S, abs=2e-6) for s in seen), seen
    assert sys.getswitchinterval() == before
