"""The agent the chaos tests kill: a deterministic depth-4, branching-6 task tree.

Every task below the root gets ``inputs = {"path": [i0, i1, ...], "seed": s}``; the
root reads ``seed`` from the run's inputs. Inner tasks plan six subtasks with
dependencies between siblings (3 after 2, 4 after 3, 5 after 0 and 1), so the DAG
scheduler has to hold some of them back. A leaf (depth 4: 6**4 = 1,296 of them, of
1 + 6 + 36 + 216 + 1,296 = 1,555 tasks) calls the pure tool ``compute`` and then the
effectful tool ``effect``, which honours its idempotency key: it applies its effect at
most once per key to a separate SQLite database (``CHAOS_EFFECTS_DB``) and counts
every attempt. Every task's result is ``{"sum", "leaves", "dep_checks"}``; a task with
dependencies checks its dependencies' results against their closed form and fails
loudly on a mismatch.

Every real execution of a role or tool appends ``<pid> <what> <task_id>`` to the
executions log (``CHAOS_EXEC_LOG``; one O_APPEND write per line), so a test can tell
which process executed which step: ``role:<role>`` is step ``<task_id>:<role>``,
``tool:compute`` is ``<task_id>:execute.0`` and ``tool:effect`` ``<task_id>:execute.1``.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from typing import Any

from remit import Agent, ChildResult, Context, Plan, Subtask, tool

DEPTH = 4
BRANCHING = 6
LEAVES = BRANCHING**DEPTH
#: planners in a full subtree whose root is at ``depth`` (0 for a leaf)
_PLANNERS = [sum(BRANCHING**k for k in range(DEPTH - d)) for d in range(DEPTH + 1)]
#: sibling dependencies of every plan, by position
DEPS: dict[int, tuple[int, ...]] = {3: (2,), 4: (3,), 5: (0, 1)}
TOTAL_TASKS = sum(BRANCHING**d for d in range(DEPTH + 1))

EXEC_LOG_ENV = "CHAOS_EXEC_LOG"
EFFECTS_DB_ENV = "CHAOS_EFFECTS_DB"

EFFECTS_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS effects (key TEXT PRIMARY KEY, task TEXT NOT NULL,"
    " value INTEGER NOT NULL, pid INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS attempts (n INTEGER PRIMARY KEY, key TEXT NOT NULL,"
    " task TEXT NOT NULL, pid INTEGER NOT NULL)",
)


# --- closed forms ------------------------------------------------------------------------


def leaf_index(path: list[int]) -> int:
    n = 0
    for i in path:
        n = n * BRANCHING + i
    return n


def leaf_value(leaf: int, seed: int) -> int:
    return leaf * leaf + seed


def _sum_squares(n: int) -> int:
    """0**2 + 1**2 + ... + (n - 1)**2"""
    return (n - 1) * n * (2 * n - 1) // 6


def expected(path: list[int], seed: int) -> dict[str, int]:
    """The result of the task at ``path`` (``[]`` is the root), in closed form."""
    span = BRANCHING ** (DEPTH - len(path))
    first = leaf_index(path) * span
    total = _sum_squares(first + span) - _sum_squares(first) + span * seed
    own = 1 if path and path[-1] in DEPS else 0
    return {"sum": total, "leaves": span, "dep_checks": own + len(DEPS) * _PLANNERS[len(path)]}


def goal_of(path: list[int]) -> str:
    return "node " + ".".join(map(str, path))


# --- the executions log and the effects database ---------------------------------------

_log_fd: int | None = None
_local = threading.local()


def log_execution(what: str, task: str) -> None:
    global _log_fd
    if _log_fd is None:
        path = os.environ.get(EXEC_LOG_ENV)
        if not path:
            raise RuntimeError(f"{EXEC_LOG_ENV} is not set")
        _log_fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(_log_fd, f"{os.getpid()} {what} {task}\n".encode())


def _effects_db() -> sqlite3.Connection:
    conn: sqlite3.Connection | None = getattr(_local, "conn", None)
    if conn is None:
        path = os.environ.get(EFFECTS_DB_ENV)
        if not path:
            raise RuntimeError(f"{EFFECTS_DB_ENV} is not set")
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        conn.execute("PRAGMA synchronous=NORMAL")  # the file is in WAL mode: kill -9 safe
        _local.conn = conn
    return conn


@tool
async def compute(task: str, leaf: int, seed: int) -> int:
    """A pure computation that takes a little real time."""
    log_execution("tool:compute", task)
    await asyncio.sleep(0.001 * (1 + leaf % 3))
    return leaf_value(leaf, seed)


@tool(effect=True, thread=True)
def effect(task: str, value: int, idempotency_key: str) -> int:
    """Record ``value`` for ``task`` once per idempotency key; returns the value applied."""
    log_execution("tool:effect", task)
    conn = _effects_db()
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "INSERT INTO attempts (key, task, pid) VALUES (?, ?, ?)",
            (idempotency_key, task, os.getpid()),
        )
        conn.execute(
            "INSERT OR IGNORE INTO effects (key, task, value, pid) VALUES (?, ?, ?, ?)",
            (idempotency_key, task, value, os.getpid()),
        )
        (applied,) = conn.execute(
            "SELECT value FROM effects WHERE key = ?", (idempotency_key,)
        ).fetchone()
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return int(applied)


# --- the agent ---------------------------------------------------------------------------


def _path(ctx: Context) -> list[int]:
    return list(ctx.inputs.get("path", []))


def _seed(ctx: Context) -> int:
    return int(ctx.inputs["seed"])


def _check_deps(ctx: Context, path: list[int]) -> int:
    """Compare the dependencies' results with their closed form; 1 if there were any."""
    if not path or path[-1] not in DEPS:
        if ctx.deps:
            raise AssertionError(f"task {ctx.task_id} has no deps but got {dict(ctx.deps)}")
        return 0
    want = {str(d): expected([*path[:-1], d], _seed(ctx)) for d in DEPS[path[-1]]}
    got = dict(ctx.deps)
    if got != want:
        raise AssertionError(f"task {ctx.task_id}: deps {got} != expected {want}")
    return 1


