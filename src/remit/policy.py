"""The argument-constraint language a remit uses to limit tool calls (pure, no I/O).

A *constraint* is an immutable test of one argument value. ``check(value)`` returns
``None`` when the value is accepted, else a short human reason; ``implies(other)`` is
True only when every value this constraint accepts is also accepted by ``other`` (and
is conservative: pairs it cannot reason about are compared structurally). A
:class:`ToolGrant` holds, for one tool, a tuple of constraints per argument; all of
them must hold.

>>> c = within("out/")
>>> c.check("out/report.md") is None
True
>>> c.check("out/../etc/passwd")
"'out/../etc/passwd' is not within 'out/' (normalizes to 'etc/passwd')"
>>> within("out/sub/").implies(c), c.implies(within("out/sub/"))
(True, False)

Serialized forms. In remit files each constraint is a one-key table ``{op = arg}``
(:meth:`Constraint.to_spec`); :meth:`Constraint.to_dict` gives the same as
``{"op": op, "arg": arg}``. :func:`constraint_from_dict` reads both.

==============  ===========================  =========================================
op              arg                          accepts
==============  ===========================  =========================================
``equals``      a scalar                     that value (``True`` is not ``1``)
``one_of``      a list of scalars            any listed value
``matches``     a regular expression         strings the pattern matches in full
``within``      a path prefix                paths inside that directory (see below)
``glob``        an fnmatch pattern           normalized paths/URLs matching it
``url_prefix``  an absolute URL              URLs on that scheme+host under its path
``between``     ``[lo, hi]`` or              numbers with lo <= x <= hi (not bools);
                ``{min = lo, max = hi}``     an omitted bound is open
``max_len``     an integer                   str/bytes/list/tuple/dict/set, len <= n
``in_inputs``   ``true``                     strings/numbers appearing literally in the
                                             task's goal and inputs (needs context)
==============  ===========================  =========================================

Scalars are str, int, float (finite) and bool.

Policies. Besides constraints per argument (the *simple* shape: one implicit allow
rule), a :class:`ToolGrant` may hold ordered rules (:class:`Rule`), each ``allow`` or
``forbid`` with constraints per argument; the first rule whose constraints all hold
decides, and a call no rule matches is denied. Rule ids are ``<tool>#<n>``. A grant
also names a *fallback* for denied calls: ``"tell"`` (default), ``"stop"`` or ``"ask"``.
A child's grant is the intersection with its parent's (:meth:`ToolGrant.narrowed`):
the parent's rules stay first, as a layer of their own, and keep their ids.

>>> g = ToolGrant("send", rules=[forbid({"to": equals("eve")}, reason="not eve"), allow()])
>>> v = g.evaluate({"to": "eve"})
>>> v.rule, v.note
('send#1', 'not eve')

Paths are compared lexically after :func:`posixpath.normpath`; symlinks are not
resolved (this module does no I/O), so a tool that writes inside a granted directory
must itself refuse to follow symlinks out of it. ``within("out/")`` accepts ``out``
itself and everything below it, rejects ``out/../etc/x`` (it normalizes to ``etc/x``),
``outside/x``, and absolute paths (a relative prefix only accepts relative paths and
vice versa). Values containing a NUL byte, or (for ``within``) a backslash, which
Windows would read as a separator, are rejected.
"""

from __future__ import annotations

import fnmatch
import math
import posixpath
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any, ClassVar, Literal, NamedTuple, TypeAlias, TypeVar, cast
from urllib.parse import SplitResult, urlsplit, urlunsplit

from remit.errors import RemitFormatError, WideningError

__all__ = [
    "FALLBACKS",
    "OPS",
    "ArgRules",
    "Between",
    "Constraint",
    "ConstraintSpec",
    "Effect",
    "Equals",
    "Fallback",
    "Glob",
    "InInputs",
    "Layer",
    "Matches",
    "MaxLen",
    "OneOf",
    "Rule",
    "RuleSpec",
    "Scalar",
    "ToolGrant",
    "UrlPrefix",
    "Verdict",
    "Within",
    "allow",
    "between",
    "compile_args",
    "constraint_from_dict",
    "constraints_from_spec",
    "equals",
    "forbid",
    "glob",
    "in_inputs",
    "matches",
    "max_len",
    "one_of",
    "url_prefix",
    "within",
]

Scalar: TypeAlias = str | int | float | bool

_SHOW_MAX = 60


def _show(value: object) -> str:
    """A bounded repr for reasons: arguments can be megabytes of model output."""
    text = repr(value)
    return text if len(text) <= _SHOW_MAX else text[: _SHOW_MAX - 1] + "…"


def _kind(value: object) -> str:
    return type(value).__name__


def _eq_key(value: object) -> tuple[str, object] | None:
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


def _scalar(value: object, what: str) -> Scalar:
    if isinstance(value, float) and not math.isfinite(value):
        raise RemitFormatError(f"{what}: must be finite, got {value!r}")
    if isinstance(value, str | int | float | bool):
        return value
    raise RemitFormatError(f"{what}: must be a string, number or bool, got {_kind(value)}")


def _number(value: object, what: str) -> int | float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RemitFormatError(f"{what}: must be a number or None, got {_show(value)}")
    if not math.isfinite(value):
        raise RemitFormatError(f"{what}: must be finite, got {value!r}")
    return value


def _normpath(path: str) -> str:
    # Fast path for the common already-normal path: nothing normpath would change.
    if path and path[0] != "." and path[-1] != "/" and "//" not in path and "/." not in path:
        return path
    norm = posixpath.normpath(path)
    # POSIX keeps exactly two leading slashes; treat them as one root like the kernel does.
    return "/" + norm.lstrip("/") if norm.startswith("//") else norm


def _is_under(norm: str, prefix: str) -> bool:
    """Whether normalized ``norm`` is ``prefix`` or below it (both normalized)."""
    if prefix == ".":
        if norm == ".":
            return True
        if norm.startswith("/"):
            return False
        rest = norm
    elif prefix == "/":
        if not norm.startswith("/"):
            return False
        rest = norm[1:]
    elif norm == prefix:
        return True
    elif norm.startswith(prefix) and norm[len(prefix)] == "/":
        rest = norm[len(prefix) + 1 :]
    else:
        return False
    # ``..`` survives normalization only at the start, so a prefix made of ``..``
    # followed by more ``..`` would climb out of it.
    return not (rest == ".." or rest.startswith("../"))


def _shown_dir(prefix: str) -> str:
    return prefix if prefix in ("/", ".") else prefix + "/"


@lru_cache(maxsize=512)
def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


class Constraint(ABC):
    """One test of an argument value. Subclasses are frozen, slotted dataclasses.

    >>> between(0, 10).check(11)
    '11 is above the maximum 10'
    """

    __slots__ = ()
    op: ClassVar[str]

    @abstractmethod
    def check(self, value: object) -> str | None:
        """None if ``value`` is accepted, else a short reason."""

    @abstractmethod
    def arg(self) -> Any:
        """The JSON-ready argument of this op, as written in remit files."""

    def implies(self, other: Constraint) -> bool:
        """True only if every value accepted by ``self`` is accepted by ``other``."""
        return self == other

    def describe(self) -> str:
        """Compact text for messages, e.g. ``within('out/')``."""
        return f"{self.op}({self.arg()!r})"

    def to_dict(self) -> dict[str, Any]:
        """``{"op": ..., "arg": ...}``; read back with :func:`constraint_from_dict`."""
        return {"op": self.op, "arg": self.arg()}

    def to_spec(self) -> dict[str, Any]:
        """The one-key table used in remit files, e.g. ``{"within": "out/"}``."""
        return {self.op: self.arg()}

    def __repr__(self) -> str:
        return self.describe()


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
        object.__setattr__(self, "_key", _eq_key(self.value))

    def check(self, value: object) -> str | None:
        if _eq_key(value) == self._key:
            return None
        return f"expected {self.value!r}, got {_show(value)}"

    def arg(self) -> Any:
        return self.value

    def implies(self, other: Constraint) -> bool:
        return other.check(self.value) is None


