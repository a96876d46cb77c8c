"""Conservative containment of grants: whether one's argument constraints or layer of
rules allows no more than another's, which narrowing and widening rest on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from remit.policy._constraints import Constraint
from remit.policy._matching import within_budget
from remit.policy._rules import Layer, Rule


def args_imply(
    mine: Mapping[str, tuple[Constraint, ...]], theirs: Iterable[tuple[str, tuple[Constraint, ...]]]
) -> str | None:
    """The first argument of ``theirs`` some constraint of which ``mine`` does not imply."""
    with within_budget():  # implies may match a child's values against our patterns
        for arg, pcs in theirs:
            ccs = mine.get(arg, ())
            for p in pcs:
                if not any(c.implies(p) for c in ccs):
                    return arg
    return None


def _pure_allow(layer: Layer) -> Rule | None:
    """The rule of a layer that is a single allow rule (what a simple grant is)."""
    return layer[0] if len(layer) == 1 and layer[0].effect == "allow" else None


def layer_within(mine: Layer, theirs: Layer) -> bool:
    """Conservatively, whether every call ``mine`` allows is allowed by ``theirs``."""
    if mine == theirs or theirs[0]._allows_all():  # pyright: ignore[reportPrivateUsage]
        return True
    a, b = _pure_allow(mine), _pure_allow(theirs)
    return a is not None and b is not None and args_imply(a.args, b._items) is None  # pyright: ignore[reportPrivateUsage]
