"""Warrants: ``remit verify`` a run offline, and principal keys (``remit key``)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from remit.cli._common import DEFAULT_JOURNAL, JournalOpt, app, die, open_existing, out, user_errors
from remit.errors import JournalError
from remit.journal import JournalStore
from remit.trace.tree import (
    plural,
    printable,
)
from remit.trust.provenance import KeyFiles, RunKeys, hex32, load_principal_key, verify_run


@app.command()
def verify(
    run_id: Annotated[str, typer.Argument(help="The run to verify.")],
    journal: JournalOpt = DEFAULT_JOURNAL,
    principal: Annotated[
        str | None,
        typer.Option(
            "--principal",
            help="The principal's public key (64 hex digits) the chains must lead to; "
            "default: the key the run recorded.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The report as JSON.")] = False,
) -> None:
    """Re-verify a run from the journal alone: the principal's grant, the journal's hash
    chain and its signed checkpoints, every row, every delegation narrowing, every call
    against its task's remit (runs signed before journals were chained: each warrant
    chain and each holder's call proof). A failure names the row, hop, call or
    checkpoint and what is wrong with it.

    Exit code 0 when everything verifies, 1 when something does not, 2 for bad input.
    """
    with user_errors():
        pinned = None
        if principal is not None:
            pinned = hex32(principal)
            if pinned is None:
                die("[ARGUMENT] --principal must be 64 hex digits (an Ed25519 public key)")
        store = open_existing(journal)
        try:
            key = _receipt_key(journal, store, run_id)
            report = verify_run(store, run_id, principal_public=pinned, receipt_key=key)
        finally:
            store.close()
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
        raise typer.Exit(0 if report.ok else 1)
    source = "pinned" if report.principal_source == "given" else "as recorded in the journal"
    out.print(Text(f"run {run_id}: principal {report.principal[:16]}… ({source})"))
    if report.sealed:
        summary = (
            f"{plural(report.rows, 'row')} against {report.entries:,} chain entries · "
            f"{plural(report.checkpoints, 'signed checkpoint')} · "
            f"{plural(report.hops, 'hop')} (the principal's grant and every delegation) · "
            f"{plural(report.calls, 'call')}, {report.approved} approved by a person"
        )
        if report.uncovered:
            summary += f" · {plural(report.uncovered, 'row')} not yet under a checkpoint"
    else:
        summary = (
            f"{plural(report.calls, 'call')} · {plural(report.hops, 'warrant hop')} "
            f"(longest chain {report.longest_chain}) · "
            f"{plural(report.approved, 'call')} approved by a person"
        )
    summary += f" · {plural(report.receipts, 'receipted call')}"
    if report.quotes:
        fabricated = sum(1 for q in report.quotes if q["code"] != "QUOTE_OK")
        summary += f" · {plural(len(report.quotes), 'quote')} ({fabricated} fabricated)"
    if report.ok:
        out.print(Text(f"verified ✓  {summary}", style="green"))
        if report.carried and not report.receipts_checked:
            out.print(Text("the receipts the result carries were not checked: the run's key "
                           "file is missing", style="yellow"))  # fmt: skip
        if report.principal_source != "given":
            out.print(Text("pin the principal with --principal KEY to prove who issued it",
                           style="dim"))  # fmt: skip
        return
    out.print(Text(f"FAILED: {plural(len(report.failures), 'check')} did not verify  "
                   f"({summary})", style="red"))  # fmt: skip
    for f in report.failures[:50]:
        out.print(
            Text(printable(f"  {f.step_id}  [{f.code}] {f.message}"), style="red"), soft_wrap=True
        )
    if len(report.failures) > 50:
        out.print(Text(f"  … and {len(report.failures) - 50} more (--json for all)"))
    raise typer.Exit(1)


def _receipt_key(journal: str, store: JournalStore, run_id: str) -> bytes | None:
    """The run's receipt key, from the secret beside the journal (None if not there:
    quotes are then checked against the journal's rows, carried receipts are not)."""
    try:
        meta = json.loads(store.get_run(run_id).meta or "{}")
        return RunKeys(KeyFiles.beside(journal).load(run_id, meta)).receipt_key
    except (JournalError, ValueError, AttributeError):
        return None


key_app = typer.Typer(help="Principal keys: issue runs under your own key.", no_args_is_help=True)
app.add_typer(key_app, name="key")


@key_app.command("new")
def key_new(
    path: Annotated[Path, typer.Argument(help="Where to write the new key (mode 0600).")],
) -> None:
    """Create a principal key; prints its public key (give it to `remit verify --principal`)."""
    with user_errors():
        if path.exists():
            die(f"[ARGUMENT] {path} exists; refusing to overwrite a key")
        seed = os.urandom(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(seed.hex() + "\n")
        out.print(load_principal_key(path).public.hex())


@key_app.command("public")
def key_public(
    path: Annotated[Path, typer.Argument(help="A key file made by `remit key new`.")],
) -> None:
    """Print the public key of a principal key file."""
    with user_errors():
        out.print(load_principal_key(path).public.hex())
