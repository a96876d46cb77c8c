"""The engine's mutable view of one task while a run is live (private).

Kept small on purpose: a 10,000-child fan-out holds 10,000 of these, and finished
results live in the journal, so a node lets go of its result once its parent has
aggregated.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from remit.core.ledger import Account
from remit.core.receipts import Receipt
from remit.core.remit import Remit
from remit.core.tasks import Status, check_transition
from remit.trust.warrant import AgentKey, Warrant


class Node:
    __slots__ = (
        "account",
        "agent_key",
        "attempt",
        "by_key",
        "cancelled",
        "children",
        "deadline",
        "delivered",
        "dependents",
        "deps",
        "error",
        "goal",
        "id",
        "inputs",
        "key",
        "output_schema",
        "parent",
        "plan",
        "position",
        "receipts",
        "remit",
        "result",
        "scope",
        "scope_n",
        "scope_role",
        "started_at",
        "status",
        "stopped",
        "timer",
        "waiting_on",
        "warrant",
    )

    def __init__(
        self,
        id: str,
        goal: str,
        remit: Remit,
        account: Account,
        *,
        parent: Node | None = None,
        key: str = "root",
        position: int = 0,
        inputs: Mapping[str, Any] | None = None,
        output_schema: Mapping[str, Any] | None = None,
        deadline: float | None = None,
        deps: tuple[str, ...] = (),
        attempt: int = 0,
    ) -> None:
        self.id = id
        self.goal = goal
        self.remit = remit
        self.account = account
        self.parent = parent
        self.key = key
        self.position = position
        self.inputs: Mapping[str, Any] = inputs or {}
        self.output_schema = output_schema
        self.deadline = deadline
        self.deps = deps
        self.attempt = attempt
        self.status = Status.PENDING
        self.children: list[Node] | None = None
        self.by_key: dict[str, Node] | None = None
        self.dependents: list[Node] | None = None
        self.waiting_on = 0
        self.plan: Any = None
        self.result: Any = None
        self.error: Any = None
        self.cancelled = False
        #: its end reached its parent (a duplicated message is delivered once)
        self.delivered = False
        #: a denial whose policy says "stop the task": it fails even if the role caught it
        self.stopped: Any = None
        # the asyncio.Timeout of the step in flight: cancellation reschedules it to now
        self.scope: asyncio.Timeout | None = None
        self.scope_role = ""
        self.scope_n = 0
        self.started_at = 0.0
        # the watchdog of a parent waiting on its children past its deadline
        self.timer: asyncio.TimerHandle | None = None
        #: the signed chain this task acts under (None until it starts, or when unsigned)
        self.warrant: Warrant | None = None
        #: the key of this task's agent (held by the runtime, never shown to a model)
        self.agent_key: AgentKey | None = None
        #: the receipts of its subtree's tool calls so far (None: none in this process)
        #: (calls owed a receipt, or receipts taken in from children; see gate._receipts)
        self.receipts: list[Receipt | tuple[str, str, str | None, str | None]] | None = None

    def move(self, new: Status) -> None:
        check_transition(self.id, self.status, new)
        self.status = new

    @property
    def depth_index(self) -> int:
        n, p = 0, self.parent
        while p is not None:
            n, p = n + 1, p.parent
        return n

    def __repr__(self) -> str:
        return f"<Node {self.id} {self.status.value} {self.goal[:30]!r}>"
