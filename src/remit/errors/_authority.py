"""Errors of authority: something would exceed what a task was granted."""

from __future__ import annotations

from remit.errors._base import RemitError


class AuthorityError(RemitError):
    """Something would exceed the authority a task was granted."""

    code = "AUTHORITY"


class WideningError(AuthorityError):
    """A child remit would be wider than its parent in some dimension."""

    code = "REMIT_WIDENING"

    def __init__(self, dimension: str, detail: str) -> None:
        super().__init__(f"narrowing would widen {dimension}: {detail}")
        self.dimension = dimension


class DeniedError(AuthorityError):
    """A call outside the task's remit (tool not granted, argument outside limits)."""

    code = "DENIED"

    def __init__(self, message: str, *, rule: str | None = None) -> None:
        super().__init__(message)
        self.rule = rule


class DelegationError(AuthorityError):
    """No delegation depth left, or a delegation the remit does not allow."""

    code = "DELEGATION_DENIED"


class DeadlineExceeded(AuthorityError):
    """The task's deadline (or wall-time budget) has passed."""

    code = "DEADLINE"


class BudgetExceeded(AuthorityError):
    """A reservation would overshoot the budget of the task or an ancestor."""

    code = "BUDGET"

    def __init__(self, message: str, *, dimension: str, account: str) -> None:
        super().__init__(message)
        self.dimension = dimension
        self.account = account
