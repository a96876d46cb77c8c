"""Constraints on the shape of a value: every item of a list (``each``), an argument
left out (``absent``, ``absent_or``); argument paths (``"attachments[].file_id"``); and
the one function that finds where a call fails its constraints.

The constraints here apply other constraints inside a value, so :meth:`Constraint.locate`
names the place that failed (``[1]`` for the second item) and a grant's reason names
it after the argument: ``argument 'recipients[1]'='eve@evil.io' violates one_of(...)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar, NamedTuple

from remit.errors import RemitFormatError
from remit.policy._constraints import Constraint, Miss
from remit.policy._inputs import needs_inputs
from remit.policy._matching import MatchTimeout, within_budget
from remit.policy._values import MISSING, kind, show


def _inner(op: str, constraints: object) -> tuple[Constraint, ...]:
    if not isinstance(constraints, Iterable) or isinstance(constraints, str | Mapping):
        raise RemitFormatError(f"{op}: expected constraints, got {kind(constraints)}")
    out: list[Constraint] = []
    for c in constraints:  # pyright: ignore[reportUnknownVariableType]
        if not isinstance(c, Constraint):
            raise RemitFormatError(
                f"{op}: expected constraints such as one_of(...), got {kind(c)}"  # pyright: ignore[reportUnknownArgumentType]
            )
        if c not in out:
            out.append(c)
    if not out:
        raise RemitFormatError(f"{op}: needs at least one constraint")
    return tuple(out)


def _all_imply(mine: tuple[Constraint, ...], theirs: tuple[Constraint, ...]) -> bool:
    """Whether the conjunction ``mine`` implies every constraint of ``theirs``."""
    return all(any(a.implies(b) for a in mine) for b in theirs)


def _spec_of(constraints: tuple[Constraint, ...]) -> Any:
    if len(constraints) == 1:
        return constraints[0].to_spec()
    return [c.to_spec() for c in constraints]


def _text(c: Constraint, value: object, inputs_text: str | None) -> str | None:
    """What :meth:`Constraint.check_in` says for a constraint that applies others inside
    a value: the reason, after the place it failed (``"[1]: ..."``)."""
    try:
        with within_budget():
            miss = c.locate(value, inputs_text)
    except MatchTimeout as e:
        return e.reason if not e.where else f"{e.where}: {e.reason}"
    if miss is None:
        return None
    return miss.reason if not miss.where else f"{miss.where}: {miss.reason}"


@dataclass(frozen=True, slots=True, repr=False)
class _Wrapping(Constraint):
    """A constraint made of inner ones (``each``, ``absent_or``): one implies another of
    its kind when its inner constraints imply the other's."""

    constraints: tuple[Constraint, ...]

    def parts(self) -> tuple[Constraint, ...]:
        return self.constraints

    def arg(self) -> Any:
        return _spec_of(self.constraints)

    def describe(self) -> str:
        return f"{self.op}({', '.join(c.describe() for c in self.constraints)})"

    def implies(self, other: Constraint) -> bool:
        if type(other) is type(self):
            return _all_imply(self.constraints, other.parts())
        return Constraint.implies(self, other)


@dataclass(frozen=True, slots=True, repr=False)
class Each(_Wrapping):
    """Accepts a list (or tuple) whose every item satisfies all of ``constraints``; an
    empty list is accepted, anything else (a string, a mapping) is not. The reason names
    the first item that fails, by its index.

    >>> each(one_of("a@x.io", "b@x.io")).check(["a@x.io", "eve@evil.io"])
    "[1]: 'eve@evil.io' is not one of 'a@x.io', 'b@x.io'"
    >>> each(one_of("a@x.io", "b@x.io")).check("a@x.io")
    'expected a list, got str'
    """

    op: ClassVar[str] = "each"

    def __post_init__(self) -> None:
        object.__setattr__(self, "constraints", _inner("each", self.constraints))

    def check(self, value: object) -> str | None:
        return _text(self, value, None)

    def check_in(self, value: object, inputs_text: str | None) -> str | None:
        return _text(self, value, inputs_text)

    def locate(self, value: object, inputs_text: str | None) -> Miss | None:
        if not isinstance(value, list | tuple):
            return Miss("", value, self, f"expected a list, got {kind(value)}")
        for i, item in enumerate(value):  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
            for c in self.constraints:
                try:
                    miss = c.locate(item, inputs_text)
                except MatchTimeout as e:
                    e.where = f"[{i}]{e.where}"
                    raise
                if miss is not None:
                    return miss._replace(where=f"[{i}]{miss.where}")
        return None


