"""Group commit on a writer thread: many step records, one transaction, one fsync.

The event loop queues records and goes on; a writer thread commits whatever has been
queued since its last commit in one transaction. While one commit waits for the disk,
the next batch builds up, so the fsync overlaps the work instead of stalling it.

Records reach the disk in the order they were queued and each batch is one
transaction, so the journal on disk is always a *prefix* of what was queued: if a
step's record survives a crash, so does every record queued before it. That is what
lets a dependent task start before its predecessor's record is on disk: a crash loses
both or neither. Anything seen outside the process waits for the disk first:
``await durable()`` before an effect (write-ahead), ``when_durable(callback)`` before
reporting a task done, ``close()`` before a run returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable

from ._store import JournalStore, StepRecord


class JournalWriter:
    """Buffers step records for one store and commits them in batches on a thread."""

    def __init__(self, store: JournalStore) -> None:
        self.store = store
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._buf: list[StepRecord] = []
        self._queued = 0  # records queued so far (a sequence number)
        self._durable = 0  # records known to be on disk
        self._waiters: list[tuple[int, asyncio.Future[None] | Callable[[], None]]] = []
        self._thread: threading.Thread | None = None
        self._closing = False
        self._kicked = False
        self.batches = 0
        #: the write error that broke this writer; every later call re-raises it
        self.failure: BaseException | None = None
        #: called in the event loop with the error if a write fails (the engine stops)
        self.on_failure: Callable[[BaseException], None] | None = None

    # --- called from the event loop ------------------------------------------------

    def add(self, record: StepRecord) -> None:
        """Queue a record (an intent, or a result; the first result of a step wins)."""
        if self.failure is not None:
            raise self.failure
        with self._lock:
            self._buf.append(record)
            self._queued += 1
        if self._thread is None:
            self._start()
        if not self._kicked:
            # wake the thread once per loop turn, not per record: a turn's records
            # make one batch
            self._kicked = True
            assert self._loop is not None
            self._loop.call_soon(self._kick)

    def _kick(self) -> None:
        self._kicked = False
        with self._cond:
            self._cond.notify()

    async def durable(self) -> None:
        """Wait until everything queued so far is on disk (re-raises a write failure)."""
        if self.failure is not None:
            raise self.failure
        loop = asyncio.get_running_loop()
        with self._cond:
            if self._durable >= self._queued:
                return
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.append((self._queued, fut))
        await fut

    def when_durable(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` in the event loop once everything queued so far is on disk."""
        if self.failure is not None:
            raise self.failure
        with self._cond:
            if self._durable >= self._queued:
                done = True
            else:
                done = False
                self._waiters.append((self._queued, callback))
        if done:
            callback()

    def close(self) -> None:
        """Commit everything queued, stop the thread; re-raises a write failure."""
        with self._cond:
            self._closing = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join()
        self._thread = None
        with self._lock:
            records, self._buf = self._buf, []
        if records and self.failure is None:
            # the thread stopped early; nothing may be lost
            self.store.write(_merge(records))
        if self.failure is not None:
            raise self.failure

    # --- the writer thread ---------------------------------------------------------

    def _start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="remit-journal", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        cond = self._cond
        while True:
            with cond:
                while not self._buf and not self._closing:
                    cond.wait()
                if not self._buf:
                    return
                records, self._buf = self._buf, []
                upto = self._queued
            try:
                self.store.write(_merge(records))
            except BaseException as e:
                self.failure = e
                self._post(self._fail_waiters, e)
                return
            self.batches += 1
            with cond:
                self._durable = upto
                ready = [w for w in self._waiters if w[0] <= upto]
                if ready:
                    self._waiters = [w for w in self._waiters if w[0] > upto]
            if ready:
                self._post(self._release, ready)

    def _post(self, fn: Callable[..., None], arg: object) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            # the loop may close between the check and the call
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(fn, arg)

    # --- back in the event loop ----------------------------------------------------

    def _release(self, ready: list[tuple[int, asyncio.Future[None] | Callable[[], None]]]) -> None:
        for _, w in ready:
            if isinstance(w, asyncio.Future):
                if not w.done():
                    w.set_result(None)
                continue
            try:
                w()
            except Exception as e:  # an engine bug: never lose it in the event loop
                if self.on_failure is None:
                    raise
                self.on_failure(e)

    def _fail_waiters(self, error: BaseException) -> None:
        with self._cond:
            waiters, self._waiters = self._waiters, []
        for _, w in waiters:
            if isinstance(w, asyncio.Future) and not w.done():
                w.set_exception(error)
        if self.on_failure is not None:
            self.on_failure(error)


def _merge(records: list[StepRecord]) -> list[StepRecord]:
    """One row per step: a result replaces its queued intent; the first result wins."""
    by_step: dict[str, StepRecord] = {}
    for r in records:
        prev = by_step.get(r.step_id)
        if prev is None or prev.status == "started":
            if prev is not None and r.status != "started":
                r.input = r.input if r.input is not None else prev.input
                r.started_at = prev.started_at
            if prev is None or r.status != "started":
                by_step[r.step_id] = r
    return list(by_step.values())
