"""Hierarchical budget accounting: reserve before, settle after, never overshoot.

Every task has an account whose limits are its remit's budget and whose parent is its
parent task's account. A spend first *reserves* its worst case on the account and on
every ancestor, all or nothing, so concurrent siblings can never jointly overshoot a
shared ancestor; afterwards the reservation is *settled* with the actual use (the
rest is released) or *released* whole on failure.

>>> ledger = Ledger()
>>> root = ledger.open("root", Budget(calls=2))
>>> child = ledger.open("child", Budget(calls=5), parent=root)   # inherits root's cap
>>> r = ledger.reserve(child, Usage(calls=1))
>>> ledger.settle(r, Usage(calls=1))
>>> root.spent.calls
1
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from remit.core.remit import Budget
from remit.errors import BudgetExceeded

DIMENSIONS: tuple[str, ...] = ("calls", "input_tokens", "output_tokens", "cost_usd")
# a little slack for float sums of costs (cents of cents)
_EPS = 1e-12


@dataclass(frozen=True, slots=True)
class Usage:
    """An amount of spend in every budgeted dimension (zero by default)."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.calls + other.calls,
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cost_usd + other.cost_usd,
        )

    def to_dict(self) -> dict[str, int | float]:
        return {d: v for d in DIMENSIONS if (v := getattr(self, d))}

    @classmethod
    def from_dict(cls, data: dict[str, int | float] | None) -> Usage:
        if not data:
            return ZERO
        return cls(
            int(data.get("calls", 0)),
            int(data.get("input_tokens", 0)),
            int(data.get("output_tokens", 0)),
            float(data.get("cost_usd", 0.0)),
        )

    def is_zero(self) -> bool:
        return not (self.calls or self.input_tokens or self.output_tokens or self.cost_usd)


ZERO = Usage()
_LIMITS: dict[Budget, tuple[float | None, ...]] = {}


class Account:
    """The budget of one task; limits are ``None`` where unlimited."""

    __slots__ = ("limits", "name", "parent", "reserved", "spent_vec")

    def __init__(self, name: str, budget: Budget, parent: Account | None) -> None:
        self.name = name
        self.parent = parent
        limits = _LIMITS.get(budget)
        if limits is None:
            b = budget
            limits = (b.calls, b.input_tokens, b.output_tokens, b.cost_usd)
            if len(_LIMITS) < 1024:
                _LIMITS[budget] = limits
        # shared between every account of the same budget: a fan-out's children
        # hold one tuple, not one list each
        self.limits: tuple[float | None, ...] = limits
        self.reserved: list[float] = [0, 0, 0, 0.0]
        self.spent_vec: list[float] = [0, 0, 0, 0.0]

    @property
    def spent(self) -> Usage:
        s = self.spent_vec
        return Usage(int(s[0]), int(s[1]), int(s[2]), float(s[3]))

    def ancestry(self) -> list[Account]:
        """This account, then each ancestor up to the root's."""
        out: list[Account] = []
        acc: Account | None = self
        while acc is not None:
            out.append(acc)
            acc = acc.parent
        return out

    def remaining(self, dimension: str) -> float | None:
        """What is left in one dimension on this account alone (None if unlimited)."""
        i = DIMENSIONS.index(dimension)
        limit = self.limits[i]
        return None if limit is None else limit - self.spent_vec[i] - self.reserved[i]

    def __repr__(self) -> str:
        return f"Account({self.name!r}, spent={self.spent}, reserved={self.reserved})"


class Reservation:
    """A worst-case amount held on an account chain until settled or released."""

    __slots__ = ("account", "amount", "dims", "open")

    def __init__(self, account: Account, amount: tuple[float, ...], dims: tuple[int, ...]) -> None:
        self.account = account
        self.amount = amount
        self.dims = dims  # the dimensions held, so settling skips the zero ones
        self.open = True


