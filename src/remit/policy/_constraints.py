"""Constraint values and their constructors: the leaves of a policy.

They depend on nothing else in :mod:`remit.policy`, so they come first: parsing, rules,
the compiled checks and grants are all built on these tests, and the helpers for
equality and bounded reprs live here because the constraints are their first users (as
does the sentinel for a missing argument, which both the rules and the compiled checks
use). The constraints on paths and URLs are in :mod:`remit.policy._locations`.
"""

from __future__ import annotations

import math
import string
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, ClassVar, Literal, NamedTuple, TypeAlias, cast

from remit.errors import RemitFormatError

Scalar: TypeAlias = str | int | float | bool

#: what ``args.get(arg, MISSING)`` gives for an argument missing from a call
MISSING: Any = object()

_SHOW_MAX = 60


def show(value: object) -> str:
    """A bounded repr for reasons: arguments can be megabytes of model output."""
    text = repr(value)
    return text if len(text) <= _SHOW_MAX else text[: _SHOW_MAX - 1] + "…"


def kind(value: object) -> str:
    return type(value).__name__


def eq_key(value: object) -> tuple[str, object] | None:
    """Equality key that keeps bools apart from numbers (``True == 1`` in Python)."""
    t = type(value)
    if t is str:
        return ("s", value)
    if t is bool:
        return ("b", value)
    if t is int or t is float:
        return ("n", value)
    if isinstance(value, str):  # str subclasses such as StrEnum members
        return ("s", str(value))
    if isinstance(value, int | float) and not isinstance(value, bool):
        return ("n", value)
    return None


#: how ``one_of`` and ``in_inputs`` compare letters
Case: TypeAlias = Literal["sensitive", "insensitive"]
_ASCII_FOLD = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_ASCII_LETTERS = frozenset(string.ascii_letters)


def fold(text: str) -> str:
    """``text`` with the ASCII letters A-Z lowered and nothing else changed.

    Case-insensitive comparisons fold only ASCII, so no other character matches a
    look-alike (the Kelvin sign U+212A never matches ``k``, nor the long s U+017F an
    ``s``, as they would under :meth:`str.casefold`) and a folded text keeps its length.
    """
    return text.lower() if text.isascii() else text.translate(_ASCII_FOLD)


@lru_cache(maxsize=8)
def _folded_inputs(text: str) -> str:
    return fold(text)  # a task's inputs are compared with many values, folded once


def _case(value: object, op: str) -> Case:
    if value == "sensitive":
        return "sensitive"
    if value == "insensitive":
        return "insensitive"
    raise RemitFormatError(f"{op}: case must be 'sensitive' or 'insensitive', got {show(value)}")


def _has_letters(value: Scalar) -> bool:
    """Whether folding makes ``value`` match more than itself (it has ASCII letters)."""
    return isinstance(value, str) and not _ASCII_LETTERS.isdisjoint(value)


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


def needs_inputs(c: Constraint) -> bool:
    """Whether ``c``'s answer depends on the task's inputs (it is or holds ``in_inputs``)."""
    return any(isinstance(x, InInputs) for x in walk(c))


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
        _case(self.case, "one_of")
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
            or not any(_has_letters(v) for v in self.values)
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
        _case(self.case, "in_inputs")

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


def in_inputs(*, case: Case = "sensitive") -> InInputs:
    """Accept values that appear literally in the task's inputs (see :class:`InInputs`)."""
    return InInputs(case)
