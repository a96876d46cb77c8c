"""Durable execution through the full Gate, against a raw sqlite3 floor.

Workloads (every step goes through the Gate with the journal on, durability "full"):

- W1: a 2,000-step chain (each step a task that depends on the previous one)
- W2: a 1,000-child fan-out and aggregate
- W3: a depth-4, branching-6 tree (1,555 tasks)
- W4: kill -9 in the middle of W2 (a real SIGKILL of a subprocess), then resume
- W5: a 10,000-child fan-out; peak memory growth per task
- W6: a 2,400-child CPU-bound fan-out (plain functions that never wait) in a subprocess:
  kill -9 at half-way, then ``w6_finished_replayed_ratio`` = finished tasks found on
  disk / tasks finished before the kill (goal >= 0.8); and SIGINT at half-way,
  ``w6_sigint_exit_s`` = seconds from the signal to the process's exit (goal <= 0.5)
- floor: one INSERT + COMMIT per step on raw sqlite3, WAL, synchronous=FULL

W1-W3 run twice per round, interleaved. ``w1_step_us``, ``w2_s`` and ``w3_s`` measure the
core: the full Gate with the journal on (remit check, ledger reservation, journal
lookup, execute, record, settle), with ``Runtime(sign=False)``. ``*_signed_*`` repeat
them as runs go by default, sealed: the principal's grant, every row hashed into the
run's chain, a checkpoint signed per group commit. ``*_signed_ratio`` is signed / core
per round (the two back to back, their order swapped each round), the median over
rounds. W4 and W5 run signed, the default. The journal file is created before
each workload's clock starts (a runtime opens its journal once); ``journal_open_ms`` is
that cost on its own. ``cpu_ref_ms`` times plain Python of the runtime's kind in each
round: on a shared virtual machine its speed moves by half again within minutes, and
this says how fast the machine was while these figures were taken.

Figures are medians of ``--repeat`` runs (default 5), all measured in this process run,
side by side. ``--json`` prints one JSON object as the last line. ``--peers`` adds
LangGraph (SqliteSaver) and DBOS (SQLite) on the same workloads when ``remit[bench]``
is installed.

    python benchmarks/durable.py [--repeat 5] [--json] [--peers]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from remit import Agent, Budget, Plan, Remit, Runtime, Subtask, tool
from remit.journal import SQLiteJournal

HERE = Path(__file__).resolve().parent


@tool
def step(i: int) -> int:
    """The unit of work of every workload: trivial on purpose, so the runtime shows."""
    return i * 2


class Chain(Agent):
    """W1: the root plans ``n`` subtasks, each depending on the one before."""

    tools = (step,)

    def __init__(self, n: int = 2000) -> None:
        self.n = n

    def atomize(self, ctx: Any) -> str:
        return "plan"

    def plan(self, ctx: Any) -> Plan:
        subs = [
            Subtask(f"s{i}", f"step {i}", deps=(f"s{i - 1}",) if i else (), inputs={"i": i})
            for i in range(self.n)
        ]
        return Plan(subs)

    async def execute(self, ctx: Any) -> Any:
        return await ctx.call("step", i=ctx.inputs["i"])

    def aggregate(self, ctx: Any, results: list[Any]) -> int:
        return sum(r.value for r in results)


class FanOut(Chain):
    """W2 / W5: the root plans ``n`` independent children and sums them."""

    def plan(self, ctx: Any) -> Plan:
        return Plan([Subtask(f"c{i}", f"child {i}", inputs={"i": i}) for i in range(self.n)])


class Tree(Chain):
    """W3: every task above the leaves plans ``branching`` children (depth from the remit)."""

    def __init__(self, branching: int = 6) -> None:
        self.branching = branching

    def atomize(self, ctx: Any) -> str:
        return "plan"  # the depth cap turns the last level into leaves

    def plan(self, ctx: Any) -> Plan:
        base = ctx.inputs.get("i", 0) * self.branching
        return Plan(
            [Subtask(f"b{k}", f"branch {k}", inputs={"i": base + k}) for k in range(self.branching)]
        )


@tool
async def slow_step(i: int) -> int:
    """W4's unit of work: it waits a little, as real tools do, so a kill lands mid-run."""
    await asyncio.sleep(0.002)
    return i * 2


