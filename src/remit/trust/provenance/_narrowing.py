"""How a child's remit narrows its parent's, in short phrases for people (``remit show --chain``).

Separate because it is pure presentation: nothing is signed or checked here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from remit.core.remit import Remit


def narrowing(parent: Remit, child: Remit) -> list[str]:
    """How ``child`` narrows ``parent``, one short phrase per change.

    >>> from remit.policy import within
    >>> p = Remit(tools={"read": {}, "write": {}}, depth=2)
    >>> narrowing(p, p.narrow(tools={"read": {"path": within("src/")}}))
    ['tools: dropped write', 'read: path within src/', 'depth 2 -> 1']
    """
    out: list[str] = []
    a, b = parent.to_dict(), child.to_dict()
    dropped = sorted(set(a["tools"]) - set(b["tools"]))
    if dropped:
        out.append("tools: dropped " + ", ".join(dropped))
    for name, spec in sorted(b["tools"].items()):
        before = a["tools"].get(name, {})
        if spec == before:
            continue
        for arg, c in sorted(spec.items()):
            old = _as_list(before.get(arg))
            new = _as_list(c)
            if old == new:
                continue
            if new[: len(old)] == old:  # constraints stack: name only the added ones
                out.extend(f"{name}: {arg} {_spec_text(x)}" for x in new[len(old) :])
            else:
                out.append(f"{name}: {arg} {_spec_text(c)}")
    for dim, value in sorted(b["budget"].items()):
        old = a["budget"].get(dim)
        if old != value:
            out.append(
                f"budget.{dim} {_num(old) if old is not None else 'unlimited'} -> {_num(value)}"
            )
    if b.get("deadline") != a.get("deadline") and b.get("deadline") is not None:
        out.append(f"deadline -> {_when(b['deadline'])}")
    if b["depth"] != a["depth"]:
        out.append(f"depth {a['depth']} -> {b['depth']}")
    return out


def _as_list(spec: Any) -> list[Any]:
    if spec is None:
        return []
    return list(spec) if isinstance(spec, list) else [spec]  # pyright: ignore[reportUnknownArgumentType]


def _num(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(t))


def _spec_text(spec: Any) -> str:
    if isinstance(spec, Mapping) and len(spec) == 1:  # pyright: ignore[reportUnknownArgumentType]
        ((op, value),) = spec.items()  # pyright: ignore[reportUnknownVariableType]
        return f"{op} {value if isinstance(value, str) else json.dumps(value)}"
    return json.dumps(spec, sort_keys=True)
