"""Failures on Ray: workers killed with SIGKILL mid-run, the driver killed and the run
resumed from PostgreSQL, PostgreSQL restarted under a run, and dispatches a worker must
refuse. Every run is the tree of ``benchmarks/scale_tree.py`` whose leaves make an
idempotent effect that logs every attempt; after each run:

- the result is the closed form (nothing lost, nothing counted twice);
- ``steps_redone`` = 0: no attempt at a step began after its result was recorded;
- ``effects_duplicated`` = 0: no task's effect was applied under two keys;
- ``steps_lost`` = 0: every task ended ok, every call has its result;
- the sealed journal verifies.
"""

from __future__ import annotations

import importlib.util
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from remit import Remit, Runtime
from remit.executors import RayExecutor
from remit.journal import JournalStore
from remit.journal.postgres import PostgresJournal
from remit.journal.postgres.throwaway import ThrowawayServer
from remit.trust.provenance import verify_run

pytestmark = pytest.mark.ray

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _tree() -> ModuleType:
    spec = importlib.util.spec_from_file_location("scale_tree", BENCH / "scale_tree.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["scale_tree"] = mod
    spec.loader.exec_module(mod)
    return mod


tree = _tree()


def _by_value() -> None:
    # the session's workers were started without benchmarks/ on their path: the tree's
    # module travels with the agent instead
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(tree)


def audit(store: JournalStore, run_id: str, db: Path, leaves: int) -> dict[str, int]:
    return tree.audit(store, run_id, str(db), leaves)


def test_killed_workers_lose_nothing_and_redo_nothing(
    ray_executor: RayExecutor, pg_url: str, pg_schema: str, tmp_path: Path
) -> None:
    _by_value()
    depth, branching = 4, 5  # 781 tasks, 625 leaves
    db = tmp_path / "effects.db"
    tree.open_effects(str(db)).close()
    journal = PostgresJournal(pg_url, schema=pg_schema, durability="normal")
    rt = Runtime(journal=journal, agent=tree.Tree(), executor=ray_executor,
                 keys_dir=tmp_path / "keys")  # fmt: skip
    remit = Remit(tools={"effect": {}}, depth=depth)
    inputs = {"depth": depth, "branching": branching, "effects": str(db)}
    lost_before = ray_executor.workers_lost
    out: list[Any] = []
    t = threading.Thread(target=lambda: out.append(rt.run("tree", remit=remit, inputs=inputs)))
    t.start()
    rng = random.Random(7)
    kills = 0
    conn = sqlite3.connect(db)
    while t.is_alive() and kills < 4:
        time.sleep(0.05)
        # a kill lands only while leaves are being worked: the run is under way
        (n,) = conn.execute("SELECT COUNT(*) FROM attempts").fetchone()
        pids = ray_executor.worker_pids()
        if n < 40 * (kills + 1) or not pids:
            continue
        os.kill(rng.choice(pids), signal.SIGKILL)
        kills += 1
        time.sleep(0.4)
    conn.close()
    t.join(120)
    assert not t.is_alive()
    run = out[0]
    assert run.ok, run.error
    assert kills >= 3, "the run ended before the workers could be killed"
    assert ray_executor.workers_lost - lost_before == kills
    assert run.result == tree.expected(depth, branching)
    leaves = branching**depth
    figures = audit(rt.store, run.id, db, leaves)
    assert figures["steps_redone"] == 0, figures
    assert figures["effects_duplicated"] == 0, figures
    assert figures["steps_lost"] == 0, figures
    assert figures["effects"] == leaves
    assert run.spent.calls == leaves  # a redispatched call is booked once
    assert verify_run(rt.store, run.id).ok
    rt.close()
    journal.close()


def test_a_killed_driver_resumes_from_postgresql(
    ray_executor: RayExecutor, pg_server: ThrowawayServer, tmp_path: Path
) -> None:
    """The driver (a `remit run --executor ray` process on the session's cluster) is
    SIGKILLed mid-run; `remit resume --executor ray` carries the run to the end."""
    del ray_executor  # (the cluster the driver processes connect to)
    url = pg_server.create_database("driver_kill")
    depth, branching = 4, 5
    db = tmp_path / "effects.db"
    tree.open_effects(str(db)).close()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(BENCH), *sys.path])}
    common = ["--journal", url, "--executor", "auto", "--quiet"]
    inputs = f'{{"depth": {depth}, "branching": {branching}, "effects": "{db}"}}'
    remit_bin = str(Path(sys.executable).parent / "remit")
    driver = subprocess.Popen(
        [remit_bin, "run", "tree", "--agent", "scale_tree:Tree", "--tool", "effect",
         "--depth", str(depth), "--inputs", inputs, "--run-id", "run-driver-kill", *common],
        cwd=BENCH, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    conn = sqlite3.connect(db)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and driver.poll() is None:
        (n,) = conn.execute("SELECT COUNT(*) FROM attempts").fetchone()
        if n >= 150:
            break
        time.sleep(0.05)
    conn.close()
    assert driver.poll() is None, driver.communicate()
    driver.send_signal(signal.SIGKILL)
    driver.wait(30)
    resumed = subprocess.run(
        [remit_bin, "resume", "run-driver-kill", *common],
        cwd=BENCH, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    store = PostgresJournal(url)
    try:
        rec = store.get_run("run-driver-kill")
        assert rec.status == "done" and rec.result == str(tree.expected(depth, branching))
        figures = audit(store, "run-driver-kill", db, branching**depth)
        assert figures == {**figures, "steps_redone": 0, "effects_duplicated": 0, "steps_lost": 0}
        assert figures["effects"] == branching**depth
        assert verify_run(store, "run-driver-kill").ok
    finally:
        store.close()


def test_a_postgresql_restart_mid_run_is_waited_out(
    ray_executor: RayExecutor, pg_server: ThrowawayServer, tmp_path: Path
) -> None:
    _by_value()
    url = pg_server.create_database("restart_mid_run")
    depth, branching = 3, 6
    db = tmp_path / "effects.db"
    tree.open_effects(str(db)).close()
    rt = Runtime(journal=url, agent=tree.Tree(), executor=ray_executor,
                 keys_dir=tmp_path / "keys")  # fmt: skip
    remit = Remit(tools={"effect": {}}, depth=depth)
    inputs = {"depth": depth, "branching": branching, "effects": str(db)}
    out: list[Any] = []
    t = threading.Thread(target=lambda: out.append(rt.run("tree", remit=remit, inputs=inputs)))
    t.start()
    conn = sqlite3.connect(db)
    while t.is_alive():
        (n,) = conn.execute("SELECT COUNT(*) FROM attempts").fetchone()
        if n >= 30:
            break
        time.sleep(0.02)
    conn.close()
    pg_server.restart(mode="fast")  # every connection is ended; the server comes back
    t.join(120)
    assert not t.is_alive()
    run = out[0]
    assert run.ok, run.error
    assert run.result == tree.expected(depth, branching)
    figures = audit(rt.store, run.id, db, branching**depth)
    assert (figures["steps_redone"], figures["effects_duplicated"], figures["steps_lost"]) == (
        0, 0, 0,
    )  # fmt: skip
    assert verify_run(rt.store, run.id).ok
    rt.close()
