"""A worker checks each dispatch before it acts: a task handed over with a dispatch the
run's key did not sign for this worker, or whose remit was changed on the way, fails
with the reason and leaves nothing in the journal."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import pytest

from remit import Agent, Remit, Runtime
from remit.errors import LeaseLost
from remit.executors import Recipe, TaskSpec, Worker
from remit.executors._worker import Replies
from remit.journal.postgres import PostgresJournal
from remit.tools import ToolRegistry
from remit.trust.dispatch import Dispatch
from remit.trust.provenance import KeyFiles, RunKeys
from remit.trust.warrant import AgentKey

pytestmark = pytest.mark.postgres


async def collect(worker: Worker, run_id: str, specs: list[TaskSpec]) -> list[Replies]:
    return [r async for r in worker.work(run_id, specs)]


class Echo(Agent):
    async def execute(self, ctx: object) -> str:
        return "ran"


def test_a_worker_refuses_what_the_run_key_did_not_sign_for_it(
    pg_url: str, pg_schema: str, tmp_path: Path
) -> None:
    journal = PostgresJournal(pg_url, schema=pg_schema)
    rt = Runtime(journal=journal, agent=Echo(), keys_dir=tmp_path / "keys")
    remit = Remit(depth=1)
    run = rt.run("echo", remit=remit)
    assert run.ok and run.signed
    meta = json.loads(journal.get_run(run.id).meta or "{}")
    run_key = RunKeys(KeyFiles(tmp_path / "keys").load(run.id, meta)).run
    worker = Worker()
    recipe = Recipe(run_id=run.id, journal=pg_url, owner="nobody", agent=Echo(),
                    tools=ToolRegistry([]), model=None, sealed=True, schema=pg_schema)  # fmt: skip
    worker.bind(recipe)
    task = "t.0.handed-over"

    def spec(**kw: object) -> TaskSpec:
        fields: dict[str, object] = {"phase": "ready", "task_id": task, "goal": "echo",
                                     "remit": remit, "number": 0, "expires": 2e9,
                                     "signature": None, "accounts": (task,)}  # fmt: skip
        fields.update(kw)
        return TaskSpec(**fields)  # type: ignore[arg-type]

    def signed_for(key: bytes, r: Remit = remit) -> bytes:
        return Dispatch(run.id, task, "ready", 0, r, key, 2e9).sign(run_key)

    narrower = remit.narrow(depth=0)
    cases = [
        # signed for another worker: this one's key is in what it checks, so it fails
        ("WARRANT_FORGED", spec(signature=signed_for(AgentKey.generate().public))),
        # the remit widened on the way
        ("WARRANT_FORGED", dataclasses.replace(
            spec(remit=narrower, signature=signed_for(worker.public, narrower)), remit=remit
        )),
        ("REMIT_ERROR", spec()),  # unsigned, for a signed run
    ]  # fmt: skip
    replies = sorted(r for chunk, _ in asyncio.run(collect(worker, run.id, [c for _, c in cases]))
                     for r in chunk)  # fmt: skip
    for (want, _), (_, kind, _, error, _, _) in zip(cases, replies, strict=True):
        assert kind == "failed" and error is not None and error["code"] == want, error
    assert not [s for s in journal.steps(run.id) if s.task_id == task]
    # the control: signed for this worker, the task is worked, and what it writes is
    # fenced by the lease its recipe names (here none: the run is over)
    with pytest.raises(LeaseLost):
        asyncio.run(collect(worker, run.id, [spec(signature=signed_for(worker.public))]))
    worker.release(run.id)
    rt.close()
    journal.close()