class ChaosTree(Agent):
    tools = (compute, effect)

    def atomize(self, ctx: Context) -> str:
        log_execution("role:atomize", ctx.task_id)
        return "plan" if len(_path(ctx)) < DEPTH else "execute"

    def plan(self, ctx: Context) -> Plan:
        log_execution("role:plan", ctx.task_id)
        path, seed = _path(ctx), _seed(ctx)
        return Plan(
            [
                Subtask(
                    str(i),
                    goal_of([*path, i]),
                    deps=tuple(str(d) for d in DEPS.get(i, ())),
                    inputs={"path": [*path, i], "seed": seed},
                )
                for i in range(BRANCHING)
            ]
        )

    async def execute(self, ctx: Context) -> dict[str, int]:
        log_execution("role:execute", ctx.task_id)
        path, seed = _path(ctx), _seed(ctx)
        checks = _check_deps(ctx, path)
        value = await ctx.call("compute", task=ctx.task_id, leaf=leaf_index(path), seed=seed)
        applied = await ctx.call("effect", task=ctx.task_id, value=value)
        if applied != value:
            raise AssertionError(f"task {ctx.task_id}: effect applied {applied}, not {value}")
        return {"sum": value, "leaves": 1, "dep_checks": checks}

    def aggregate(self, ctx: Context, results: list[ChildResult]) -> dict[str, Any]:
        log_execution("role:aggregate", ctx.task_id)
        checks = _check_deps(ctx, _path(ctx))
        failed = [r for r in results if not r.ok]
        if failed:
            raise AssertionError(f"task {ctx.task_id}: children failed: {failed}")
        return {
            "sum": sum(r.value["sum"] for r in results),
            "leaves": sum(r.value["leaves"] for r in results),
            "dep_checks": checks + sum(r.value["dep_checks"] for r in results),
        }


AGENT = ChaosTree()
