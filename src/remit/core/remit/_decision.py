"""Decisions: the answer to whether a call is allowed, and how a denial explains itself."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, TypeAlias

from remit.errors import DeadlineExceeded, DeniedError
from remit.policy import Fallback

DecisionCode: TypeAlias = Literal["ALLOW", "TOOL_NOT_GRANTED", "ARGUMENT", "DEADLINE"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """The answer of :meth:`Remit.check`; truthy when the call is allowed.

    ``code`` is ``"ALLOW"``, ``"TOOL_NOT_GRANTED"``, ``"ARGUMENT"`` (the arguments
    or the tool's rules deny it) or ``"DEADLINE"``. ``rule`` is the id of the rule
    that decided (``"send_money#2"``; None for simple grants and for the other codes;
    for an allowed call through several layers, the last layer's rule). ``fallback``
    says what to do with a denial: ``"tell"`` the agent (the reason is the tool
    result), ``"stop"`` the task, or ``"ask"`` a person; past the deadline it is
    ``"stop"``. ``note`` is the deciding rule's own ``reason`` text, if any.

    >>> d = Decision(allowed=False, reason="send: ...", code="ARGUMENT",
    ...              rule="send#2", note="recipient not in prompt")
    >>> bool(d), d.explain()
    (False, 'denied: recipient not in prompt; rule send#2')
    """

    allowed: bool
    reason: str
    code: DecisionCode
    rule: str | None = None
    fallback: Fallback = "tell"
    note: str | None = None

    def __bool__(self) -> bool:
        return self.allowed

    def explain(self) -> str:
        """One line: ``"allowed: rule send_money#1"``, ``"denied: <why>; rule send_money#2"``.

        The why is the rule's own reason text when it has one, else :attr:`reason`.
        """
        if self.allowed:
            return "allowed" if self.rule is None else f"allowed: rule {self.rule}"
        why = self.note or self.reason
        return f"denied: {why}" if self.rule is None else f"denied: {why}; rule {self.rule}"

    def raise_if_denied(self) -> None:
        """Raise :class:`~remit.errors.DeadlineExceeded` or :class:`~remit.errors.DeniedError`."""
        if self.allowed:
            return
        if self.code == "DEADLINE":
            raise DeadlineExceeded(self.reason)
        raise DeniedError(self.reason, rule=self.rule)


ALLOW = Decision(allowed=True, reason="allowed", code="ALLOW")


@lru_cache(maxsize=1024)
def allowed_by(rule: str | None) -> Decision:
    return Decision(allowed=True, reason="allowed", code="ALLOW", rule=rule)
