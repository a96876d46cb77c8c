"""The Gate: the one place where effects happen.

Model calls, tool calls, delegations and spending all pass through here, in this
order (see DESIGN.md):

1. check against the task's remit (tool granted? arguments inside? deadline?) and
   record a denial with its reason;
2. look up the journal by the step's deterministic id: a recorded result or error is
   returned or re-raised without executing, and its recorded spend is booked;
3. reserve the worst case on the ledger, on the task and every ancestor;
4. record the intent (for an effect: on disk before it runs);
5. execute, with timeout and retry of retryable errors;
6. record the result or the error;
7. settle the actual spend, releasing the rest of the reservation.

The engine decides *what* to do; the Gate decides *whether and how*; the Journal
remembers *what happened*.

A module per phase, each a layer of methods on the one before: ``_state`` (what the
phases share), ``_record`` (6), ``_lookup`` (3), ``_check`` (1), ``_faults`` (faults
struck on purpose, between look-up and execution), ``_execute`` (2, 5 and 7, with a
journaled row per retry), ``_routing`` (a capability's alternatives, around failures,
with ``_health``'s breakers), ``_warrants`` (the hop a task acts under), and ``_gate``,
where ``call_tool``, ``complete`` and ``role`` read as the sequence of those phases.
``_taxonomy`` says what kind each failure is and how it ends (retry, reroute,
escalate, fail; see docs/faults.md).
"""

from remit.gate._gate import Gate
from remit.gate._state import (
    DEFAULT_MAX_OUTPUT_BYTES,
    MAX_RETRY_AFTER_S,
    TEMPLATE_TOKENS,
    idempotency_key,
)

__all__ = [
    "DEFAULT_MAX_OUTPUT_BYTES",
    "MAX_RETRY_AFTER_S",
    "TEMPLATE_TOKENS",
    "Gate",
    "idempotency_key",
]
