"""Peers for ``benchmarks/durable.py --peers``: LangGraph (SqliteSaver) and DBOS (SQLite).

The same workloads as remit's, with the same trivial unit of work (``i * 2``):

- W1: a 2,000-step chain, every step checkpointed. Figure ``w1_step_us`` (per step).
- W2: a 1,000-child fan-out and aggregate. Figure ``w2_s``.
- W3: a depth-4, branching-6 tree of 1,555 tasks. Figure ``w3_s``.
- W4: a real SIGKILL in the middle of W2, then a fresh process resumes. Figures
  ``w4_finished_before_kill`` (children whose execution was logged before the kill),
  ``w4_rerun`` (of those, how many were executed again by the resume) and ``w4_resume_s``;
  ``w4_recorded_before_kill`` adds how many children the peer's own store held as done.

How each peer implements them:

- LangGraph: ``StateGraph`` compiled with ``SqliteSaver`` (WAL, the sqlite default
  ``synchronous=FULL``), invoked with ``durability="sync"``. W1 is one node that loops
  2,000 times (one superstep and one checkpoint per step). W2 is a plan node that ``Send``\\ s
  1,000 child tasks, then an aggregate node. W3 is one node that, above the leaves, returns
  ``Command(goto=[Send(...)] * 6)``: five supersteps, 1 + 6 + 36 + 216 + 1,296 tasks, the
  leaf values summed by a reducer. W4 resumes with ``invoke(None, same thread_id)``.
- DBOS: SQLite system database, ``DBOS(config={"name", "system_database_url":
  "sqlite:///..."})``; the file is put in WAL mode before launch (DBOS itself leaves SQLite
  in its default rollback-journal mode; ``REMIT_BENCH_DBOS_JOURNAL=delete`` measures
  that). W1 is one workflow making 2,000 sequential ``@DBOS.step`` calls. W2 is a workflow
  that starts 1,000 child workflows (each runs one step) with ``DBOS.start_workflow`` and
  sums their results; ``w2_async_steps_s`` is the lighter variant, one async workflow
  gathering 1,000 async steps. W3 is a workflow that recursively starts 6 child workflows
  down to depth 4, where the leaf runs the step. W4 relaunches DBOS in a fresh process on the
  same file; launch recovers the pending workflows and we wait for the root's result.

Every workload runs in its own subprocess and its own temporary directory, so a peer's
global state (DBOS is a singleton) never leaks between runs or into remit's process. Only
the workload itself is timed: imports, graph compilation and DBOS launch are not (except
for ``w4_resume_s`` on DBOS, where launch is what starts recovery). Figures are medians
over the runs, except ``w4_rerun``, which is the maximum, as for remit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import operator
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from importlib import metadata
from typing import Annotated, Any, TypedDict

N_CHAIN = 2000
N_FAN = 1000
BRANCHING = 6
DEPTH = 4
TREE_TASKS = sum(BRANCHING**k for k in range(DEPTH + 1))  # 1,555
CHILD_TIMEOUT_S = 300.0
PEER_BUDGET_S = 600.0  # start no new run of a peer after this long

PEERS: dict[str, tuple[str, ...]] = {
    "langgraph": ("langgraph", "langgraph-checkpoint-sqlite"),
    "dbos": ("dbos",),
}
WORKLOADS = ("w1", "w2", "w3")
EXTRA_WORKLOADS = {"dbos": ("w2_async_steps",)}


def _log(msg: str) -> None:
    print(f"[peers] {msg}", file=sys.stderr, flush=True)


# --- W4 bookkeeping: every child execution is appended to a log as "pid i" --------------


class _Recorder:
    """Logs child executions and SIGKILLs this process after ``kill_after`` of them."""

    def __init__(self, path: str, kill_after: int | None) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.kill_after = kill_after
        self.count = 0
        self.lock = threading.Lock()
        self.pid = os.getpid()

    def record(self, i: int) -> None:
        with self.lock:
            os.write(self.fd, f"{self.pid} {i}\n".encode())  # unbuffered: survives SIGKILL
            self.count += 1
            if self.kill_after is not None and self.count >= self.kill_after:
                os.kill(self.pid, signal.SIGKILL)


_recorder: _Recorder | None = None


def _child_work(i: int) -> int:
    value = i * 2
    if _recorder is not None:
        _recorder.record(i)
    return value


def _read_log(path: str) -> dict[int, set[int]]:
    by_pid: dict[int, set[int]] = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                pid, i = line.split()
                by_pid.setdefault(int(pid), set()).add(int(i))
    return by_pid


# --- LangGraph ---------------------------------------------------------------------------


class _ChainState(TypedDict, total=False):
    i: int
    n: int
    total: Annotated[int, operator.add]


class _TreeState(TypedDict, total=False):
    total: Annotated[int, operator.add]
    tasks: Annotated[int, operator.add]


def _lg_chain() -> Any:
    from langgraph.graph import END, START, StateGraph

    def step(state: Any) -> dict[str, int]:
        return {"i": state["i"] + 1, "total": _child_work(state["i"])}

    def route(state: Any) -> str:
        return "step" if state["i"] < state["n"] else END

    g = StateGraph(_ChainState)
    g.add_node("step", step)
    g.add_edge(START, "step")
    g.add_conditional_edges("step", route, ["step", END])
    return g


def _lg_fanout() -> Any:
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import Send

    def plan(state: Any) -> dict[str, int]:
        return {}

    def child(state: Any) -> dict[str, int]:
        return {"total": _child_work(state["i"])}

    def fan_out(state: Any) -> list[Any]:  # langgraph resolves these hints at runtime
        return [Send("child", {"i": i}) for i in range(state["n"])]

    def aggregate(state: Any) -> dict[str, int]:
        return {}

    g = StateGraph(_ChainState)
    g.add_node("plan", plan)
    g.add_node("child", child)
    g.add_node("aggregate", aggregate)
    g.add_edge(START, "plan")
    g.add_conditional_edges("plan", fan_out, ["child"])
    g.add_edge("child", "aggregate")
    g.add_edge("aggregate", END)
    return g


def _lg_tree() -> Any:
    from langgraph.graph import START, StateGraph
    from langgraph.types import Command, Send

    def node(state: Any) -> Any:
        d, i = state.get("d", 0), state.get("i", 0)
        if d == DEPTH:
            return {"total": _child_work(i), "tasks": 1}
        kids = [Send("node", {"d": d + 1, "i": i * BRANCHING + k}) for k in range(BRANCHING)]
        return Command(update={"tasks": 1}, goto=kids)

    g = StateGraph(_TreeState)
    g.add_node("node", node)
    g.add_edge(START, "node")
    return g


def _lg_config(thread: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}, "recursion_limit": 10 * N_CHAIN}


def _lg_invoke(d: str, graph: Any, inp: Any, thread: str = "bench") -> tuple[float, Any]:
    from langgraph.checkpoint.sqlite import SqliteSaver

    with SqliteSaver.from_conn_string(os.path.join(d, "checkpoints.db")) as saver:
        app = graph.compile(checkpointer=saver)
        t = time.perf_counter()
        out = app.invoke(inp, _lg_config(thread), durability="sync")
        return time.perf_counter() - t, out


def _lg_workload(name: str, d: str) -> dict[str, float]:
    if name == "w1":
        dt, out = _lg_invoke(d, _lg_chain(), {"i": 0, "n": N_CHAIN})
        _check(out["total"], N_CHAIN * (N_CHAIN - 1), name)
        return {"w1_step_us": dt / N_CHAIN * 1e6}
    if name == "w2":
        dt, out = _lg_invoke(d, _lg_fanout(), {"n": N_FAN})
        _check(out["total"], N_FAN * (N_FAN - 1), name)
        return {"w2_s": dt}
    if name == "w3":
        dt, out = _lg_invoke(d, _lg_tree(), {})
        _check(out["tasks"], TREE_TASKS, name)
        _check(out["total"], _tree_total(), name)
        return {"w3_s": dt}
    raise SystemExit(f"unknown workload {name}")


def _lg_w4_kill(d: str, n: int) -> None:
    _lg_invoke(d, _lg_fanout(), {"n": n}, thread="w4")


def _lg_w4_resume(d: str, n: int) -> dict[str, float]:
    dt, out = _lg_invoke(d, _lg_fanout(), None, thread="w4")
    return {"resume_s": dt, "ok": float(out.get("total") == n * (n - 1))}


def _lg_w4_recorded(d: str) -> int:
    con = sqlite3.connect(os.path.join(d, "checkpoints.db"))
    try:
        q = "SELECT COUNT(DISTINCT task_id) FROM writes WHERE thread_id = 'w4' AND channel = ?"
        return int(con.execute(q, ("total",)).fetchone()[0])
    finally:
        con.close()


# --- DBOS --------------------------------------------------------------------------------

_DBOS_FNS: dict[str, Callable[..., Any]] = {}
_POLL_S = 0.01  # result polling interval (the DBOS default is 1 s)


def _dbos_register() -> dict[str, Callable[..., Any]]:
    """Register the workflows once per process, under fixed names (recovery needs them)."""
    if _DBOS_FNS:
        return _DBOS_FNS
    from dbos import DBOS

    @DBOS.step(name="bench_step")
    def step(i: int) -> int:
        return _child_work(i)

    @DBOS.step(name="bench_async_step")
    async def async_step(i: int) -> int:
        return _child_work(i)

    @DBOS.workflow(name="bench_chain")
    def chain(n: int) -> int:
        return sum(step(i) for i in range(n))

    @DBOS.workflow(name="bench_child")
    def child(i: int) -> int:
        return step(i)

    @DBOS.workflow(name="bench_fanout")
    def fanout(n: int) -> int:
        handles = [DBOS.start_workflow(child, i) for i in range(n)]
        return sum(h.get_result(polling_interval_sec=_POLL_S) for h in handles)

    @DBOS.workflow(name="bench_fanout_async_steps")
    async def fanout_async_steps(n: int) -> int:
        return sum(await asyncio.gather(*(async_step(i) for i in range(n))))

    @DBOS.workflow(name="bench_tree")
    def tree(d: int, i: int) -> int:
        if d == DEPTH:
            return step(i)
        handles = [DBOS.start_workflow(tree, d + 1, i * BRANCHING + k) for k in range(BRANCHING)]
        return sum(h.get_result(polling_interval_sec=_POLL_S) for h in handles)

    _DBOS_FNS.update(chain=chain, fanout=fanout, fanout_async_steps=fanout_async_steps, tree=tree)
    return _DBOS_FNS


def _dbos_db(d: str) -> str:
    return os.path.join(d, "dbos_sys.sqlite")


def _dbos_open(d: str) -> Any:
    """Configure DBOS on a SQLite system database in ``d`` (not launched yet)."""
    import logging

    from dbos import DBOS

    fns = _dbos_register()
    path = _dbos_db(d)
    journal = os.environ.get("REMIT_BENCH_DBOS_JOURNAL", "wal").lower()
    if journal == "wal" and not os.path.exists(path):
        con = sqlite3.connect(path)  # WAL is a property of the file: DBOS keeps it
        con.execute("PRAGMA journal_mode=WAL")
        con.close()
    DBOS(
        config={
            "name": "remit-bench",
            "system_database_url": f"sqlite:///{path}",
            "application_version": "remit-bench",
            "log_level": "WARNING",
        }
    )
    logging.getLogger("dbos").setLevel(logging.WARNING)
    return fns


def _dbos_workload(name: str, d: str) -> dict[str, float]:
    from dbos import DBOS

    fns = _dbos_open(d)
    DBOS.launch()
    try:
        t = time.perf_counter()
        if name == "w1":
            _check(fns["chain"](N_CHAIN), N_CHAIN * (N_CHAIN - 1), name)
            return {"w1_step_us": (time.perf_counter() - t) / N_CHAIN * 1e6}
        if name == "w2":
            _check(fns["fanout"](N_FAN), N_FAN * (N_FAN - 1), name)
            return {"w2_s": time.perf_counter() - t}
        if name == "w2_async_steps":
            _check(asyncio.run(fns["fanout_async_steps"](N_FAN)), N_FAN * (N_FAN - 1), name)
            return {"w2_async_steps_s": time.perf_counter() - t}
        if name == "w3":
            _check(fns["tree"](0, 0), _tree_total(), name)
            return {"w3_s": time.perf_counter() - t}
        raise SystemExit(f"unknown workload {name}")
    finally:
        DBOS.destroy()


def _dbos_w4_kill(d: str, n: int) -> None:
    from dbos import DBOS, SetWorkflowID

    fns = _dbos_open(d)
    DBOS.launch()
    with SetWorkflowID("w4"):
        fns["fanout"](n)


def _dbos_w4_resume(d: str, n: int) -> dict[str, float]:
    from dbos import DBOS

    _dbos_open(d)
    t = time.perf_counter()
    DBOS.launch()  # recovers the pending workflows of this executor in the background
    result = DBOS.retrieve_workflow("w4").get_result(polling_interval_sec=_POLL_S)
    dt = time.perf_counter() - t
    DBOS.destroy()
    return {"resume_s": dt, "ok": float(result == n * (n - 1))}


def _dbos_w4_recorded(d: str) -> int:
    con = sqlite3.connect(_dbos_db(d))
    try:
        q = "SELECT COUNT(*) FROM operation_outputs WHERE function_name = ?"
        return int(con.execute(q, ("bench_step",)).fetchone()[0])
    finally:
        con.close()


# --- child-process entry points ----------------------------------------------------------


def _tree_total() -> int:
    leaves = BRANCHING**DEPTH
    return leaves * (leaves - 1)


def _check(got: Any, want: Any, what: str) -> None:
    if got != want:
        raise SystemExit(f"{what}: wrong result {got!r}, expected {want!r}")


_IMPL: dict[str, dict[str, Callable[..., Any]]] = {
    "langgraph": {
        "workload": _lg_workload,
        "kill": _lg_w4_kill,
        "resume": _lg_w4_resume,
        "recorded": _lg_w4_recorded,
    },
    "dbos": {
        "workload": _dbos_workload,
        "kill": _dbos_w4_kill,
        "resume": _dbos_w4_resume,
        "recorded": _dbos_w4_recorded,
    },
}


def _child_main(argv: list[str]) -> None:
    global _recorder
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("workload", "kill", "resume"))
    ap.add_argument("peer", choices=tuple(_IMPL))
    ap.add_argument("dir")
    ap.add_argument("--name", default="")
    ap.add_argument("--n", type=int, default=N_FAN)
    ap.add_argument("--log", default="")
    ap.add_argument("--kill-after", type=int, default=None)
    args = ap.parse_args(argv)
    impl = _IMPL[args.peer]
    if args.log:
        _recorder = _Recorder(args.log, args.kill_after)
    if args.mode == "workload":
        out = impl["workload"](args.name, args.dir)
    elif args.mode == "kill":
        impl["kill"](args.dir, args.n)
        raise SystemExit("W4: the run finished without being killed")
    else:
        out = impl["resume"](args.dir, args.n)
        out["pid"] = os.getpid()
    print(json.dumps(out), flush=True)


# --- parent side -------------------------------------------------------------------------


def _spawn(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, os.path.abspath(__file__), *args],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
    )


def _spawn_json(args: list[str]) -> dict[str, float]:
    proc = _spawn(args)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"{' '.join(args[:2])} failed (rc={proc.returncode}): {tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _w4_once(peer: str, n: int = N_FAN) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix=f"remit-{peer}-w4-") as d:
        log = os.path.join(d, "executions.log")
        proc = _spawn(["kill", peer, d, "--n", str(n), "--log", log, "--kill-after", str(n // 2)])
        if proc.returncode != -signal.SIGKILL:
            tail = proc.stderr.strip().splitlines()[-5:]
            raise RuntimeError(f"W4 child was not killed: rc={proc.returncode} {tail}")
        before = _read_log(log)
        finished = set().union(*before.values()) if before else set()
        recorded = _IMPL[peer]["recorded"](d)
        out = _spawn_json(["resume", peer, d, "--n", str(n), "--log", log])
        if not out.get("ok"):
            raise RuntimeError(f"W4 resume on {peer} gave a wrong result")
        after = _read_log(log).get(int(out["pid"]), set())
        return {
            "finished_before_kill": len(finished),
            "recorded_before_kill": recorded,
            "rerun": len(finished & after),
            "resume_s": out["resume_s"],
        }


def _measure(peer: str, repeat: int) -> dict[str, Any]:
    started = time.perf_counter()
    runs: list[dict[str, float]] = []
    for r in range(max(1, repeat)):
        if r and time.perf_counter() - started > PEER_BUDGET_S:
            _log(f"{peer}: time budget spent, stopping after {r} run(s)")
            break
        figs: dict[str, float] = {}
        for name in WORKLOADS + EXTRA_WORKLOADS.get(peer, ()):
            with tempfile.TemporaryDirectory(prefix=f"remit-{peer}-{name}-") as d:
                figs.update(_spawn_json(["workload", peer, d, "--name", name]))
            key = next(k for k in figs if k.startswith(name))
            _log(f"{peer} run {r + 1}/{repeat}: {name} {key}={figs[key]:.4g}")
        w4 = _w4_once(peer)
        _log(f"{peer} run {r + 1}/{repeat}: w4 " + ", ".join(f"{k}={v:.4g}" for k, v in w4.items()))
        figs.update({f"w4_{k}": v for k, v in w4.items()})
        runs.append(figs)

    def med(key: str) -> float:
        return statistics.median(x[key] for x in runs)

    out: dict[str, Any] = {"version": _version(peer), "runs": len(runs)}
    out["w1_step_us"] = round(med("w1_step_us"), 1)
    out["w2_s"] = round(med("w2_s"), 4)
    if "w2_async_steps_s" in runs[0]:
        out["w2_async_steps_s"] = round(med("w2_async_steps_s"), 4)
    out["w3_s"] = round(med("w3_s"), 4)
    out["w4_finished_before_kill"] = int(med("w4_finished_before_kill"))
    out["w4_recorded_before_kill"] = int(med("w4_recorded_before_kill"))
    out["w4_rerun"] = int(max(x["w4_rerun"] for x in runs))
    out["w4_resume_s"] = round(med("w4_resume_s"), 4)
    return out


def _version(peer: str) -> str:
    return "+".join(f"{dist}=={metadata.version(dist)}" for dist in PEERS[peer])


def _installed(peer: str) -> bool:
    try:
        for dist in PEERS[peer]:
            metadata.version(dist)
    except metadata.PackageNotFoundError:
        return False
    return True


def run_peers(repeat: int) -> dict[str, dict[str, Any]]:
    """Run W1-W4 on every installed peer; medians over ``repeat`` runs (bounded in time)."""
    out: dict[str, dict[str, Any]] = {}
    for peer in PEERS:
        if not _installed(peer):
            out[peer] = {"error": "not installed: pip install remit[bench]"}
            _log(f"{peer}: not installed, skipped")
            continue
        _log(f"{peer} ({_version(peer)}): {repeat} run(s) of W1-W4")
        t = time.perf_counter()
        try:
            out[peer] = _measure(peer, repeat)
        except Exception as e:  # a broken peer must not sink the benchmark
            out[peer] = {"error": f"{type(e).__name__}: {e}"}
        _log(f"{peer}: done in {time.perf_counter() - t:.1f} s")
    return out


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("workload", "kill", "resume"):
        _child_main(sys.argv[1:])
    else:
        print(json.dumps(run_peers(int(sys.argv[1]) if len(sys.argv) > 1 else 1), indent=2))
