"""kill -9 at random instants; ``remit resume`` must finish every run, redo nothing recorded.

Each scenario starts a real subprocess running the 1,555-task tree of ``chaos_agent``,
SIGKILLs it after a random delay, then starts ``remit resume`` subprocesses and kills
those too, a few times, before letting one finish (two scenarios at a time, each in its
own directory). Between two processes (none alive)
the test reads the journal and notes every step that has a recorded result; the
executions log says which process executed which step. Then:

1. the run is done with the closed-form result;
2. no process executed a step whose result was recorded before it started;
3. the effects database holds exactly one effect per leaf, under the idempotency key
   the runtime derives from the step, with the right value;
4. the journal has one successful end per task (1,555) and no step left unfinished.

``CHAOS_SEED`` in the environment replays a particular sequence of delays.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import chaos_agent as ca
import pytest

from remit import Remit, Runtime
from remit.core.tasks import ROOT, task_id
from remit.gate import idempotency_key
from remit.trust.provenance import verify_run

pytestmark = pytest.mark.chaos

HERE = Path(__file__).resolve().parent
GOAL = "sum the chaos tree"
#: SIGKILLs that must land mid-run across the suite, the number aimed at (a margin
#: for slow machines, where TIME_BUDGET may stop the scenarios early), and per scenario
MIN_KILLS = 50
TARGET_KILLS = 62
KILLS_PER_SCENARIO = 5
MAX_SCENARIOS = 30
#: seconds the scenarios may take together before no new one is started
TIME_BUDGET = 140.0
#: a process that neither finishes nor is killed within this is a hang
PROC_TIMEOUT = 60.0
CONCURRENCY = 16
#: scenarios run at once
PARALLEL = 2
#: the share of kills aimed at a process's start-up rather than its work
STARTUP_KILLS = 0.2
#: the share of kills aimed at the first fifth of the remaining work
EARLY_KILLS = 0.25
SEED = int(os.environ.get("CHAOS_SEED", "20250607"))
FINAL = ("ok", "error", "denied")


# --- processes -----------------------------------------------------------------------------


@dataclasses.dataclass
class World:
    """The files of one scenario."""

    dir: Path
    run_id: str
    seed: int

    @property
    def journal(self) -> Path:
        return self.dir / "journal.db"

    @property
    def exec_log(self) -> Path:
        return self.dir / "executions.log"

    @property
    def effects(self) -> Path:
        return self.dir / "effects.db"

    @property
    def remit_file(self) -> Path:
        return self.dir / "remit.json"

    def prepare(self) -> None:
        self.dir.mkdir(parents=True)
        self.remit_file.write_text(Remit(tools={"compute": {}, "effect": {}}, depth=4).to_json())
        conn = sqlite3.connect(self.effects)
        try:
            conn.execute("PRAGMA journal_mode=WAL")  # once, before any process uses it
            for stmt in ca.EFFECTS_SCHEMA:
                conn.execute(stmt)
            conn.commit()
        finally:
            conn.close()

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH", "")) if p)
        env[ca.EXEC_LOG_ENV] = str(self.exec_log)
        env[ca.EFFECTS_DB_ENV] = str(self.effects)
        return env

    def command(self, kind: str) -> list[str]:
        base = [sys.executable, "-m", "remit.cli"]
        if kind == "run":
            return [
                *base, "run", GOAL, "--agent", "chaos_agent:AGENT",
                "--journal", str(self.journal), "--run-id", self.run_id,
                "--inputs", json.dumps({"seed": self.seed}),
                "--remit", str(self.remit_file), "--concurrency", str(CONCURRENCY), "--quiet",
            ]  # fmt: skip
        return [*base, "resume", self.run_id, "--journal", str(self.journal), "--quiet"]

    def spawn(self, kind: str, n: int) -> subprocess.Popen[bytes]:
        out = (self.dir / f"proc{n:02d}.out").open("wb")
        err = (self.dir / f"proc{n:02d}.err").open("wb")
        try:
            return subprocess.Popen(
                self.command(kind), env=self.env(), cwd=self.dir, stdout=out, stderr=err,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        finally:
            out.close()
            err.close()

    def stderr(self, n: int) -> str:
        return (self.dir / f"proc{n:02d}.err").read_text(errors="replace")[-3000:]

    # --- reading what happened (only while no process runs) --------------------------------

    def run_status(self) -> str | None:
        if not self.journal.exists():
            return None
        conn = sqlite3.connect(self.journal)
        try:
            row = conn.execute("SELECT status FROM runs WHERE run_id = ?", (self.run_id,))
            found = row.fetchone()
        except sqlite3.OperationalError:  # killed before the schema was created
            return None
        finally:
            conn.close()
        return None if found is None else found[0]

    def steps(self) -> list[tuple[str, str, str, str, str]]:
        """(step_id, task_id, kind, name, status) of every step row of the run."""
        if not self.journal.exists():
            return []
        conn = sqlite3.connect(self.journal)
        try:
            return conn.execute(
                "SELECT step_id, task_id, kind, name, status FROM steps WHERE run_id = ?",
                (self.run_id,),
            ).fetchall()
        except sqlite3.OperationalError:
            return []
        finally:
            conn.close()

    def failures(self) -> str:
        """The first failed steps of the run, with their errors, for a failure message."""
        conn = sqlite3.connect(self.journal)
        try:
            rows = conn.execute(
                "SELECT step_id, kind, name, status, error FROM steps WHERE run_id = ?"
                " AND status IN ('error', 'denied') ORDER BY pos LIMIT 5",
                (self.run_id,),
            ).fetchall()
        except sqlite3.OperationalError as e:
            return f"(journal unreadable: {e})"
        finally:
            conn.close()
        return "\n".join(map(str, rows))

    def executions(self) -> list[tuple[int, str, str]]:
        """(pid, step_id, what) of every line of the executions log."""
        if not self.exec_log.exists():
            return []
        out = []
        for line in self.exec_log.read_text().splitlines():
            pid, what, task = line.split(" ")
            if what == "tool:compute":
                step = f"{task}:execute.0"
            elif what == "tool:effect":
                step = f"{task}:execute.1"
            elif what == "role:execute":
                step = f"{task}:end"  # a leaf's result is journaled as its task's end
            else:
                step = f"{task}:{what.removeprefix('role:')}"
            out.append((int(pid), step, what))
        return out


@dataclasses.dataclass
class Proc:
    n: int
    kind: str
    pid: int
    #: step ids with a recorded result when this process was started
    recorded_before: frozenset[str] = dataclasses.field(repr=False)
    killed: bool = False
    returncode: int | None = None
    #: killed while it worked: it had executed a step and the run was not finished
    mid_run: bool = False
    #: tasks ended in the journal when the process died, out of 1,555
    tasks_done: int = 0


def _stop(p: subprocess.Popen[bytes]) -> None:
    if p.poll() is None:
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=PROC_TIMEOUT)


@dataclasses.dataclass
class Timing:
    startup: float  # spawn to first executed step
    total: float  # spawn to exit of an uninterrupted run


def _wait_for_work(world: World, live: subprocess.Popen[bytes]) -> None:
    """Until ``live`` (the only process running) executes a step, or ends."""
    size = world.exec_log.stat().st_size if world.exec_log.exists() else 0
    deadline = time.monotonic() + PROC_TIMEOUT
    while live.poll() is None and time.monotonic() < deadline:
        if world.exec_log.exists() and world.exec_log.stat().st_size > size:
            return
        time.sleep(0.002)


def drive(world: World, rng: random.Random, timing: Timing, kills: int) -> list[Proc]:
    """Run ``world``'s run to its end, SIGKILLing up to ``kills`` processes on the way."""
    procs: list[Proc] = []
    work = timing.total - timing.startup
    live: subprocess.Popen[bytes] | None = None
    try:
        for n in range(kills + 8):  # bounded: every attempt either kills or finishes
            status = world.run_status()
            kind = "run" if status is None else "resume"
            landed = sum(p.mid_run for p in procs)
            last = landed >= kills or n == kills + 7
            steps = world.steps()
            done = sum(1 for s in steps if s[2] == "task" and s[4] in FINAL)
            recorded = frozenset(s[0] for s in steps if s[4] in FINAL)
            live = world.spawn(kind, n)
            proc = Proc(n, kind, live.pid, recorded)
            procs.append(proc)
            if last:
                proc.returncode = live.wait(timeout=PROC_TIMEOUT)
                live = None
                break
            remaining = work * (1 - done / ca.TOTAL_TASKS)
            if rng.random() < STARTUP_KILLS:
                # an instant while it starts, opens the journal and replays it
                delay = rng.uniform(0.0, 1.5 * timing.startup)
            else:
                # an instant while it works: from its first executed step to the
                # expected end of the run, with more weight on the first part (planning
                # and fan-out) than the shrinking remainder would give it
                _wait_for_work(world, live)
                share = 0.2 if rng.random() < EARLY_KILLS else 1.0
                delay = rng.uniform(0.0, share * remaining)
            try:
                proc.returncode = live.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                # still running: a kill at a random instant (unless it exits in between,
                # which its exit status tells)
                os.kill(live.pid, signal.SIGKILL)
                proc.returncode = live.wait(timeout=PROC_TIMEOUT)
                proc.killed = proc.returncode == -signal.SIGKILL
            live = None
            if not proc.killed:
                break  # it ended before the kill: verify() judges how
            steps = world.steps()
            proc.tasks_done = sum(1 for s in steps if s[2] == "task" and s[4] in FINAL)
            worked = any(pid == proc.pid for pid, _, _ in world.executions())
            proc.mid_run = worked and world.run_status() == "running"
    finally:
        if live is not None:
            _stop(live)
    return procs