class Ledger:
    """All accounts of a run. Thread-safe; every operation is all-or-nothing."""

    #: the accounts live outside this process (other processes reserve on them too):
    #: spend is booked once per step, under its key, and this process's view of an
    #: account is only what it saw (see ``remit.journal.postgres.PostgresLedger``)
    shared = False

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def open(self, name: str, budget: Budget, parent: Account | None = None) -> Account:
        """A new account under ``parent`` (its limits stay bounded by every ancestor)."""
        return Account(name, budget, parent)

    def reserve(self, account: Account, worst: Usage, key: str | None = None) -> Reservation:
        """Hold ``worst`` on ``account`` and all its ancestors, or raise ``BudgetExceeded``.

        Nothing is held if any account on the chain would overshoot. ``key`` names the
        step it is for (a shared ledger books a step's spend once).
        """
        amount = (worst.calls, worst.input_tokens, worst.output_tokens, worst.cost_usd)
        dims = _dims(amount)
        with self._lock:
            acc: Account | None = account
            while acc is not None:
                limits, spent, reserved = acc.limits, acc.spent_vec, acc.reserved
                for i in dims:
                    limit = limits[i]
                    if limit is not None and spent[i] + reserved[i] + amount[i] > limit + _EPS:
                        dim = DIMENSIONS[i]
                        left = limit - spent[i] - reserved[i]
                        raise BudgetExceeded(
                            f"budget.{dim} of {acc.name} would be exceeded: needs "
                            f"{_fmt(amount[i])}, {_fmt(max(left, 0))} of {_fmt(limit)} left "
                            f"({_fmt(spent[i])} spent, {_fmt(reserved[i])} reserved)",
                            dimension=dim,
                            account=acc.name,
                        )
                acc = acc.parent
            acc = account
            while acc is not None:
                r = acc.reserved
                for i in dims:
                    r[i] += amount[i]
                acc = acc.parent
        return Reservation(account, amount, dims)

    def settle(self, reservation: Reservation, actual: Usage) -> None:
        """Replace the reservation by the actual use on the whole chain.

        The actual use is charged even if it exceeds the reservation (the money is
        spent either way); callers make reservations true worst cases so it cannot.
        """
        vec = (actual.calls, actual.input_tokens, actual.output_tokens, actual.cost_usd)
        self._finish(reservation, vec, _dims(vec))

    def release(self, reservation: Reservation) -> None:
        """Give the whole reservation back (the step did not spend)."""
        self._finish(reservation, None, ())

    def charge(self, account: Account, actual: Usage, key: str | None = None) -> None:
        """Book spend that already happened (a result served from the journal)."""
        vec = (actual.calls, actual.input_tokens, actual.output_tokens, actual.cost_usd)
        self.mirror(account, vec)

    def spent_of(self, account: Account) -> Usage:
        """What ``account`` and its subtree spent, as the ledger holds it."""
        return account.spent

    def close(self) -> None:
        """Let go of what the ledger holds (nothing, in memory)."""

    def flush(self) -> None:
        """Write what is waiting to be written (nothing, in memory)."""

    def mirror(self, account: Account, vec: tuple[float, ...]) -> None:
        """Add spend to this process's view of ``account`` and its ancestors (for a
        shared ledger: what another process booked, as it reported it)."""
        dims = _dims(vec)
        if not dims:
            return
        with self._lock:
            acc: Account | None = account
            while acc is not None:
                s = acc.spent_vec
                for i in dims:
                    s[i] += vec[i]
                acc = acc.parent

    def _finish(
        self,
        reservation: Reservation,
        actual: tuple[float, ...] | None,
        actual_dims: tuple[int, ...],
    ) -> None:
        with self._lock:
            if not reservation.open:
                return
            reservation.open = False
            amount, held = reservation.amount, reservation.dims
            acc: Account | None = reservation.account
            while acc is not None:
                r = acc.reserved
                for i in held:
                    r[i] -= amount[i]
                if actual is not None:
                    s = acc.spent_vec
                    for i in actual_dims:
                        s[i] += actual[i]
                acc = acc.parent


_DIMS: dict[tuple[float, ...], tuple[int, ...]] = {}


def _dims(vec: tuple[float, ...]) -> tuple[int, ...]:
    """The dimensions ``vec`` is non-zero in (memoized: spends repeat)."""
    dims = _DIMS.get(vec)
    if dims is None:
        dims = tuple(i for i in range(4) if vec[i])
        if len(_DIMS) < 4096:
            _DIMS[vec] = dims
    return dims


def _fmt(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) and not x.is_integer() else str(int(x))
