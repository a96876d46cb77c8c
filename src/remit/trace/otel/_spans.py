"""What a span is before any SDK sees it, and how its ids follow from the journal's.

A :class:`SpanData` is plain data: the pure mapping (:mod:`remit.trace.otel._mapper`)
makes them, the SDK bridge (:mod:`remit.trace.otel._sdk`) turns them into
OpenTelemetry spans, ``remit trace --json`` prints them. Ids are hashes of the run id
and the journal's own keys (a task id, a step id), never random: the same run exported
twice, live or after the fact, by the process that started it or by the one that
resumed it, gives the same trace id and the same span ids.

>>> trace_id_of("r1") == trace_id_of("r1") != trace_id_of("r2")
True
>>> f"{span_id_of('r1', 't.0.ab12cd'):016x}" == f"{span_id_of('r1', 't.0.ab12cd'):016x}"
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "RUN_KEY",
    "AttrValue",
    "SpanData",
    "SpanEvent",
    "span_id_of",
    "trace_id_of",
]

#: an attribute's value, as OpenTelemetry accepts it
AttrValue = str | bool | int | float | Sequence[str]

#: the key of a run's own span (task and step ids never take this form)
RUN_KEY = "run"

SpanKindName = Literal["internal", "client"]
StatusName = Literal["unset", "ok", "error"]


def _hash_int(parts: Sequence[str], size: int) -> int:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8"))
        h.update(b"\x00")  # ("ab", "c") and ("a", "bc") hash apart
    value = int.from_bytes(h.digest()[:size], "big")
    return value or 1  # zero is OpenTelemetry's "invalid id"


def trace_id_of(run_id: str) -> int:
    """The trace id of run ``run_id``: 16 bytes of SHA-256 over the run id (never 0)."""
    return _hash_int(("remit.trace", run_id), 16)


def span_id_of(run_id: str, key: str) -> int:
    """The span id of ``key`` (:data:`RUN_KEY`, a task id or a step id) in run
    ``run_id``: 8 bytes of SHA-256 over both (never 0)."""
    return _hash_int(("remit.span", run_id, key), 8)


@dataclass(frozen=True, slots=True)
class SpanEvent:
    """Something that happened during a span: a retry, a reroute, an injected fault."""

    name: str
    time_ns: int
    attributes: Mapping[str, AttrValue] = field(default_factory=lambda: {})

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "time_unix_nano": self.time_ns,
                "attributes": dict(self.attributes)}  # fmt: skip


@dataclass(frozen=True, slots=True)
class SpanData:
    """One span, described: enough for any exporter, with no SDK in sight.

    ``key`` is what it stands for in the journal (:data:`RUN_KEY`, a task id or a step
    id); ``finished`` is False for a span whose run, task or step had not ended in the
    journal it was read from (its end is then the last time the journal knows of).
    """

    key: str
    name: str
    trace_id: int
    span_id: int
    parent_id: int | None
    start_ns: int
    end_ns: int
    kind: SpanKindName = "internal"
    status: StatusName = "unset"
    status_message: str = ""
    attributes: Mapping[str, AttrValue] = field(default_factory=lambda: {})
    events: Sequence[SpanEvent] = ()
    finished: bool = True

    @property
    def ids(self) -> tuple[str, str, str | None]:
        """(trace id, span id, parent span id) as lowercase hex, as backends show them."""
        parent = None if self.parent_id is None else f"{self.parent_id:016x}"
        return f"{self.trace_id:032x}", f"{self.span_id:016x}", parent

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (``remit trace --json``)."""
        trace, span, parent = self.ids
        return {
            "name": self.name,
            "trace_id": trace,
            "span_id": span,
            "parent_span_id": parent,
            "kind": self.kind,
            "start_time_unix_nano": self.start_ns,
            "end_time_unix_nano": self.end_ns,
            "status": {"code": self.status, "message": self.status_message},
            "attributes": dict(self.attributes),
            "events": [e.to_dict() for e in self.events],
            "finished": self.finished,
        }


def ns(seconds: float | None) -> int:
    """A journal time (seconds since the epoch) in nanoseconds."""
    return 0 if seconds is None else round(seconds * 1e9)
