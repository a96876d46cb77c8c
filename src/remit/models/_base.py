"""The model protocol every adapter implements."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

Message = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Completion:
    """What a model returned, and what it cost."""

    content: str
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    model: str = ""
    tool_calls: Sequence[Mapping[str, Any]] = field(default_factory=lambda: ())


@runtime_checkable
class Model(Protocol):
    """``complete(messages, schema=None, tools=None, max_tokens=...) -> Completion``.

    ``usd_per_input_token`` / ``usd_per_output_token`` let the Gate reserve a true
    worst case before the call. An adapter may also set ``retries`` (an int, default 0):
    the Gate then retries a call that raised a retryable error
    (:class:`~remit.errors.ModelTransientError`) that many times, with capped
    exponential backoff and jitter, reserving and charging every attempt.
    """

    name: str
    usd_per_input_token: float
    usd_per_output_token: float

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        schema: Mapping[str, Any] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        max_tokens: int = 512,
    ) -> Completion: ...
