"""Group commit: many step records, one transaction, one fsync, overlapped with the work.

The event loop queues records and goes on. Once per loop turn the queued records are
*staged* (inserted into an open transaction, on the loop's thread: cheap, no I/O wait)
and a helper thread *commits* them (the fsync, which releases the GIL). While one
commit waits for the disk, the next batch builds up. The rows are bound on the loop's
own thread because the sqlite3 module needs the GIL for every row it binds: a writer
thread binding rows would get the GIL once per switch interval while the run computes,
and fall ever further behind.

While the loop computes (a CPU-bound fan-out, a chain of steps that never wait), a loop
that never waits may never turn to start a batch, and the helper's commit needs the GIL
twice (to start the COMMIT and to return from it). At Python's default switch interval
(5 ms) a computing loop would hold it that long each time, and a commit would take three
times the fsync. So while a commit is in flight the writer shortens the switch interval
(``SWITCH_INTERVAL_S``; it only costs anything while a thread waits for the GIL): the
helper gets the GIL within a fraction of a millisecond, and the fsync overlaps the work
whatever the loop does. A busy loop lets a batch grow for ``FLUSH_AFTER_S`` rather than
pay a commit per turn, and a record that has waited that long starts its batch from
``add`` itself, since no turn may come to start one. A commit can still be starved (a
loop thread that drops and retakes the GIL in its own I/O restarts the helper's wait);
one in flight for ``STARVED_AFTER_S`` is waited for, and the next batch committed on the
loop's thread. Records thus reach the disk within tens of milliseconds however the run
spends its time, and the fsync rarely costs the loop anything.

Batches commit in the order they were queued, each one transaction, so the journal on
disk is always a *prefix* of what was queued: if a step's record survives a crash, so
does every record queued before it. That is what lets a dependent task start before
its predecessor's record is on disk: a crash loses both or neither. Anything seen
outside the process waits for the disk: ``await durable()`` before an effect
(write-ahead), ``when_durable(callback)`` before reporting a task done, ``close()``
before a run returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from remit.journal._store import JournalStore, StepRecord

Waiter = asyncio.Future[None] | Callable[[], None]

#: how long a record may wait for a batch while the loop computes (CPU-bound roles and
#: tools, workers that never wait): a busy loop lets a batch grow this long instead of
#: committing on every turn, and a record that has waited this long is committed from
#: ``add`` itself, since no turn may come to start a batch. Measured on two cores: 5 ms
#: cost a signed 1,000-child fan-out ~25 % against deferring every commit to the end,
#: 10 ms ~15 %, 20 ms ~8 %
FLUSH_AFTER_S = 0.01
#: ... or once this many records are queued
FLUSH_RECORDS = 4096
#: how long a batch may grow while the loop idles and nobody waits for the disk: a loop
#: that waits on I/O (a tool server's answers, a model's) turns once per answer, and a
#: commit per answer costs more than many calls' worth of work. Half of
#: ``FLUSH_AFTER_S``, so that such a batch is never taken for one nobody started
IDLE_BATCH_S = FLUSH_AFTER_S / 2
#: the loop is busy when its thread computed for more than this share of the time since
#: the last look
BUSY_SHARE = 0.5
#: a commit in flight this long while records wait is starved after all (the loop
#: thread, dropping and retaking the GIL itself in its own I/O, restarts the helper's
#: wait for it): the loop then waits for it, which hands the helper the GIL at once,
#: and commits the next batch itself. It bounds how late a record reaches the disk
STARVED_AFTER_S = 4 * FLUSH_AFTER_S
#: the switch interval while a commit is in flight (see the module's docstring): short
#: enough that the helper's two GIL hand-overs cost far less than an fsync
SWITCH_INTERVAL_S = 0.0002

_switch_lock = threading.Lock()
_switch_users = 0
_switch_saved = _switch_ours = 0.0


def _shorten_switch_interval() -> None:
    """One more writer has a commit in flight: the first one shortens the interval."""
    global _switch_users, _switch_saved, _switch_ours
    with _switch_lock:
        if _switch_users == 0:
            _switch_saved = sys.getswitchinterval()
            if _switch_saved > SWITCH_INTERVAL_S:
                sys.setswitchinterval(SWITCH_INTERVAL_S)
            # as the interpreter holds it (whole microseconds): how to know it is ours
            _switch_ours = sys.getswitchinterval()
        _switch_users += 1


def _restore_switch_interval() -> None:
    """A writer's commit landed: the last one puts the interval back as it found it."""
    global _switch_users
    with _switch_lock:
        _switch_users -= 1
        # unless someone changed it meanwhile: theirs stands
        if _switch_users == 0 and sys.getswitchinterval() == _switch_ours:
            sys.setswitchinterval(_switch_saved)


