"""What one journal row says, as span attributes and events (pure: no OpenTelemetry).

Separate from the mapper, which decides which rows make which span and when: these are
the per-row readings it shares (errors, spend, budgets, the remit's digest, the rows that
become events).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, cast

from remit.core.ledger import Usage
from remit.core.remit import Remit
from remit.core.tasks import task_parent, task_position
from remit.errors import RemitError
from remit.journal import StepRecord
from remit.trace.otel._spans import AttrValue, SpanEvent, ns
from remit.trace.tree._view import loads
from remit.trust._format import remit_bytes

__all__ = [
    "EFFECT_KINDS",
    "EVENT_KINDS",
    "budget_attrs",
    "error_of",
    "event_of",
    "failure_attrs",
    "loads",
    "parent_of",
    "position_of",
    "remit_digest",
    "short",
    "spend_attrs",
]

EFFECT_KINDS = frozenset({"tool", "model", "route"})
EVENT_KINDS = frozenset({"retry", "reroute", "fault", "health", "approval"})
#: how much of a goal or a message an attribute carries
TEXT_LIMIT = 1000


def remit_digest(remit_json: str) -> str:
    """``sha256:<hex>`` of a remit's canonical JSON: the bytes its root warrant signs
    (sorted keys, no spaces; the raw text if it is not a valid remit).

    >>> remit_digest('{"budget": {"calls": 5}}') == remit_digest('{"budget":{"calls":5}}')
    True
    """
    try:
        data = remit_bytes(Remit.from_json(remit_json))
    except RemitError:
        data = remit_json.encode("utf-8")
    return "sha256:" + hashlib.sha256(data).hexdigest()


def error_of(text: str | None) -> dict[str, Any]:
    data = loads(text)
    if isinstance(data, Mapping):
        err = dict(cast(Mapping[str, Any], data))
        err["code"] = str(err.get("code", "ERROR"))
        err["message"] = str(err.get("message", ""))
        return err
    return {"code": "ERROR", "message": str(data or "")}


def short(text: str) -> str:
    return text if len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 1] + "…"


#: a task's parent and place, as the task tree reads them (the inverse of task_id)
parent_of = task_parent
position_of = task_position


def spend_attrs(prefix: str, spent: Usage) -> dict[str, AttrValue]:
    return {f"{prefix}.calls": spent.calls, f"{prefix}.input_tokens": spent.input_tokens,
            f"{prefix}.output_tokens": spent.output_tokens,
            f"{prefix}.cost_usd": spent.cost_usd}  # fmt: skip


def budget_attrs(remit: Remit | None) -> dict[str, AttrValue]:
    if remit is None:
        return {}
    return {f"remit.budget.{k}": v for k, v in remit.budget.to_dict().items()}


def failure_attrs(err: Mapping[str, Any]) -> dict[str, AttrValue]:
    """What a journaled error says about how the failure ended."""
    out: dict[str, AttrValue] = {"error.type": err["code"], "remit.error.code": err["code"]}
    for key, attr in (("outcome", "remit.outcome"), ("failure", "remit.failure"),
                      ("injected", "remit.injected")):  # fmt: skip
        value = err.get(key)
        if isinstance(value, str) and value:
            out[attr] = value
    return out


def event_of(row: StepRecord) -> tuple[str, SpanEvent]:
    """A row that says how a failure ended (or a breaker changed, or a person was asked)
    as an event, with the step id of the span it belongs on (``""``: its task's)."""
    target = row.step_id.split("~", 1)[0]
    when = ns(row.started_at)
    attrs: dict[str, AttrValue] = {"remit.step.id": row.step_id}
    if row.kind in ("retry", "reroute"):
        err = error_of(row.error)
        attrs.update(failure_attrs(err))
        attrs["remit.outcome"] = row.kind
        attrs["remit.error.message"] = short(err["message"])
        if row.kind == "retry":
            attrs["remit.retry.attempt"] = int(err.get("attempt", 0) or 0)
        else:
            attrs["remit.reroute.from"] = row.name
            attrs["remit.reroute.to"] = str(err.get("to", ""))
        name = f"remit.{row.kind}"
    elif row.kind == "fault":
        d = loads(row.output)
        d = cast(Mapping[str, Any], d) if isinstance(d, Mapping) else {}
        attrs["remit.fault.type"] = row.name
        for key in ("level", "at", "target"):
            if d.get(key) is not None:
                attrs[f"remit.fault.{key}"] = str(d[key])
        name = "remit.fault"
    elif row.kind == "health":
        d = loads(row.output)
        d = cast(Mapping[str, Any], d) if isinstance(d, Mapping) else {}
        attrs["remit.breaker.alternative"] = row.name
        attrs["remit.breaker.state"] = str(d.get("state", ""))
        attrs["remit.breaker.failures"] = int(d.get("failures", 0) or 0)
        name, target = "remit.breaker", ""
    else:  # a person was asked to approve a call
        attrs["gen_ai.tool.name"] = row.name
        name = "remit.approval"
    return target, SpanEvent(name, when, attrs)
