"""Deadlines: the forms a deadline may be given in, resolved to epoch seconds."""

from __future__ import annotations

import math
import re
import time
from datetime import datetime
from typing import TypeAlias

from remit.core.remit._format import kind
from remit.errors import RemitFormatError

DeadlineSpec: TypeAlias = float | int | str | datetime | None

_NUM = r"(\d+(?:\.\d*)?)"
_DURATION = re.compile(rf"(?:{_NUM}d)?(?:{_NUM}h)?(?:{_NUM}m)?(?:{_NUM}s)?")
_UNIT_SECONDS = (86400.0, 3600.0, 60.0, 1.0)


def resolve_deadline(
    value: object, *, now: float | None = None, where: str = "deadline"
) -> float | None:
    """A deadline spec as epoch seconds (None = no deadline); see the module docs.

    >>> resolve_deadline("1h30m", now=1000.0)
    6400.0
    >>> resolve_deadline("2030-01-01T00:00:00Z")
    1893456000.0
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise RemitFormatError(f"{where}: expected a time or duration, got bool")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise RemitFormatError(f"{where}: must be finite, got {value!r}")
        return float(value)
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise RemitFormatError(
                f"{where}: {value.isoformat()!r} has no timezone; add one (e.g. 'Z')"
            )
        return value.timestamp()
    if isinstance(value, str):
        m = _DURATION.fullmatch(value.strip())
        if m is not None and any(m.groups()):
            seconds = sum(float(g) * u for g, u in zip(m.groups(), _UNIT_SECONDS, strict=True) if g)
            return (time.time() if now is None else now) + seconds
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise RemitFormatError(
                f"{where}: cannot parse {value!r} (expected a duration like '15m' or "
                "'1h30m', an ISO-8601 time with timezone, or epoch seconds)"
            ) from None
        return resolve_deadline(parsed, where=where)
    raise RemitFormatError(
        f"{where}: expected a duration, ISO-8601 time or epoch seconds, got {kind(value)}"
    )
