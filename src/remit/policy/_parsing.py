"""Reading constraints back from their serialized forms (remit files, ``to_dict``).

Apart from the constraint classes so that the file format (the op names, the shapes of
their arguments, errors that name where in a file they are) is read in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

from remit.errors import RemitFormatError
from remit.policy._constraints import Between, Constraint, Equals, MaxLen, OneOf
from remit.policy._inputs import InInputs
from remit.policy._locations import Glob, UrlPrefix, Within
from remit.policy._matching import Matches
from remit.policy._structure import Absent, AbsentOr, Each
from remit.policy._values import kind, show


def _parse_one_of(arg: object, case: Any = "sensitive") -> Constraint:
    if not isinstance(arg, list | tuple):
        raise RemitFormatError(f"one_of: expected a list of values, got {kind(arg)}")
    return OneOf(tuple(arg), case)  # pyright: ignore[reportUnknownArgumentType]


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
    raise RemitFormatError(f"between: expected [lo, hi] or {{min, max}}, got {kind(arg)}")


def _parse_in_inputs(arg: object, case: Any = "sensitive") -> Constraint:
    if arg is not True:
        raise RemitFormatError(f"in_inputs: expected true, got {show(arg)}")
    return InInputs(case)


def _parse_each(arg: object) -> Constraint:
    return Each(constraints_from_spec(arg, "each"))


def _parse_absent(arg: object) -> Constraint:
    if arg is not True:
        raise RemitFormatError(
            f"absent: expected true, got {show(arg)} "
            "(to allow any value, leave the argument unconstrained)"
        )
    return Absent()


def _parse_absent_or(arg: object) -> Constraint:
    return AbsentOr(constraints_from_spec(arg, "absent_or"))


_PARSERS: dict[str, Callable[..., Constraint]] = {
    "equals": Equals,
    "one_of": _parse_one_of,
    "matches": Matches,
    "within": Within,
    "glob": Glob,
    "url_prefix": UrlPrefix,
    "between": _parse_between,
    "max_len": MaxLen,
    "in_inputs": _parse_in_inputs,
    "each": _parse_each,
    "absent": _parse_absent,
    "absent_or": _parse_absent_or,
}
#: every constraint op, in documentation order
OPS: tuple[str, ...] = tuple(_PARSERS)
#: the options an op takes, written next to it: ``{ one_of = [...], case = "insensitive" }``
_OPTIONS: dict[str, tuple[str, ...]] = {"one_of": ("case",), "in_inputs": ("case",)}
_OPTION_NAMES = frozenset(name for names in _OPTIONS.values() for name in names)


def constraint_from_dict(d: object, where: str = "constraint") -> Constraint:
    """Read ``{"within": "out/"}`` or ``{"op": "within", "arg": "out/"}``, with the op's
    options if it has any (``{"one_of": ["Bob"], "case": "insensitive"}``).

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
            f"{where}: expected a constraint table like {{within = 'out/'}}, got {kind(d)}"
        )
    items: Mapping[object, object] = d  # pyright: ignore[reportUnknownVariableType]
    if "op" in items:
        extra = set(items) - {"op", "arg"} - _OPTION_NAMES
        if extra or "arg" not in items:
            raise RemitFormatError(
                f"{where}: expected exactly the keys 'op' and 'arg' (and the op's options), "
                f"got {sorted(map(str, items))}"
            )
        op, arg = items["op"], items["arg"]
        options = {k: v for k, v in items.items() if k not in ("op", "arg")}
    else:
        ops = [k for k in items if k not in _OPTION_NAMES]
        if len(ops) > 1:  # one op and a misspelt option: say so
            known = [k for k in ops if k in _PARSERS]
            ops = known if len(known) == 1 else ops
        if len(ops) != 1:
            raise RemitFormatError(
                f"{where}: a constraint table has exactly one op, got {sorted(map(str, items))}"
            )
        op = ops[0]
        arg = items[op]
        options = {k: v for k, v in items.items() if k != op}
    parse = _PARSERS.get(op) if isinstance(op, str) else None
    if parse is None:
        hint = ""
        if isinstance(arg, Mapping) and isinstance(op, str):
            # TOML reads an unquoted ``options.mode = {...}`` as nested tables
            name = where.rsplit(".", 1)[-1]
            hint = (
                f"; to constrain the field {op!r} of an argument, quote the path: "
                f'"{name}.{op}" = {{...}}'
            )
        raise RemitFormatError(
            f"{where}: unknown constraint op {op!r} (expected one of {', '.join(OPS)}){hint}"
        )
    allowed = _OPTIONS.get(cast(str, op), ())
    for name in options:
        if name not in allowed:
            expected = f"expected {', '.join(allowed)}" if allowed else "it takes none"
            raise RemitFormatError(f"{where}: {op}: unknown option {name!r} ({expected})")
    try:
        return parse(arg, **{cast(str, k): v for k, v in options.items()})
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
        f"{where}: expected a constraint or a list of constraints, got {kind(spec)}"
    )
