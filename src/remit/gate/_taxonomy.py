"""The error taxonomy: what kind of failure an error is, and how each failure ends.

Every failure at the Gate is one of three kinds:

- **model-correctable**: a denial, an answer off its schema, an unknown tool, bad
  arguments. Returned to the agent with the reason, so it can correct itself within
  its remit; retrying the same call would fail the same way.
- **transient**: a timeout, a dropped connection, a rate limit. Retried with capped
  attempts, exponential backoff and jitter, each attempt reserved on the ledger.
- **fatal**: anything else. Retrying will not help; another route might.

and ends as exactly one journaled outcome: ``retry`` (another attempt of the same
call), ``reroute`` (the call goes to another alternative of its capability),
``escalate`` (no route is left: the task's parent re-plans, then a person decides) or
``fail`` (the error goes back to the agent, with its cause). The outcome and the kind
are written into the error's journaled form, so ``remit show`` and an audit read them.

>>> from remit.errors import DeniedError, StepTimeout
>>> classify(DeniedError("read_file: path outside the remit")), classify(StepTimeout("slow"))
('model-correctable', 'transient')
"""

from __future__ import annotations

from typing import Final, Literal

from remit.errors import (
    AuthorityError,
    Cancelled,
    EffectUncertain,
    JournalError,
    RemitError,
)

__all__ = [
    "CORRECTABLE",
    "FATAL",
    "OUTCOMES",
    "TRANSIENT",
    "FailureKind",
    "Outcome",
    "classify",
    "mark",
    "reroutable",
]

FailureKind = Literal["model-correctable", "transient", "fatal"]
Outcome = Literal["retry", "reroute", "escalate", "fail"]

CORRECTABLE: Final = "model-correctable"
TRANSIENT: Final = "transient"
FATAL: Final = "fatal"
OUTCOMES: Final[tuple[Outcome, ...]] = ("retry", "reroute", "escalate", "fail")

#: errors the agent can correct by asking differently (stable codes, as journaled)
CORRECTABLE_CODES: Final = frozenset(
    {
        "DENIED",
        "SCHEMA_VIOLATION",
        "TOOL_ARGUMENTS",
        "UNKNOWN_TOOL",
        "PLAN_INVALID",
        "DELEGATION_DENIED",
        "REMIT_WIDENING",
    }
)


def classify(err: RemitError) -> FailureKind:
    """The kind of failure ``err`` is (see the module docstring)."""
    if err.retryable:
        return TRANSIENT
    if err.code in CORRECTABLE_CODES:
        return CORRECTABLE
    return FATAL


def reroutable(err: RemitError) -> bool:
    """Whether another alternative of the same capability might succeed where this one
    failed: the alternative's own failure (an error, a timeout, garbage out), not the
    task's (authority, budget, deadline, a cancelled run, the journal) nor the agent's
    (a correctable mistake goes back to the agent)."""
    if isinstance(err, AuthorityError | Cancelled | JournalError | EffectUncertain):
        return False
    return classify(err) != CORRECTABLE


def mark(
    err: RemitError, outcome: Outcome, **details: str | int | float | bool | None
) -> RemitError:
    """Write the failure's kind and its outcome into ``err`` (its journaled form carries
    them), with any ``details`` (the alternative it was rerouted to, the attempt)."""
    details = {"failure": classify(err), "outcome": outcome, **details}
    for key, value in details.items():
        setattr(err, key, value)
    return err