@dataclass(frozen=True, slots=True, repr=False)
class OneOf(Constraint):
    """Accepts any of a non-empty set of scalars (compared like :class:`Equals`).

    >>> one_of("r", "w").check("x")
    "'x' is not one of 'r', 'w'"
    """

    values: tuple[Scalar, ...] = field(compare=False)
    _keys: frozenset[tuple[str, object]] = field(init=False)
    op: ClassVar[str] = "one_of"

    def __post_init__(self) -> None:
        raw = cast(object, self.values)
        if isinstance(raw, str) or not isinstance(raw, Iterable):
            raise RemitFormatError(f"one_of: expected a list of values, got {_kind(raw)}")
        values: list[Scalar] = []
        seen: set[tuple[str, object]] = set()
        for v in raw:  # pyright: ignore[reportUnknownVariableType]
            k = _eq_key(_scalar(v, "one_of"))
            if k is not None and k not in seen:
                seen.add(k)
                values.append(v)
        if not values:
            raise RemitFormatError("one_of: needs at least one value")
        object.__setattr__(self, "values", tuple(values))
        object.__setattr__(self, "_keys", frozenset(seen))

    def check(self, value: object) -> str | None:
        if _eq_key(value) in self._keys:
            return None
        return f"{_show(value)} is not one of {', '.join(map(repr, self.values))}"

    def arg(self) -> Any:
        return list(self.values)

    def describe(self) -> str:
        return f"one_of({', '.join(map(repr, self.values))})"

    def implies(self, other: Constraint) -> bool:
        return all(other.check(v) is None for v in self.values)


@dataclass(frozen=True, slots=True, repr=False)
class Matches(Constraint):
    """Accepts strings that the regular expression matches in full.

    >>> matches(r"[a-z]+").check("abc1")
    "'abc1' does not match '[a-z]+'"
    """

    pattern: str
    _rx: re.Pattern[str] = field(init=False, compare=False)
    op: ClassVar[str] = "matches"

    def __post_init__(self) -> None:
        if not isinstance(cast(object, self.pattern), str):
            raise RemitFormatError(f"matches: pattern must be a string, got {_kind(self.pattern)}")
        try:
            rx = _compile(self.pattern)
        except re.error as e:
            raise RemitFormatError(
                f"matches: invalid regular expression {self.pattern!r}: {e}"
            ) from None
        object.__setattr__(self, "_rx", rx)

    def check(self, value: object) -> str | None:
        if not isinstance(value, str):
            return f"expected a string, got {_kind(value)}"
        if self._rx.fullmatch(value) is None:
            return f"{_show(value)} does not match {self.pattern!r}"
        return None

    def arg(self) -> Any:
        return self.pattern


@dataclass(frozen=True, slots=True, repr=False)
class Within(Constraint):
    """Accepts path strings at or below a directory, compared after normalization.

    The prefix is stored normalized, so ``within("out/") == within("./out")``.

    >>> within("out/").check("/etc/passwd")
    "'/etc/passwd' is not within 'out/'"
    """

    prefix: str
    op: ClassVar[str] = "within"

    def __post_init__(self) -> None:
        p = cast(object, self.prefix)
        if not isinstance(p, str) or not p or "\x00" in p or "\\" in p:
            raise RemitFormatError(f"within: prefix must be a non-empty path, got {_show(p)}")
        object.__setattr__(self, "prefix", _normpath(p))

    def check(self, value: object) -> str | None:
        if not isinstance(value, str):
            return f"expected a path string, got {_kind(value)}"
        if "\x00" in value or "\\" in value:
            return f"{_show(value)} contains a NUL byte or a backslash"
        norm = _normpath(value)
        if _is_under(norm, self.prefix):
            return None
        reason = f"{_show(value)} is not within {_shown_dir(self.prefix)!r}"
        if norm != value.rstrip("/") and norm != value:
            reason += f" (normalizes to {_show(norm)})"
        return reason

    def arg(self) -> Any:
        return _shown_dir(self.prefix)

    def implies(self, other: Constraint) -> bool:
        if isinstance(other, Within):
            return _is_under(self.prefix, other.prefix)
        return self == other


def _split_url(value: str) -> SplitResult | None:
    if "://" not in value:
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    return parts if parts.scheme and parts.netloc else None


@dataclass(frozen=True, slots=True, repr=False)
class Glob(Constraint):
    """Accepts paths or URLs matching an fnmatch pattern (case-sensitive).

    Paths are normalized first (for URLs, the path part), so ``out/../x.md`` is seen
    as ``x.md``. As in fnmatch, ``*`` also matches ``/``; combine with :func:`within`
    to confine paths to a directory.

    >>> glob("*.md").check("notes.txt")
    "'notes.txt' does not match glob '*.md'"
    """

    pattern: str
    _rx: re.Pattern[str] = field(init=False, compare=False)
    op: ClassVar[str] = "glob"

    def __post_init__(self) -> None:
        if not isinstance(cast(object, self.pattern), str) or not self.pattern:
            raise RemitFormatError(
                f"glob: pattern must be a non-empty string, got {_show(self.pattern)}"
            )
        object.__setattr__(self, "_rx", _compile(fnmatch.translate(self.pattern)))

    def check(self, value: object) -> str | None:
        if not isinstance(value, str):
            return f"expected a path or URL string, got {_kind(value)}"
        if "\x00" in value:
            return f"{_show(value)} contains a NUL byte"
        parts = _split_url(value)
        if parts is None:
            norm = _normpath(value)
        else:
            path = _normpath(parts.path) if parts.path else ""
            norm = urlunsplit(parts._replace(path=path))
        if self._rx.match(norm) is None:
            return f"{_show(value)} does not match glob {self.pattern!r}"
        return None

    def arg(self) -> Any:
        return self.pattern


@dataclass(frozen=True, slots=True, repr=False)
class UrlPrefix(Constraint):
    """Accepts URLs with the same scheme and host[:port] whose path is under the prefix's.

    The host part must match exactly (no user-info, no other port); paths are
    normalized; backslashes and percent-encoded dots or slashes in the path are
    rejected because servers disagree on how to decode them.

    >>> url_prefix("https://api.example.com/v1/").check("https://api.example.com.evil.io/v1/")
    "'https://api.example.com.evil.io/v1/' is not under 'https://api.example.com/v1/'"
    """

    prefix: str
    _scheme: str = field(init=False, compare=False)
    _netloc: str = field(init=False, compare=False)
    _path: str = field(init=False, compare=False)
    op: ClassVar[str] = "url_prefix"

    def __post_init__(self) -> None:
        p = cast(object, self.prefix)
        parts = _split_url(p) if isinstance(p, str) else None
        if (
            parts is None
            or parts.query
            or parts.fragment
            or "\\" in self.prefix
            or "\x00" in self.prefix
        ):
            raise RemitFormatError(
                f"url_prefix: expected an absolute URL like 'https://host/path/', got {_show(p)}"
            )
        object.__setattr__(self, "_scheme", parts.scheme.lower())
        object.__setattr__(self, "_netloc", parts.netloc.lower())
        object.__setattr__(self, "_path", _normpath(parts.path or "/"))

    def check(self, value: object) -> str | None:
        if not isinstance(value, str):
            return f"expected a URL string, got {_kind(value)}"
        parts = _split_url(value) if "\\" not in value and "\x00" not in value else None
        if (
            parts is None
            or parts.scheme.lower() != self._scheme
            or parts.netloc.lower() != self._netloc
        ):
            return f"{_show(value)} is not under {self.prefix!r}"
        low = parts.path.lower()
        if "%2e" in low or "%2f" in low or "%5c" in low:
            return f"{_show(value)} has an encoded dot or slash in its path"
        if not _is_under(_normpath(parts.path or "/"), self._path):
            return f"{_show(value)} is not under {self.prefix!r}"
        return None

    def arg(self) -> Any:
        return self.prefix

    def implies(self, other: Constraint) -> bool:
        if isinstance(other, UrlPrefix):
            return (
                self._scheme == other._scheme
                and self._netloc == other._netloc
                and _is_under(self._path, other._path)
            )
        return self == other


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
            return f"expected a number, got {_kind(value)}"
        if value != value:
            return "nan is not in any range"
        if self.lo is not None and value < self.lo:
            return f"{_show(value)} is below the minimum {self.lo!r}"
        if self.hi is not None and value > self.hi:
            return f"{_show(value)} is above the maximum {self.hi!r}"
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
        return self == other