class SlowFanOut(FanOut):
    """W4: W2 with children that take real (if short) time."""

    tools = (slow_step,)

    async def execute(self, ctx: Any) -> Any:
        return await ctx.call("slow_step", i=ctx.inputs["i"])


def _fresh_journal(d: str, name: str = "j.db") -> str:
    return os.path.join(d, name)


def _run(
    agent: Agent, depth: int, durability: str = "full", sign: bool = True
) -> tuple[float, Any]:
    with tempfile.TemporaryDirectory() as d:
        rt = Runtime(journal=_fresh_journal(d), agent=agent, durability=durability, sign=sign)  # type: ignore[arg-type]
        remit = Remit(tools={"step": {}}, budget=Budget(calls=1_000_000), depth=depth)
        # the journal is opened (created, migrated) before the clock starts, as a
        # long-lived runtime opens it once: that cost is journal_open_ms, on its own
        rt.store  # noqa: B018
        gc.collect()
        t = time.perf_counter()
        run = rt.run("benchmark", remit=remit, inputs={"i": 0})
        dt = time.perf_counter() - t
        rt.close()
        if not run.ok:
            raise SystemExit(f"benchmark run failed: {run.error}")
        return dt, run


def journal_open_ms() -> float:
    """Creating a fresh journal file: schema, migrations, WAL (paid once per file)."""
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        SQLiteJournal(os.path.join(d, "j.db")).close()
        return (time.perf_counter() - t) * 1e3


def cpu_ref_ms(n: int = 20_000) -> float:
    """Plain Python of the runtime's kind (small dicts, strings, JSON), timed in each
    round: how fast this machine runs such code at that moment. On a shared virtual
    machine it moves by half again within minutes, more than a tight arithmetic loop
    shows (the neighbours compete for caches and memory, not only for the CPU)."""
    t = time.perf_counter()
    kept: list[str] = []
    for i in range(n):
        kept.append(json.dumps({"i": i, "s": str(i), "l": [i, i + 1]}))
    assert len(kept) == n
    return (time.perf_counter() - t) * 1e3


