"""``remit mcp serve``: remit as an MCP server (see :mod:`remit.serve.mcp`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from remit.cli._common import (
    DEFAULT_JOURNAL,
    JournalOpt,
    ModelOpt,
    app,
    approval_wait,
    die,
    err,
    importable_cwd,
    user_errors,
)
from remit.core.remit import RemitFile
from remit.models import load_model
from remit.tools.mcp import McpServer

mcp_app = typer.Typer(
    help="remit and the Model Context Protocol: serve remit to MCP clients.",
    no_args_is_help=True,
)
app.add_typer(mcp_app, name="mcp")


@mcp_app.command()
def serve(
    remit_file: Annotated[
        Path,
        typer.Option(
            "--remit",
            help="The most any delegated run may do (a .toml or .json remit file; the MCP "
            "servers it declares serve the runs too). Clients can only narrow it.",
            dir_okay=False,
        ),
    ],
    agent: Annotated[
        str, typer.Option("--agent", help="What works on delegated goals, as module:attr.")
    ] = "remit:ModelAgent",
    model: ModelOpt = None,
    journal: JournalOpt = DEFAULT_JOURNAL,
    workspace: Annotated[
        Path, typer.Option(help="The directory the file tools are confined to.", file_okay=False)
    ] = Path("."),
    mcp: Annotated[
        list[str] | None,
        typer.Option(
            "--mcp",
            help="Another MCP server whose tools the runs may call: NAME=COMMAND or NAME=URL.",
            show_default=False,
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port",
            help="Serve streamable HTTP on 127.0.0.1:PORT/mcp instead of stdio.",
            min=1,
            max=65535,
            show_default=False,
        ),
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Tasks worked on at once, per run.", min=1)] = 64,
) -> None:
    """Serve `delegate`, `status` and `show` to MCP clients (stdio unless --port)."""
    with user_errors():
        try:
            from remit.serve.mcp import RemitServer
        except ImportError as e:  # pragma: no cover - the extra is in make test
            die(f"[INVALID_INPUT] remit mcp serve needs the mcp package: "
                f"pip install 'remit[mcp]' ({e})")  # fmt: skip
        if not workspace.is_dir():
            die(f"[INVALID_INPUT] --workspace {workspace} is not a directory")
        declared = RemitFile.load(remit_file)
        servers = {s.name: s for s in McpServer.from_tables(declared.mcp)}
        servers.update((s.name, s) for s in (McpServer.parse(m) for m in mcp or ()))
        importable_cwd()
        remit_server = RemitServer(
            remit_file, journal=journal, agent=agent, model=load_model(model),
            workspace=workspace, mcp=list(servers.values()), concurrency=concurrency,
        )  # fmt: skip
        remit_server.on_approval = _approval_note(journal)
        server = remit_server.build()
    # stdout is the protocol's: what people read goes to stderr
    where = "stdio" if port is None else f"http://127.0.0.1:{port}/mcp"
    err.print(f"remit mcp: serving delegate, status, show on {where} (journal {journal})")
    if port is None:
        server.run("stdio")
    else:
        server.run("streamable-http", host="127.0.0.1", port=port)


def _approval_note(journal: str) -> Callable[[str, str], None]:
    def note(run_id: str, step_id: str) -> None:
        approval_wait(run_id, step_id, journal, f"run {run_id}")

    return note
