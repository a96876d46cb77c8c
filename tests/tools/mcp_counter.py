"""A real MCP server for the tests (the SDK's own server class, over stdio, or streamable
HTTP on 127.0.0.1 with ``--http PORT``): ``add``
appends every call it receives to the file named by $COUNTER_LOG, so a test can see
from the server's side which calls reached it."""

from __future__ import annotations

import json
import os

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

server = MCPServer("counter")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers (and log the call)."""
    with open(os.environ["COUNTER_LOG"], "a") as f:
        f.write(json.dumps({"a": a, "b": b}) + "\n")
    return a + b


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def peek(a: int, b: int) -> int:
    """Add two integers, read-only (not logged): a pure call for the Gate."""
    return a + b


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["--http"]:  # streamable HTTP on 127.0.0.1:PORT
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run("stdio")
