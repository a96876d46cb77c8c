"""What a role is: :class:`RoleSpec` (a system prompt, few-shot turns, a user template,
an answer schema and its token bound), the :class:`RoleCall` it makes, and the
messages of a retry after a rejected answer.

Separate from the five roles' texts (``_roles``): this is the machinery every role
shares, the part that does not change when a prompt is tuned.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from remit.agents.prompts._bounds import token_bound

Message = dict[str, str]


@dataclass(frozen=True, slots=True)
class RoleCall:
    """One model call a role makes: what ``ctx.complete`` takes."""

    role: str
    messages: tuple[Message, ...]
    schema: Mapping[str, Any]
    max_tokens: int


@dataclass(frozen=True, slots=True)
class RoleSpec:
    """A role's prompt, schema and token bound.

    ``messages(**fields)`` fills the user template (after the system prompt and the
    few-shot turns); ``schema(**fields)`` is the answer's shape (the planner's depends on
    the files it may name); ``max_tokens(**fields)`` covers that shape's largest answer;
    ``example`` is a field set every role can be called with (benchmarks, tests).

    >>> spec = ROLES["verifier"]
    >>> spec.messages(**spec.example)[0]["role"], sorted(spec.schema()["properties"])
    ('system', ['quote'])
    """

    name: str
    system: str
    user: str
    shots: tuple[tuple[str, str], ...] = ()
    example: Mapping[str, Any] = field(default_factory=lambda: {})
    #: the schema for some fields (None: a fixed schema, ``fixed``)
    schema_for: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None
    fixed: Mapping[str, Any] = field(default_factory=lambda: {})
    #: fields -> the values the user template sees (clipping, joining lists)
    render: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None

    def schema(self, **fields: Any) -> dict[str, Any]:
        if self.schema_for is None:
            return dict(self.fixed)
        return self.schema_for({**self.example, **fields})

    def max_tokens(self, **fields: Any) -> int:
        return token_bound(self.schema(**fields))

    def messages(self, **fields: Any) -> list[Message]:
        data = {**self.example, **fields}
        values = self.render(data) if self.render is not None else data
        out: list[Message] = [{"role": "system", "content": self.system}]
        for user, assistant in self.shots:
            out += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
        out.append({"role": "user", "content": self.user.format(**values)})
        return out

    def call(self, **fields: Any) -> RoleCall:
        """Everything ``ctx.complete`` needs, for these fields."""
        return RoleCall(
            self.name,
            tuple(self.messages(**fields)),
            self.schema(**fields),
            self.max_tokens(**fields),
        )


def retry_messages(call: RoleCall, error: str) -> tuple[Message, ...]:
    """The messages of a retry after a rejected answer: the reason, and the ask again.

    (Sending the same messages again would get the same answer from a greedy model.)
    """
    why = error if len(error) <= 200 else error[:199] + "…"
    return (
        *call.messages,
        {
            "role": "user",
            "content": (
                f"Your answer was rejected: {why}\nAnswer again, shorter, as JSON of the "
                "required shape only."
            ),
        },
    )