_SIZED = (str, bytes, list, tuple, dict, set, frozenset)


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
            raise RemitFormatError(f"max_len: must be a non-negative integer, got {_show(n)}")

    def check(self, value: object) -> str | None:
        if not isinstance(value, _SIZED):
            return f"expected a string, list or mapping, got {_kind(value)}"
        size = len(value)
        return None if size <= self.n else f"length {size} exceeds {self.n}"

    def arg(self) -> Any:
        return self.n

    def implies(self, other: Constraint) -> bool:
        if isinstance(other, MaxLen):
            return self.n <= other.n
        return self == other


@dataclass(frozen=True, slots=True, repr=False)
class InInputs(Constraint):
    """Accepts a string or number whose text appears literally in the task's inputs.

    This is the one constraint that needs context: :meth:`ToolGrant.check` and
    :meth:`remit.remit.Remit.check` pass the task's goal and inputs as ``inputs_text``
    and this constraint accepts a value iff ``str(value)`` is non-empty and occurs in
    it (case-sensitive). Bools, None, containers and non-finite floats are refused.
    Without context (plain :meth:`check`) every value is refused, so no other
    constraint implies this one.

    >>> in_inputs().check_in("bob@x.io", "pay bob@x.io 20 dollars") is None
    True
    >>> in_inputs().check_in("eve@x.io", "pay bob@x.io 20 dollars")
    "'eve@x.io' does not appear in the task's inputs"
    """

    op: ClassVar[str] = "in_inputs"

    def check(self, value: object) -> str | None:
        return self.check_in(value, None)

    def check_in(self, value: object, inputs_text: str | None) -> str | None:
        """None if ``value`` occurs literally in ``inputs_text``, else a short reason."""
        if isinstance(value, str):
            text = value
        elif isinstance(value, bool) or not isinstance(value, int | float):
            return f"expected a string or number, got {_kind(value)}"
        elif isinstance(value, float) and not math.isfinite(value):
            return f"{value!r} is never taken from the task's inputs"
        else:
            text = str(value)
        if not text:
            return "an empty value is never taken from the task's inputs"
        if inputs_text is None:
            return "no task inputs to compare against"
        if text in inputs_text:
            return None
        return f"{_show(value)} does not appear in the task's inputs"

    def arg(self) -> Any:
        return True

    def describe(self) -> str:
        return "in_inputs()"


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


def one_of(*values: Scalar) -> OneOf:
    """Accept any of ``values``. ``one_of(1, 2).implies(one_of(1, 2, 3))`` → True."""
    return OneOf(values)


def matches(pattern: str) -> Matches:
    r"""Accept strings ``pattern`` matches in full. ``matches(r"\d+").check("12")`` → None."""
    return Matches(pattern)


def within(prefix: str) -> Within:
    """Accept paths at or below ``prefix``. ``within("out/").check("out/a.md")`` → None."""
    return Within(prefix)


def glob(pattern: str) -> Glob:
    """Accept normalized paths/URLs matching ``pattern``. ``glob("*.md").check("a.md")`` → None."""
    return Glob(pattern)


def url_prefix(prefix: str) -> UrlPrefix:
    """Accept URLs under ``prefix``: ``url_prefix("https://h/v1/")`` accepts ``https://h/v1/x``."""
    return UrlPrefix(prefix)


def between(lo: float | None, hi: float | None) -> Between:
    """Accept numbers in ``[lo, hi]`` (None = open). ``between(0, 5).check(5)`` → None."""
    return Between(lo, hi)


def max_len(n: int) -> MaxLen:
    """Accept sized values of length <= ``n``. ``max_len(2).check([1, 2])`` → None."""
    return MaxLen(n)


def in_inputs() -> InInputs:
    """Accept values that appear literally in the task's inputs (see :class:`InInputs`)."""
    return InInputs()


# --- reading serialized constraints -------------------------------------------------


def _parse_one_of(arg: object) -> Constraint:
    if not isinstance(arg, list | tuple):
        raise RemitFormatError(f"one_of: expected a list of values, got {_kind(arg)}")
    return OneOf(tuple(arg))  # pyright: ignore[reportUnknownArgumentType]


def _parse_between(arg: object) -> Constraint:
    if isinstance(arg, list | tuple):
        if len(arg) != 2:  # pyright: ignore[reportUnknownArgumentType]
            raise RemitFormatError(f"between: expected [lo, hi], got {len(arg)} items")  # pyright: ignore[reportUnknownArgumentType]
        return Between(arg[0], arg[1])
    if isinstance(arg, Mapping):
        extra = set(arg) - {"min", "max"}  # pyright: ignore[reportUnknownArgumentType]
        if extra:
            raise RemitFormatError(f"between: unknown keys {sorted(extra)} (expected min, max)")
        return Between(arg.get("min"), arg.get("max"))  # pyright: ignore[reportUnknownMemberType]
    raise RemitFormatError(f"between: expected [lo, hi] or {{min, max}}, got {_kind(arg)}")


def _parse_in_inputs(arg: object) -> Constraint:
    if arg is not True:
        raise RemitFormatError(f"in_inputs: expected true, got {_show(arg)}")
    return InInputs()


_PARSERS: dict[str, Callable[[Any], Constraint]] = {
    "equals": Equals,
    "one_of": _parse_one_of,
    "matches": Matches,
    "within": Within,
    "glob": Glob,
    "url_prefix": UrlPrefix,
    "between": _parse_between,
    "max_len": MaxLen,
    "in_inputs": _parse_in_inputs,
}
#: every constraint op, in documentation order
OPS: tuple[str, ...] = tuple(_PARSERS)


def constraint_from_dict(d: object, where: str = "constraint") -> Constraint:
    """Read ``{"within": "out/"}`` or ``{"op": "within", "arg": "out/"}``.

    ``where`` names the location for error messages.

    >>> constraint_from_dict({"between": [0, 10]})
    between(0, 10)
    >>> constraint_from_dict({"inside": "out/"}, "tools.w.path")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    remit.errors.RemitFormatError: tools.w.path: unknown constraint op 'inside' (expected ...)
    """
    if isinstance(d, Constraint):
        return d
    if not isinstance(d, Mapping):
        raise RemitFormatError(
            f"{where}: expected a constraint table like {{within = 'out/'}}, got {_kind(d)}"
        )
    items: Mapping[object, object] = d  # pyright: ignore[reportUnknownVariableType]
    if "op" in items:
        extra = set(items) - {"op", "arg"}
        if extra or "arg" not in items:
            raise RemitFormatError(
                f"{where}: expected exactly the keys 'op' and 'arg', got {sorted(map(str, items))}"
            )
        op, arg = items["op"], items["arg"]
    elif len(items) == 1:
        ((op, arg),) = items.items()
    else:
        raise RemitFormatError(
            f"{where}: a constraint table has exactly one op, got {sorted(map(str, items))}"
        )
    parse = _PARSERS.get(op) if isinstance(op, str) else None
    if parse is None:
        raise RemitFormatError(
            f"{where}: unknown constraint op {op!r} (expected one of {', '.join(OPS)})"
        )
    try:
        return parse(arg)
    except RemitFormatError as e:
        raise RemitFormatError(f"{where}: {e.message}") from None


