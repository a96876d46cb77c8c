"""The tools a run has: a remit checked against them (what it grants must exist, as
must what it constrains), and the MCP servers a run recorded, for its resume."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from remit.agents._agent import Agent
from remit.core.remit import Remit
from remit.errors import RemitError, UnknownToolError
from remit.journal import JournalStore
from remit.tools import Tool, ToolRegistry, calculator, files
from remit.tools.mcp import McpServer

__all__ = ["check_tools", "recorded_servers"]


def check_tools(remit: Remit, tools: ToolRegistry) -> None:
    """Refuse, before a run is recorded, a remit that grants a tool nobody registered or
    constrains an argument its tool does not have."""
    for name, grant in remit.tools.items():
        if name not in tools:
            raise UnknownToolError(
                f"the remit grants tool {name!r}, but no tool of that name is registered "
                f"(known: {', '.join(tools.names())}); register it or fix the remit"
            )
        have = tools.get(name).arg_names
        named = set(grant.args).union(*(r.args for layer in grant.layers for r in layer))
        for arg in sorted(named):
            # a nested path (items[].id, options.mode) is checked by its first name
            root = re.split(r"[.\[]", arg, maxsplit=1)[0]
            if root not in have:
                raise UnknownToolError(
                    f"the remit constrains argument {arg!r} of tool {name!r}, which has "
                    f"no such argument (its arguments: {', '.join(sorted(have)) or 'none'});"
                    " fix the remit"
                )


def recorded_servers(store: JournalStore, run_id: str) -> list[McpServer]:
    """The MCP servers a run was started with, as its meta records them."""
    try:
        meta = json.loads(store.get_run(run_id).meta or "{}")
    except (RemitError, ValueError):
        return []  # the resume itself says what is wrong
    table = meta.get("mcp") if isinstance(meta, dict) else None
    if not isinstance(table, dict):
        return []
    return [McpServer.from_dict(str(n), d) for n, d in table.items() if isinstance(d, dict)]  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]


def registry(agent: Agent, workspace: Path, extra: Sequence[Tool]) -> ToolRegistry:
    """The tools a run knows: the file tools confined to ``workspace``, the calculator,
    the agent's own, then ``extra`` (MCP servers', the runtime's). Later entries replace
    earlier ones of the same name: an agent may bring its own read_file; the runtime's
    extra tools have the last word. Knowing grants nothing: the remit does."""
    tools = [*files(workspace), calculator, *agent.tools, *extra]
    return ToolRegistry({t.name: t for t in tools}.values())
