"""How a policy sees argument values: bounded reprs for reasons, equality that keeps
bools apart from numbers, and case folding that touches only ASCII letters.
"""

from __future__ import annotations

import string
from typing import Any, Literal, TypeAlias

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


def as_case(value: object, op: str) -> Case:
    if value == "sensitive":
        return "sensitive"
    if value == "insensitive":
        return "insensitive"
    raise RemitFormatError(f"{op}: case must be 'sensitive' or 'insensitive', got {show(value)}")


def has_letters(value: Scalar) -> bool:
    """Whether folding makes ``value`` match more than itself (it has ASCII letters)."""
    return isinstance(value, str) and not _ASCII_LETTERS.isdisjoint(value)