def constraints_from_spec(spec: object, where: str = "constraint") -> tuple[Constraint, ...]:
    """Read the constraints of one argument: one constraint/table, or a list of them.

    >>> constraints_from_spec([{"max_len": 200}, within("out")])
    (max_len(200), within('out/'))
    """
    if isinstance(spec, Constraint | Mapping):
        return (constraint_from_dict(spec, where),)
    if isinstance(spec, list | tuple):
        return tuple(constraint_from_dict(c, f"{where}[{i}]") for i, c in enumerate(spec))  # pyright: ignore[reportUnknownArgumentType]
    raise RemitFormatError(
        f"{where}: expected a constraint or a list of constraints, got {_kind(spec)}"
    )


# --- grants -----------------------------------------------------------------------

_MISSING: Any = object()

#: what a rule does when it matches
Effect: TypeAlias = Literal["allow", "forbid"]
#: what happens when a call is denied: the reason goes back to the agent as the tool
#: result ("tell"), the task fails ("stop"), or a person approves or denies ("ask")
Fallback: TypeAlias = Literal["tell", "stop", "ask"]
#: every fallback, from the laxest to the strictest (see :meth:`ToolGrant.narrowed`)
FALLBACKS: tuple[Fallback, ...] = ("ask", "tell", "stop")
_STRICTNESS: dict[str, int] = {f: i for i, f in enumerate(FALLBACKS)}
_RULE_KEYS = ("allow", "forbid", "reason")
_RULES_GRANT_KEYS = ("fallback", "rules", "layers")


def _dedupe(cs: Iterable[Constraint]) -> tuple[Constraint, ...]:
    out: list[Constraint] = []
    for c in cs:
        if c not in out:
            out.append(c)
    return tuple(out)


def _normalize_args(name: str, args: object, where: str) -> dict[str, tuple[Constraint, ...]]:
    if not isinstance(args, Mapping):
        raise RemitFormatError(
            f"{where}: expected a table of argument constraints, got {_kind(args)}"
        )
    out: dict[str, tuple[Constraint, ...]] = {}
    for arg, spec in sorted(args.items(), key=lambda kv: str(kv[0])):  # pyright: ignore[reportUnknownArgumentType, reportUnknownLambdaType]
        if not isinstance(arg, str) or not arg:
            raise RemitFormatError(f"{where}: argument names must be non-empty strings")
        if isinstance(spec, tuple) and all(isinstance(c, Constraint) for c in spec):  # pyright: ignore[reportUnknownVariableType]
            cs: tuple[Constraint, ...] = spec  # pyright: ignore[reportUnknownVariableType]
        else:
            cs = constraints_from_spec(spec, f"{where}.{arg}")
        cs = _dedupe(cs)
        if cs:  # an argument with no constraints is unconstrained: keep no entry
            out[arg] = cs
    return out


def _args_spec(items: Iterable[tuple[str, tuple[Constraint, ...]]]) -> dict[str, Any]:
    return {
        arg: cs[0].to_spec() if len(cs) == 1 else [c.to_spec() for c in cs] for arg, cs in items
    }


def _args_imply(
    mine: Mapping[str, tuple[Constraint, ...]], theirs: Iterable[tuple[str, tuple[Constraint, ...]]]
) -> str | None:
    """The first argument of ``theirs`` some constraint of which ``mine`` does not imply."""
    for arg, pcs in theirs:
        ccs = mine.get(arg, ())
        for p in pcs:
            if not any(c.implies(p) for c in ccs):
                return arg
    return None


def _fallback(value: object, where: str) -> Fallback:
    if value not in _STRICTNESS:
        raise RemitFormatError(
            f"{where}: expected one of {', '.join(map(repr, FALLBACKS))}, got {_show(value)}"
        )
    return cast(Fallback, value)


def _check_value(c: Constraint, value: object, inputs_text: str | None) -> str | None:
    return c.check_in(value, inputs_text) if type(c) is InInputs else c.check(value)


@dataclass(frozen=True, slots=True, init=False, repr=False)
class Rule:
    """One ordered rule of a tool's policy: ``allow`` or ``forbid`` the calls whose
    arguments satisfy every constraint (``args`` like a simple grant's; a rule without
    constraints matches every call). ``reason`` is the text an explanation uses when
    this rule decides a denial: a forbid rule that matched, or the first allow rule
    that failed when no rule allowed the call.

    A constrained argument missing from a call makes the rule not match: an allow
    rule then does not allow, a forbid rule does not forbid. Likewise a forbid rule
    matches only values its constraints accept (``within`` refuses a non-string), so
    write least privilege as allow rules and use forbid rules to carve exceptions out
    of them. An ``in_inputs`` constraint checked without the task's inputs fails
    closed: it fails in an allow rule and holds in a forbid rule.

    >>> r = forbid({"amount": between(1000, None)}, reason="large transfers need a person")
    >>> r.spec()
    {'forbid': {'amount': {'between': {'min': 1000}}}, 'reason': 'large transfers need a person'}
    """

    effect: Effect
    #: argument name → constraints, sorted by argument name
    args: ArgRules
    reason: str | None
    _items: tuple[tuple[str, tuple[Constraint, ...]], ...] = field(compare=False)

    def __init__(
        self,
        effect: Effect,
        args: Mapping[str, ConstraintSpec] | None = None,
        *,
        reason: str | None = None,
    ) -> None:
        self._init(effect, {} if args is None else args, reason, "rule")

    def _init(self, effect: object, args: object, reason: object, where: str) -> None:
        if effect not in ("allow", "forbid"):
            raise RemitFormatError(f"{where}: effect must be 'allow' or 'forbid', got {effect!r}")
        if reason is not None and (not isinstance(reason, str) or not reason):
            raise RemitFormatError(
                f"{where}.reason: must be a non-empty string, got {_show(reason)}"
            )
        items = _normalize_args("", args, f"{where}.{effect}")
        object.__setattr__(self, "effect", effect)
        object.__setattr__(self, "args", MappingProxyType(items))
        object.__setattr__(self, "reason", reason)
        object.__setattr__(self, "_items", tuple(items.items()))

    @classmethod
    def from_spec(cls, spec: object, *, where: str = "rule") -> Rule:
        """Read ``{"allow": {...}, "reason": "..."}`` (or ``forbid``); errors name ``where``.

        >>> Rule.from_spec({"allow": {}, "reson": "x"}, where="r[1]")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        remit.errors.RemitFormatError: r[1].reson: unknown key in a rule (expected allow or ...
        """
        if isinstance(spec, Rule):
            return spec
        if not isinstance(spec, Mapping):
            raise RemitFormatError(
                f"{where}: expected a rule table like {{allow = {{...}}}}, got {_kind(spec)}"
            )
        table = cast(Mapping[object, object], spec)
        for key in table:
            if key not in _RULE_KEYS:
                raise RemitFormatError(
                    f"{where}.{key}: unknown key in a rule "
                    "(expected allow or forbid, and optionally reason)"
                )
        effects = [k for k in ("allow", "forbid") if k in table]
        if len(effects) != 1:
            raise RemitFormatError(
                f"{where}: a rule has exactly one of allow, forbid "
                f"(got {' and '.join(effects) or 'neither'})"
            )
        rule = object.__new__(cls)
        rule._init(effects[0], table[effects[0]], table.get("reason"), where)
        return rule

    def spec(self) -> dict[str, Any]:
        """The file form read by :meth:`from_spec`."""
        d: dict[str, Any] = {self.effect: _args_spec(self._items)}
        if self.reason is not None:
            d["reason"] = self.reason
        return d

    def miss(self, args: Mapping[str, object], inputs_text: str | None = None) -> str | None:
        """None if this rule matches the call, else why not (naming argument and constraint)."""
        forbid = self.effect == "forbid"
        for arg, cs in self._items:
            value = args.get(arg, _MISSING)
            if value is _MISSING:
                shown = " and ".join(c.describe() for c in cs)
                return f"argument {arg!r} is missing but constrained by {shown}"
            for c in cs:
                if forbid and inputs_text is None and type(c) is InInputs:
                    continue  # unknown without context: a forbid rule fails closed
                reason = _check_value(c, value, inputs_text)
                if reason is not None:
                    return f"argument {arg!r}={_show(value)} violates {c.describe()}: {reason}"
        return None

    def _hit(self, args: Mapping[str, object], inputs_text: str | None) -> bool:
        """Whether this rule matches the call (:meth:`miss` is None), without the texts."""
        forbid = self.effect == "forbid"
        for arg, cs in self._items:
            value = args.get(arg, _MISSING)
            if value is _MISSING:
                return False
            for c in cs:
                if type(c) is InInputs:
                    if inputs_text is None:
                        if forbid:
                            continue
                        return False
                    if c.check_in(value, inputs_text) is not None:
                        return False
                elif c.check(value) is not None:
                    return False
        return True

    def _matched(self, args: Mapping[str, object]) -> str:
        return ", ".join(
            f"argument {arg!r}={_show(args.get(arg))} matches "
            + " and ".join(c.describe() for c in cs)
            for arg, cs in self._items
        )

    def _allows_all(self) -> bool:
        return self.effect == "allow" and not self._items

    def __repr__(self) -> str:
        reason = "" if self.reason is None else f", reason={self.reason!r}"
        return f"{self.effect}({dict(self.args)!r}{reason})"


