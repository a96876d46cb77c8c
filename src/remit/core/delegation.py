"""How a plan records its children's remits: the delegation a journal keeps in place of
a signature per hop.

The engine derives each child's remit from its parent's (:meth:`Remit.narrow`, a relative
deadline resolved then) and the plan row records the result, so a resumed run gives a
child exactly the remit it had, and an auditor checks every hop narrows from the journal
alone. A fan-out's children usually share one remit: each distinct remit is recorded
once (``remits``) and each child names its own by index (``remit_of``). A re-planned
child's row records its remit whole (``remit``).

>>> from remit.core.remit import Remit
>>> r = Remit(depth=0)
>>> data = remits_record([r, r])
>>> data["remit_of"], recorded_remit(data, 1) == r
([0, 0], True)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from remit.core.remit import Remit
from remit.errors import RemitError

__all__ = ["recorded_remit", "recorded_remits", "remits_record"]


def remits_record(remits: Sequence[Remit]) -> dict[str, Any]:
    """The ``remits`` / ``remit_of`` fields of a plan row for children with ``remits``."""
    index: dict[int, int] = {}
    distinct: list[dict[str, Any]] = []
    of: list[int] = []
    for r in remits:
        i = index.get(id(r))
        if i is None:
            i = index[id(r)] = len(distinct)
            distinct.append(r.to_dict())
        of.append(i)
    return {"remits": distinct, "remit_of": of}


def recorded_remits(data: object, count: int) -> list[Remit] | None:
    """The children's remits a plan row recorded (None if it recorded none, as rows
    written before remits were recorded, or not ``count`` of them)."""
    if not isinstance(data, Mapping):
        return None
    try:
        distinct = [Remit.from_dict(d) for d in data["remits"]]  # pyright: ignore[reportUnknownVariableType]
        of: Sequence[int] = data["remit_of"]  # pyright: ignore[reportUnknownVariableType]
        if len(of) != count:
            return None
        return [distinct[i] for i in of]
    except (RemitError, KeyError, IndexError, TypeError):
        return None


def recorded_remit(data: object, position: int) -> Remit | None:
    """Child ``position``'s remit as a plan row recorded it, or the remit a re-plan row
    recorded (``position`` ignored), or None."""
    if not isinstance(data, Mapping):
        return None
    try:
        if "remit" in data:
            return Remit.from_dict(data["remit"])
        spec = data["remits"][data["remit_of"][position]]  # pyright: ignore[reportUnknownVariableType]
        return Remit.from_dict(spec)
    except (RemitError, KeyError, IndexError, TypeError):
        return None
