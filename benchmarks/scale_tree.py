"""The tree ``benchmarks/scale.py`` and the Ray failure tests run (a module of its own:
Ray workers import it by name).

Every task gets ``inputs = {"depth", "branching", "path", "effects"}``. A task at
``len(path) < depth`` plans ``branching`` children; a leaf calls one tool through the
Gate and returns the leaf's index. Without ``effects`` the tool is the pure
``square``-free ``index`` (a call that reserves, journals and settles like any other);
with ``effects`` (a SQLite file every process on this host reaches) it is ``effect``,
an effect that honours its idempotency key like a real API: it applies at most once per
key and logs every attempt, with its process and the time it started, so a test can
count effects applied twice and attempts made after the step's result was recorded.

The result of a task is the sum of its leaves' indexes, in closed form: ``expected``.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from typing import Any

from remit import Agent, ChildResult, Plan, Subtask, tool
from remit.gate import idempotency_key as key_of
from remit.journal import JournalStore

EFFECTS_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS effects (key TEXT PRIMARY KEY, task TEXT NOT NULL,"
    " value INTEGER NOT NULL, pid INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS attempts (n INTEGER PRIMARY KEY, key TEXT NOT NULL,"
    " task TEXT NOT NULL, pid INTEGER NOT NULL, at REAL NOT NULL)",
)


def tasks_in(depth: int, branching: int) -> int:
    return sum(branching**d for d in range(depth + 1))


def leaf_index(path: list[int], branching: int) -> int:
    n = 0
    for i in path:
        n = n * branching + i
    return n


def expected(depth: int, branching: int, path: list[int] | None = None) -> int:
    """The sum of the leaf indexes below ``path`` (the root's: all of them)."""
    path = path or []
    span = branching ** (depth - len(path))
    first = leaf_index(path, branching) * span
    return (first + span - 1) * (first + span) // 2 - (first - 1) * first // 2


def open_effects(db: str) -> sqlite3.Connection:
    conn = sqlite3.connect(db, timeout=60, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    for stmt in EFFECTS_SCHEMA:
        conn.execute(stmt)
    return conn


@tool
def index(n: int) -> int:
    """A pure call: the leaf's own index back."""
    return n


@tool(idempotent=True)
async def effect(db: str, task: str, value: int, pause: float, idempotency_key: str) -> int:
    """Apply ``value`` once per key (a retry with the same key is a no-op), log the try;
    ``pause``: seconds the call takes first (a remote API's latency)."""
    at = time.time()
    if pause:
        await asyncio.sleep(pause)
    conn = open_effects(db)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO attempts (key, task, pid, at) VALUES (?, ?, ?, ?)",
            (idempotency_key, task, os.getpid(), at),
        )
        conn.execute(
            "INSERT OR IGNORE INTO effects (key, task, value, pid) VALUES (?, ?, ?, ?)",
            (idempotency_key, task, value, os.getpid()),
        )
        conn.execute("COMMIT")
    finally:
        conn.close()
    return value


class Tree(Agent):
    """A ``branching``-ary tree ``depth`` levels deep, one tool call per leaf."""

    tools = [index, effect]

    def atomize(self, ctx: Any) -> str:
        return "plan" if len(ctx.inputs.get("path", [])) < ctx.inputs["depth"] else "execute"

    def plan(self, ctx: Any) -> Plan:
        inputs = dict(ctx.inputs)
        path = list(inputs.get("path", []))
        return Plan(
            [
                Subtask(f"c{i}", f"node {'.'.join(map(str, [*path, i]))}",
                        inputs={**inputs, "path": [*path, i]})
                for i in range(inputs["branching"])
            ]
        )  # fmt: skip

    async def execute(self, ctx: Any) -> Any:
        inputs = ctx.inputs
        value = leaf_index(list(inputs.get("path", [])), inputs["branching"])
        db = inputs.get("effects")
        if db:
            return await ctx.call("effect", db=db, task=ctx.task_id, value=value,
                                  pause=float(inputs.get("pause", 0.0)))  # fmt: skip
        return await ctx.call("index", n=value)

    def aggregate(self, ctx: Any, results: list[ChildResult]) -> Any:
        bad = [r for r in results if not r.ok]
        if bad:
            raise RuntimeError(f"{len(bad)} children failed: {bad[0].error}")
        return sum(r.value for r in results)


def audit(store: JournalStore, run_id: str, db: str, leaves: int) -> dict[str, int]:
    """What the effects log and the journal say happened to run ``run_id``:

    - ``steps_redone``: attempts at a call that began after its result was recorded;
    - ``effects_duplicated``: tasks whose effect was applied under more than one key;
    - ``steps_lost``: tasks that did not end ok, calls left without a result, and
      leaves without a recorded call;
    - ``effects`` applied and ``attempts`` made.
    """
    rows = list(store.steps(run_id))
    ended = {
        key_of(run_id, r.step_id): r.ended_at for r in rows if r.kind == "tool" and r.status == "ok"
    }
    conn = sqlite3.connect(db)
    try:
        attempts = conn.execute("SELECT key, at FROM attempts").fetchall()
        per_task = conn.execute("SELECT task, COUNT(*) FROM effects GROUP BY task").fetchall()
    finally:
        conn.close()
    redone = sum(1 for key, at in attempts if key in ended and at > (ended[key] or 0.0))
    ends = [r for r in rows if r.step_id.endswith(":end")]
    lost = sum(1 for r in ends if r.status != "ok") + sum(1 for r in rows if r.status == "started")
    lost += max(0, leaves - len(ended))
    return {
        "steps_redone": redone,
        "effects_duplicated": sum(1 for _, n in per_task if n > 1),
        "steps_lost": lost,
        "effects": len(per_task),
        "attempts": len(attempts),
    }