@dataclass(frozen=True, slots=True, repr=False)
class Absent(Constraint):
    """Accepts an argument that is not passed, or is null (None), and nothing else.

    >>> absent().check(None) is None, absent().check(["eve@evil.io"])
    (True, 'must be left out (or null)')
    """

    op: ClassVar[str] = "absent"
    accepts_missing: ClassVar[bool] = True

    def check(self, value: object) -> str | None:
        if value is None or value is MISSING:
            return None
        return "must be left out (or null)"

    def arg(self) -> Any:
        return True

    def describe(self) -> str:
        return "absent()"

    def implies(self, other: Constraint) -> bool:
        return isinstance(other, Absent | AbsentOr) or Constraint.implies(self, other)


@dataclass(frozen=True, slots=True, repr=False)
class AbsentOr(_Wrapping):
    """Accepts an argument that is not passed or is null, or else satisfies all of
    ``constraints``: how an optional argument is constrained.

    >>> c = absent_or(each(one_of("a@x.io")))
    >>> c.check(None) is None, c.check(["a@x.io"]) is None, c.check(["b@x.io"])
    (True, True, "[0]: 'b@x.io' is not one of 'a@x.io'")
    """

    op: ClassVar[str] = "absent_or"
    accepts_missing: ClassVar[bool] = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "constraints", _inner("absent_or", self.constraints))

    def check(self, value: object) -> str | None:
        return _text(self, value, None)

    def check_in(self, value: object, inputs_text: str | None) -> str | None:
        return _text(self, value, inputs_text)

    def locate(self, value: object, inputs_text: str | None) -> Miss | None:
        if value is None or value is MISSING:
            return None
        for c in self.constraints:
            miss = c.locate(value, inputs_text)
            if miss is not None:
                return miss
        return None

    def implied_by(self, other: Constraint) -> bool:
        # What other accepts is present and not null (else other is absent or
        # absent_or, which imply by their own rules), so it must satisfy every part.
        return all(other.implies(c) for c in self.constraints)


# --- argument paths ------------------------------------------------------------------


class ArgPath(NamedTuple):
    """A parsed argument key such as ``attachments[].file_id``."""

    #: the argument's name
    root: str
    #: after it, in order: a field name, or None for every item of a list (``[]``)
    steps: tuple[str | None, ...]


_SPECIAL = ".[]"


def _name_at(key: str, i: int) -> int:
    while i < len(key) and key[i] not in _SPECIAL:
        i += 1
    return i


def parse_arg_path(key: str) -> ArgPath | None:
    """The path a key names, or None for a plain argument name (no ``.``, ``[`` or ``]``).

    >>> parse_arg_path("attachments[].file_id")
    ArgPath(root='attachments', steps=(None, 'file_id'))
    >>> parse_arg_path("attachments[0].file_id")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    remit.errors.RemitFormatError: malformed argument path 'attachments[0].file_id': ...
    """
    if not any(ch in key for ch in _SPECIAL):
        return None

    def bad(what: str) -> RemitFormatError:
        return RemitFormatError(
            f"malformed argument path {key!r}: {what} (a path is an argument name, then "
            "'.field' for a field of a mapping or '[]' for every item of a list, "
            "e.g. 'attachments[].file_id')"
        )

    i = _name_at(key, 0)
    if i == 0:
        raise bad("it must start with an argument name")
    root, steps = key[:i], list[str | None]()
    while i < len(key):
        ch = key[i]
        if ch == "[":
            if not key.startswith("[]", i):
                raise bad(f"'[' at position {i} must be followed by ']': indexes are not supported")
            steps.append(None)
            i += 2
        elif ch == ".":
            j = _name_at(key, i + 1)
            if j == i + 1:
                raise bad(f"empty field name at position {i + 1}")
            steps.append(key[i + 1 : j])
            i = j
        elif ch == "]":
            raise bad(f"']' at position {i} has no '['")
        else:
            raise bad(f"expected '.' or '[]' after '[]' at position {i}")
    return ArgPath(root, tuple(steps))


