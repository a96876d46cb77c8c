"""The README's promises, under kill -9, signals and a second owner (real subprocesses).

- a run killed after its root's plan calls is held, on resume, to the budget an
  uninterrupted run is held to, and ``show`` reads the spend the journal records;
- one owner per run: a resume refuses while a live process carries the run, and of two
  resumes started together after a kill exactly one carries it (no effect twice);
- a CPU-bound fan-out killed at half-way finds at least 80 % of its finished tasks on
  disk; SIGINT stops it promptly with the finished ones on disk;
- a resume refuses a journal whose recorded remit was widened.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import promises_agent as pa
import pytest

from remit import Remit
from remit.journal import SQLiteJournal
from remit.trace.tree import load

pytestmark = pytest.mark.chaos

HERE = Path(__file__).resolve().parent
WAIT = 60.0


def _env(log: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH", "")) if p)
    env[pa.LOG_ENV] = str(log)
    env.pop(pa.STALL_ENV, None)
    env.update(extra)
    return env


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "remit.cli", *args]


def _run_cmd(journal: Path, run_id: str, agent: str, remit: Path, *more: str) -> list[str]:
    return _cli("run", "promises", "--agent", f"promises_agent:{agent}",
                "--journal", str(journal), "--run-id", run_id, "--remit", str(remit),
                "--quiet", *more)  # fmt: skip


def _resume_cmd(journal: Path, run_id: str) -> list[str]:
    return _cli("resume", run_id, "--journal", str(journal), "--quiet")


def _wait_for(cond: Callable[[], bool], proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not cond():
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            pytest.fail(f"the process ended before {what}: {err}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.002)


def _kill9(proc: subprocess.Popen[bytes]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=WAIT)
    assert proc.returncode == -signal.SIGKILL


def _steps(journal: Path, run_id: str) -> dict[str, object]:
    with SQLiteJournal(journal) as j:
        return {s.step_id: s for s in j.steps(run_id)}


def _plan_on_disk(journal: Path, run_id: str) -> bool:
    conn = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT count(*) FROM steps WHERE run_id = ? AND status = 'ok'"
            " AND (step_id LIKE '%:plan' OR step_id LIKE '%:plan._')",
            (run_id,),
        ).fetchone()
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()
    return bool(rows and rows[0] == 4)


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


# --- budgets after resume -------------------------------------------------------------------


def test_a_kill_after_the_roots_plan_calls_keeps_the_budget_of_an_uninterrupted_run(
    tmp_path: Path,
) -> None:
    remit = tmp_path / "remit.json"
    remit.write_text(Remit(tools={"tick": {}}, budget={"calls": 5}, depth=1).to_json())
    log = tmp_path / "ticks.log"
    journal = tmp_path / "j.db"

    # uninterrupted: 3 plan calls + 1 + 1, the third child is refused by the budget
    straight = subprocess.run(_run_cmd(journal, "straight", "BUDGET", remit, "--concurrency", "1"),
                              env=_env(log), capture_output=True, timeout=WAIT)  # fmt: skip
    assert straight.returncode == 1, straight.stderr.decode()

    # the same run, killed while child 0's call is in flight, then resumed
    marker = tmp_path / "stalled"
    proc = subprocess.Popen(_run_cmd(journal, "killed", "BUDGET", remit, "--concurrency", "1"),
                            env=_env(log, **{pa.STALL_ENV: str(marker)}),
                            stderr=subprocess.PIPE)  # fmt: skip
    _wait_for(marker.exists, proc, "child 0's call")
    # the kill must find the root's plan (and its three calls) on disk
    _wait_for(lambda: _plan_on_disk(journal, "killed"), proc, "the plan's rows on disk")
    _kill9(proc)
    resumed = subprocess.run(_resume_cmd(journal, "killed"), env=_env(log),
                             capture_output=True, timeout=WAIT)  # fmt: skip
    assert resumed.returncode == 1, resumed.stderr.decode()

    with SQLiteJournal(journal) as j:
        trees = {rid: load(j, rid) for rid in ("straight", "killed")}
        sums = {
            rid: sum(
                json.loads(s.spent).get("calls", 0)
                for s in j.steps(rid)
                if s.spent and s.kind in ("tool", "model")
            )
            for rid in trees
        }
    for rid, tree in trees.items():
        assert tree.root.spent.calls == 5, rid
        assert sums[rid] == 5, f"{rid}: the journal's calls add up to {sums[rid]}, not 5"
        by_goal = {c.goal: c.status for c in tree.root.children}
        assert by_goal == {"child 0": "done", "child 1": "done", "child 2": "failed"}, rid
        assert tree.root.status == "failed"
    assert "budget.calls" in (trees["killed"].run.error or "")


# --- one owner per run -----------------------------------------------------------------------


def _effects_remit(tmp_path: Path) -> Path:
    remit = tmp_path / "remit.json"
    remit.write_text(Remit(tools={"record": {}}, depth=1).to_json())
    return remit


def test_a_resume_while_the_run_is_alive_is_refused_naming_the_holder(tmp_path: Path) -> None:
    log, journal = tmp_path / "effects.log", tmp_path / "j.db"
    env = _env(log, **{pa.N_ENV: "800"})  # about two seconds at 4 at once
    proc = subprocess.Popen(
        _run_cmd(journal, "live", "EFFECTS", _effects_remit(tmp_path), "--concurrency", "4"),
        env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    _wait_for(lambda: len(_lines(log)) >= 10, proc, "the first effects")
    runs = subprocess.run(_cli("runs", "--journal", str(journal)), env=env,
                          capture_output=True, timeout=WAIT)  # fmt: skip
    second = subprocess.run(_resume_cmd(journal, "live"), env=env, capture_output=True,
                            timeout=WAIT)  # fmt: skip
    assert proc.poll() is None, "the run ended before the second owner tried"
    assert proc.wait(timeout=WAIT) == 0, proc.stderr.read().decode() if proc.stderr else ""
    assert second.returncode == 2
    err = second.stderr.decode()
    assert "RUN_LEASED" in err and f"pid {proc.pid}" in err, err
    assert "running" in runs.stdout.decode(), runs.stdout.decode()
    keys = [line.split()[1] for line in _lines(log)]
    assert len(keys) == 800 and len(set(keys)) == 800, "an effect was made twice"
    assert {line.split()[0] for line in _lines(log)} == {str(proc.pid)}


def test_of_two_resumes_after_a_kill_exactly_one_carries_the_run(tmp_path: Path) -> None:
    log, journal = tmp_path / "effects.log", tmp_path / "j.db"
    env = _env(log, **{pa.N_ENV: "300"})
    proc = subprocess.Popen(
        _run_cmd(journal, "two", "EFFECTS", _effects_remit(tmp_path), "--concurrency", "4"),
        env=env, stderr=subprocess.PIPE,
    )  # fmt: skip
    _wait_for(lambda: len(_lines(log)) >= 40, proc, "the first effects")
    _kill9(proc)
    before = len(_lines(log))
    runs = subprocess.run(_cli("runs", "--journal", str(journal)), env=env,
                          capture_output=True, timeout=WAIT)  # fmt: skip
    assert "interrupted" in runs.stdout.decode(), runs.stdout.decode()

    a, b = (subprocess.Popen(_resume_cmd(journal, "two"), env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE) for _ in range(2))  # fmt: skip
    codes = sorted((a.wait(timeout=WAIT), b.wait(timeout=WAIT)))
    errs = (a.stderr.read().decode() if a.stderr else "") + (
        b.stderr.read().decode() if b.stderr else ""
    )
    after = [line.split() for line in _lines(log)[before:]]
    assert {pid for pid, _ in after} <= {str(a.pid), str(b.pid)}
    assert len({pid for pid, _ in after}) == 1, "both resumes executed effects"
    assert len([k for _, k in after]) == len({k for _, k in after}), "an effect was made twice"
    # the loser was refused while the winner held the run, or found it finished
    assert codes in ([0, 2], [0, 0]), errs
    if codes == [0, 2]:
        assert "RUN_LEASED" in errs
    with SQLiteJournal(journal) as j:
        assert j.get_run("two").status == "done"
        assert j.get_lease("two") is None
    all_keys = {line.split()[1] for line in _lines(log)}
    assert len(all_keys) == 300


# --- durable and stoppable fan-outs --------------------------------------------------------------


def _burn_remit(tmp_path: Path) -> Path:
    remit = tmp_path / "remit.json"
    remit.write_text(Remit(tools={}, depth=1).to_json())
    return remit


def _finished_on_disk(journal: Path, run_id: str) -> int:
    conn = sqlite3.connect(journal)
    try:
        (n,) = conn.execute(
            "SELECT count(*) FROM steps WHERE run_id = ? AND kind = 'task' AND status = 'ok'"
            " AND step_id LIKE '%/%'",
            (run_id,),
        ).fetchone()
    finally:
        conn.close()
    return int(n)


def test_a_kill_at_half_of_a_cpu_bound_fan_out_finds_its_finished_tasks_on_disk(
    tmp_path: Path,
) -> None:
    log, journal = tmp_path / "burn.log", tmp_path / "j.db"
    n = 2400
    env = _env(log, **{pa.N_ENV: str(n)})
    proc = subprocess.Popen(_run_cmd(journal, "burn", "BURN", _burn_remit(tmp_path)),
                            env=env, stderr=subprocess.PIPE)  # fmt: skip
    half = n // 2 * pa.LINE
    _wait_for(lambda: log.exists() and log.stat().st_size >= half, proc, "half of the fan-out")
    _kill9(proc)
    finished = len(_lines(log))
    on_disk = _finished_on_disk(journal, "burn")
    assert finished >= n // 2
    assert on_disk >= 0.8 * finished, f"{on_disk} of {finished} finished tasks on disk"

    resumed = subprocess.run(_resume_cmd(journal, "burn"), env=env, capture_output=True,
                             timeout=WAIT)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr.decode()
    redone = len(_lines(log)) - finished
    assert redone <= n - on_disk, "a task recorded as finished ran again"
    assert _finished_on_disk(journal, "burn") == n


def test_sigint_stops_a_cpu_bound_fan_out_promptly_with_its_finished_tasks_on_disk(
    tmp_path: Path,
) -> None:
    log, journal = tmp_path / "burn.log", tmp_path / "j.db"
    n = 2400
    env = _env(log, **{pa.N_ENV: str(n)})
    proc = subprocess.Popen(_run_cmd(journal, "stop", "BURN", _burn_remit(tmp_path)),
                            env=env, stderr=subprocess.PIPE)  # fmt: skip
    _wait_for(lambda: log.exists() and log.stat().st_size >= n // 4 * pa.LINE, proc, "a quarter")
    proc.send_signal(signal.SIGINT)
    code = proc.wait(timeout=WAIT)
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert code == 130, err
    assert "remit resume stop" in err
    finished = len(_lines(log))
    assert finished < n, "the run went on to the end after SIGINT"
    assert _finished_on_disk(journal, "stop") >= finished - 1
    with SQLiteJournal(journal) as j:
        assert j.get_run("stop").status == "running"
        assert j.get_lease("stop") is None, "the stopped process kept its lease"


def test_sigterm_marks_effects_in_flight_as_interrupted_and_resume_finishes(
    tmp_path: Path,
) -> None:
    log, journal = tmp_path / "effects.log", tmp_path / "j.db"
    proc = subprocess.Popen(
        _run_cmd(journal, "term", "EFFECTS", _effects_remit(tmp_path), "--concurrency", "8"),
        env=_env(log), stderr=subprocess.PIPE,
    )  # fmt: skip
    _wait_for(lambda: len(_lines(log)) >= 30, proc, "the first effects")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=WAIT) == 143
    steps = _steps(journal, "term")
    marked = [s for s in steps.values() if getattr(s, "status", "") == "started"
              and "INTERRUPTED" in (getattr(s, "error", None) or "")]  # fmt: skip
    assert marked, "no step in flight was marked interrupted"
    resumed = subprocess.run(_resume_cmd(journal, "term"), env=_env(log), capture_output=True,
                             timeout=WAIT)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr.decode()
    keys = {line.split()[1] for line in _lines(log)}
    assert len(keys) == 200


# --- resume checks its authority ----------------------------------------------------------------


def test_a_widened_recorded_remit_is_refused_on_resume(tmp_path: Path) -> None:
    remit = tmp_path / "remit.json"
    remit.write_text(Remit(tools={"tick": {}}, budget={"calls": 5}, depth=1).to_json())
    log, journal, marker = tmp_path / "ticks.log", tmp_path / "j.db", tmp_path / "stalled"
    proc = subprocess.Popen(_run_cmd(journal, "widened", "BUDGET", remit, "--concurrency", "1"),
                            env=_env(log, **{pa.STALL_ENV: str(marker)}),
                            stderr=subprocess.PIPE)  # fmt: skip
    _wait_for(marker.exists, proc, "child 0's call")
    _kill9(proc)
    ticks = len(_lines(log))
    wide = Remit(tools={"tick": {}}, budget={"calls": 500}, depth=1).to_json()
    conn = sqlite3.connect(journal)
    with conn:
        conn.execute("UPDATE runs SET remit = ? WHERE run_id = 'widened'", (wide,))
    conn.close()
    resumed = subprocess.run(_resume_cmd(journal, "widened"), env=_env(log),
                             capture_output=True, timeout=WAIT)  # fmt: skip
    assert resumed.returncode == 2
    assert "WARRANT_ROOT_MISMATCH" in resumed.stderr.decode()
    assert len(_lines(log)) == ticks, "a step ran under the widened remit"
