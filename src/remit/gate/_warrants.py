"""Warrants at the Gate: each task's hop, minted as it starts or restored from the journal."""

from __future__ import annotations

import time

from remit.core.ledger import ZERO
from remit.errors import (
    Cancelled,
    WarrantMalformed,
)
from remit.gate._node import Node
from remit.gate._routing import Routing
from remit.trust.provenance import DEFAULT_TTL_S


class Warrants(Routing):
    """Mints and restores the signed hop every task acts under."""

    def mint(self, node: Node) -> None:
        """Give ``node`` its warrant as it starts: the root grant, or a hop delegated by
        its parent's agent; journaled (``{task}:warrant``) before any of its calls.

        A resumed run reuses the journaled hop, so calls signed before and after the
        crash hang off the same chain.
        """
        signer = self.signer
        if signer is None:
            return
        step_id = f"{node.id}:warrant"
        parent = node.parent
        parent_warrant = parent_key = None
        if parent is not None:
            parent_warrant, parent_key = parent.warrant, parent.agent_key
            if parent_warrant is None or parent_key is None:
                raise Cancelled(f"task {node.id}: its parent {parent.id} has ended")
        rec = self.recorded.get(step_id) if self.recorded else None
        if rec is not None and rec.proof is not None:
            warrant, key = signer.restore(parent_warrant, node.id, rec.proof, step_id)
            if warrant.remit != node.remit:
                # the engine derives every remit from the root's; a journaled hop that
                # grants something else was altered
                raise WarrantMalformed(
                    f"{step_id}: the journaled warrant hop grants a different remit than "
                    "the task's; the journal was altered"
                )
            node.warrant, node.agent_key = warrant, key
            return
        if parent_warrant is None or parent_key is None:
            expires = node.deadline if node.deadline is not None else time.time() + DEFAULT_TTL_S
            warrant, key = signer.root(node.id, node.remit, node.goal, expires)
        else:
            expires = node.deadline if node.deadline is not None else parent_warrant.expires
            warrant, key = signer.delegate(parent_warrant, parent_key, node.id, node.remit, expires)
        node.warrant, node.agent_key = warrant, key
        self._proofs[step_id] = warrant.hops[-1].frame()
        out = f'{{"hop": {warrant.depth - 1}, "holder": "{warrant.holder.hex()}"}}'
        self._record(node, step_id, "warrant", warrant.hop_id, "ok", None, out, None, ZERO,
                     time.time())  # fmt: skip