arg_path = lru_cache(maxsize=1024)(parse_arg_path)


def _written(steps: tuple[str | None, ...]) -> str:
    return "".join("[]" if s is None else f".{s}" for s in steps)


def leaves(path: ArgPath, args: Mapping[str, object]) -> Iterator[tuple[str, object, str | None]]:
    """Every place ``path`` names in a call: ``(location, value, problem)``. The value is
    MISSING where a field (or the argument) is not there or a mapping or list on the way
    is null; ``problem`` says why a value on the way cannot hold the rest of the path."""
    return _walk(args.get(path.root, MISSING), path.root, path.steps, 0)


def _walk(
    value: object, loc: str, steps: tuple[str | None, ...], i: int
) -> Iterator[tuple[str, object, str | None]]:
    if i == len(steps):
        yield loc, value, None
        return
    if value is MISSING or value is None:
        yield loc + _written(steps[i:]), MISSING, None
        return
    step = steps[i]
    if step is None:
        if not isinstance(value, list | tuple):
            yield loc, value, f"expected a list for '[]', got {kind(value)}"
            return
        for n, item in enumerate(value):  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
            yield from _walk(item, f"{loc}[{n}]", steps, i + 1)
    elif not isinstance(value, Mapping):
        yield loc, value, f"expected a mapping with the field {step!r}, got {kind(value)}"
    else:
        field = value.get(step, MISSING)  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        yield from _walk(field, f"{loc}.{step}", steps, i + 1)


def arg_failure(
    key: str,
    cs: tuple[Constraint, ...],
    args: Mapping[str, object],
    inputs_text: str | None,
    forbid: bool = False,
) -> str | None:
    """None if every constraint of ``cs`` holds at every place ``key`` names in ``args``
    (the argument, or for a path every field it reaches), else the reason, naming the
    place: ``argument 'to[1]'='eve' violates one_of('bob')``.

    A missing place fails unless every constraint accepts a missing argument; so does a
    value on the way that cannot hold the rest of the path (a string where a list of
    mappings should be), whatever the constraints. A ``matches`` that runs out of time
    raises :class:`MatchTimeout` with the place in ``located``: the call is denied. In a
    forbid rule (``forbid``) without the task's inputs, a constraint that needs them
    holds: such a rule fails closed, it forbids.
    """
    path = arg_path(key)
    if path is None:
        return _failure(key, args.get(key, MISSING), cs, inputs_text, forbid)
    for loc, value, problem in leaves(path, args):
        if problem is not None:
            return f"argument {loc!r}={show(value)} does not fit the path {key!r}: {problem}"
        reason = _failure(loc, value, cs, inputs_text, forbid)
        if reason is not None:
            return reason
    return None


def _failure(
    loc: str, value: object, cs: tuple[Constraint, ...], inputs_text: str | None, forbid: bool
) -> str | None:
    if value is MISSING:
        needed = [c for c in cs if not c.accepts_missing]
        if not needed:
            return None
        shown = " and ".join(c.describe() for c in needed)
        return f"argument {loc!r} is missing but constrained by {shown}"
    skip = forbid and inputs_text is None
    for c in cs:
        if skip and needs_inputs(c):
            continue  # unknown without context: a forbid rule fails closed
        try:
            miss = c.locate(value, inputs_text)
        except MatchTimeout as e:
            e.located = (
                f"argument {loc + e.where!r}={show(e.value)} could not be checked against "
                f"{e.constraint.describe()}: {e.reason}"
            )
            raise
        if miss is not None:
            return (
                f"argument {loc + miss.where!r}={show(miss.value)} violates "
                f"{miss.constraint.describe()}: {miss.reason}"
            )
    return None


# --- constructors --------------------------------------------------------------------


def each(*constraints: Constraint) -> Each:
    """Accept lists whose every item satisfies ``constraints``:
    ``each(one_of("a", "b")).check(["a", "b", "a"])`` → None."""
    return Each(constraints)


def absent() -> Absent:
    """Accept only an argument left out (or null): ``absent().check(None)`` → None."""
    return Absent()


def absent_or(*constraints: Constraint) -> AbsentOr:
    """Accept an argument left out (or null), or else satisfying ``constraints``."""
    return AbsentOr(constraints)
