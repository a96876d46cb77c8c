"""One owner per run: a lease in the journal, kept alive by a heartbeat.

Two processes carrying one run would both execute its effects. So a process that
starts or resumes a run first takes the run's *lease* (owner id, pid, host, heartbeat,
expiry) in the journal, in one transaction; every batch of step records it writes
checks, inside its own transaction, that it still holds it (a fencing token: a
process that lost the run cannot write into it). A thread renews the lease every
``ttl / 3`` seconds, whatever the event loop is busy with.

A lease is taken over, atomically, when it has expired, or at once when its holder
ran on this host and that process is gone (a kill -9 needs no waiting). Anything else
is refused with :class:`~remit.errors.RunLeased`, naming the holder.

>>> lease = RunLease(store, "run-1")                    # doctest: +SKIP
>>> lease.acquire()       # RunLeased if a live process carries run-1   # doctest: +SKIP
>>> lease.start_heartbeat(on_lost=print)                # doctest: +SKIP
>>> lease.release()                                     # doctest: +SKIP
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from typing import Final, Literal

from remit.errors import JournalError, LeaseLost
from remit.journal import JournalStore, Lease, RunRecord

__all__ = ["LEASE_TTL_S", "RunLease", "RunState", "holder_is_gone", "run_state"]

#: seconds a lease lasts without a heartbeat; a holder on another host that stops
#: beating is taken over after this long
LEASE_TTL_S: Final = 15.0

RunState = Literal["running", "interrupted", "done", "failed"]


def _host() -> str:
    return socket.gethostname()


def _pid_is_gone(pid: int) -> bool:
    """True when no process ``pid`` runs here (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    except OSError:
        return False
    try:  # Linux: a killed child its parent has not reaped yet is a zombie
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[-1].split()
        return bool(fields) and fields[0] == b"Z"
    except OSError:
        return False


def holder_is_gone(lease: Lease) -> bool:
    """Whether ``lease``'s holder is provably dead: it ran on this host and its process
    is gone. A holder elsewhere is only ever taken over when its lease expires."""
    return lease.host == _host() and lease.pid != os.getpid() and _pid_is_gone(lease.pid)


def run_state(run: RunRecord, lease: Lease | None, now: float | None = None) -> RunState:
    """What a person should read for ``run``: ``running`` only while a live process
    holds it; a run nobody carries any more is ``interrupted`` (resume it)."""
    if run.status != "running":
        return run.status
    if lease is None:
        return "interrupted"
    now = time.time() if now is None else now
    if lease.expires < now or holder_is_gone(lease):
        return "interrupted"
    return "running"


class RunLease:
    """This process's claim on one run of ``store``."""

    def __init__(self, store: JournalStore, run_id: str, ttl: float = LEASE_TTL_S) -> None:
        if ttl <= 0:
            raise ValueError(f"a lease's ttl must be positive, got {ttl}")
        self.store = store
        self.run_id = run_id
        self.ttl = ttl
        self.owner = secrets.token_hex(8)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def lease(self, now: float | None = None) -> Lease:
        """The lease this process asks for, as of ``now``."""
        now = time.time() if now is None else now
        return Lease(self.run_id, self.owner, os.getpid(), _host(), now, now, now + self.ttl)

    def acquire(self) -> None:
        """Take the run, or raise ``RunLeased`` naming the live process that has it."""
        self.store.acquire_lease(self.lease(), holder_is_gone)

    def start_heartbeat(self, on_lost: Callable[[BaseException], None]) -> None:
        """Renew the lease every ``ttl / 3`` seconds from a thread of its own; call
        ``on_lost`` (from that thread) if another process took the run over."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._beat, args=(on_lost,), name=f"remit-lease-{self.run_id}", daemon=True
        )
        self._thread.start()

    def _beat(self, on_lost: Callable[[BaseException], None]) -> None:
        while not self._stop.wait(self.ttl / 3):
            now = time.time()
            try:
                held = self.store.renew_lease(self.run_id, self.owner, now, now + self.ttl)
            except JournalError as e:
                on_lost(e)
                return
            if not held:
                on_lost(
                    LeaseLost(
                        f"run {self.run_id}: another process took the run over (this one "
                        f"missed its heartbeats for over {self.ttl:g} s); this one stops"
                    )
                )
                return

    def stop_heartbeat(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def release(self) -> None:
        """Stop beating and give the run up (a no-op if it was given up already)."""
        self.stop_heartbeat()
        self.store.release_lease(self.run_id, self.owner)
