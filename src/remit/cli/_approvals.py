"""A person's answers: ``approve`` and ``deny`` a waiting call, ``resolve`` an uncertain effect."""

from __future__ import annotations

import json
import os
import time
from typing import Annotated, Any

import typer

from remit.cli._common import DEFAULT_JOURNAL, JournalOpt, app, die, open_existing, out, user_errors
from remit.gate._resume import resolve as record_resolution
from remit.journal import StepRecord


def _answer(run_id: str, step: str, journal: str, approved: bool, by: str) -> None:
    """Write a person's answer to a call that waits for approval."""
    step_id = step if step.endswith("~approval") else f"{step}~approval"
    with user_errors():
        store = open_existing(journal)
        try:
            store.get_run(run_id)
            rec = store.get_step(run_id, step_id)
            if rec is None or rec.kind != "approval":
                pending = [s.step_id for s in store.steps(run_id)
                           if s.kind == "approval" and s.status == "started"]  # fmt: skip
                hint = ", ".join(pending) if pending else "none"
                die(f"[NO_APPROVAL] run {run_id} has no approval request {step_id!r} "
                     f"(waiting: {hint})")  # fmt: skip
            if rec.status != "started":
                die(f"[ALREADY_ANSWERED] {step_id} was already answered ({rec.output})")
            now = time.time()
            answer = json.dumps({"approved": approved, "by": by, "at": now})
            record = StepRecord(run_id, step_id, rec.task_id, rec.seq, "approval", rec.name,
                                "ok", None, answer, None, None, rec.started_at, now)  # fmt: skip
            store.write([record])
        finally:
            store.close()
    verb = "approved" if approved else "denied"
    out.print(f"{verb} {step_id}; a waiting run goes on by itself, else: remit resume {run_id}")


@app.command()
def approve(
    run_id: Annotated[str, typer.Argument(help="The run whose call waits.")],
    step: Annotated[str, typer.Argument(help="The step id of the waiting call.")],
    journal: JournalOpt = DEFAULT_JOURNAL,
    by: Annotated[str, typer.Option(help="Who answers (recorded).")] = "",
) -> None:
    """Allow a call that its policy sent to a person."""
    _answer(run_id, step, journal, True, by or os.environ.get("USER", "someone"))


@app.command()
def deny(
    run_id: Annotated[str, typer.Argument(help="The run whose call waits.")],
    step: Annotated[str, typer.Argument(help="The step id of the waiting call.")],
    journal: JournalOpt = DEFAULT_JOURNAL,
    by: Annotated[str, typer.Option(help="Who answers (recorded).")] = "",
) -> None:
    """Refuse a call that its policy sent to a person."""
    _answer(run_id, step, journal, False, by or os.environ.get("USER", "someone"))


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
