"""A remit file: the remit, and the MCP servers whose tools it names.

The servers are wiring, not authority: they say where ``time.get_current_time`` is
served, never whether a task may call it. So they sit beside the remit in the file,
under ``[mcp.<name>]``, and never enter the remit that is narrowed, signed and
journaled::

    [tools."time.get_current_time"]
    timezone = { one_of = ["UTC", "Europe/Paris"] }

    [mcp.time]
    command = ["python", "-m", "mcp_server_time"]   # or: url = "http://127.0.0.1:8000/mcp"
    timeout = 10                                    # seconds per call (default 30)
    env = { TZ = "UTC" }                            # added to the server's environment

>>> f = RemitFile.from_dict({"tools": {"time.now": {}}, "mcp": {"time": {"url": "http://h/mcp"}}})
>>> sorted(f.remit.tools), dict(f.mcp["time"])
(['time.now'], {'url': 'http://h/mcp'})
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

from remit.core.remit._format import kind
from remit.core.remit._remit import Remit
from remit.errors import RemitFormatError

__all__ = ["RemitFile", "read_file"]

#: the file's sections that are not the remit's own fields
SECTIONS = ("mcp",)


@dataclass(frozen=True)
class RemitFile:
    """A remit and the MCP servers a remit file declares (``name`` → its table)."""

    remit: Remit
    mcp: Mapping[str, Mapping[str, Any]] = field(
        default_factory=lambda: MappingProxyType[str, Mapping[str, Any]]({})
    )

    @classmethod
    def from_dict(cls, data: object, *, now: float | None = None) -> RemitFile:
        """Read a file's table: the remit's fields and an optional ``mcp`` section."""
        if not isinstance(data, Mapping):
            raise RemitFormatError(f"remit: expected a table, got {kind(data)}")
        items = dict(cast(Mapping[str, object], data))
        servers = _servers(items.pop("mcp", {}))
        return cls(Remit.from_dict(items, now=now), servers)

    @classmethod
    def load(cls, path: str | PathLike[str], *, now: float | None = None) -> RemitFile:
        """Read a ``.toml`` or ``.json`` remit file; errors are prefixed with the path."""
        p = Path(path)
        data = read_file(p)
        try:
            return cls.from_dict(data, now=now)
        except RemitFormatError as e:
            raise RemitFormatError(f"{p}: {e.message}") from None


def read_file(p: Path) -> object:
    """The table a ``.toml`` or ``.json`` file holds (``RemitFormatError`` naming it)."""
    suffix = p.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise RemitFormatError(f"{p}: expected a .toml or .json remit file")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise RemitFormatError(f"{p}: cannot read: {e}") from e
    try:
        return tomllib.loads(text) if suffix == ".toml" else json.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise RemitFormatError(f"{p}: remit: invalid TOML: {e}") from None
    except ValueError as e:
        raise RemitFormatError(f"{p}: remit: invalid JSON: {e}") from None


def _servers(section: object) -> Mapping[str, Mapping[str, Any]]:
    """The ``mcp`` section checked for shape; the tools layer builds the servers."""
    if not isinstance(section, Mapping):
        raise RemitFormatError(
            f"mcp: expected a table of server name to table, got {kind(section)}"
        )
    out: dict[str, Mapping[str, Any]] = {}
    for name, table in cast(Mapping[object, object], section).items():
        where = f"mcp.{name}"
        if not isinstance(name, str) or not name or "." in name:
            raise RemitFormatError(f"{where}: a server name must be non-empty, without dots")
        if not isinstance(table, Mapping):
            raise RemitFormatError(f"{where}: expected a table, got {kind(table)}")
        t = cast(Mapping[str, object], table)
        for key in sorted(t):
            if key not in _CHECKS:
                known = ", ".join(sorted(_CHECKS))
                raise RemitFormatError(f"{where}.{key}: unknown field (expected one of {known})")
            problem = _CHECKS[key](t[key])
            if problem is not None:
                raise RemitFormatError(f"{where}.{key}: expected {problem}, got {t[key]!r}")
        if ("command" in t) == ("url" in t):
            raise RemitFormatError(f"{where}: give either command (stdio) or url (streamable HTTP)")
        out[name] = MappingProxyType(dict(t))
    return MappingProxyType(out)


def _command(v: object) -> str | None:
    if isinstance(v, str) and v.strip():
        return None
    ok = isinstance(v, list) and v and all(isinstance(c, str) for c in cast(list[object], v))
    return None if ok else "a command line or a list of strings"


def _url(v: object) -> str | None:
    ok = isinstance(v, str) and v.startswith(("http://", "https://"))
    return None if ok else "an http:// or https:// URL"


def _env(v: object) -> str | None:
    pairs = cast(Mapping[object, object], v).items() if isinstance(v, Mapping) else None
    ok = pairs is not None and all(isinstance(k, str) and isinstance(x, str) for k, x in pairs)
    return None if ok else "a table of strings"


def _timeout(v: object) -> str | None:
    ok = not isinstance(v, bool) and isinstance(v, int | float) and v > 0
    return None if ok else "a positive number of seconds"


def _cwd(v: object) -> str | None:
    return None if isinstance(v, str) and v else "a directory path"


#: each field of a server's table: None when a value will do, else what was expected
_CHECKS: dict[str, Callable[[object], str | None]] = {
    "command": _command,
    "url": _url,
    "env": _env,
    "timeout": _timeout,
    "cwd": _cwd,
}