def allow(args: Mapping[str, ConstraintSpec] | None = None, *, reason: str | None = None) -> Rule:
    """A rule allowing calls whose ``args`` satisfy their constraints.

    >>> allow({"path": within("docs/")})
    allow({'path': (within('docs/'),)})
    """
    return Rule("allow", args, reason=reason)


def forbid(args: Mapping[str, ConstraintSpec] | None = None, *, reason: str | None = None) -> Rule:
    """A rule forbidding calls whose ``args`` satisfy their constraints."""
    return Rule("forbid", args, reason=reason)


#: one layer of a grant: ordered rules, the first matching one decides
Layer: TypeAlias = tuple[Rule, ...]
#: what may stand for a rule: a Rule or its table form
RuleSpec: TypeAlias = Rule | Mapping[str, Any]


class Verdict(NamedTuple):
    """What :meth:`ToolGrant.evaluate` found: ``reason`` is None when allowed."""

    reason: str | None
    #: the id (``tool#n``) of the rule that decided, if a rule did
    rule: str | None = None
    #: that rule's own ``reason`` text, if it has one
    note: str | None = None


# --- compiled checks (the per-call hot path) -------------------------------------------
#
# A grant is checked on every tool call, so :meth:`ToolGrant.quick` runs a version of its
# constraints compiled once into closures. A compiled check only answers "does every
# constraint hold" (True exactly when the reference :meth:`Constraint.check` would return
# None); it builds no reason text, so a denied call is explained by the reference path
# (:meth:`ToolGrant.check` / :meth:`ToolGrant.evaluate`). Constraints keep their order and
# short-circuit as there, so the compiled check evaluates nothing the reference would not.

#: (value, inputs_text) -> whether the value satisfies the compiled constraints
_Pred: TypeAlias = Callable[[object, "str | None"], bool]
_T = TypeVar("_T")
#: (call arguments, inputs_text) -> one of two answers, by whether every argument holds
_ArgsTest: TypeAlias = Callable[[Mapping[str, object], "str | None"], _T]

_NEG_INF = -math.inf
_POS_INF = math.inf


def _generic_pred(c: Constraint) -> _Pred:
    check = c.check
    return lambda v, t: check(v) is None


def _equals_pred(c: Equals) -> _Pred:
    key = _eq_key(c.value)
    if type(c.value) is str:
        want = c.value
        return lambda v, t: v == want if type(v) is str else _eq_key(v) == key
    return lambda v, t: _eq_key(v) == key


def _one_of_pred(c: OneOf) -> _Pred:
    keys = frozenset(_eq_key(v) for v in c.values)
    strs = frozenset(v for v in c.values if type(v) is str)
    return lambda v, t: v in strs if type(v) is str else _eq_key(v) in keys


def _matches_pred(c: Matches) -> _Pred:
    full = _compile(c.pattern).fullmatch
    return lambda v, t: isinstance(v, str) and full(v) is not None


def _between_pred(c: Between) -> _Pred:
    # An open bound as an infinity: comparisons then reject NaN exactly like check().
    lo = _NEG_INF if c.lo is None else c.lo
    hi = _POS_INF if c.hi is None else c.hi
    check = c.check

    def pred(v: object, t: str | None) -> bool:
        tv = type(v)
        if tv is int or tv is float:
            return lo <= cast(float, v) <= hi
        return check(v) is None  # bools, int subclasses, non-numbers

    return pred


def _max_len_pred(c: MaxLen) -> _Pred:
    n = c.n
    return lambda v, t: isinstance(v, _SIZED) and len(v) <= n


def _in_inputs_pred(c: InInputs, forbid: bool) -> _Pred:
    check_in = c.check_in
    if forbid:  # unknown without the task's inputs: a forbid rule fails closed (holds)
        return lambda v, t: t is None or check_in(v, t) is None
    return lambda v, t: check_in(v, t) is None


def _simple_prefix(prefix: str) -> bool:
    # Under such a prefix a normalized path holds no ``..`` at all (normpath leaves
    # ``..`` only at the start), so being under it is a plain string-prefix test.
    return prefix not in (".", "/") and prefix != ".." and not prefix.startswith("../")


def _within_pred(run: Sequence[Within]) -> _Pred:
    """Consecutive ``within`` constraints of one argument: one normalization for all.

    A simple prefix below another one of the run implies it, so only the deepest of a
    nested run is tested (``within('out/')`` then ``within('out/d/')`` tests ``out/d``).
    """
    general = tuple(c.prefix for c in run if not _simple_prefix(c.prefix))
    simple = [c.prefix for c in run if _simple_prefix(c.prefix)]
    simple = [p for p in simple if not any(q != p and q.startswith(p + "/") for q in simple)]
    tests = tuple(dict.fromkeys((p, p + "/") for p in simple))
    checks = tuple(c.check for c in run)

    def reference(v: object) -> bool:
        # str subclasses and non-strings: exactly what check() does
        return all(check(v) is None for check in checks)

    if len(tests) == 1 and not general:
        ((prefix, below),) = tests

        def one(v: object, t: str | None) -> bool:
            if type(v) is not str:
                return reference(v)
            if "\x00" in v or "\\" in v:
                return False
            # _normpath's own fast test, inlined: an already normal path is itself
            if not v or v[0] == "." or v[-1] == "/" or "//" in v or "/." in v:
                v = _normpath(v)
            return v == prefix or v.startswith(below)

        return one

    def pred(v: object, t: str | None) -> bool:
        if type(v) is not str:
            return reference(v)
        if "\x00" in v or "\\" in v:
            return False
        norm = _normpath(v)
        for p, below in tests:
            if norm != p and not norm.startswith(below):
                return False
        return not general or all(_is_under(norm, p) for p in general)

    return pred


