"""A remit's fields read from what a caller or a file gives, each error naming where."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TypeAlias, cast

from remit.core.remit._budget import Budget
from remit.core.remit._format import kind
from remit.errors import RemitFormatError
from remit.policy import ConstraintSpec, ToolGrant

#: how a tool's grant may be written: a ToolGrant, or argument name → constraint spec
ToolSpec: TypeAlias = ToolGrant | Mapping[str, ConstraintSpec]

FIELDS = ("principal", "deadline", "depth", "budget", "tools")


def as_depth(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RemitFormatError(f"{where}: must be a non-negative integer, got {value!r}")
    return value


def as_principal(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise RemitFormatError(f"{where}: must be a non-empty string, got {value!r}")
    return value


def as_budget(value: object, where: str) -> Budget:
    if value is None:
        return _UNLIMITED
    if isinstance(value, Budget):
        return value
    return Budget.from_dict(value, where=where)


def as_grants(tools: object, where: str) -> MappingProxyType[str, ToolGrant]:
    if not isinstance(tools, Mapping):
        raise RemitFormatError(
            f"{where}: expected a table of tool name to argument constraints, got {kind(tools)}"
        )
    out: dict[str, ToolGrant] = {}
    for name, spec in cast(Mapping[object, object], tools).items():
        if not isinstance(name, str) or not name:
            raise RemitFormatError(f"{where}: tool names must be non-empty strings, got {name!r}")
        if isinstance(spec, ToolGrant):
            if spec.name != name:
                raise RemitFormatError(f"{where}.{name}: holds a grant for {spec.name!r}")
            out[name] = spec
        else:
            out[name] = ToolGrant.from_spec(name, spec, where=f"{where}.{name}")
    return MappingProxyType(dict(sorted(out.items())))


_UNLIMITED = Budget()
NO_TOOLS: MappingProxyType[str, ToolGrant] = MappingProxyType({})
