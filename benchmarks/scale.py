"""The same run beyond one process: Ray workers over a PostgreSQL journal, against the
in-process engine over a SQLite file, and workers and the driver killed mid-run.

Every workload is the tree of ``scale_tree.py`` (one tool call per leaf, through the
full Gate, the run sealed: the default), run by the same agent code on both:

- **big**: ``--depth 5 --branching 10``: 111,111 tasks (100,000 leaves).
  ``local_sqlite_s`` in this process over a SQLite file; ``ray_pg_s`` on a local Ray
  cluster of ``--workers`` actors over a throwaway PostgreSQL server (Debian's
  ``postgresql`` binaries, fsync on, durability ``full``). ``rss_mb``: the driver's
  peak resident memory during the Ray run (``rss_local_mb``: during the local one;
  ``rss_workers_mb``: the workers' peak, summed).
- **W3**: the depth-4, branching-6 tree (1,555 tasks) on both, the median of
  ``--repeat`` runs: ``w3_local_sqlite_s``, ``w3_ray_pg_s``.
- **chaos**: a tree of ``--chaos-depth``/``--chaos-branching`` whose leaves make an
  idempotent effect (``--pause`` seconds each) logged to a SQLite file. It runs in a
  driver subprocess (``remit run --executor auto`` on this cluster); this process
  SIGKILLs a random Ray worker every ``--kill-every`` seconds until ``--kills`` have
  landed, and the driver once half-way (then ``remit resume --executor auto`` carries
  the run on). ``workers_killed``, ``driver_killed``; from the effects log and the
  journal (``scale_tree.audit``): ``steps_redone`` (attempts begun after the call's
  result was recorded), ``steps_lost``, ``effects_duplicated``; ``chaos_ok`` (the run
  done with the closed-form result and the journal verifying).

CPU per task, from the processes' own clocks over the big Ray run, is printed for the
driver, the workers and PostgreSQL (``*_cpu_ms_per_task``): what an added machine adds
and what it does not (see ``docs/scale.md``).

    python benchmarks/scale.py [--depth 5] [--branching 10] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import psutil

import scale_tree as st
from remit import Remit, Runtime
from remit.executors import RayExecutor
from remit.journal.postgres import PostgresJournal
from remit.journal.postgres.throwaway import ThrowawayServer
from remit.trust.provenance import verify_run

HERE = Path(__file__).resolve().parent
REMIT = str(Path(sys.executable).parent / "remit")


class Peak:
    """The peak resident memory of some processes, sampled every 0.1 s."""

    def __init__(self, pids: Callable[[], list[int]]) -> None:
        self.pids, self.peak, self._stop = pids, 0, threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self._sample()

    def _sample(self) -> None:
        total = 0
        for pid in self.pids():
            with suppress(psutil.Error):
                total += psutil.Process(pid).memory_info().rss
        self.peak = max(self.peak, total)

    def __enter__(self) -> Peak:
        self._sample()
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()
        self._sample()


def cpu_of(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def postgres_cpu() -> float:
    """CPU seconds of the PostgreSQL server so far: its live processes' own, and what
    the ones that ended (a closed connection's backend) left in their parent's count."""
    total = 0.0
    for p in psutil.process_iter(["name"]):
        if p.info["name"] != "postgres":
            continue
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            pass
    return total


def tree_inputs(depth: int, branching: int) -> dict[str, Any]:
    return {"depth": depth, "branching": branching}


def run_tree(rt: Runtime, depth: int, branching: int, **inputs: Any) -> tuple[float, Any]:
    remit = Remit(tools={"index": {}, "effect": {}}, depth=depth)
    t = time.perf_counter()
    run = rt.run("tree", remit=remit, inputs={**tree_inputs(depth, branching), **inputs})
    took = time.perf_counter() - t
    if not run.ok or run.result != st.expected(depth, branching):
        raise SystemExit(f"the {depth}/{branching} tree came out wrong: {run.status} {run.error}")
    return took, run


@contextmanager
def local_runtime() -> Iterator[Runtime]:
    with tempfile.TemporaryDirectory() as d:
        rt = Runtime(journal=Path(d) / "journal.db", agent=st.Tree(), keys_dir=Path(d) / "k")
        try:
            yield rt
        finally:
            rt.close()


@contextmanager
def ray_runtime(server: ThrowawayServer, ex: RayExecutor, name: str) -> Iterator[Runtime]:
    url = server.create_database(name)
    with tempfile.TemporaryDirectory() as d:
        rt = Runtime(journal=url, agent=st.Tree(), executor=ex, keys_dir=Path(d) / "k")
        try:
            yield rt
        finally:
            rt.close()


def big(args: argparse.Namespace, server: ThrowawayServer, ex: RayExecutor) -> dict[str, Any]:
    me = os.getpid()
    tasks = st.tasks_in(args.depth, args.branching)
    print(f"big tree: {tasks:,} tasks, in this process over SQLite ...", file=sys.stderr)
    with local_runtime() as rt, Peak(lambda: [me]) as peak:
        local_s, _ = run_tree(rt, args.depth, args.branching)
    rss_local = peak.peak
    print(f"  {local_s:.1f} s; on Ray over PostgreSQL ...", file=sys.stderr)
    workers = ex.worker_pids()
    before = (time.process_time(), cpu_of(workers), postgres_cpu())
    with (
        ray_runtime(server, ex, "big") as rt,
        Peak(lambda: [me]) as driver,
        Peak(ex.worker_pids) as held,
    ):
        ray_s, run = run_tree(rt, args.depth, args.branching)
    cpu = (time.process_time() - before[0], cpu_of(workers) - before[1], postgres_cpu() - before[2])
    print(f"  {ray_s:.1f} s", file=sys.stderr)
    return {
        "tasks": run.tasks,
        "local_sqlite_s": round(local_s, 2),
        "ray_pg_s": round(ray_s, 2),
        "ray_over_local": round(ray_s / local_s, 2),
        "rss_mb": round(driver.peak / 2**20, 1),
        "rss_local_mb": round(rss_local / 2**20, 1),
        "rss_workers_mb": round(held.peak / 2**20, 1),
        "driver_cpu_ms_per_task": round(cpu[0] * 1e3 / tasks, 3),
        "worker_cpu_ms_per_task": round(cpu[1] * 1e3 / tasks, 3),
        "pg_cpu_ms_per_task": round(cpu[2] * 1e3 / tasks, 3),
        "workers": len(workers),
    }


def w3(args: argparse.Namespace, server: ThrowawayServer, ex: RayExecutor) -> dict[str, Any]:
    local: list[float] = []
    ray: list[float] = []
    for i in range(args.repeat):
        with local_runtime() as rt:
            local.append(run_tree(rt, 4, 6)[0])
        with ray_runtime(server, ex, f"w3_{i}") as rt:
            ray.append(run_tree(rt, 4, 6)[0])
    print(f"W3: local {statistics.median(local):.3f} s, Ray {statistics.median(ray):.3f} s",
          file=sys.stderr)  # fmt: skip
    return {
        "w3_tasks": st.tasks_in(4, 6),
        "w3_local_sqlite_s": round(statistics.median(local), 3),
        "w3_ray_pg_s": round(statistics.median(ray), 3),
    }


def actor_pids(exclude: set[int]) -> list[int]:
    out = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        if cmd and cmd[0].startswith("ray::_Actor") and p.pid not in exclude:
            out.append(p.pid)
    return out


def chaos(args: argparse.Namespace, server: ThrowawayServer, mine: set[int]) -> dict[str, Any]:
    url = server.create_database("chaos")
    depth, branching = args.chaos_depth, args.chaos_branching
    leaves = branching**depth
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as d:
        db = str(Path(d) / "effects.db")
        st.open_effects(db).close()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
        common = ["--journal", url, "--executor", "auto", "--quiet"]
        inputs = json.dumps({**tree_inputs(depth, branching), "effects": db, "pause": args.pause})
        start = [REMIT, "run", "tree", "--agent", "scale_tree:Tree", "--tool", "effect",
                 "--depth", str(depth), "--inputs", inputs, "--run-id", "run-chaos",
                 *common]  # fmt: skip
        resume = [REMIT, "resume", "run-chaos", *common]
        print(f"chaos: {st.tasks_in(depth, branching):,} tasks, killing {args.kills} workers"
              " and the driver once ...", file=sys.stderr)  # fmt: skip
        driver = subprocess.Popen(start, cwd=HERE, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True)  # fmt: skip
        kills, driver_killed, stopped, started = 0, 0, 0, time.monotonic()
        conn = sqlite3.connect(db)
        while time.monotonic() - started < args.chaos_timeout:
            if driver.poll() is not None:
                if driver.returncode == 0:
                    break
                # a task outlived max_redispatch workers: the driver stops, the run is
                # left running, and a person (here: this loop) resumes it
                err = driver.stderr.read()  # type: ignore[union-attr]
                why = next((ln for ln in reversed(err.splitlines()) if ln.startswith("remit")),
                           err[-300:])  # fmt: skip
                print(f"  the driver stopped ({why.strip()}); resuming", file=sys.stderr)
                stopped += 1
                if stopped > 5:
                    raise SystemExit(f"the chaos driver keeps failing: {why}")
                driver = subprocess.Popen(resume, cwd=HERE, env=env, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.PIPE, text=True)  # fmt: skip
                continue
            time.sleep(args.kill_every)
            (attempts,) = conn.execute("SELECT COUNT(*) FROM attempts").fetchone()
            pids = actor_pids(mine)
            if attempts == 0 or not pids:
                continue  # not started yet, or between workers
            if not driver_killed and kills >= args.kills // 2:
                driver.send_signal(signal.SIGKILL)
                driver.wait(30)
                driver_killed = 1
                driver = subprocess.Popen(resume, cwd=HERE, env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                          text=True)  # fmt: skip
                continue
            if kills < args.kills:
                os.kill(rng.choice(pids), signal.SIGKILL)
                kills += 1
        conn.close()
        driver.wait(args.chaos_timeout)
        while driver.returncode != 0 and stopped <= 5:  # the kills are over: carry it on
            stopped += 1
            driver = subprocess.Popen(resume, cwd=HERE, env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, text=True)  # fmt: skip
            driver.wait(args.chaos_timeout)
        took = time.monotonic() - started
        store = PostgresJournal(url)
        try:
            rec = store.get_run("run-chaos")
            done = rec.status == "done" and json.loads(rec.result or "null") == st.expected(
                depth, branching
            )
            figures = st.audit(store, "run-chaos", db, leaves)
            report = verify_run(store, "run-chaos")
        finally:
            store.close()
    print(f"  {kills} workers and {driver_killed} driver killed in {took:.0f} s: {figures};"
          f" {rec.status}, verify: {'ok' if report.ok else report.failures[:3]}",
          file=sys.stderr)  # fmt: skip
    return {
        "chaos_tasks": st.tasks_in(depth, branching),
        "workers_killed": kills,
        "driver_killed": driver_killed,
        "driver_stopped": stopped,
        "steps_redone": figures["steps_redone"],
        "steps_lost": figures["steps_lost"],
        "effects_duplicated": figures["effects_duplicated"],
        "chaos_ok": done and report.ok and figures["effects"] == leaves,
        "chaos_verified": report.ok,
        "chaos_s": round(took, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--depth", type=int, default=5)
    p.add_argument("--branching", type=int, default=10)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--chaos-depth", type=int, default=5)
    p.add_argument("--chaos-branching", type=int, default=6)
    p.add_argument("--pause", type=float, default=0.02)
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--kill-every", type=float, default=0.7)
    p.add_argument("--chaos-timeout", type=float, default=600.0)
    p.add_argument("--seed", type=int, default=20261207)
    p.add_argument("--skip-big", action="store_true", help="only W3 and chaos")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a throwaway cluster on this host
    out: dict[str, Any] = {"cores": os.cpu_count()}
    with ThrowawayServer.start() as server:
        ex = RayExecutor(workers=args.workers, init_options={"num_cpus": args.workers})
        ex.connect()
        try:
            if not args.skip_big:
                out.update(big(args, server, ex))
            out.update(w3(args, server, ex))
            for pid in ex.worker_pids():  # the chaos round's driver brings its own
                os.kill(pid, signal.SIGKILL)
            out.update(chaos(args, server, set()))
        finally:
            ex.shutdown()
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:>26}: {v}")


if __name__ == "__main__":
    main()
