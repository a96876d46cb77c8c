"""Constraints compiled into closures: the per-call fast path of a grant.

An optimisation of the reference checks of :mod:`remit.policy._constraints` and of the
rules in :mod:`remit.policy._grant`, kept in a module of its own so it can be read side
by side with them and changed without touching what a constraint means.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import repeat
from typing import TypeAlias, TypeVar, cast

from remit.policy._constraints import SIZED, Between, Constraint, Equals, MaxLen, OneOf
from remit.policy._inputs import InInputs, needs_inputs
from remit.policy._locations import Within, is_under, normpath
from remit.policy._matching import Matches, guarded
from remit.policy._structure import Absent, AbsentOr, Each, arg_path
from remit.policy._values import MISSING, eq_key, fold

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
ArgsTest: TypeAlias = Callable[[Mapping[str, object], "str | None"], _T]

_NEG_INF = -math.inf
_POS_INF = math.inf


def _equals_pred(c: Equals) -> _Pred:
    key = eq_key(c.value)
    if type(c.value) is str:
        want = c.value
        return lambda v, t: v == want if type(v) is str else eq_key(v) == key
    return lambda v, t: eq_key(v) == key


def _one_of_pred(c: OneOf) -> _Pred:
    check = c.check
    if c.case == "insensitive":
        folded = frozenset(fold(str(v)) for v in c.values if isinstance(v, str))
        return lambda v, t: fold(v) in folded if type(v) is str else check(v) is None
    keys = frozenset(eq_key(v) for v in c.values)
    strs = frozenset(v for v in c.values if type(v) is str)
    return lambda v, t: v in strs if type(v) is str else eq_key(v) in keys


def _matches_pred(c: Matches) -> _Pred:
    test = c.test  # raises MatchTimeout: the caller denies the call (see guarded)
    return lambda v, t: isinstance(v, str) and test(v)


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
    return lambda v, t: isinstance(v, SIZED) and len(v) <= n


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
            # normpath's own fast test, inlined: an already normal path is itself
            if not v or v[0] == "." or v[-1] == "/" or "//" in v or "/." in v:
                v = normpath(v)
            return v == prefix or v.startswith(below)

        return one

    def pred(v: object, t: str | None) -> bool:
        if type(v) is not str:
            return reference(v)
        if "\x00" in v or "\\" in v:
            return False
        norm = normpath(v)
        for p, below in tests:
            if norm != p and not norm.startswith(below):
                return False
        return not general or all(is_under(norm, p) for p in general)

    return pred


def _generic_pred(c: Constraint) -> _Pred:
    check_in = c.check_in
    return lambda v, t: check_in(v, t) is None


def _each_pred(c: Each) -> _Pred:
    item_ok = _arg_pred(c.constraints, False)

    def pred(v: object, t: str | None) -> bool:
        return isinstance(v, list | tuple) and all(map(item_ok, v, repeat(t)))  # pyright: ignore[reportUnknownArgumentType]

    return pred


def _absent_or_pred(c: AbsentOr) -> _Pred:
    # a missing argument reaches a compiled check as None (see arg_checks)
    present_ok = _arg_pred(c.constraints, False)
    return lambda v, t: v is None or present_ok(v, t)


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
    if kind is Absent:
        return lambda v, t: v is None
    if kind is Each:
        pred = _each_pred(cast(Each, c))
    elif kind is AbsentOr:
        pred = _absent_or_pred(cast(AbsentOr, c))
    else:
        pred = _generic_pred(c)
    if forbid and needs_inputs(c):
        # unknown without the task's inputs: a forbid rule fails closed (holds)
        return lambda v, t: t is None or pred(v, t)
    return pred


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


#: one argument's compiled test: its name, its predicate, and what stands for it when
#: the call leaves it out: MISSING (the test fails without calling the predicate) or
#: None, when every constraint accepts a missing argument (``absent``, ``absent_or``)
_ArgCheck: TypeAlias = tuple[str, _Pred, object]


def args_test(checks: Sequence[_ArgCheck], yes: _T, no: _T) -> ArgsTest[_T]:
    """(args, inputs_text) -> ``yes`` if every named argument passes its predicate
    (present, or left out where that is allowed), else ``no``; unrolled for the usual one
    to three constrained arguments."""
    missing = MISSING
    if not checks:
        return lambda args, t: yes
    if len(checks) == 1:
        ((n1, p1, d1),) = checks

        def one(args: Mapping[str, object], t: str | None) -> _T:
            v = args.get(n1, d1)
            return yes if v is not missing and p1(v, t) else no

        return one
    if len(checks) == 2:
        (n1, p1, d1), (n2, p2, d2) = checks

        def two(args: Mapping[str, object], t: str | None) -> _T:
            v = args.get(n1, d1)
            if v is missing or not p1(v, t):
                return no
            v = args.get(n2, d2)
            return yes if v is not missing and p2(v, t) else no

        return two
    if len(checks) == 3:
        (n1, p1, d1), (n2, p2, d2), (n3, p3, d3) = checks

        def three(args: Mapping[str, object], t: str | None) -> _T:
            v = args.get(n1, d1)
            if v is missing or not p1(v, t):
                return no
            v = args.get(n2, d2)
            if v is missing or not p2(v, t):
                return no
            v = args.get(n3, d3)
            return yes if v is not missing and p3(v, t) else no

        return three
    every = tuple(checks)

    def many(args: Mapping[str, object], t: str | None) -> _T:
        for name, pred, default in every:
            v = args.get(name, default)
            if v is missing or not pred(v, t):
                return no
        return yes

    return many


def _path_pred(steps: tuple[str | None, ...], leaf: _Pred, missing_ok: bool) -> _Pred:
    """The test of every place an argument path reaches, as :func:`leaves` finds them: a
    place that is not there (or a null on the way) passes iff ``missing_ok``; a value on
    the way of the wrong kind fails."""
    n = len(steps)

    def at(v: object, i: int, t: str | None) -> bool:
        if i == n:
            return missing_ok if v is MISSING else leaf(v, t)
        if v is MISSING or v is None:
            return missing_ok
        step = steps[i]
        if step is None:
            if not isinstance(v, list | tuple):
                return False
            return all(at(item, i + 1, t) for item in v)  # pyright: ignore[reportUnknownVariableType]
        if not isinstance(v, Mapping):
            return False
        return at(v.get(step, MISSING), i + 1, t)  # pyright: ignore[reportUnknownMemberType]

    # the argument itself reaches the test as None when the call leaves it out
    return lambda v, t: at(v, 0, t)


def arg_checks(
    items: Iterable[tuple[str, tuple[Constraint, ...]]], forbid: bool
) -> list[_ArgCheck]:
    """The compiled test of each argument of ``items``, for :func:`args_test`."""
    checks: list[_ArgCheck] = []
    for key, cs in items:
        missing_ok = all(c.accepts_missing for c in cs)
        pred = _arg_pred(cs, forbid)
        path = arg_path(key)
        if path is None:
            checks.append((key, pred, None if missing_ok else MISSING))
        else:
            checks.append((path.root, _path_pred(path.steps, pred, missing_ok), None))
    return checks


def compile_args(
    items: Iterable[tuple[str, tuple[Constraint, ...]]], *, forbid: bool = False
) -> Callable[[Mapping[str, object], str | None], bool]:
    """A fast test of whether a call's arguments satisfy ``items`` (argument name →
    constraints, as in :attr:`ToolGrant.args`): True exactly when a simple grant's
    :meth:`ToolGrant.check` returns None (``forbid=False``), or when a forbid rule with
    these constraints matches (``forbid=True``: ``in_inputs`` without inputs holds).

    A ``matches`` that runs out of time fails closed: the test answers False, or True
    for a forbid rule (it forbids).

    >>> ok = compile_args({"path": (within("out/"),), "n": (between(0, 9),)}.items())
    >>> ok({"path": "out/a", "n": 3}, None), ok({"path": "out/a"}, None)
    (True, False)
    """
    return guarded(args_test(arg_checks(items, forbid), True, False), forbid)