# --- what must hold ------------------------------------------------------------------------


def all_task_ids() -> dict[str, list[int]]:
    """Every task id of the tree, with its path."""
    root = task_id(ROOT, 0, GOAL)
    out = {root: []}
    frontier = [(root, [])]
    for _ in range(ca.DEPTH):
        nxt = []
        for tid, path in frontier:
            for i in range(ca.BRANCHING):
                child = [*path, i]
                cid = task_id(tid, i, ca.goal_of(child))
                out[cid] = child
                nxt.append((cid, child))
        frontier = nxt
    return out


def expected_result(seed: int) -> dict[str, int]:
    n = ca.LEAVES  # leaf i has value i*i + seed
    return {
        "sum": (n - 1) * n * (2 * n - 1) // 6 + n * seed,
        "leaves": n,
        "dep_checks": len(ca.DEPS) * sum(ca.BRANCHING**d for d in range(ca.DEPTH)),
    }


def verify(world: World, procs: list[Proc]) -> dict[str, int]:
    """Check the four guarantees; returns counts for the report."""
    final = procs[-1]
    assert final.returncode == 0, (
        f"the last process ({final.kind}) failed: exit {final.returncode}\n"
        f"{world.stderr(final.n)}\nfirst failed steps:\n{world.failures()}"
    )
    # 1. the right result, as the runtime reports it
    with Runtime(journal=world.journal) as rt:
        run = rt.get(world.run_id)
    assert run.status == "done", (run, world.stderr(final.n))
    assert run.result == expected_result(world.seed)

    # 4. journal sanity
    conn = sqlite3.connect(world.journal)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()
    tasks = all_task_ids()
    assert len(tasks) == ca.TOTAL_TASKS >= 1500
    steps = world.steps()
    unfinished = [s for s in steps if s[4] not in FINAL]
    assert not unfinished, f"steps left without a result: {unfinished[:5]}"
    not_ok = [s for s in steps if s[4] != "ok"]
    assert not not_ok, f"steps that did not succeed: {not_ok[:5]}"
    assert {s[1] for s in steps} == set(tasks)
    ends = collections.Counter(s[1] for s in steps if s[2] == "task")
    assert set(ends) == set(tasks) and set(ends.values()) == {1}
    assert all(s[3] == "done" for s in steps if s[2] == "task")
    by_step = {s[0]: s for s in steps}

    # 2. no re-execution of a step whose result was recorded
    proc_of = {p.pid: p for p in procs}
    assert len(proc_of) == len(procs), "a pid was reused within a scenario"
    execs = world.executions()
    redone = [
        (proc_of[pid].n, proc_of[pid].kind, step)
        for pid, step, _ in execs
        if step in proc_of[pid].recorded_before
    ]
    assert not redone, f"{len(redone)} recorded steps executed again, e.g. {redone[:5]}"
    per_proc = collections.Counter((pid, step) for pid, step, _ in execs)
    twice = [k for k, c in per_proc.items() if c > 1]
    assert not twice, f"steps executed twice by one process: {twice[:5]}"
    # the log names steps the journal knows, with the kind it records
    for _, step, what in execs:
        row = by_step.get(step)
        assert row is not None, f"executed {what} as {step}, which the journal lacks"
        if what.startswith("tool:"):
            assert (row[2], row[3]) == ("tool", what.removeprefix("tool:")), (step, row)
        elif what == "role:execute":
            assert row[2] == "task", (step, row)
        else:
            assert row[2] == what.removeprefix("role:"), (step, row)
    # every step that is not a task end or a warrant hop was really executed at least once
    executed_steps = {step for _, step, _ in execs}
    leaf_ends = {step for _, step, what in execs if what == "role:execute"}
    assert len(leaf_ends) == ca.LEAVES
    assert executed_steps - leaf_ends == {s[0] for s in steps if s[2] not in ("task", "warrant")}

    # 5. the signatures: every call verifies offline, across every kill and resume (a
    # resumed process reuses the hops its predecessors journaled)
    with Runtime(journal=world.journal) as rt:
        audit = verify_run(rt.store, world.run_id)
    assert audit.ok, audit.failures[:5]
    assert audit.calls == sum(1 for s in steps if s[2] == "tool") > 0
    assert audit.hops == len(tasks)

    # 3. the effects: one per leaf, under the step's idempotency key, never twice
    leaves = {tid: path for tid, path in tasks.items() if len(path) == ca.DEPTH}
    conn = sqlite3.connect(world.effects)
    try:
        effects = conn.execute("SELECT key, task, value, pid FROM effects").fetchall()
        attempts = conn.execute("SELECT key, task, pid FROM attempts").fetchall()
    finally:
        conn.close()
    assert len(effects) == ca.LEAVES == len(leaves)
    assert {e[1] for e in effects} == set(leaves)
    for key, task, value, _ in effects:
        assert key == idempotency_key(world.run_id, f"{task}:execute.1"), task
        assert value == ca.leaf_value(ca.leaf_index(leaves[task]), world.seed), task
    for _key, task, pid in attempts:
        assert f"{task}:execute.1" not in proc_of[pid].recorded_before, (task, pid)
    tries = collections.Counter(a[0] for a in attempts)
    return {
        "effect_keys_retried": sum(1 for c in tries.values() if c > 1),
        "steps_executed_again": len(execs) - len(executed_steps),
    }


