"""A person's answers: ``approve`` and ``deny`` a waiting call, ``resolve`` an uncertain effect."""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

import typer

from remit.cli._common import DEFAULT_JOURNAL, JournalOpt, app, die, open_existing, out, user_errors
from remit.gate import approvals
from remit.gate._resume import resolve as record_resolution


def _answer(
    run_id: str, step: str, journal: str, approved: bool, by: str, reason: str = ""
) -> None:
    """Write a person's answer to a call that waits for approval (as the web view does)."""
    with user_errors():
        store = open_existing(journal)
        try:
            rec = approvals.answer(store, run_id, step, approved=approved, by=by, reason=reason)
        finally:
            store.close()
    verb = "approved" if approved else "denied"
    out.print(f"{verb} {rec.step_id}; a waiting run goes on by itself, else: remit resume {run_id}")


ReasonOpt = Annotated[
    str, typer.Option(help="Why (recorded; a denial's reason reaches the agent).")
]


@app.command()
def approve(
    run_id: Annotated[str, typer.Argument(help="The run whose call waits.")],
    step: Annotated[str, typer.Argument(help="The step id of the waiting call.")],
    journal: JournalOpt = DEFAULT_JOURNAL,
    by: Annotated[str, typer.Option(help="Who answers (recorded).")] = "",
    reason: ReasonOpt = "",
) -> None:
    """Allow a call that its policy sent to a person."""
    _answer(run_id, step, journal, True, by or os.environ.get("USER", "someone"), reason)


@app.command()
def deny(
    run_id: Annotated[str, typer.Argument(help="The run whose call waits.")],
    step: Annotated[str, typer.Argument(help="The step id of the waiting call.")],
    journal: JournalOpt = DEFAULT_JOURNAL,
    by: Annotated[str, typer.Option(help="Who answers (recorded).")] = "",
    reason: ReasonOpt = "",
) -> None:
    """Refuse a call that its policy sent to a person."""
    _answer(run_id, step, journal, False, by or os.environ.get("USER", "someone"), reason)


@app.command()
def resolve(
    run_id: Annotated[str, typer.Argument(help="The run that halted.")],
    step: Annotated[str, typer.Argument(help="The step id of the uncertain effect.")],
    happened: Annotated[
        str | None,
        typer.Option(
            "--happened",
            help="It happened, and this is what the tool returned (JSON), as you found it.",
            show_default=False,
        ),
    ] = None,
    did_not_happen: Annotated[
        bool,
        typer.Option("--did-not-happen", help="It did not happen: the resumed run makes it once."),
    ] = False,
    why: Annotated[str, typer.Option(help="How you know (recorded).")] = "",
    journal: JournalOpt = DEFAULT_JOURNAL,
    by: Annotated[str, typer.Option(help="Who answers (recorded).")] = "",
) -> None:
    """Say whether a non-idempotent effect that was in flight at a crash happened, so
    `remit resume` can carry the run on."""
    if (happened is None) == (not did_not_happen):
        die("[ARGUMENT] pass exactly one of --happened RESULT_JSON and --did-not-happen")
    result: Any = None
    if happened is not None:
        try:
            result = json.loads(happened)
        except ValueError as e:
            die(f"[INVALID_INPUT] --happened must be the tool's result as JSON: {e}")
    with user_errors():
        store = open_existing(journal)
        try:
            record_resolution(store, run_id, step, happened=happened is not None, result=result,
                              by=by or os.environ.get("USER", "someone"), why=why)  # fmt: skip
        finally:
            store.close()
    flag = "" if journal == DEFAULT_JOURNAL else f" --journal {journal}"
    verb = "happened" if happened is not None else "did not happen"
    out.print(f"recorded that {step} {verb}; carry the run on: remit resume {run_id}{flag}")
