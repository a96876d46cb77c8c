"""MCP servers as remit tools: every call still passes the Gate.

A :class:`McpServer` says how to reach a Model Context Protocol server: a command to
start over stdio, or the URL of a streamable-HTTP endpoint. While a run works, the
runtime holds one session per server (:func:`open_servers`) and imports each of the
server's tools as a :class:`McpTool` named ``<server>.<tool>``. A remit grants and
constrains them like any tool (``{"time.get_current_time": {"timezone": one_of(...)}}``);
the Gate checks, reserves, journals and replays their calls, so a denied call never
reaches the server and a resumed run does not call it again for a recorded step.

The server's own hints decide how the Gate treats a call: ``readOnlyHint`` makes it a
pure call; otherwise it is an effect (journaled write-ahead), idempotent only with
``idempotentHint``, so an unfinished call with neither is put to a person on resume.

>>> McpServer("time", command=["python", "-m", "mcp_server_time"]).transport
'stdio'
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
import sys
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from remit.core.ledger import Usage
from remit.errors import (
    InvalidInput,
    RemitError,
    StepFailed,
    ToolArgumentError,
    ToolServerError,
)
from remit.tools._tool import Tool

__all__ = ["McpServer", "McpTool", "open_servers"]


@dataclass(frozen=True)
class McpServer:
    """How to reach one MCP server: ``command`` (stdio) or ``url`` (streamable HTTP).

    ``name`` prefixes its tools (``name.tool``); ``env`` is added to the server
    process's environment; ``timeout_s`` bounds each call (and the connection).
    """

    name: str
    command: Sequence[str] = ()
    url: str | None = None
    env: Mapping[str, str] = field(default_factory=dict[str, str])
    timeout_s: float = 30.0
    cwd: str | None = None

    def __post_init__(self) -> None:
        where = f"mcp server {self.name!r}"
        if not self.name or "." in self.name:
            raise InvalidInput(f"{where}: a name must be non-empty and without dots")
        if bool(self.command) == bool(self.url):
            raise InvalidInput(f"{where}: give either a command (stdio) or a url (HTTP)")

    @property
    def transport(self) -> str:
        return "stdio" if self.command else "http"

    def to_dict(self) -> dict[str, Any]:
        """The server as :meth:`from_dict` reads it, without ``env`` (it may hold secrets)."""
        out: dict[str, Any] = {"timeout": self.timeout_s}
        if self.command:
            out["command"] = list(self.command)
        if self.url:
            out["url"] = self.url
        if self.cwd:
            out["cwd"] = self.cwd
        return out

    @classmethod
    def parse(cls, spec: str) -> McpServer:
        """``NAME=COMMAND`` (a command line, started over stdio) or ``NAME=URL``
        (streamable HTTP): the form of ``remit run --mcp``.

        >>> McpServer.parse("time=python -m mcp_server_time").command
        ('python', '-m', 'mcp_server_time')
        >>> McpServer.parse("calc=http://127.0.0.1:8000/mcp").url
        'http://127.0.0.1:8000/mcp'
        """
        name, sep, target = spec.partition("=")
        if not sep or not name.strip() or not target.strip():
            raise InvalidInput(
                f"--mcp {spec!r}: expected NAME=COMMAND or NAME=URL, such as "
                "time='python -m mcp_server_time' or calc=http://127.0.0.1:8000/mcp"
            )
        target = target.strip()
        if target.startswith(("http://", "https://")):
            return cls(name.strip(), url=target)
        return cls(name.strip(), command=tuple(shlex.split(target)))

    @classmethod
    def from_tables(cls, tables: Mapping[str, Mapping[str, Any]]) -> list[McpServer]:
        """The servers of a remit file's ``mcp`` section (``RemitFile.mcp``).

        >>> McpServer.from_tables({"time": {"command": "python -m mcp_server_time"}})[0].command
        ('python', '-m', 'mcp_server_time')
        """
        return [cls.from_dict(name, table) for name, table in tables.items()]

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> McpServer:
        """From a remit file's ``[mcp.<name>]`` table: ``command`` (a list or a string),
        ``url``, ``env``, ``timeout``, ``cwd``."""
        command = data.get("command", ())
        if isinstance(command, str):
            command = shlex.split(command)
        return cls(
            name,
            tuple(str(c) for c in command),  # pyright: ignore[reportUnknownArgumentType, reportUnknownVariableType]
            data.get("url"),
            dict(data.get("env", {})),
            float(data.get("timeout", 30.0)),
            data.get("cwd"),
        )


class McpTool(Tool):
    """One tool of an MCP server, callable through the Gate (see the module docstring)."""

    __slots__ = ("_input_schema", "_validator", "server", "session", "tool_name")

    def __init__(self, server: McpServer, spec: Any, session: Any) -> None:
        # a Tool built from a JSON Schema rather than a function signature
        self.server = server.name
        #: the SDK's session with the server (a call on it bypasses the Gate: for
        #: diagnostics and benchmarks, never for a run's calls)
        self.session = session
        self.tool_name = str(spec.name)
        self.name = f"{server.name}.{spec.name}"
        self.description = str(spec.description or "")
        schema: dict[str, Any] = dict(spec.input_schema or {"type": "object"})
        self._input_schema = schema
        # imported here: a process that opens no MCP server never pays for jsonschema
        import jsonschema

        self._validator = jsonschema.Draft202012Validator(schema)
        hints = spec.annotations
        read_only = bool(getattr(hints, "read_only_hint", False))
        self.effect = not read_only
        self.idempotent = read_only or bool(getattr(hints, "idempotent_hint", False))
        self.thread = False
        self.timeout = server.timeout_s
        self.retries = 2
        self.cost_usd = 0.0
        self.is_async = True
        self.inline = False
        self.takes_key = False
        self.worst = Usage(calls=1)
        self._adapter = None  # pyright: ignore[reportAttributeAccessIssue]
        tool_name, timeout = self.tool_name, server.timeout_s
        label = self.name

        async def call(**args: Any) -> Any:
            try:
                result = await session.call_tool(tool_name, args, read_timeout_seconds=timeout)
            except Exception as e:  # the session's own errors: protocol, a dead server
                raise StepFailed(
                    f"MCP tool {label}: {type(e).__name__}: {e}", cause_type=type(e).__name__
                ) from None
            return _output(label, result)

        self.fn = call

    @property
    def arg_names(self) -> frozenset[str]:
        return frozenset(self._input_schema.get("properties", {}))

    def validate(self, args: Mapping[str, Any]) -> dict[str, Any]:
        problems = sorted(self._validator.iter_errors(dict(args)), key=lambda e: list(e.path))
        if problems:
            why = "; ".join(
                f"{'.'.join(str(p) for p in e.path) or '(arguments)'}: {e.message}"
                for e in problems
            )
            raise ToolArgumentError(f"tool {self.name}: invalid arguments: {why}")
        return dict(args)

    def schema(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self._input_schema,
            },
        }

    def __repr__(self) -> str:
        return f"<McpTool {self.name} ({'effect' if self.effect else 'pure'})>"


def _output(label: str, result: Any) -> Any:
    """A call's result as JSON: its structured content, else its text (or the parts)."""
    parts = [
        getattr(c, "text", None) or json.loads(c.model_dump_json()) for c in result.content or ()
    ]
    if getattr(result, "is_error", False):
        text = "; ".join(p if isinstance(p, str) else json.dumps(p) for p in parts)
        raise StepFailed(f"MCP tool {label} reported an error: {text[:500]}")
    structured = getattr(result, "structured_content", None)
    if structured is not None:
        return structured
    return parts[0] if len(parts) == 1 else parts


