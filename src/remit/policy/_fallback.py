"""What happens to a denied call, and the order of strictness in which a child may only
tighten its parent's choice.
"""

from __future__ import annotations

from typing import Literal, TypeAlias, cast

from remit.errors import RemitFormatError
from remit.policy._values import show

#: what happens when a call is denied: the reason goes back to the agent as the tool
#: result ("tell"), the task fails ("stop"), or a person approves or denies ("ask")
Fallback: TypeAlias = Literal["tell", "stop", "ask"]
#: every fallback, from the laxest to the strictest (see :meth:`ToolGrant.narrowed`)
FALLBACKS: tuple[Fallback, ...] = ("ask", "tell", "stop")
STRICTNESS: dict[str, int] = {f: i for i, f in enumerate(FALLBACKS)}


def as_fallback(value: object, where: str) -> Fallback:
    if value not in STRICTNESS:
        raise RemitFormatError(
            f"{where}: expected one of {', '.join(map(repr, FALLBACKS))}, got {show(value)}"
        )
    return cast(Fallback, value)
