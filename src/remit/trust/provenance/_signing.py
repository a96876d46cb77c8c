"""Minting each task's hop and signing its calls, as a run goes (what the Gate holds).

Separate because it is the writing side: verification reads what it wrote.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from typing import Any, Final

from remit.core.remit import Remit
from remit.errors import RemitError, WarrantMalformed
from remit.trust.provenance._keys import RunKeys
from remit.trust.warrant import (
    AgentKey,
    Warrant,
    chain_token,
    issue,
    sign_call,
)

#: how long a root grant lasts when the remit sets no deadline
DEFAULT_TTL_S: Final = 7 * 24 * 3600.0
#: the argument the Gate adds for effectful tools; not part of what the caller asked
IDEMPOTENCY_ARG: Final = "idempotency_key"


def hop_id_for(task_id: str) -> str:
    """The hop id of a task: its id, or a digest of it if too long for a hop (255 bytes)."""
    if len(task_id.encode("utf-8")) <= 255:
        return task_id
    return "~" + hashlib.blake2b(task_id.encode("utf-8"), digest_size=16).hexdigest()


class Signer:
    """Mints each task's hop and signs its calls, for one run (held by the runtime)."""

    def __init__(self, run_id: str, keys: RunKeys, principal_public: bytes | None = None) -> None:
        self.run_id = run_id
        self.keys = keys
        #: the principal the run recorded (a resumed run may lack the user's own key)
        self.principal_public = principal_public or keys.principal.public

    def root(
        self, task_id: str, remit: Remit, purpose: str, expires: float
    ) -> tuple[Warrant, AgentKey]:
        """The root grant: the principal gives the run's remit to the root task's agent
        (returned with that agent's key)."""
        if self.keys.principal.public != self.principal_public:
            raise RemitError(
                f"run {self.run_id}: its root grant must be issued by principal key "
                f"{self.principal_public.hex()[:16]}...; pass that key (--principal-key)"
            )
        key = self.keys.agent(task_id)
        warrant = issue(
            self.keys.principal,
            run_id=self.run_id,
            remit=remit,
            purpose=purpose[:2000],
            expires=expires,
            holder_public=key.public,
            hop_id=hop_id_for(task_id),
        )
        return warrant, key

    def delegate(
        self, parent: Warrant, parent_key: AgentKey, task_id: str, remit: Remit, expires: float
    ) -> tuple[Warrant, AgentKey]:
        """The parent's agent delegates ``remit`` to task ``task_id``'s agent."""
        key = self.keys.agent(task_id)
        warrant = parent.delegate(
            parent_key,
            remit,
            key.public,
            expires=min(expires, parent.expires),
            hop_id=hop_id_for(task_id),
        )
        return warrant, key

    def restore(
        self, parent: Warrant | None, task_id: str, frame: str, where: str
    ) -> tuple[Warrant, AgentKey]:
        """A task's warrant rebuilt from its journaled hop (a resumed run keeps its chain)."""
        frames = [frame] if parent is None else [*(h.frame() for h in parent.hops), frame]
        try:
            warrant = Warrant.decode(chain_token(self.principal_public, frames))
        except WarrantMalformed as e:
            raise WarrantMalformed(f"{where}: {e.message}") from None
        key = self.keys.agent(task_id)
        if warrant.holder != key.public:
            raise WarrantMalformed(f"{where}: the journaled hop names another holder key")
        return warrant, key

    @staticmethod
    def sign_call(
        warrant: Warrant, key: AgentKey, step_id: str, tool: str, args: Mapping[str, Any]
    ) -> str:
        """The holder's proof for one call (nonce derived from the step id)."""
        nonce = hashlib.blake2b(step_id.encode("utf-8"), digest_size=16).digest()
        return sign_call(key, warrant, tool, args, nonce).encode()


def grant(keys: RunKeys, run_id: str, remit: Remit, purpose: str) -> str:
    """The principal's grant of a run's remit to the run's own key: a one-hop warrant (as
    its token), the one signature of the principal's a sealed run carries."""
    expires = remit.deadline if remit.deadline is not None else time.time() + DEFAULT_TTL_S
    warrant = issue(
        keys.principal,
        run_id=run_id,
        remit=remit,
        purpose=purpose[:2000],
        expires=expires,
        holder_public=keys.run.public,
        hop_id="run",
    )
    return warrant.encode()


def signed_args(args: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments a call proof covers: what the caller asked, as validated (the
    idempotency key the Gate adds is derived from the step, not asked for)."""
    return {k: v for k, v in args.items() if k != IDEMPOTENCY_ARG}
