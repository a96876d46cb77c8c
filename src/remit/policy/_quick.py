"""A grant compiled into one closure: the fast path of :meth:`ToolGrant.quick`, built once
per grant from the compiled constraints of :mod:`remit.policy._compiled`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from remit.policy._compiled import ArgsTest, arg_checks, args_test
from remit.policy._constraints import walk
from remit.policy._matching import Matches, guarded
from remit.policy._rules import Verdict

if TYPE_CHECKING:
    from remit.policy._grant import ToolGrant

#: the verdict of an allowed call to a simple grant (no rule decided)
_ALLOWED = Verdict(None)


def compile_grant(grant: ToolGrant) -> ArgsTest[Verdict | None]:
    """The compiled :meth:`ToolGrant.quick`: a call whose ``matches`` runs out of time
    is denied (None), whatever the rules say."""
    run = _compile_plan(grant)
    items = (c for _, cs in grant._items for c in cs)  # pyright: ignore[reportPrivateUsage]
    rules = (c for _, rule in grant.rules for _, cs in rule._items for c in cs)  # pyright: ignore[reportPrivateUsage]
    if any(isinstance(x, Matches) for c in (*items, *rules) for x in walk(c)):
        return guarded(run, None)
    return run


def _compile_plan(grant: ToolGrant) -> ArgsTest[Verdict | None]:
    plan = grant._plan  # pyright: ignore[reportPrivateUsage]
    if not plan:
        return args_test(arg_checks(grant._items, False), _ALLOWED, None)  # pyright: ignore[reportPrivateUsage]
    layers = tuple(
        tuple(
            (
                Verdict(None, rid),
                rule.effect == "forbid",
                args_test(arg_checks(rule._items, rule.effect == "forbid"), True, False),  # pyright: ignore[reportPrivateUsage]
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
