"""``in_inputs``: the one constraint that needs context, the task's goal and inputs, and
the test of whether a constraint's answer depends on them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

from remit.policy._constraints import Constraint, walk
from remit.policy._values import Case, as_case, fold, kind, show


@lru_cache(maxsize=8)
def _folded_inputs(text: str) -> str:
    return fold(text)  # a task's inputs are compared with many values, folded once


def needs_inputs(c: Constraint) -> bool:
    """Whether ``c``'s answer depends on the task's inputs (it is or holds ``in_inputs``)."""
    return any(isinstance(x, InInputs) for x in walk(c))


@dataclass(frozen=True, slots=True, repr=False)
class InInputs(Constraint):
    """Accepts a string or number whose text appears literally in the task's inputs.

    This is the one constraint that needs context: :meth:`ToolGrant.check` and
    :meth:`remit.core.remit.Remit.check` pass the task's goal and inputs as ``inputs_text``
    and this constraint accepts a value iff ``str(value)`` is non-empty and occurs in
    it (case-sensitive; with ``case="insensitive"``, after folding the ASCII letters of
    both, see :func:`fold`). Bools, None, containers and non-finite floats are refused.
    Without context (plain :meth:`check`) every value is refused, so no other
    constraint implies this one.

    >>> in_inputs().check_in("bob@x.io", "pay bob@x.io 20 dollars") is None
    True
    >>> in_inputs().check_in("eve@x.io", "pay bob@x.io 20 dollars")
    "'eve@x.io' does not appear in the task's inputs"
    >>> in_inputs(case="insensitive").check_in("Bob@X.io", "pay bob@x.io 20 dollars") is None
    True
    """

    case: Case = "sensitive"
    op: ClassVar[str] = "in_inputs"

    def __post_init__(self) -> None:
        as_case(self.case, "in_inputs")

    def check(self, value: object) -> str | None:
        return self.check_in(value, None)

    def check_in(self, value: object, inputs_text: str | None) -> str | None:
        """None if ``value`` occurs literally in ``inputs_text``, else a short reason."""
        if isinstance(value, str):
            text = value
        elif isinstance(value, bool) or not isinstance(value, int | float):
            return f"expected a string or number, got {kind(value)}"
        elif isinstance(value, float) and not math.isfinite(value):
            return f"{value!r} is never taken from the task's inputs"
        else:
            text = str(value)
        if not text:
            return "an empty value is never taken from the task's inputs"
        if inputs_text is None:
            return "no task inputs to compare against"
        if self.case == "sensitive":
            if text in inputs_text:
                return None
            return f"{show(value)} does not appear in the task's inputs"
        if fold(text) in _folded_inputs(inputs_text):
            return None
        return f"{show(value)} does not appear in the task's inputs (ignoring case)"

    def arg(self) -> Any:
        return True

    def options(self) -> dict[str, Any]:
        return {"case": self.case} if self.case == "insensitive" else {}

    def describe(self) -> str:
        return "in_inputs(case='insensitive')" if self.case == "insensitive" else "in_inputs()"

    def implies(self, other: Constraint) -> bool:
        # appearing as written, a value also appears ignoring case; not the reverse
        if isinstance(other, InInputs):
            return self.case == other.case or other.case == "insensitive"
        return Constraint.implies(self, other)


def in_inputs(*, case: Case = "sensitive") -> InInputs:
    """Accept values that appear literally in the task's inputs (see :class:`InInputs`)."""
    return InInputs(case)
