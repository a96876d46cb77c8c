"""A run's executor and ledger: in this process, or on a Ray cluster over PostgreSQL.

The default runs every phase on the engine's own loop with the in-memory ledger. A
:class:`~remit.executors.RayExecutor` needs what every worker can reach: the journal
and the ledger both in PostgreSQL (the workers' writes fenced by this process's lease,
their budget holds in the same database, checked there). What lives only in this
process cannot go with the tasks, so it is refused before the run starts: faults struck
on purpose, MCP servers' sessions, and runs signed per hop (from before journals were
chained).
"""

from __future__ import annotations

from collections.abc import Sequence

from remit.agents._agent import Agent
from remit.core.ledger import Ledger
from remit.engine._phases import Executor
from remit.errors import InvalidInput
from remit.executors import RayExecutor, Recipe
from remit.executors._worker import portable
from remit.gate import Gate
from remit.journal import JournalStore
from remit.models import Model
from remit.tools import ToolRegistry
from remit.trust.provenance import RunKeys

#: what ``executor=`` and ``--executor`` accept by name
EXECUTORS = ("local", "ray")


def executor_of(executor: RayExecutor | str | None) -> RayExecutor | None:
    """``executor`` as given to the Runtime: None or ``"local"`` (in this process),
    ``"ray"`` (a local Ray cluster), ``"ray://..."`` or ``"auto"`` addresses, or an
    executor."""
    if executor is None or executor == "local":
        return None
    if isinstance(executor, RayExecutor):
        return executor
    if executor == "ray":
        return RayExecutor()
    if executor.startswith(("ray://", "auto")) or ":" in executor:
        return RayExecutor(address=executor)
    raise InvalidInput(
        f"executor {executor!r} is not known; use 'local', 'ray' or a Ray cluster address"
    )


def check_ray_run(store: JournalStore, *, faults: object, mcp: Sequence[object]) -> str:
    """The journal URL the workers use; refuses what cannot leave this process."""
    url = getattr(store, "url", None)
    if not isinstance(url, str):
        raise InvalidInput(
            "the Ray executor needs a journal every worker reaches, and a ledger they "
            "share: give a postgresql:// journal (--journal postgresql://...)"
        )
    if faults is not None:
        raise InvalidInput("faults struck on purpose run in one process; not with the Ray executor")
    if mcp:
        raise InvalidInput(
            "MCP servers' sessions live in this process; not with the Ray executor yet"
        )
    return url


def shared_ledger(url: str, store: JournalStore, run_id: str, *, resumed: bool) -> Ledger:
    """The run's ledger in the journal's database; a resume first gives back the holds
    of processes that died (settled from the journal where their steps ended)."""
    from remit.journal.postgres import PostgresLedger

    ledger = PostgresLedger(url, run_id, schema=getattr(store, "schema", "public"))
    if resumed:
        ledger.recover()
    return ledger


def ray_run(
    executor: RayExecutor,
    gate: Gate,
    store: JournalStore,
    url: str,
    *,
    agent: Agent,
    tools: ToolRegistry,
    model: Model | None,
    models: Sequence[Model],
    owner: str,
    keys: RunKeys | None,
    sealed: bool,
    max_output_bytes: int,
) -> Executor:
    """The engine's executor for one run on ``executor``'s workers."""
    if gate.generations:
        raise InvalidInput(
            f"run {gate.run_id} has invalidated results to re-run; resume it with the "
            "local executor (generations do not travel to Ray workers yet)"
        )
    if keys is not None and not sealed:
        raise InvalidInput(
            "this run was signed per hop (before journals were chained); resume it with "
            "the local executor"
        )
    recipe = Recipe(
        run_id=gate.run_id,
        journal=url,
        owner=owner,
        agent=agent,
        tools=tools,
        model=portable(model),
        models=tuple(portable(m) or m for m in models),
        routes=gate.routes,
        max_output_bytes=max_output_bytes,
        sealed=sealed,
        receipt_key=keys.receipt_key if keys is not None else None,
        inputs_text=gate.inputs_text,
        schema=getattr(store, "schema", "public"),
        durability=store.durability,
    )
    return executor.open_run(gate, recipe, keys.run if keys is not None and sealed else None)
