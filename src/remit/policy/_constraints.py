"""Constraint values and their constructors: the leaves of a policy.

They depend on nothing else in :mod:`remit.policy` but how values are shown and compared
(:mod:`remit.policy._values`), so they come first: parsing, rules, the compiled checks
and grants are all built on these tests. ``in_inputs``, the one constraint that needs
the task's inputs, is in :mod:`remit.policy._inputs`; the constraints on paths and URLs
are in :mod:`remit.policy._locations`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple, TypeAlias, cast

from remit.errors import RemitFormatError
from remit.policy._values import Case, Scalar, as_case, eq_key, fold, has_letters, kind, show


def _scalar(value: object, what: str) -> Scalar:
    if isinstance(value, float) and not math.isfinite(value):
        raise RemitFormatError(f"{what}: must be finite, got {value!r}")
    if isinstance(value, str | int | float | bool):
        return value
    raise RemitFormatError(f"{what}: must be a string, number or bool, got {kind(value)}")


def _number(value: object, what: str) -> int | float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RemitFormatError(f"{what}: must be a number or None, got {show(value)}")
    if not math.isfinite(value):
        raise RemitFormatError(f"{what}: must be finite, got {value!r}")
    return value


class Miss(NamedTuple):
    """Where inside a value a constraint failed, and why (see :meth:`Constraint.locate`)."""

    #: the part after the argument's name: ``""`` for the value itself, ``"[1]"`` for
    #: the second item of a list
    where: str
    #: the value that failed (the item, for ``"[1]"``)
    value: object
    #: the constraint it failed
    constraint: Constraint
    reason: str


class Constraint(ABC):
    """One test of an argument value. Subclasses are frozen, slotted dataclasses.

    >>> between(0, 10).check(11)
    '11 is above the maximum 10'
    """

    __slots__ = ()
    op: ClassVar[str]
    #: whether an argument that is not passed satisfies this constraint (``absent``,
    #: ``absent_or``); every other constraint denies a missing argument
    accepts_missing: ClassVar[bool] = False

    @abstractmethod
    def check(self, value: object) -> str | None:
        """None if ``value`` is accepted, else a short reason."""

    def check_in(self, value: object, inputs_text: str | None) -> str | None:
        """As :meth:`check`, given the task's goal and inputs (what ``in_inputs``, here
        or inside this constraint, compares values with)."""
        return self.check(value)

    def locate(self, value: object, inputs_text: str | None) -> Miss | None:
        """None if ``value`` is accepted, else where in it and which constraint failed:
        ``each`` names the item, the others the value itself."""
        reason = self.check_in(value, inputs_text)
        return None if reason is None else Miss("", value, self, reason)

    def parts(self) -> tuple[Constraint, ...]:
        """The constraints this one applies inside a value (``each``, ``absent_or``)."""
        return ()

    @abstractmethod
    def arg(self) -> Any:
        """The JSON-ready argument of this op, as written in remit files."""

    def implies(self, other: Constraint) -> bool:
        """True only if every value accepted by ``self`` is accepted by ``other``."""
        return self == other or other.implied_by(self)

    def implied_by(self, other: Constraint) -> bool:
        """True only if every value ``other`` accepts is accepted by ``self``: what
        ``other.implies(self)`` asks when it does not know this kind of constraint."""
        return False

    def options(self) -> dict[str, Any]:
        """The options written next to the op, those not at their default
        (``{"case": "insensitive"}``)."""
        return {}

    def describe(self) -> str:
        """Compact text for messages, e.g. ``within('out/')``."""
        return f"{self.op}({self.arg()!r})"

    def to_dict(self) -> dict[str, Any]:
        """``{"op": ..., "arg": ...}`` and the options; read back with
        :func:`constraint_from_dict`."""
        return {"op": self.op, "arg": self.arg(), **self.options()}

    def to_spec(self) -> dict[str, Any]:
        """The table used in remit files: the op and its argument, e.g.
        ``{"within": "out/"}``, and the options."""
        return {self.op: self.arg(), **self.options()}

    def __repr__(self) -> str:
        return self.describe()


def walk(c: Constraint) -> Iterator[Constraint]:
    """``c`` and every constraint inside it."""
    yield c
    for part in c.parts():
        yield from walk(part)


@dataclass(frozen=True, slots=True, repr=False)
class Equals(Constraint):
    """Accepts exactly one scalar. ``equals(1)`` rejects ``True`` and accepts ``1.0``.

    >>> equals("r").check("w")
    "expected 'r', got 'w'"
    """

    value: Scalar = field(compare=False)
    _key: tuple[str, object] = field(init=False)
    op: ClassVar[str] = "equals"

    def __post_init__(self) -> None:
        _scalar(self.value, "equals")
        object.__setattr__(self, "_key", eq_key(self.value))

    def check(self, value: object) -> str | None:
        if eq_key(value) == self._key:
            return None
        return f"expected {self.value!r}, got {show(value)}"

    def arg(self) -> Any:
        return self.value

    def implies(self, other: Constraint) -> bool:
        return other.check(self.value) is None


@dataclass(frozen=True, slots=True, repr=False)
class OneOf(Constraint):
    """Accepts any of a non-empty set of scalars (compared like :class:`Equals`).

    With ``case="insensitive"``, strings compare with their ASCII letters folded
    (:func:`fold`): ``one_of("Bob", case="insensitive")`` accepts ``"BOB"``, not ``"Bøb"``.

    >>> one_of("r", "w").check("x")
    "'x' is not one of 'r', 'w'"
    >>> one_of("Alice", "Bob", case="insensitive").check("bob") is None
    True
    """

    values: tuple[Scalar, ...] = field(compare=False)
    case: Case = "sensitive"
    _keys: frozenset[tuple[str, object]] = field(init=False)
    op: ClassVar[str] = "one_of"

    def __post_init__(self) -> None:
        as_case(self.case, "one_of")
        raw = cast(object, self.values)
        if isinstance(raw, str) or not isinstance(raw, Iterable):
            raise RemitFormatError(f"one_of: expected a list of values, got {kind(raw)}")
        values: list[Scalar] = []
        seen: set[tuple[str, object]] = set()
        for v in raw:  # pyright: ignore[reportUnknownVariableType]
            k = self._key(_scalar(v, "one_of"))
            if k is not None and k not in seen:
                seen.add(k)
                values.append(v)
        if not values:
            raise RemitFormatError("one_of: needs at least one value")
        object.__setattr__(self, "values", tuple(values))
        object.__setattr__(self, "_keys", frozenset(seen))

    def _key(self, value: object) -> tuple[str, object] | None:
        key = eq_key(value)
        if self.case == "insensitive" and key is not None and key[0] == "s":
            return ("s", fold(cast(str, key[1])))
        return key

    def check(self, value: object) -> str | None:
        if self._key(value) in self._keys:
            return None
        shown = ", ".join(map(repr, self.values))
        if self.case == "insensitive":
            return f"{show(value)} is not one of {shown} (ignoring case)"
        return f"{show(value)} is not one of {shown}"

    def arg(self) -> Any:
        return list(self.values)

    def options(self) -> dict[str, Any]:
        return {"case": self.case} if self.case == "insensitive" else {}

    def describe(self) -> str:
        case = ", case='insensitive'" if self.case == "insensitive" else ""
        return f"one_of({', '.join(map(repr, self.values))}{case})"

    def implies(self, other: Constraint) -> bool:
        if (
            self.case == "sensitive"
            or (isinstance(other, OneOf) and other.case == "insensitive")
            or not any(has_letters(v) for v in self.values)
        ):
            # every value accepted here is one of ours (or, ignoring case, a variant
            # that other accepts too: other ignores case, or there are no letters)
            return all(other.check(v) is None for v in self.values)
        return Constraint.implies(self, other)  # "Bob" ignoring case is more than "Bob"


@dataclass(frozen=True, slots=True, repr=False)
class Between(Constraint):
    """Accepts numbers in ``[lo, hi]``; a None bound is open. Bools are not numbers.

    >>> between(0, None).check(True)
    'expected a number, got bool'
    """

    lo: int | float | None
    hi: int | float | None
    op: ClassVar[str] = "between"

    def __post_init__(self) -> None:
        lo, hi = _number(self.lo, "between: lo"), _number(self.hi, "between: hi")
        if lo is not None and hi is not None and lo > hi:
            raise RemitFormatError(f"between: lo {lo!r} is above hi {hi!r}")

    def check(self, value: object) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"expected a number, got {kind(value)}"
        if value != value:
            return "nan is not in any range"
        if self.lo is not None and value < self.lo:
            return f"{show(value)} is below the minimum {self.lo!r}"
        if self.hi is not None and value > self.hi:
            return f"{show(value)} is above the maximum {self.hi!r}"
        return None

    def arg(self) -> Any:
        # TOML has no null: open bounds use the table form.
        if self.lo is not None and self.hi is not None:
            return [self.lo, self.hi]
        bounds: dict[str, int | float] = {}
        if self.lo is not None:
            bounds["min"] = self.lo
        if self.hi is not None:
            bounds["max"] = self.hi
        return bounds

    def describe(self) -> str:
        return f"between({self.lo!r}, {self.hi!r})"

    def implies(self, other: Constraint) -> bool:
        if isinstance(other, Between):
            lo_ok = other.lo is None or (self.lo is not None and self.lo >= other.lo)
            hi_ok = other.hi is None or (self.hi is not None and self.hi <= other.hi)
            return lo_ok and hi_ok
        return Constraint.implies(self, other)


SIZED = (str, bytes, list, tuple, dict, set, frozenset)


@dataclass(frozen=True, slots=True, repr=False)
class MaxLen(Constraint):
    """Accepts strings, bytes, lists, tuples, dicts and sets of length <= n.

    >>> max_len(3).check("abcd")
    'length 4 exceeds 3'
    """

    n: int
    op: ClassVar[str] = "max_len"

    def __post_init__(self) -> None:
        n = cast(object, self.n)
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise RemitFormatError(f"max_len: must be a non-negative integer, got {show(n)}")

    def check(self, value: object) -> str | None:
        if not isinstance(value, SIZED):
            return f"expected a string, list or mapping, got {kind(value)}"
        size = len(value)
        return None if size <= self.n else f"length {size} exceeds {self.n}"

    def arg(self) -> Any:
        return self.n

    def implies(self, other: Constraint) -> bool:
        if isinstance(other, MaxLen):
            return self.n <= other.n
        return Constraint.implies(self, other)


#: what may stand for the constraints of one argument: a constraint, its dict form, or a
#: list of either
ConstraintSpec: TypeAlias = (
    Constraint | Mapping[str, Any] | Sequence[Constraint | Mapping[str, Any]]
)
#: per argument name, the constraints that must all hold
ArgRules: TypeAlias = Mapping[str, tuple[Constraint, ...]]


# --- constructors -----------------------------------------------------------------


def equals(value: Scalar) -> Equals:
    """Accept exactly ``value``. ``equals("r").check("r") is None`` → True."""
    return Equals(value)


def one_of(*values: Scalar, case: Case = "sensitive") -> OneOf:
    """Accept any of ``values``. ``one_of(1, 2).implies(one_of(1, 2, 3))`` → True."""
    return OneOf(values, case)


def between(lo: float | None, hi: float | None) -> Between:
    """Accept numbers in ``[lo, hi]`` (None = open). ``between(0, 5).check(5)`` → None."""
    return Between(lo, hi)


def max_len(n: int) -> MaxLen:
    """Accept sized values of length <= ``n``. ``max_len(2).check([1, 2])`` → None."""
    return MaxLen(n)