class JournalWriter:
    """Buffers step records for one store and commits them in batches."""

    def __init__(self, store: JournalStore, owner: str | None = None) -> None:
        self.store = store
        #: the lease owner every batch is fenced with (see :mod:`remit.journal.lease`)
        self.owner = owner
        # a store that can stage (insert now, commit later) gets its fsync overlapped
        self._staged = callable(getattr(store, "stage", None)) and callable(
            getattr(store, "commit_staged", None)
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._buf: list[StepRecord] = []
        self._queued = 0  # records queued so far (a sequence number)
        self._durable = 0  # records known to be on disk
        self._waiters: list[tuple[int, Waiter]] = []
        self._kicked = False
        #: a quiet loop's batch is growing (see IDLE_BATCH_S); a waiter starts it
        self._idle_wait = False
        self._pool: ThreadPoolExecutor | None = None
        self._inflight: Future[None] | None = None
        self._inflight_upto = 0
        self._inflight_at = self._inflight_cpu = 0.0
        self._turn_at, self._turn_cpu = time.monotonic(), time.thread_time()
        self._buf_since = time.monotonic()
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
        now = time.monotonic()
        if not self._buf:
            self._buf_since = now
        self._buf.append(record)
        self._queued += 1
        if len(self._buf) >= FLUSH_RECORDS:
            self._flush_now()  # the disk is this far behind: wait for it here
        elif self._overdue(now):
            fut = self._inflight
            if fut is not None and not fut.done():
                self._flush_now()  # starved: see STARVED_AFTER_S
                return
            if fut is not None:  # landed; its callback has not come round yet
                self._inflight = None
                self._committed(fut, self._inflight_upto, direct=True)
            self._kick(from_loop=False)
        if not self._kicked:
            # one batch per loop turn
            self._kicked = True
            if self._loop is None:
                self._loop = asyncio.get_running_loop()
            self._loop.call_soon(self._kick)

    async def durable(self) -> None:
        """Wait until everything queued so far is on disk (re-raises a write failure)."""
        if self.failure is not None:
            raise self.failure
        if self._durable >= self._queued:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((self._queued, fut))
        self._hurry()
        await fut

    def when_durable(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` in the event loop once everything queued so far is on disk."""
        if self.failure is not None:
            raise self.failure
        if self._durable >= self._queued:
            callback()
        else:
            self._waiters.append((self._queued, callback))
            self._hurry()

    def close(self) -> None:
        """Commit everything queued and stop; re-raises a write failure.

        Called from the loop's thread once the run is over: it blocks until the disk
        has everything.
        """
        if self._inflight is not None:
            fut, self._inflight = self._inflight, None
            self._committed(fut, self._inflight_upto, direct=True)
        if self.failure is None and self._buf:
            records, self._buf = self._buf, []
            try:
                self.store.write(_merge(records), owner=self.owner)
            except BaseException as e:
                self.failure = e
            else:
                self.batches += 1
                self._release(self._queued)
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self.failure is not None:
            raise self.failure

    # --- batching --------------------------------------------------------------------

    def _overdue(self, now: float) -> bool:
        """Whether queued records have waited too long for a batch nobody will start: no
        commit is in flight (one that is, kicks the next batch as it lands) and no loop
        turn came to start one; or the one in flight is starved (a commit that is merely
        slow, on a slow disk while the loop waits, is left to overlap)."""
        if not self._buf or now - self._buf_since <= FLUSH_AFTER_S:
            return False
        fut = self._inflight
        if fut is None or fut.done():
            return True
        # starved, not merely slow: the loop's thread computed most of the time it waited
        pending = now - self._inflight_at
        return (
            pending > STARVED_AFTER_S
            and time.thread_time() - self._inflight_cpu > BUSY_SHARE * pending
        )

    def _flush_now(self) -> None:
        """Commit the queue here and now, on the loop's thread, after the commit still in
        flight (``FLUSH_RECORDS`` are waiting, or that commit was starved)."""
        fut = self._inflight
        if fut is not None:
            self._inflight = None
            self._committed(fut, self._inflight_upto, direct=True)
        if self.failure is not None or not self._buf:
            return
        records, self._buf = self._buf, []
        upto = self._queued
        try:
            self.store.write(_merge(records), owner=self.owner)
        except BaseException as e:
            self._fail(e)
            return
        self.batches += 1
        self._release(upto)

    def _hurry(self) -> None:
        """Someone waits for the disk: start the batch a quiet loop was letting grow."""
        if self._idle_wait and self._inflight is None:
            # the timer that was to start it finds nothing to do, or what came since
            self._idle_wait = self._kicked = False
            self._kick(from_loop=False)

    def _kick(self, from_loop: bool = True) -> None:
        idle_wait, self._idle_wait = self._idle_wait, False
        if from_loop:
            self._kicked = False
        if from_loop and not idle_wait:
            now = time.monotonic()
            if self._inflight is None and self._buf and self.failure is None:
                cpu = time.thread_time()
                busy = cpu - self._turn_cpu > BUSY_SHARE * (now - self._turn_at)
                self._turn_at, self._turn_cpu = now, cpu
                if not busy:
                    if not self._waiters and now - self._buf_since <= IDLE_BATCH_S:
                        # it waits on I/O: let the batch grow, unless someone waits
                        self._kicked = self._idle_wait = True
                        assert self._loop is not None
                        self._loop.call_later(IDLE_BATCH_S, self._kick)
                        return
                elif now - self._buf_since <= FLUSH_AFTER_S:
                    # a busy loop turns often: let the batch grow for a while rather
                    # than pay a commit per turn, and look again then
                    self._kicked = True
                    assert self._loop is not None
                    self._loop.call_later(FLUSH_AFTER_S, self._kick)
                    return
        if self._inflight is not None or not self._buf or self.failure is not None:
            return  # the commit in flight kicks again when it lands
        records, self._buf = self._buf, []
        upto = self._queued
        merged = _merge(records)
        if not self._staged:
            try:
                self.store.write(merged, owner=self.owner)
            except BaseException as e:
                self._fail(e)
                return
            self.batches += 1
            self._release(upto)
            return
        try:
            self.store.stage(merged, owner=self.owner)  # type: ignore[attr-defined]
        except BaseException as e:
            self._fail(e)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="remit-journal")
        commit = self.store.commit_staged  # type: ignore[attr-defined]

        def commit_quickly() -> None:
            try:
                commit()
            finally:
                _restore_switch_interval()

        _shorten_switch_interval()
        fut = self._pool.submit(commit_quickly)
        self._inflight, self._inflight_upto = fut, upto
        self._inflight_at, self._inflight_cpu = time.monotonic(), time.thread_time()
        loop = self._loop

        def landed(f: Future[None]) -> None:
            if loop is not None and not loop.is_closed():
                with contextlib.suppress(RuntimeError):  # the loop may close meanwhile
                    loop.call_soon_threadsafe(self._committed, f, upto)

        fut.add_done_callback(landed)

    def _committed(self, fut: Future[None], upto: int, direct: bool = False) -> None:
        if not direct:
            if self._inflight is not fut:
                return  # close() handled it already
            self._inflight = None
        try:
            fut.result()
        except BaseException as e:
            self._fail(e)
            return
        self.batches += 1
        self._release(upto)
        if not direct and self._buf and not self._kicked:
            self._kick()

    def _release(self, upto: int) -> None:
        self._durable = upto
        if not self._waiters:
            return
        ready = [w for w in self._waiters if w[0] <= upto]
        if not ready:
            return
        self._waiters = [w for w in self._waiters if w[0] > upto]
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

    def _fail(self, error: BaseException) -> None:
        self.failure = error
        waiters, self._waiters = self._waiters, []
        for _, w in waiters:
            if isinstance(w, asyncio.Future) and not w.done():
                w.set_exception(error)
        if self.on_failure is not None:
            self.on_failure(error)


def _merge(records: list[StepRecord]) -> list[StepRecord]:
    """One row per step: a result (or an interruption mark) replaces its queued intent;
    the first result wins."""
    by_step: dict[str, StepRecord] = {}
    for r in records:
        prev = by_step.get(r.step_id)
        if prev is None:
            by_step[r.step_id] = r
        elif prev.status == "started" and (r.status != "started" or r.error is not None):
            if r.input is None:
                r.input = prev.input
            if prev.proof is not None:
                r.proof = prev.proof
            r.started_at = prev.started_at
            by_step[r.step_id] = r
    return list(by_step.values())