# --- the tests -----------------------------------------------------------------------------


@dataclasses.dataclass
class Baseline:
    world: World
    procs: list[Proc]
    timing: Timing


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Baseline:
    """One uninterrupted run: it tells how long a run takes on this machine."""
    world = World(tmp_path_factory.mktemp("chaos") / "baseline", "chaos-baseline", 3)
    world.prepare()
    t0 = time.monotonic()
    live = world.spawn("run", 0)
    first = None
    try:
        while live.poll() is None and time.monotonic() - t0 < PROC_TIMEOUT:
            if first is None and world.exec_log.exists() and world.exec_log.stat().st_size:
                first = time.monotonic() - t0
            time.sleep(0.002)
        total = time.monotonic() - t0
    finally:
        _stop(live)
    assert live.returncode == 0, world.stderr(0)
    assert first is not None
    procs = [Proc(0, "run", live.pid, frozenset(), returncode=live.returncode)]
    return Baseline(world, procs, Timing(first, total))


def test_uninterrupted_run_is_right_and_executes_each_step_once(baseline: Baseline) -> None:
    counts = verify(baseline.world, baseline.procs)
    assert counts == {"effect_keys_retried": 0, "steps_executed_again": 0}
    assert 0 < baseline.timing.startup < baseline.timing.total