@contextlib.asynccontextmanager
async def open_servers(servers: Sequence[McpServer]) -> AsyncGenerator[list[McpTool]]:
    """Start (or connect to) every server, and yield their tools; closed on exit."""
    if not servers:
        yield []
        return
    try:
        from mcp import ClientSession, StdioServerParameters
        from mcp.client.stdio import stdio_client
        from mcp.client.streamable_http import streamable_http_client
    except ImportError as e:  # pragma: no cover - the extra is in make test
        raise ToolServerError(
            f"MCP servers need the mcp package: pip install 'remit[mcp]' ({e})"
        ) from None
    reaching: list[str] = []  # the server being connected to, until all are
    try:
        async with _sessions(servers, ClientSession, StdioServerParameters, stdio_client,
                             streamable_http_client, reaching) as tools:  # fmt: skip
            yield tools
    except BaseExceptionGroup as group:
        # the SDK's task groups wrap what happened (a run's own error, an interrupt):
        # let it out as itself, or, while connecting, as the server that failed
        first = _first(group)
        if reaching and not isinstance(first, KeyboardInterrupt | RemitError):
            raise _unreachable(reaching[-1], first) from None
        raise first from None


def _unreachable(where: str, e: BaseException) -> ToolServerError:
    return ToolServerError(f"{where} could not be reached: {type(e).__name__}: {e}")


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    leaves: list[BaseException] = []
    stack: list[BaseException] = [group]
    while stack:
        e = stack.pop()
        if isinstance(e, BaseExceptionGroup):
            stack.extend(reversed(e.exceptions))  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
        else:
            leaves.append(e)
    for kind in (KeyboardInterrupt, RemitError):
        for e in leaves:
            if isinstance(e, kind):
                return e
    return leaves[0] if leaves else group


def _errlog() -> Any:
    """Where a stdio server's stderr goes: ours, or the process's own when ours is not a
    file (a captured stream, as under click's CliRunner or a notebook)."""
    for stream in (sys.stderr, sys.__stderr__):
        try:
            if stream is not None:
                stream.fileno()
                return stream
        except (OSError, ValueError, AttributeError):
            continue
    return subprocess.DEVNULL


@contextlib.asynccontextmanager
async def _sessions(
    servers: Sequence[McpServer],
    session_cls: Any,
    params_cls: Any,
    stdio: Any,
    http: Any,
    reaching: list[str],
) -> AsyncGenerator[list[McpTool]]:
    tools: list[McpTool] = []
    async with contextlib.AsyncExitStack() as stack:
        for server in servers:
            where = f"MCP server {server.name!r} ({server.url or ' '.join(server.command)})"
            reaching.append(where)
            try:
                if server.command:
                    params = params_cls(
                        command=server.command[0],
                        args=list(server.command[1:]),
                        env={**os.environ, **server.env},
                        cwd=server.cwd,
                    )
                    read, write = await stack.enter_async_context(stdio(params, _errlog()))
                else:
                    assert server.url is not None
                    streams = await stack.enter_async_context(http(server.url))
                    read, write = streams[0], streams[1]
                session = await stack.enter_async_context(session_cls(read, write))
                await session.initialize()
                listed = await session.list_tools()
            except Exception as e:
                raise _unreachable(where, e) from None
            tools.extend(McpTool(server, spec, session) for spec in listed.tools)
        reaching.clear()
        yield tools
