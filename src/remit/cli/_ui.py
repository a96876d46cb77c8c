"""``remit ui``: the web view of a journal's runs, live, with approvals."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from remit.cli._common import (
    DEFAULT_JOURNAL,
    JournalOpt,
    app,
    die,
    err,
    open_existing,
    out,
    user_errors,
)


@app.command()
def ui(
    journal: JournalOpt = DEFAULT_JOURNAL,
    port: Annotated[int, typer.Option(help="The port (0: a free one).", min=0, max=65535)] = 0,
    host: Annotated[
        str, typer.Option(help="The address; anything but loopback needs --token.")
    ] = "127.0.0.1",
    token: Annotated[
        str | None,
        typer.Option(
            help="A secret every request must carry (printed in the URL).", show_default=False
        ),
    ] = None,
) -> None:
    """Serve a web view of the journal's runs: the live task tree, spend against each
    remit, denials, and the calls that wait for a person's approval."""
    from remit.ui import require_ui, serve

    with user_errors():
        require_ui()  # MISSING_EXTRA (exit 2) before anything binds
        if str(journal).startswith(("postgres://", "postgresql://")):
            die(
                "remit ui reads SQLite journals; a PostgreSQL journal cannot be shown yet"
                " (remit show and remit runs read it)"
            )
        open_existing(journal).close()  # a clear error for a missing or foreign file

        def ready(url: str) -> None:
            out.print(f"remit ui: {journal} at {url}", soft_wrap=True)
            err.print("Ctrl-C stops it", style="dim")

        serve(Path(journal), host=host, port=port, token=token, ready=ready)
