"""How values read in reasons and errors: a value's type, a deadline's time."""

from __future__ import annotations

from datetime import UTC, datetime


def kind(value: object) -> str:
    return type(value).__name__


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")