def _constraint_pred(c: Constraint, forbid: bool) -> _Pred:
    # Exact types only: a subclass may override check(), so it gets the generic test.
    kind = type(c)
    if kind is Equals:
        return _equals_pred(cast(Equals, c))
    if kind is OneOf:
        return _one_of_pred(cast(OneOf, c))
    if kind is Matches:
        return _matches_pred(cast(Matches, c))
    if kind is Between:
        return _between_pred(cast(Between, c))
    if kind is MaxLen:
        return _max_len_pred(cast(MaxLen, c))
    if kind is InInputs:
        return _in_inputs_pred(cast(InInputs, c), forbid)
    return _generic_pred(c)


def _arg_pred(cs: tuple[Constraint, ...], forbid: bool) -> _Pred:
    preds: list[_Pred] = []
    i = 0
    while i < len(cs):
        if type(cs[i]) is Within:
            j = i
            while j < len(cs) and type(cs[j]) is Within:
                j += 1
            preds.append(_within_pred(cast(Sequence[Within], cs[i:j])))
            i = j
        else:
            preds.append(_constraint_pred(cs[i], forbid))
            i += 1
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        first, second = preds
        return lambda v, t: first(v, t) and second(v, t)
    chain = tuple(preds)
    return lambda v, t: all(p(v, t) for p in chain)


def _args_test(checks: Sequence[tuple[str, _Pred]], yes: _T, no: _T) -> _ArgsTest[_T]:
    """(args, inputs_text) -> ``yes`` if every named argument is present and passes its
    predicate, else ``no``; unrolled for the usual one to three constrained arguments."""
    missing = _MISSING
    if not checks:
        return lambda args, t: yes
    if len(checks) == 1:
        ((n1, p1),) = checks

        def one(args: Mapping[str, object], t: str | None) -> _T:
            v = args.get(n1, missing)
            return yes if v is not missing and p1(v, t) else no

        return one
    if len(checks) == 2:
        (n1, p1), (n2, p2) = checks

        def two(args: Mapping[str, object], t: str | None) -> _T:
            v = args.get(n1, missing)
            if v is missing or not p1(v, t):
                return no
            v = args.get(n2, missing)
            return yes if v is not missing and p2(v, t) else no

        return two
    if len(checks) == 3:
        (n1, p1), (n2, p2), (n3, p3) = checks

        def three(args: Mapping[str, object], t: str | None) -> _T:
            v = args.get(n1, missing)
            if v is missing or not p1(v, t):
                return no
            v = args.get(n2, missing)
            if v is missing or not p2(v, t):
                return no
            v = args.get(n3, missing)
            return yes if v is not missing and p3(v, t) else no

        return three
    every = tuple(checks)

    def many(args: Mapping[str, object], t: str | None) -> _T:
        for name, pred in every:
            v = args.get(name, missing)
            if v is missing or not pred(v, t):
                return no
        return yes

    return many


def _arg_checks(
    items: Iterable[tuple[str, tuple[Constraint, ...]]], forbid: bool
) -> list[tuple[str, _Pred]]:
    return [(arg, _arg_pred(cs, forbid)) for arg, cs in items]


def compile_args(
    items: Iterable[tuple[str, tuple[Constraint, ...]]], *, forbid: bool = False
) -> Callable[[Mapping[str, object], str | None], bool]:
    """A fast test of whether a call's arguments satisfy ``items`` (argument name →
    constraints, as in :attr:`ToolGrant.args`): True exactly when a simple grant's
    :meth:`ToolGrant.check` returns None (``forbid=False``), or when a forbid rule with
    these constraints matches (``forbid=True``: ``in_inputs`` without inputs holds).

    >>> ok = compile_args({"path": (within("out/"),), "n": (between(0, 9),)}.items())
    >>> ok({"path": "out/a", "n": 3}, None), ok({"path": "out/a"}, None)
    (True, False)
    """
    return _args_test(_arg_checks(items, forbid), True, False)


#: the verdict of an allowed call to a simple grant (no rule decided)
_ALLOWED = Verdict(None)


def _compile_grant(grant: ToolGrant) -> _ArgsTest[Verdict | None]:
    plan = grant._plan  # pyright: ignore[reportPrivateUsage]
    if not plan:
        return _args_test(_arg_checks(grant._items, False), _ALLOWED, None)  # pyright: ignore[reportPrivateUsage]
    layers = tuple(
        tuple(
            (
                Verdict(None, rid),
                rule.effect == "forbid",
                compile_args(rule._items, forbid=rule.effect == "forbid"),  # pyright: ignore[reportPrivateUsage]
            )
            for rid, rule in layer
        )
        for layer in plan
    )

    def evaluate(args: Mapping[str, object], t: str | None) -> Verdict | None:
        # As ToolGrant.evaluate: per layer the first matching rule decides, a forbid
        # denies, a layer without a matching allow denies; allowed names the last layer's.
        decided: Verdict | None = None
        for layer in layers:
            for verdict, is_forbid, hit in layer:
                if hit(args, t):
                    if is_forbid:
                        return None
                    decided = verdict
                    break
            else:
                return None
        return decided

    return evaluate


def _pure_allow(layer: Layer) -> Rule | None:
    """The rule of a layer that is a single allow rule (what a simple grant is)."""
    return layer[0] if len(layer) == 1 and layer[0].effect == "allow" else None


def _layer_within(mine: Layer, theirs: Layer) -> bool:
    """Conservatively, whether every call ``mine`` allows is allowed by ``theirs``."""
    if mine == theirs or theirs[0]._allows_all():  # pyright: ignore[reportPrivateUsage]
        return True
    a, b = _pure_allow(mine), _pure_allow(theirs)
    return a is not None and b is not None and _args_imply(a.args, b._items) is None  # pyright: ignore[reportPrivateUsage]


def _layers_from_spec(rules: object, layers: object, where: str) -> tuple[Layer, ...]:
    if rules is not None and layers is not None:
        raise RemitFormatError(f"{where}: give either rules or layers, not both")
    if rules is not None:
        return (_layer_from_spec(rules, f"{where}.rules"),)
    if not isinstance(layers, list | tuple) or not layers:
        raise RemitFormatError(f"{where}.layers: expected a non-empty list of rule lists")
    return tuple(
        _layer_from_spec(layer, f"{where}.layers[{i}]")
        for i, layer in enumerate(cast(Sequence[object], layers))
    )


def _layer_from_spec(rules: object, where: str) -> Layer:
    if isinstance(rules, str | Mapping) or not isinstance(rules, Sequence):
        raise RemitFormatError(f"{where}: expected a list of rules, got {_kind(rules)}")
    items = cast(Sequence[object], rules)
    if not items:
        raise RemitFormatError(
            f"{where}: needs at least one rule (to grant nothing, leave the tool out)"
        )
    return tuple(Rule.from_spec(r, where=f"{where}[{i}]") for i, r in enumerate(items))


def _is_rules_table(table: Mapping[object, object]) -> bool:
    """Whether a tool table is written with rules (else it is the simple shape).

    Backwards compatible: an argument named ``rules`` or ``layers`` with constraint
    specs, or ``fallback`` with a constraint table, still reads as the simple shape.
    An empty ``rules`` or ``layers`` list is read as rules (and refused), never as an
    unconstrained argument that would allow every call.
    """
    rules, layers = table.get("rules"), table.get("layers")
    if (isinstance(rules, list | tuple) and not rules) or (
        isinstance(layers, list | tuple) and not layers
    ):
        return True
    if isinstance(rules, list | tuple) and any(
        isinstance(r, Rule) or (isinstance(r, Mapping) and any(k in r for k in _RULE_KEYS))
        for r in cast(Sequence[object], rules)
    ):
        return True
    return isinstance(layers, list | tuple) and any(
        isinstance(x, list | tuple) for x in cast(Sequence[object], layers)
    )


