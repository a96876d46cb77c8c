"""One owner per run: taking, renewing, losing and reading a run's lease."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from remit.errors import LeaseLost, RunLeased
from remit.journal import Lease, RunRecord, SQLiteJournal
from remit.journal.lease import RunLease, holder_is_gone, run_state


@pytest.fixture
def store(tmp_path: Path) -> SQLiteJournal:
    j = SQLiteJournal(tmp_path / "j.db", durability="normal")
    j.create_run(RunRecord("r1", "goal", "a", "{}"))
    return j


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _lease(pid: int, host: str | None = None, expires: float | None = None) -> Lease:
    now = time.time()
    return Lease("r1", "x", pid, host or os.uname().nodename, now, now,
                 expires if expires is not None else now + 60)  # fmt: skip


def test_a_holder_on_this_host_whose_process_is_gone_is_gone() -> None:
    assert holder_is_gone(_lease(_dead_pid()))


def test_a_live_holder_or_one_on_another_host_is_not_gone() -> None:
    assert not holder_is_gone(_lease(os.getppid()))
    assert not holder_is_gone(_lease(_dead_pid(), host="elsewhere.example"))


def test_a_second_owner_is_refused_while_the_first_is_alive(store: SQLiteJournal) -> None:
    first = RunLease(store, "r1")
    first.acquire()
    with pytest.raises(RunLeased, match=f"pid {os.getpid()}"):
        RunLease(store, "r1").acquire()
    first.release()
    RunLease(store, "r1").acquire()


def test_run_state_reads_running_only_while_a_live_process_holds_the_run(
    store: SQLiteJournal,
) -> None:
    run = store.get_run("r1")
    assert run_state(run, None) == "interrupted"
    assert run_state(run, _lease(os.getpid())) == "running"
    assert run_state(run, _lease(os.getpid(), expires=time.time() - 1)) == "interrupted"
    assert run_state(run, _lease(_dead_pid())) == "interrupted"
    store.finish_run("r1", "done", None, None)
    assert run_state(store.get_run("r1"), _lease(os.getpid())) == "done"


def test_the_heartbeat_moves_the_lease_on_and_reports_its_loss(store: SQLiteJournal) -> None:
    mine = RunLease(store, "r1", ttl=0.3)
    mine.acquire()
    first = store.get_lease("r1")
    lost: list[BaseException] = []
    done = threading.Event()
    mine.start_heartbeat(lambda e: (lost.append(e), done.set()))
    time.sleep(0.25)
    renewed = store.get_lease("r1")
    assert first is not None and renewed is not None and renewed.expires > first.expires
    # another process takes the run over (as if this one had been suspended)
    other = RunLease(store, "r1")
    store.acquire_lease(other.lease(), lambda held: True)
    assert done.wait(5), "the heartbeat did not notice the takeover"
    assert isinstance(lost[0], LeaseLost)
    mine.stop_heartbeat()