def test_the_checks_see_a_recorded_step_executed_again(baseline: Baseline) -> None:
    """The oracle is not vacuous: claim the plan of the root had been recorded before
    the (only) process started, and ``verify`` must call its execution a re-execution."""
    root_plan = f"{task_id(ROOT, 0, GOAL)}:plan"
    p = baseline.procs[0]
    fake = [dataclasses.replace(p, recorded_before=frozenset({root_plan}))]
    with pytest.raises(AssertionError, match="recorded steps executed again"):
        verify(baseline.world, fake)
    leaf = next(t for t, path in all_task_ids().items() if len(path) == ca.DEPTH)
    fake = [dataclasses.replace(p, recorded_before=frozenset({f"{leaf}:execute.1"}))]
    with pytest.raises(AssertionError, match="recorded steps executed again"):
        verify(baseline.world, fake)


def test_kill9_at_random_instants_resume_redoes_nothing(tmp_path: Path, baseline: Baseline) -> None:
    timing = baseline.timing
    rng = random.Random(SEED)
    # each scenario draws from its own generator, seeded in order from SEED: the same
    # scenarios, whichever of the two running at once finishes first
    seeds = [(rng.randrange(1000), rng.randrange(2**32)) for _ in range(MAX_SCENARIOS)]

    def scenario(s: int) -> tuple[int, list[Proc], dict[str, int]]:
        world = World(tmp_path / f"s{s:02d}", f"chaos-{SEED}-{s}", seeds[s][0])
        world.prepare()
        procs = drive(world, random.Random(seeds[s][1]), timing, KILLS_PER_SCENARIO)
        return s, procs, verify(world, procs)

    started = time.monotonic()
    report: list[tuple[int, list[Proc], dict[str, int]]] = []
    landed = 0
    # two scenarios at a time (each a process working, the rest of the time this one
    # waiting on it): a run and its resumes keep one core busy, and a machine has two
    with concurrent.futures.ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        running: set[concurrent.futures.Future[tuple[int, list[Proc], dict[str, int]]]] = set()
        next_s = 0
        while True:
            while (
                len(running) < PARALLEL
                and next_s < MAX_SCENARIOS
                and landed < TARGET_KILLS
                and time.monotonic() - started <= TIME_BUDGET
            ):
                running.add(pool.submit(scenario, next_s))
                next_s += 1
            if not running:
                break
            done, running = concurrent.futures.wait(
                running, return_when=concurrent.futures.FIRST_COMPLETED
            )
            for fut in done:
                s, procs, counts = fut.result()  # a failed check fails the test here
                landed += sum(p.mid_run for p in procs)
                report.append((s, procs, counts))
    report.sort(key=lambda r: r[0])
    real = sum(p.killed for _, procs, _ in report for p in procs)
    phases = sorted(p.tasks_done for _, procs, _ in report for p in procs if p.mid_run)
    summary = (
        f"seed {SEED}: {len(report)} scenarios, {real} SIGKILLs, {landed} mid-run "
        f"(tasks done at the kill: {phases}), "
        f"effect keys retried {sum(c['effect_keys_retried'] for _, _, c in report)}, "
        f"steps executed again (unrecorded) {sum(c['steps_executed_again'] for *_, c in report)}, "
        f"timing {timing}, {time.monotonic() - started:.1f}s"
    )
    print(summary)
    assert landed >= MIN_KILLS, summary
