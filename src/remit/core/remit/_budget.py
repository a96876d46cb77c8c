"""Budgets: a task's spending limits, and how a child's may only be as tight or tighter."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, cast

from remit.core.remit._format import kind
from remit.errors import RemitFormatError, WideningError

_INT_DIMENSIONS = frozenset({"input_tokens", "output_tokens", "calls"})


def _limit(dim: str, value: object, where: str) -> int | float | None:
    if value is None:
        return None
    if dim in _INT_DIMENSIONS:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise RemitFormatError(f"{where}.{dim}: must be a non-negative integer, got {value!r}")
        return value
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise RemitFormatError(f"{where}.{dim}: must be a non-negative number, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Budget:
    """Spending limits of a task; a None dimension is unlimited.

    >>> Budget(calls=10).is_within(Budget(calls=5))
    'budget.calls'
    >>> Budget(calls=3).narrowed(Budget(cost_usd=0.5))
    Budget(input_tokens=None, output_tokens=None, cost_usd=0.5, calls=3, wall_seconds=None)
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    calls: int | None = None
    wall_seconds: float | None = None

    DIMENSIONS: ClassVar[tuple[str, ...]] = (
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "calls",
        "wall_seconds",
    )

    def __post_init__(self) -> None:
        for dim in self.DIMENSIONS:
            value = getattr(self, dim)
            if value is not None:
                object.__setattr__(self, dim, _limit(dim, value, "budget"))

    def is_within(self, parent: Budget) -> str | None:
        """The first dimension (``"budget.<name>"``) wider than ``parent``'s, or None."""
        for dim in self.DIMENSIONS:
            limit = getattr(parent, dim)
            if limit is not None:
                mine = getattr(self, dim)
                if mine is None or mine > limit:
                    return f"budget.{dim}"
        return None

    def narrowed(self, child: Budget) -> Budget:
        """``child`` with unlimited dimensions inheriting this budget's limits.

        Raises :class:`~remit.errors.WideningError` if a child limit exceeds ours.
        """
        values: dict[str, Any] = {}
        for dim in self.DIMENSIONS:
            mine, theirs = getattr(self, dim), getattr(child, dim)
            if theirs is None:
                values[dim] = mine
            elif mine is not None and theirs > mine:
                raise WideningError(f"budget.{dim}", f"child asks for {theirs}, parent has {mine}")
            else:
                values[dim] = theirs
        return Budget(**values)

    def to_dict(self) -> dict[str, Any]:
        """The limited dimensions only: ``{"calls": 200}``."""
        return {d: v for d in self.DIMENSIONS if (v := getattr(self, d)) is not None}

    @classmethod
    def from_dict(cls, d: object, *, where: str = "budget") -> Budget:
        """Read :meth:`to_dict`'s form; errors name ``where.<dimension>``."""
        if not isinstance(d, Mapping):
            raise RemitFormatError(f"{where}: expected a table of limits, got {kind(d)}")
        items = cast(Mapping[object, object], d)
        values: dict[str, Any] = {}
        for key, value in items.items():
            if key not in cls.DIMENSIONS:
                raise RemitFormatError(
                    f"{where}.{key}: unknown budget dimension "
                    f"(expected one of {', '.join(cls.DIMENSIONS)})"
                )
            values[cast(str, key)] = _limit(cast(str, key), value, where)
        return cls(**values)