@dataclass(frozen=True, slots=True, init=False)
class ToolGrant:
    r"""Permission to call one tool: simple argument constraints, or ordered rules.

    *Simple* (``args``): a constraint, a list of constraints, or their dict forms per
    argument, stored as a read-only mapping of tuples; all must hold. Arguments
    without constraints are not limited here (the tool validates its own types); a
    constrained argument that is missing from a call is denied. This is the same as
    one allow rule, but its decisions name no rule id.

    *Rules* (``rules``): ordered :class:`Rule`\ s, the first matching one decides; when
    none matches the call is denied. Rule ids are ``<tool>#<n>``, 1-based. A grant
    narrowed by a child keeps *layers*: the parent's rules, then the child's, each
    layer evaluated in that order and all of them must allow the call (ids keep
    counting across layers, so a parent's rule keeps its id in every descendant).

    ``fallback`` is what happens when a call is denied: ``"tell"`` (the default,
    stored as None when not named), ``"stop"`` or ``"ask"``.

    >>> g = ToolGrant("write_file", {"path": within("out/")})
    >>> g.check({"path": "/etc/x", "text": "hi"})
    "write_file: argument 'path'='/etc/x' violates within('out/'): '/etc/x' is not within 'out/'"
    >>> g = ToolGrant("send", rules=[forbid({"n": between(10, None)}), allow()], fallback="ask")
    >>> g.evaluate({"n": 12}).reason
    "send: forbidden by rule send#1: argument 'n'=12 matches between(10, None)"
    >>> g.evaluate({"n": 2}), g.effective_fallback
    (Verdict(reason=None, rule='send#2', note=None), 'ask')
    """

    name: str
    #: argument name → constraints, sorted by argument name (empty for a rules grant)
    args: ArgRules
    #: the rules of each layer, parents' first (empty for a simple grant)
    layers: tuple[Layer, ...]
    #: the fallback named for this grant; None means the default, "tell"
    fallback: Fallback | None
    _items: tuple[tuple[str, tuple[Constraint, ...]], ...] = field(repr=False, compare=False)
    _plan: tuple[tuple[tuple[str, Rule], ...], ...] = field(repr=False, compare=False)
    # compiled on first use by quick(): grants are built far more often than checked
    _quick: _ArgsTest[Verdict | None] | None = field(repr=False, compare=False)

    def __init__(
        self,
        name: str,
        args: Mapping[str, ConstraintSpec] | None = None,
        *,
        rules: Sequence[RuleSpec] | None = None,
        layers: Sequence[Sequence[RuleSpec]] | None = None,
        fallback: Fallback | None = None,
    ) -> None:
        where = f"tools.{name}"
        if (rules is not None or layers is not None) and args:
            raise RemitFormatError(
                f"{where}: give either argument constraints or rules, not both "
                "(put the constraints in an allow rule)"
            )
        parsed = () if rules is None and layers is None else _layers_from_spec(rules, layers, where)
        self._init(name, {} if args is None else args, parsed, fallback, None)

    def _init(
        self,
        name: object,
        args: object,
        layers: tuple[Layer, ...],
        fallback: object,
        where: str | None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise RemitFormatError(
                f"{where or 'tools'}: tool names must be non-empty strings, got {_show(name)}"
            )
        where = where or f"tools.{name}"
        fb = None if fallback is None else _fallback(fallback, f"{where}.fallback")
        items = _normalize_args(name, args, where)
        if "fallback" in items and fb is not None:
            raise RemitFormatError(
                f"{where}.fallback: an argument named 'fallback' cannot be combined with a "
                "fallback in the simple shape; write the grant as rules"
            )
        self._set(name, items, layers, fb)

    def _set(
        self,
        name: str,
        args: dict[str, tuple[Constraint, ...]],
        layers: tuple[Layer, ...],
        fallback: Fallback | None,
    ) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "args", MappingProxyType(args))
        object.__setattr__(self, "_items", tuple(args.items()))
        object.__setattr__(self, "layers", layers)
        object.__setattr__(self, "fallback", fallback)
        plan: list[tuple[tuple[str, Rule], ...]] = []
        n = 0
        for layer in layers:
            ids = range(n + 1, n + len(layer) + 1)
            plan.append(tuple((f"{name}#{i}", r) for i, r in zip(ids, layer, strict=True)))
            n += len(layer)
        object.__setattr__(self, "_plan", tuple(plan))
        object.__setattr__(self, "_quick", None)

    @classmethod
    def _make(
        cls,
        name: str,
        args: dict[str, tuple[Constraint, ...]],
        layers: tuple[Layer, ...],
        fallback: Fallback | None,
    ) -> ToolGrant:
        grant = object.__new__(cls)
        grant._set(name, args, layers, fallback)
        return grant

    @classmethod
    def from_spec(cls, name: str, spec: object, *, where: str | None = None) -> ToolGrant:
        """Build from the file form; errors name ``where`` (default ``tools.<name>``).

        The simple shape ``{"path": {"within": "out/"}}`` (plus optionally
        ``"fallback": "stop"``), or ``{"fallback": ..., "rules": [{"allow": {...}}]}``,
        or, for a grant narrowed by children, ``{"fallback": ..., "layers": [[...], ...]}``.

        >>> ToolGrant.from_spec("calc", {"expression": [{"max_len": 200}]})
        ToolGrant(name='calc', args={'expression': (max_len(200),)})
        """
        grant = object.__new__(cls)
        if not isinstance(cast(object, name), str) or not name:
            raise RemitFormatError(
                f"{where or 'tools'}: tool names must be non-empty strings, got {_show(name)}"
            )
        at = where or f"tools.{name}"
        if isinstance(spec, Mapping):
            table = cast(Mapping[object, object], spec)
            if _is_rules_table(table):
                for key in table:
                    if key not in _RULES_GRANT_KEYS:
                        raise RemitFormatError(
                            f"{at}.{key}: unknown key in a tool with rules (expected "
                            "fallback and rules; put argument constraints in a rule)"
                        )
                layers = _layers_from_spec(table.get("rules"), table.get("layers"), at)
                grant._init(name, {}, layers, table.get("fallback"), where)
                return grant
            fb = table.get("fallback")
            if isinstance(fb, str):  # a string is never an argument's constraint spec
                rest = {k: v for k, v in table.items() if k != "fallback"}
                grant._init(name, rest, (), fb, where)
                return grant
        grant._init(name, spec, (), None, where)
        return grant

    def spec(self) -> dict[str, Any]:
        """The file form read by :meth:`from_spec` (rules only if the grant has them)."""
        d: dict[str, Any] = {} if self.fallback is None else {"fallback": self.fallback}
        if not self.layers:
            d.update(_args_spec(self._items))
        elif len(self.layers) == 1:
            d["rules"] = [r.spec() for r in self.layers[0]]
        else:
            d["layers"] = [[r.spec() for r in layer] for layer in self.layers]
        return d

    @property
    def effective_fallback(self) -> Fallback:
        """The fallback that applies: the named one, else ``"tell"``."""
        return self.fallback or "tell"

    @property
    def rules(self) -> tuple[tuple[str, Rule], ...]:
        """Every rule with its id, parents' layers first (empty for a simple grant)."""
        return tuple(entry for layer in self._plan for entry in layer)

    # --- checking --------------------------------------------------------------------

    def quick(self, args: Mapping[str, object], inputs_text: str | None = None) -> Verdict | None:
        """The verdict of an allowed call, exactly as :meth:`evaluate` gives it, or None
        if the call is denied (then :meth:`evaluate` says why).

        The fast path for checking calls: the constraints are compiled once per grant and
        build no reason text.

        >>> g = ToolGrant("send", rules=[forbid({"to": equals("eve")}), allow()])
        >>> g.quick({"to": "bob"}), g.quick({"to": "eve"})
        (Verdict(reason=None, rule='send#2', note=None), None)
        """
        run = self._quick
        if run is None:
            run = _compile_grant(self)
            object.__setattr__(self, "_quick", run)
        return run(args, inputs_text)

    def check(self, args: Mapping[str, object], inputs_text: str | None = None) -> str | None:
        """None if the call's ``args`` are allowed, else the reason.

        ``inputs_text`` (the task's goal and inputs) is what ``in_inputs`` compares with.
        """
        if self._plan:
            return self.evaluate(args, inputs_text=inputs_text).reason
        for arg, cs in self._items:
            value = args.get(arg, _MISSING)
            if value is _MISSING:
                shown = " and ".join(c.describe() for c in cs)
                return f"{self.name}: argument {arg!r} is missing but constrained by {shown}"
            for c in cs:
                reason = c.check_in(value, inputs_text) if type(c) is InInputs else c.check(value)
                if reason is not None:
                    return (
                        f"{self.name}: argument {arg!r}={_show(value)} violates "
                        f"{c.describe()}: {reason}"
                    )
        return None

    def evaluate(self, args: Mapping[str, object], *, inputs_text: str | None = None) -> Verdict:
        """The decision with the rule that made it (an allowed call: the last layer's).

        >>> g = ToolGrant("w", rules=[allow({"path": within("out/")}, reason="only out/")])
        >>> g.evaluate({"path": "out/a"})
        Verdict(reason=None, rule='w#1', note=None)
        >>> print(g.evaluate({"path": "src/a"}).reason)  # doctest: +NORMALIZE_WHITESPACE
        w: no rule allows this call; rule w#1 (only out/) fails: argument 'path'='src/a' violates
        within('out/'): 'src/a' is not within 'out/'
        """
        if not self._plan:
            return Verdict(self.check(args, inputs_text))
        decided: str | None = None
        for layer in self._plan:
            decided = None
            nearest: tuple[str, Rule] | None = None
            for rid, rule in layer:
                if rule._hit(args, inputs_text):  # pyright: ignore[reportPrivateUsage]
                    if rule.effect == "forbid":
                        note = "" if rule.reason is None else f" ({rule.reason})"
                        matched = rule._matched(args)  # pyright: ignore[reportPrivateUsage]
                        return Verdict(
                            f"{self.name}: forbidden by rule {rid}{note}"
                            + (f": {matched}" if matched else ""),
                            rid,
                            rule.reason,
                        )
                    decided = rid
                    break
                if nearest is None and rule.effect == "allow":
                    nearest = (rid, rule)
            if decided is None:
                if nearest is None:
                    return Verdict(f"{self.name}: no rule allows this call (its rules only forbid)")
                rid, rule = nearest
                miss = rule.miss(args, inputs_text)
                note = "" if rule.reason is None else f" ({rule.reason})"
                return Verdict(
                    f"{self.name}: no rule allows this call; rule {rid}{note} fails: {miss}",
                    rid,
                    rule.reason,
                )
        return Verdict(None, decided)

    # --- narrowing ---------------------------------------------------------------------

    def _layer_view(self) -> tuple[Layer, ...]:
        """This grant as layers: a simple grant is one allow rule (none if unconstrained)."""
        if self.layers or not self._items:
            return self.layers
        rule = object.__new__(Rule)
        rule._init("allow", dict(self._items), None, f"tools.{self.name}")  # pyright: ignore[reportPrivateUsage]
        return ((rule,),)

    def narrowed(self, child: ToolGrant) -> ToolGrant:
        """The intersection of this grant and ``child``'s (never wider than either).

        Two simple grants conjoin their constraints, dropping child constraints that a
        parent constraint already implies. Otherwise the result keeps this grant's
        layers and appends the child's that add something, so the parent's rules are
        evaluated first and still name themselves in explanations.

        The fallback is inherited unless the child names one, which may be as strict
        or stricter (``ask`` < ``tell`` < ``stop``) but not laxer: ``ask`` lets a
        person approve a call, so a child may not turn the parent's outright denials
        into questions; it may turn ``ask`` into ``tell`` or ``stop`` for a task that
        runs unattended, or ``tell`` into ``stop``. Raises
        :class:`~remit.errors.WideningError` (``tools.<name>.fallback``) otherwise.

        >>> ToolGrant("w", {"path": within("out/")}).narrowed(
        ...     ToolGrant("w", {"path": [within("out/"), max_len(9)]}))
        ToolGrant(name='w', args={'path': (within('out/'), max_len(9))})
        """
        if child.name != self.name:
            raise WideningError(
                f"tools.{child.name}", f"cannot narrow the grant of {self.name!r} with it"
            )
        fallback = self.fallback
        if child.fallback is not None:
            mine = self.effective_fallback
            if _STRICTNESS[child.fallback] < _STRICTNESS[mine]:
                raise WideningError(
                    f"tools.{self.name}.fallback",
                    f"child asks for {child.fallback!r}, laxer than the parent's {mine!r} "
                    "(order: 'ask' < 'tell' < 'stop')",
                )
            if child.fallback != mine:
                fallback = child.fallback
        if not self.layers and not child.layers:
            merged = dict(self._items)
            for arg, ccs in child._items:
                pcs = merged.get(arg, ())
                extra = tuple(c for c in ccs if not any(p.implies(c) for p in pcs))
                if extra:
                    merged[arg] = pcs + extra
            same = len(merged) == len(self._items) and all(merged[a] is cs for a, cs in self._items)
            if same and fallback == self.fallback:
                return self
            return ToolGrant._make(self.name, dict(sorted(merged.items())), (), fallback)
        layers = list(self._layer_view())
        added = False
        for layer in child._layer_view():
            if not any(_layer_within(mine, layer) for mine in layers):
                layers.append(layer)
                added = True
        if not added:
            if fallback == self.fallback:
                return self
            return ToolGrant._make(self.name, dict(self._items), self.layers, fallback)
        return ToolGrant._make(self.name, {}, tuple(layers), fallback)

    def widening(self, parent: ToolGrant) -> str | None:
        """What makes this grant wider than ``parent``, or None: an argument name (both
        simple), ``"rules"`` (a parent rule layer without an equal or narrower layer
        here; dropping a parent's forbid rule is widening), or ``"fallback"``.
        """
        if _STRICTNESS[self.effective_fallback] < _STRICTNESS[parent.effective_fallback]:
            return "fallback"
        if not self.layers and not parent.layers:
            return _args_imply(self.args, parent._items)
        mine = self._layer_view()
        for theirs in parent._layer_view():
            if not any(_layer_within(layer, theirs) for layer in mine):
                return "rules"
        return None

    def is_within(self, parent: ToolGrant) -> bool:
        """Whether every call this grant allows, ``parent`` allows too (conservatively),
        with a fallback at least as strict.

        >>> parent = ToolGrant("w", {"path": within("out")})
        >>> ToolGrant("w", {"path": within("out/a")}).is_within(parent)
        True
        """
        return self.name == parent.name and self.widening(parent) is None

    def __repr__(self) -> str:
        fallback = "" if self.fallback is None else f", fallback={self.fallback!r}"
        if self.layers:
            return f"ToolGrant(name={self.name!r}, layers={self.layers!r}{fallback})"
        return f"ToolGrant(name={self.name!r}, args={dict(self.args)!r}{fallback})"
