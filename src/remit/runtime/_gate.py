"""A run's Gate, wired from the Runtime's settings: the journal writer (fenced by the
lease), the ledger, tools and models, routes and faults, and how the run is signed."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from remit.core.ledger import Ledger
from remit.core.routes import Routes
from remit.gate import Gate
from remit.gate._faults import FaultyJournal
from remit.journal import JournalStore
from remit.journal._writer import JournalWriter
from remit.tools import ToolRegistry
from remit.trust.provenance import RunKeys, Signer

if TYPE_CHECKING:
    from remit.runtime._runtime import Runtime


def run_gate(
    rt: Runtime,
    run_id: str,
    store: JournalStore,
    owner: str,
    ledger: Ledger,
    tools: ToolRegistry,
    recorded: Mapping[str, Any],
    *,
    goal: str,
    inputs: Mapping[str, Any],
    routes: Routes | None,
    keys: RunKeys | None,
    principal: bytes | None,
    sealed: bool,
) -> Gate:
    """The Gate of run ``run_id``, as ``rt`` is set up to carry it."""
    faults = rt.faults
    if faults is not None and any(f.type == "journal_write_failure" for f in faults.faults):
        store = cast(JournalStore, FaultyJournal(store, faults))
    # every batch checks, in its own transaction, that this process still holds the run
    writer = JournalWriter(store, owner=owner)
    gate = Gate(
        run_id=run_id,
        writer=writer,
        ledger=ledger,
        tools=tools,
        model=rt.model,
        recorded=recorded,
        max_output_bytes=rt.max_output_bytes,
    )
    gate.inputs_text = goal + "\n" + json.dumps(dict(inputs), ensure_ascii=False)
    gate.on_approval = rt.on_approval
    gate.models.update({m.name: m for m in rt.models})
    gate.use_routes(routes if routes is not None else rt.routes)
    gate.use_faults(faults)
    if sealed:
        gate.sealed = True  # the journal's chain and checkpoints carry the proof
    elif keys is not None:
        # a run signed before journals were chained: a hop per task, a proof per call
        gate.signer = Signer(run_id, keys, principal)
    if keys is not None:  # else a key of this process: receipts good while it runs
        gate.use_receipt_key(keys.receipt_key)
    return gate
