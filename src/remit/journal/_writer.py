"""Group commit: many step records, one transaction, one fsync.

Records appended during one turn of the event loop are written together at the end
of that turn. Callers that must not go on before their record is on disk (an effect's
intent, a task reporting done) ``await durable()``; others do not wait, and their
records still reach the disk within one loop turn.
"""

from __future__ import annotations

import asyncio

from ._store import JournalStore, StepRecord


class JournalWriter:
    """Buffers step records for one store and flushes them in batches."""

    __slots__ = ("_loop", "_pending", "_scheduled", "_waiters", "batches", "failure", "store")

    def __init__(self, store: JournalStore) -> None:
        self.store = store
        self._loop: asyncio.AbstractEventLoop | None = None
        # keyed by step id: an intent and its result in one batch become one row
        self._pending: dict[str, StepRecord] = {}
        self._waiters: list[asyncio.Future[None]] = []
        self._scheduled = False
        self.batches = 0
        #: the write error that broke this writer; every later call re-raises it
        self.failure: BaseException | None = None

    def add(self, record: StepRecord) -> None:
        """Queue a record (an intent, or a result that replaces a queued intent)."""
        if self.failure is not None:
            raise self.failure
        pending = self._pending.get(record.step_id)
        if pending is not None and pending.status != "started":
            return  # first result wins, as in the store
        self._pending[record.step_id] = record
        if not self._scheduled:
            self._schedule()

    async def durable(self) -> None:
        """Wait until everything queued so far is on disk (re-raises a write failure)."""
        if self.failure is not None:
            raise self.failure
        if not self._pending and not self._scheduled:
            return
        loop = self._loop or asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._waiters.append(fut)
        if not self._scheduled:
            self._schedule()
        await fut

    def flush(self) -> None:
        """Write everything queued now (synchronously)."""
        self._scheduled = False
        records = list(self._pending.values())
        self._pending.clear()
        waiters, self._waiters = self._waiters, []
        try:
            if records:
                self.store.write(records)
                self.batches += 1
        except BaseException as e:
            self.failure = e
            for w in waiters:
                if not w.done():
                    w.set_exception(e)
            raise
        for w in waiters:
            if not w.done():
                w.set_result(None)

    def _schedule(self) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        self._scheduled = True
        self._loop.call_soon(self._flush_soon)

    def _flush_soon(self) -> None:
        # a failure is kept in self.failure and raised to every waiter and later caller
        try:
            self.flush()
        except Exception:
            return
