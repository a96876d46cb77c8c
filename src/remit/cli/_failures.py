"""Reading the files that shape failures: a fault plan (``--faults``), routes (``--routes``)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from remit.core.faults import FaultPlan, FaultPlanError
from remit.core.routes import Routes, RoutesError

__all__ = ["load_fault_plan", "load_routes"]


def _read(path: Path, what: str, error: type[FaultPlanError] | type[RoutesError]) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise error(f"{what} {str(path)!r} cannot be read: {e.strerror or e}") from None


def load_fault_plan(path: Path) -> FaultPlan:
    """The fault plan in the TOML file ``path``; errors name the file and the fault."""
    return FaultPlan.from_toml(_read(path, "fault plan", FaultPlanError), where=str(path))


def load_routes(path: Path) -> Routes:
    """The ``[routes]`` table of a TOML or JSON file: ``{capability: {alternative: cost}}``."""
    text = _read(path, "routes file", RoutesError)
    try:
        data: Any = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as e:
        raise RoutesError(f"routes file {str(path)!r} cannot be parsed: {e}") from None
    table = data.get("routes") if isinstance(data, dict) else None
    if not isinstance(table, dict) or not table:
        raise RoutesError(
            f"routes file {str(path)!r} has no [routes] table; write one such as\n"
            "[routes.fetch]\nfetch_api = 1\nfetch_mirror = 3"
        )
    try:
        return Routes.from_dict(table)  # pyright: ignore[reportUnknownArgumentType]
    except RoutesError as e:
        raise RoutesError(f"{path}: {e.message}") from None
