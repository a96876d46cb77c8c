"""What every phase of the Gate shares: the run it serves, its counters, its constants."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from remit.core.faults import FaultPlan
from remit.core.ledger import ZERO, Ledger, Usage
from remit.core.lineage import at_generation, base_id, generations, invalidations
from remit.core.receipts import Receipt
from remit.core.routes import Routes
from remit.errors import (
    Cancelled,
    JournalCorrupt,
    RemitError,
    StepFailed,
)
from remit.gate._health import DEFAULT_COOLDOWN_S, DEFAULT_THRESHOLD, Health
from remit.gate._node import Node
from remit.journal import StepRecord
from remit.journal._writer import JournalWriter
from remit.models import Model
from remit.tools import ToolRegistry
from remit.trust.provenance import Signer
from remit.trust.receipts import Receipter

DEFAULT_MAX_OUTPUT_BYTES = 1_000_000

#: input tokens reserved per model call beyond its messages' characters, for the chat
#: template (a model may say its own with a ``template_tokens`` attribute)
TEMPLATE_TOKENS = 128

#: the longest Retry-After a retry waits for (longer ones fail the call instead)
MAX_RETRY_AFTER_S = 60.0


def idempotency_key(run_id: str, step_id: str) -> str:
    """The key an effectful tool receives: stable across resumes, unique per step."""
    return hashlib.blake2b(f"{run_id}\x00{step_id}".encode(), digest_size=16).hexdigest()


class Miss:
    __slots__ = ()


MISS: Any = Miss()


def spend_by_role(
    recorded: Mapping[str, StepRecord], current: Mapping[str, int] | None = None
) -> tuple[dict[str, Usage], Usage]:
    """The recorded spend of every role's calls (``<task>:<role>.<n>``), by role step id
    (as it is now: ``current`` maps invalidated steps to their generation), and what
    the calls of invalidated generations spent."""
    spent: dict[str, Usage] = {}
    stale = ZERO
    for rec in recorded.values():
        if rec.spent is None or rec.status == "started" or rec.kind not in ("tool", "model"):
            continue
        # an alternative of a routed call runs as <step>@<alternative>: its role is
        # the step's (and an alternative's name may hold dots)
        step = rec.step_id.split("@", 1)[0]
        try:
            used = Usage.from_dict(json.loads(rec.spent))
        except (ValueError, TypeError, AttributeError) as e:
            raise JournalCorrupt(
                f"step {rec.step_id}: spent is not a valid spend ({e}); the journal row is damaged"
            ) from None
        role = step.rpartition(".")[0]
        if current:
            base = base_id(step)
            if step != at_generation(base, current.get(base, 0)):
                stale += used  # a generation an invalidation replaced
                continue
            role = base.rpartition(".")[0]
            role = at_generation(role, current.get(role, 0))
        spent[role] = spent.get(role, ZERO) + used
    return spent, stale


def what(kind: str, name: str) -> str:
    """``tool read_file``, ``model smollm2``; a role is named once: ``role plan``."""
    return f"role {kind}" if kind == name else f"{kind} {name}"


def as_remit_error(exc: BaseException, kind: str, name: str) -> RemitError:
    if isinstance(exc, RemitError):
        return exc
    return StepFailed(
        f"{what(kind, name)} raised {type(exc).__name__}: {exc}", cause_type=type(exc).__name__
    )


class GateState:
    """The state of one run's Gate; each phase is a layer of methods above it."""

    def __init__(
        self,
        *,
        run_id: str,
        writer: JournalWriter,
        ledger: Ledger,
        tools: ToolRegistry,
        model: Model | None = None,
        recorded: Mapping[str, StepRecord] | None = None,
        max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
        retry_base_s: float = 0.05,
        retry_cap_s: float = 2.0,
    ) -> None:
        self.run_id = run_id
        self.writer = writer
        self.ledger = ledger
        self.tools = tools
        self.model = model
        #: the models a ``model`` route may choose from, by name (the run's model first)
        self.models: dict[str, Model] = {} if model is None else {model.name: model}
        self.recorded: Mapping[str, StepRecord] = recorded or {}
        #: what the recorded calls of each role spent, by role step id: a role served
        #: from the journal books its calls' spend, which its own row does not hold
        #: the generation of every step an invalidation covered (see remit.core.lineage):
        #: such a step runs again under ``{step}#{generation}``
        self.generations: dict[str, int] = (
            generations(invalidations(self.recorded.values())) if self.recorded else {}
        )
        self._role_spent, self.stale_spent = spend_by_role(self.recorded, self.generations)
        self.max_output_bytes = max_output_bytes
        #: the user's own words (root goal and inputs): what ``in_inputs`` rules check
        #: against, so a planner cannot smuggle a value in through a child's inputs
        self.inputs_text: str | None = None
        #: called when a call waits for a person (the CLI tells the user how to answer)
        self.on_approval: Callable[[str, Node], None] | None = None
        self.approval_poll_s = 1.0
        self.retry_base_s = retry_base_s
        self.retry_cap_s = retry_cap_s
        self._last: tuple[Any, str] = (MISS, "")
        #: mints hops and signs calls (None: this run is not signed)
        self.signer: Signer | None = None
        #: the run's journal is sealed (a hash chain with signed checkpoints): each call
        #: records its nonce, and nothing is signed per task or per call in the process
        self.sealed = False
        # proofs made for steps not yet recorded: the step's first row carries its proof
        self._proofs: dict[str, str] = {}
        #: counters a run reports: steps executed, served from the journal, denied
        self.executed = 0
        self.replayed = 0
        self.denied = 0
        #: the run's capability routes and each alternative's health (see ``_routing``)
        self.routes: Routes | None = None
        self.health: dict[str, Health] = {}
        self._health_n: dict[str, int] = {}
        self._breaker: tuple[int, float] = (DEFAULT_THRESHOLD, DEFAULT_COOLDOWN_S)
        #: approvals asked for escalations, by approval step id (one per step)
        self._asked: set[str] = set()
        #: recorded rows of routed alternatives, by the call's step id (built on use)
        self._tried: dict[str, list[StepRecord]] | None = None
        #: the fault plan struck on purpose (None: no faults; see ``_faults``)
        self.faults: FaultPlan | None = None
        self._fault_seen: dict[int, int] = {}
        self._fault_fired: dict[int, int] = {}
        #: recent model answers by step: what a model answering another question returns
        self._answers: dict[str, str] = {}
        #: makes each tool result's receipt (a key of this process until the runtime
        #: gives the run's own: ``use_receipt_key``); the receipts made, by step id
        self.receipter = Receipter()
        #: the calls owed a receipt, by step id, and the receipts made of them so far
        self._owed: dict[str, tuple[str, str, str | None, str | None]] = {}
        self.receipts: dict[str, Receipt] = {}
        # the calls recorded before this process began, sorted by task id
        self._recorded_keys: list[str] | None = None
        self._recorded_calls: list[tuple[str, str, str | None, str | None]] = []

    def _next_effect(self, node: Node) -> str:
        if node.cancelled:
            raise Cancelled(f"task {node.id} was cancelled")
        n = node.scope_n
        node.scope_n = n + 1
        if self.generations:
            return self.current_id(f"{node.id}:{node.scope_role}.{n}")
        return f"{node.id}:{node.scope_role}.{n}"

    def current_id(self, step_id: str) -> str:
        """The id step ``step_id`` has in the run's current generation of it."""
        g = self.generations.get(step_id) if self.generations else None
        return step_id if g is None else at_generation(step_id, g)