def floor_commit_us(n: int = 2000) -> float:
    """Raw sqlite3: one INSERT + COMMIT per step, WAL, synchronous=FULL."""
    with tempfile.TemporaryDirectory() as d:
        con = sqlite3.connect(os.path.join(d, "floor.db"), isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=FULL")
        con.execute(
            "CREATE TABLE steps(run TEXT, step INTEGER, output TEXT, PRIMARY KEY(run, step))"
        )
        t = time.perf_counter()
        for i in range(n):
            con.execute("BEGIN")
            con.execute("INSERT INTO steps VALUES (?, ?, ?)", ("run", i, str(i * 2)))
            con.execute("COMMIT")
        dt = time.perf_counter() - t
        con.close()
        return dt / n * 1e6


# --- W4: a real kill -9 in the middle of W2, then resume ----------------------------


def _w4_child(journal: str, n: int) -> None:
    """Subprocess body: run W4, saying "go" on stdout when the first child starts."""
    said = False

    def observer(event: str, node: Any) -> None:
        nonlocal said
        if event == "start" and node.parent is not None and not said:
            said = True
            print("go", flush=True)

    rt = Runtime(journal=journal, agent=SlowFanOut(n), observer=observer)
    rt.run("benchmark", remit=Remit(tools={"slow_step": {}}, depth=1), inputs={"i": 0}, run_id="w4")
    print("end", flush=True)


def _w4_process(journal: str, n: int, kill_at: float | None) -> tuple[int, float]:
    """Start W4 in a subprocess; SIGKILL it ``kill_at`` seconds after its first child
    starts (None: let it finish). Returns (exit code, seconds from "go" to the end)."""
    proc = subprocess.Popen([sys.executable, __file__, "--w4-child", journal, str(n)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != b"go":
            raise SystemExit(f"W4 child did not start: {proc.communicate()[1]!r}")
        go = time.perf_counter()
        if kill_at is not None:
            time.sleep(kill_at)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=120)
            return proc.returncode, time.perf_counter() - go
        proc.stdout.readline()  # "end": the run itself is over (teardown not counted)
        took = time.perf_counter() - go
        proc.wait(timeout=120)
        return proc.returncode, took
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def w4_once(n: int = 1000) -> dict[str, float]:
    # how long an uninterrupted W4 runs, so that the kill lands in its middle
    with tempfile.TemporaryDirectory() as d:
        _, duration = _w4_process(_fresh_journal(d), n, None)
    # a kill before any child's end reached the disk, or after the last, measures
    # nothing: try again (the first commit of a fresh journal can be slow here)
    result: dict[str, float] = {}
    for attempt in range(8):
        result = _w4_attempt(n, duration * (0.5 + 0.05 * attempt))
        if 0 < result["finished_before_kill"] < n:
            return result
    return result


def _w4_attempt(n: int, kill_at: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as d:
        journal = _fresh_journal(d)
        rc, _ = _w4_process(journal, n, kill_at)
        if rc != -signal.SIGKILL:
            return {"finished_before_kill": n, "rerun": 0, "resume_s": 0.0}  # ended first
        store = SQLiteJournal(journal)
        # children only: the root's id has no "/"
        finished = {
            s.task_id
            for s in store.steps("w4")
            if s.kind == "task" and s.status == "ok" and "/" in s.task_id
        }
        store.close()
        started: list[str] = []

        def observer(event: str, node: Any) -> None:
            if event == "start":
                started.append(node.id)

        rt = Runtime(journal=journal, agent=SlowFanOut(n), observer=observer)
        t = time.perf_counter()
        run = rt.resume("w4")
        dt = time.perf_counter() - t
        rt.close()
        if not run.ok or run.result != n * (n - 1):
            raise SystemExit(f"W4 resume gave a wrong result: {run}")
        rerun = len(finished.intersection(started))
        return {"finished_before_kill": len(finished), "rerun": rerun, "resume_s": dt}


# --- W5: peak memory of a 10,000-child fan-out, in a fresh process -------------------


def _peak_rss_kb(reset: bool = False) -> int:
    """This process's peak resident set (KB), from ``VmHWM``; ``reset`` first brings the
    peak down to what is resident now. Not ``ru_maxrss``: Linux keeps it across
    ``execve``, so a child started by a parent that had grown larger than the child
    ever gets reports the parent's peak, and the growth measured is zero."""
    status = Path("/proc/self/status")
    if not status.exists():  # not Linux: ru_maxrss (KB there too on most systems)
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if reset:
        Path("/proc/self/clear_refs").write_text("5")
    for line in status.read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise SystemExit("/proc/self/status has no VmHWM line")


def _w5_child(n: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        # warm up imports and code paths, then measure the peak growth of the big run
        _run(FanOut(10), 1)
        gc.collect()
        base = _peak_rss_kb(reset=True)
        rt = Runtime(journal=_fresh_journal(d), agent=FanOut(n))
        run = rt.run("benchmark", remit=Remit(tools={"step": {}}, depth=1), inputs={"i": 0})
        peak = _peak_rss_kb()
        assert run.ok
        print(json.dumps({"kb_per_task": (peak - base) / n}))


def w5_once(n: int = 10_000) -> float:
    proc = subprocess.run(
        [sys.executable, __file__, "--w5-child", str(n)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        raise SystemExit(f"W5 child failed: {proc.stderr}")
    return float(json.loads(proc.stdout.strip().splitlines()[-1])["kb_per_task"])


# --- W6: a CPU-bound fan-out, killed or interrupted at half-way -------------------------

_W6_LINE = 8  # bytes per line of the finished-tasks log


class Burn(Agent):
    """Children that are plain CPU work (about a millisecond each) and never wait."""

    def __init__(self, n: int, log: str) -> None:
        self.n, self.log = n, log

    def atomize(self, ctx: Any) -> str:
        return "plan" if ctx.depth == 0 else "execute"

    def plan(self, ctx: Any) -> Plan:
        return Plan([Subtask(f"b{i}", f"burn {i}", inputs={"i": i}) for i in range(self.n)])

    def execute(self, ctx: Any) -> int:
        i = acc = int(ctx.inputs["i"])
        for k in range(12_000):
            acc = (acc * 31 + k) % 1_000_003
        fd = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.write(fd, f"{i:0{_W6_LINE - 1}d}\n".encode())
        os.close(fd)
        return acc

    def aggregate(self, ctx: Any, results: list[Any]) -> int:
        return sum(r.value for r in results)


def _w6_child(journal: str, log: str, n: int) -> None:
    rt = Runtime(journal=journal, agent=Burn(n, log))
    try:
        rt.run("benchmark", remit=Remit(tools={}, depth=1), run_id="w6")
    except KeyboardInterrupt:
        sys.exit(130)


def w6_once(n: int = 2400) -> dict[str, float]:
    """Kill -9 at half-way: the share of finished tasks on disk; SIGINT at half-way: the
    seconds to exit."""
    out: dict[str, float] = {}
    for how in (signal.SIGKILL, signal.SIGINT):
        with tempfile.TemporaryDirectory() as d:
            journal, log = _fresh_journal(d), os.path.join(d, "finished.log")
            proc = subprocess.Popen([sys.executable, __file__, "--w6-child", journal, log,
                                     str(n)], stderr=subprocess.PIPE)  # fmt: skip
            try:
                deadline = time.monotonic() + 120
                while not os.path.exists(log) or os.path.getsize(log) < n // 2 * _W6_LINE:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit(f"W6 child ended early: {proc.communicate()[1]!r}")
                    time.sleep(0.001)
                t = time.perf_counter()
                os.kill(proc.pid, how)
                proc.wait(timeout=60)
                took = time.perf_counter() - t
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            if how == signal.SIGINT:
                out["sigint_exit_s"] = took
                continue
            finished = os.path.getsize(log) // _W6_LINE
            store = SQLiteJournal(journal)
            ends = [s for s in store.steps("w6") if s.kind == "task" and s.status == "ok"]
            on_disk = sum(1 for s in ends if "/" in s.task_id)
            store.close()
            out["finished_before_kill"] = finished
            out["ratio"] = on_disk / finished if finished else 0.0
    return out


# --- driver ----------------------------------------------------------------------------


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", action="store_true", help="print a JSON object as the last line")
    ap.add_argument("--peers", action="store_true", help="also run LangGraph and DBOS")
    ap.add_argument("--w4-child", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--w5-child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--w6-child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.w6_child:
        journal, log, n = args.w6_child
        _w6_child(journal, log, int(n))
        return
    if args.w4_child:
        journal, n = args.w4_child
        _w4_child(journal, int(n))
        return
    if args.w5_child:
        _w5_child(args.w5_child)
        return

    r = args.repeat
    floor, w1, w2, w3, w4, w5, w6 = [], [], [], [], [], [], []
    w1s, w2s, w3s, opened, cpu = [], [], [], [], []
    for _ in range(r):
        cpu.append(cpu_ref_ms())
        floor.append(floor_commit_us())
        opened.append(journal_open_ms())
        # each workload's core (unsigned) and signed run (the default) back to back, the
        # order swapped every round, so that drift in the machine's speed cancels
        order = (False, True) if len(cpu) % 2 else (True, False)
        for sign in order:
            (w1s if sign else w1).append(_run(Chain(2000), 1, sign=sign)[0] / 2000 * 1e6)
        for sign in order:
            (w2s if sign else w2).append(_run(FanOut(1000), 1, sign=sign)[0])
        for sign in order:
            dt, run = _run(Tree(6), 4, sign=sign)
            assert run.tasks == 1555, run.tasks
            (w3s if sign else w3).append(dt)
        w4.append(w4_once())
        w5.append(w5_once())
        w6.append(w6_once())
    out: dict[str, Any] = {
        "repeat": r,
        "w1_step_us": round(median(w1), 1),
        "w1_floor_commit_us": round(median(floor), 1),
        "w1_overhead_us": round(median(w1) - median(floor), 1),
        "w2_s": round(median(w2), 4),
        "w3_s": round(median(w3), 4),
        "w4_finished_before_kill": int(median([x["finished_before_kill"] for x in w4])),
        "w4_rerun": int(max(x["rerun"] for x in w4)),
        "w4_resume_s": round(median([x["resume_s"] for x in w4]), 4),
        "w5_rss_kb_per_task": round(median(w5), 2),
        "w6_finished_replayed_ratio": round(median([x["ratio"] for x in w6]), 4),
        "w6_finished_before_kill": int(median([x["finished_before_kill"] for x in w6])),
        "w6_sigint_exit_s": round(median([x["sigint_exit_s"] for x in w6]), 4),
        # the same workloads signed (the default): the journal sealed, a hash chain over
        # every row and a signed checkpoint per batch
        "w1_signed_step_us": round(median(w1s), 1),
        "w2_signed_s": round(median(w2s), 4),
        "w3_signed_s": round(median(w3s), 4),
        # signed / core per round (the two measured back to back), the median over rounds:
        # steadier than a ratio of medians on a machine whose speed drifts
        "w1_signed_ratio": round(median(x / y for x, y in zip(w1s, w1, strict=True)), 3),
        "w2_signed_ratio": round(median(x / y for x, y in zip(w2s, w2, strict=True)), 3),
        "w3_signed_ratio": round(median(x / y for x, y in zip(w3s, w3, strict=True)), 3),
        "journal_open_ms": round(median(opened), 1),
        # the machine's speed in these rounds: compare runs by it, not only by the clock
        "cpu_ref_ms": round(median(cpu), 1),
    }
    if args.peers:
        from _peers import run_peers  # pyright: ignore[reportMissingImports]

        out["peers"] = run_peers(repeat=r)
    rows = [
        ("W1 step, core (µs)", out["w1_step_us"], "floor commit", out["w1_floor_commit_us"]),
        ("W1 overhead above floor (µs)", out["w1_overhead_us"], "target", "<= 30"),
        ("W2 1,000-child fan-out, core (s)", out["w2_s"], "target", "<= 0.050"),
        ("W3 1,555-task tree, core (s)", out["w3_s"], "target", "<= 0.100"),
        ("W4 finished before kill", out["w4_finished_before_kill"], "re-run", out["w4_rerun"]),
        ("W4 resume to done (s)", out["w4_resume_s"], "target", "< 0.3"),
        ("W5 peak RSS per task (KB)", out["w5_rss_kb_per_task"], "target", "<= 4"),
        ("W6 finished on disk after kill -9", out["w6_finished_replayed_ratio"], "goal", ">= 0.8"),
        ("W6 SIGINT to exit (s)", out["w6_sigint_exit_s"], "goal", "<= 0.5"),
        ("W1 step signed (µs)", out["w1_signed_step_us"], "core", out["w1_step_us"]),
        ("W2 signed (s)", out["w2_signed_s"], "core", out["w2_s"]),
        ("W3 signed (s)", out["w3_signed_s"], "core", out["w3_s"]),
        ("W1 signed / core, per round", out["w1_signed_ratio"], "goal", "<= 1.15"),
        ("W2 signed / core, per round", out["w2_signed_ratio"], "goal", "<= 1.15"),
        ("W3 signed / core, per round", out["w3_signed_ratio"], "goal", "<= 1.15"),
        ("creating a journal file (ms)", out["journal_open_ms"], "", "not in W1-W3"),
        ("plain Python reference (ms)", out["cpu_ref_ms"], "", "this machine's speed"),
    ]
    print(f"remit durable benchmark: medians of {r} runs, durability=full, {os.cpu_count()} cpus")
    for name, v, k, ref in rows:
        print(f"  {name:<36} {v!s:>10}   {k}: {ref}")
    for peer, figures in (out.get("peers") or {}).items():
        print(f"  {peer}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    main()
