"""The ``remit`` command: run, resume, list and show journaled runs.

    remit run --job audit                          # the built-in main job
    remit run "sum 1..10" --agent mymod:Adder --tool calculator --calls 20
    remit resume RUN_ID                            # after a crash or kill -9
    remit runs                                     # the runs in ./remit.db
    remit show RUN_ID [--json] [--all]             # the task tree of a run

Exit codes: 0 the run is done, 1 the run failed, 2 bad input (a malformed remit file,
an unknown tool or agent, bad flags, an unknown run id, a corrupt journal, a run another
live process carries), 3 the run halted for a person (an uncertain effect: ``remit
resolve``), 130 interrupted by SIGINT and 143 by SIGTERM (resume the run). Errors are
one line naming what was wrong and where.
This module stays thin: the tree and its rendering live in :mod:`remit.trace.tree`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Generator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from ._resume import resolve as record_resolution
from .errors import EffectUncertain, RemitError, RunInterrupted
from .gate import Gate
from .jobs import JOBS
from .journal import Durability, JournalStore, StepRecord, open_journal
from .lease import run_state
from .ledger import Usage
from .models import load_model
from .provenance import hex32, load_principal_key, verify_run
from .remit import Budget, Remit, resolve_deadline
from .runtime import Run, Runtime, check_run_id, new_run_id
from .trace.chain import chain_view
from .trace.tree import (
    format_seconds,
    format_spend,
    load,
    plural,
    printable,
    render,
    status_style,
)

app = typer.Typer(
    name="remit",
    help="Run recursive agent work under a remit: narrowing authority, a durable journal, "
    "resume after kill -9.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

DEFAULT_JOURNAL = Path("remit.db")

JournalOpt = Annotated[
    Path, typer.Option("--journal", "-j", help="The journal file (SQLite).", dir_okay=False)
]


# --- errors --------------------------------------------------------------------------


def _die(message: str, code: int = 2) -> NoReturn:
    err.print(Text(f"remit: error: {message}", style="red"), soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def _user_errors() -> Generator[None]:
    """Bad input of any kind ends as one line on stderr and exit code 2."""
    try:
        yield
    except EffectUncertain as e:
        _die(f"[{e.code}] {e.message}", 3)
    except RemitError as e:
        _die(f"[{e.code}] {e.message}")
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        _die(f"[OS_ERROR] {where}{e.strerror or e}")


def _interrupted(e: KeyboardInterrupt, resume: str) -> NoReturn:
    """A run stopped by a signal: say how to carry it on; 130 (SIGINT) or 143 (SIGTERM)."""
    code = 143 if isinstance(e, RunInterrupted) and e.signal_name == "SIGTERM" else 130
    why = f" on {e.signal_name}" if isinstance(e, RunInterrupted) and e.signal_name else ""
    _die(f"interrupted{why}; finished steps are in the journal: {resume}", code)


def _open_existing(journal: Path) -> JournalStore:
    if not journal.exists():
        _die(f"[JOURNAL] no journal at {journal}; pass --journal PATH (runs create one)")
    return open_journal(journal)


# --- the remit a run asks for ----------------------------------------------------------


def build_remit(
    base: Remit | None,
    *,
    tools: list[str] | None = None,
    calls: int | None = None,
    cost_usd: float | None = None,
    tokens: int | None = None,
    deadline: str | None = None,
    depth: int | None = None,
) -> Remit:
    """``base`` (from a file or a job, or nothing) with the flags' fields overriding it.

    ``tools`` grants exactly the named tools, each keeping the argument constraints
    ``base`` gives it (none if ``base`` does not grant it).
    """
    data: dict[str, Any] = base.to_dict() if base is not None else {}
    if tools is not None:
        granted: Mapping[str, Any] = data.get("tools", {})
        data["tools"] = {name: granted.get(name, {}) for name in tools}
    budget: dict[str, Any] = dict(data.get("budget", {}))
    if calls is not None:
        budget["calls"] = calls
    if cost_usd is not None:
        budget["cost_usd"] = cost_usd
    if tokens is not None:
        budget["input_tokens"] = budget["output_tokens"] = tokens
    data["budget"] = budget
    if deadline is not None:
        data["deadline"] = resolve_deadline(deadline, where="--deadline")
    if depth is not None:
        data["depth"] = depth
    return Remit.from_dict(data)


def _parse_inputs(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        data = json.loads(text)
    except ValueError as e:
        _die(f"[INVALID_INPUT] --inputs is not valid JSON: {e}")
    if not isinstance(data, dict):
        _die(f"[INVALID_INPUT] --inputs must be a JSON object, got {type(data).__name__}")
    return data  # pyright: ignore[reportUnknownVariableType]


def _what_to_run(
    goal: str | None,
    job: str | None,
    agent: str | None,
    remit_file: Path | None,
    inputs: str | None,
    workspace: Path,
    build: Callable[[Remit | None], Remit],
) -> tuple[str, str, dict[str, Any], Remit]:
    """The agent reference, goal, inputs and remit of a ``run``; exits 2 on bad input."""
    if job is not None and agent is not None:
        _die("[INVALID_INPUT] pass either --job or --agent, not both")
    if job is None and agent is None:
        _die(f"[INVALID_INPUT] say what works on the goal: --job {' | --job '.join(JOBS)}, "
             "or --agent module:attr")  # fmt: skip
    if not workspace.is_dir():
        _die(f"[INVALID_INPUT] --workspace {workspace} is not a directory")
    user_inputs = _parse_inputs(inputs)
    base: Remit | None = None
    if job is not None:
        spec = JOBS.get(job)
        if spec is None:
            _die(f"[INVALID_INPUT] unknown job {job!r} (jobs: {', '.join(JOBS)})")
        all_inputs = {**spec.inputs, **user_inputs}
        problem = spec.check(all_inputs, workspace)
        if problem is not None:
            _die(f"[INVALID_INPUT] job {job}: {problem}")
        agent_ref, goal = spec.agent, goal or spec.goal(all_inputs)
        base = spec.remit(all_inputs)
    else:
        assert agent is not None
        all_inputs, agent_ref = user_inputs, agent
        if not goal:
            _die('[INVALID_INPUT] a goal is required with --agent: remit run "GOAL" ...')
    if remit_file is not None:
        base = Remit.load(remit_file)
    return agent_ref, goal, all_inputs, build(base)


def _importable_cwd() -> None:
    # `--agent mymodule:Agent` should find mymodule.py in the current directory, as
    # `python -m` would
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)


# --- live progress ---------------------------------------------------------------------


class Progress:
    """Counters fed by the Runtime's observer; rendered by rich at most 10 times a second.

    The observer runs in the event loop: it only bumps counters. Rendering happens in
    rich's refresh thread and reads them.
    """

    def __init__(self, remit: Remit | None) -> None:
        self.budget = remit.budget if remit is not None else Budget()
        self.runtime: Runtime | None = None
        self.started = self.done = self.failed = self.replayed = 0
        self.known = 1
        self.root: Any = None
        self.t0 = time.perf_counter()

    def observe(self, event: str, node: Any) -> None:
        if event == "start":
            self.started += 1
            if node.parent is None:
                self.root = node
        elif event == "plan":
            self.known += len(node.children or ())
        elif event == "done":
            self.done += 1
        elif event == "failed":
            self.failed += 1
        elif event == "replayed":
            self.replayed += 1
            if node.parent is None:
                self.root = node
            if getattr(node.status, "value", node.status) == "done":
                self.done += 1
            else:
                self.failed += 1

    def spent(self) -> Usage:
        root = self.root
        return root.account.spent if root is not None else Usage()

    def gate(self) -> Gate | None:
        return self.runtime.last_gate if self.runtime is not None else None

    def __rich__(self) -> RenderableType:
        finished = self.done + self.failed
        running = max(0, self.started - finished + self.replayed)
        top = Text()
        top.append(f" {finished:,}/{self.known:,} tasks", style="bold")
        top.append(f" · {running:,} running", style="cyan")
        if self.failed:
            top.append(f" · {self.failed:,} failed", style="red")
        if self.replayed:
            top.append(f" · {self.replayed:,} from the journal", style="blue")
        bottom = Text()
        gate = self.gate()
        if gate is not None:
            bottom.append(f"steps {gate.executed:,} executed · {gate.replayed:,} replayed · ")
            bottom.append(f"{gate.denied:,} denied", style="red" if gate.denied else "")
            bottom.append(" · ")
        bottom.append(f"spent {format_spend(self.spent(), self.budget)}")
        bottom.append(f" · {format_seconds(time.perf_counter() - self.t0)}", style="dim")
        grid = Table.grid()
        grid.add_row(ProgressBar(total=float(max(self.known, 1)), completed=float(finished),
                                 width=30), top)  # fmt: skip
        return Group(grid, bottom)


def _drive(progress: Progress, quiet: bool, work: Callable[[], Run]) -> Run:
    """Run ``work()`` with the live display (on a terminal, unless quiet)."""
    if quiet or not err.is_terminal:
        return work()
    with Live(progress, console=err, refresh_per_second=10, transient=True):
        return work()


# --- outcome -------------------------------------------------------------------------


def _result_summary(result: Any, limit: int = 300) -> str:
    if isinstance(result, Mapping) and isinstance(result.get("summary"), str):  # pyright: ignore[reportUnknownMemberType]
        text: str = result["summary"]  # pyright: ignore[reportUnknownVariableType]
    elif isinstance(result, str):
        text = result
    else:
        text = json.dumps(result, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _show_hint(run_id: str, journal: Path) -> str:
    flag = "" if journal == DEFAULT_JOURNAL else f" --journal {journal}"
    return f"remit show {run_id}{flag}"


def _outcome(run: Run, goal: str, remit: Remit | None, journal: Path, *, quiet: bool,
             already: bool = False) -> int:  # fmt: skip
    code = 0 if run.status == "done" else 1
    if quiet:
        out.print(f"{run.id} {run.status}")
        return code
    sym, style = status_style(run.status)
    head = Text()
    head.append(f"{sym} {run.status}", style=f"bold {style}")
    if already:
        head.append("  (already finished: nothing to resume)", style="dim")
    head.append(f"  {printable(goal)}")
    out.print(head)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim", justify="right")
    grid.add_column(overflow="fold")
    if run.status == "done":
        grid.add_row("result", printable(_result_summary(run.result)))
    elif run.error:
        grid.add_row("error", Text(printable(f"{run.error.get('code', 'FAILED')}: "
                                            f"{run.error.get('message', '')}"),
                                   style="red"))  # fmt: skip
    grid.add_row("spent", format_spend(run.spent, remit.budget if remit is not None else None))
    if not already:
        grid.add_row(
            "steps",
            f"{run.executed:,} executed · {run.replayed:,} replayed · {run.denied:,} denied"
            f"   ({plural(run.tasks, 'task')}, {format_seconds(run.seconds)})",
        )
    grid.add_row("run", f"{run.id}   →  {_show_hint(run.id, journal)}")
    if run.signed:
        flag = "" if journal == DEFAULT_JOURNAL else f" --journal {journal}"
        grid.add_row("audit", f"every call is signed: remit verify {run.id}{flag}")
    out.print(grid)
    return code


# --- commands ------------------------------------------------------------------------


@app.command()
def run(
    goal: Annotated[
        str | None, typer.Argument(help="What to do (a job has a default goal).")
    ] = None,
    job: Annotated[
        str | None,
        typer.Option("--job", help=f"A built-in job: {', '.join(JOBS)}.", show_default=False),
    ] = None,
    agent: Annotated[
        str | None, typer.Option("--agent", help="Your agent, as module:attr.", show_default=False)
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="The model: 'local' (the embedded one, the default), a .gguf file, or an "
            "OpenAI-compatible URL http://host:port/v1#model-name.",
            show_default=False,
        ),
    ] = None,
    remit_file: Annotated[
        Path | None,
        typer.Option(
            "--remit",
            help="A remit file (.toml or .json); flags override its fields.",
            dir_okay=False,
        ),
    ] = None,
    tool: Annotated[
        list[str] | None,
        typer.Option(
            "--tool",
            help="Grant this tool (repeat; replaces the file's tool set, "
            "keeping its constraints for the tools named).",
            show_default=False,
        ),
    ] = None,
    calls: Annotated[int | None, typer.Option(help="Budget: tool and model calls.", min=0)] = None,
    cost_usd: Annotated[
        float | None, typer.Option("--cost-usd", help="Budget: dollars.", min=0.0)
    ] = None,
    tokens: Annotated[
        int | None, typer.Option(help="Budget: input and output tokens (each).", min=0)
    ] = None,
    deadline: Annotated[
        str | None, typer.Option(help="A duration (15m, 1h30m) or an ISO-8601 time.")
    ] = None,
    depth: Annotated[int | None, typer.Option(help="Delegation levels allowed.", min=0)] = None,
    journal: JournalOpt = DEFAULT_JOURNAL,
    workspace: Annotated[
        Path, typer.Option(help="The directory the file tools are confined to.", file_okay=False)
    ] = Path("."),
    inputs: Annotated[
        str | None, typer.Option(help="The root task's inputs, a JSON object: '{\"n\": 3}'.")
    ] = None,
    run_id: Annotated[str | None, typer.Option("--run-id", help="Choose the run id.")] = None,
    principal_key: Annotated[
        Path | None,
        typer.Option(
            "--principal-key",
            help="Issue the run's root grant with your own key (from `remit key new`).",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Tasks worked on at once.", min=1)] = 64,
    durability: Annotated[
        str,
        typer.Option(help="full: every step fsynced; normal: survives kill -9, not power loss."),
    ] = "full",
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress; one line out.")
    ] = False,
) -> None:
    """Start a run and carry it to its end."""
    if durability not in ("full", "normal"):
        _die(f"[INVALID_INPUT] --durability must be 'full' or 'normal', not {durability!r}")
    durable: Durability = "full" if durability == "full" else "normal"
    with _user_errors():
        rid = check_run_id(run_id) if run_id else new_run_id()  # before a model loads
        agent_ref, goal, all_inputs, remit = _what_to_run(
            goal, job, agent, remit_file, inputs, workspace,
            build=lambda base: build_remit(base, tools=tool, calls=calls, cost_usd=cost_usd,
                                           tokens=tokens, deadline=deadline, depth=depth),
        )  # fmt: skip
        _importable_cwd()
        progress = Progress(remit)
        rt = Runtime(journal=journal, agent=agent_ref, workspace=workspace,
                     concurrency=concurrency, durability=durable,
                     observer=progress.observe, model=load_model(model),
                     principal_key=load_principal_key(principal_key) if principal_key
                     else None)  # fmt: skip
        progress.runtime = rt
        rt.on_approval = _approval_hint(rid, journal)
        try:
            result = _drive(progress, quiet, lambda: rt.run(goal, remit=remit, inputs=all_inputs,
                                                            run_id=rid))  # fmt: skip
        except KeyboardInterrupt as e:
            flag = "" if journal == DEFAULT_JOURNAL else f" --journal {journal}"
            _interrupted(e, f"remit resume {rid}{flag}")
        finally:
            rt.close()
    raise typer.Exit(_outcome(result, goal, remit, journal, quiet=quiet))


@app.command()
def resume(
    run_id: Annotated[str, typer.Argument(help="The run to carry on.")],
    journal: JournalOpt = DEFAULT_JOURNAL,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress; one line out.")
    ] = False,
) -> None:
    """Carry an interrupted run to its end; recorded steps are served, not redone."""
    with _user_errors():
        store = _open_existing(journal)
        try:
            rec = store.get_run(run_id)
        except RemitError:
            store.close()
            raise
        try:
            remit: Remit | None = Remit.from_json(rec.remit)
        except RemitError:
            remit = None
        _importable_cwd()
        progress = Progress(remit)
        # the model the run was started with (recorded in its meta by the Runtime)
        rt = Runtime(journal=store, observer=progress.observe, model=_recorded_model(rec.meta))
        progress.runtime = rt
        rt.on_approval = _approval_hint(run_id, journal)
        already = rec.status != "running"
        try:
            result = _drive(progress, quiet, lambda: rt.resume(run_id))
        except KeyboardInterrupt as e:
            flag = "" if journal == DEFAULT_JOURNAL else f" --journal {journal}"
            _interrupted(e, f"remit resume {run_id}{flag}")
        finally:
            rt.close()
    raise typer.Exit(_outcome(result, rec.goal, remit, journal, quiet=quiet, already=already))


def _recorded_model(meta: str | None) -> Any:
    try:
        spec = json.loads(meta or "{}").get("model")
    except (ValueError, AttributeError):
        spec = None
    return load_model(spec if isinstance(spec, str) else None)


def _approval_hint(run_id: str, journal: Path) -> Callable[[str, Any], None]:
    flag = "" if journal == DEFAULT_JOURNAL else f" --journal {journal}"

    def hint(step_id: str, node: Any) -> None:
        step = step_id.removesuffix("~approval")
        err.print(
            f"waiting for a person: task {node.id} asks to make call {step}\n"
            f"  remit approve {run_id} {step}{flag}   |   remit deny {run_id} {step}{flag}",
            soft_wrap=True,
        )

    return hint


def _answer(run_id: str, step: str, journal: Path, approved: bool, by: str) -> None:
    """Write a person's answer to a call that waits for approval."""
    step_id = step if step.endswith("~approval") else f"{step}~approval"
    with _user_errors():
        store = _open_existing(journal)
        try:
            store.get_run(run_id)
            rec = store.get_step(run_id, step_id)
            if rec is None or rec.kind != "approval":
                pending = [s.step_id for s in store.steps(run_id)
                           if s.kind == "approval" and s.status == "started"]  # fmt: skip
                hint = ", ".join(pending) if pending else "none"
                _die(f"[NO_APPROVAL] run {run_id} has no approval request {step_id!r} "
                     f"(waiting: {hint})")  # fmt: skip
            if rec.status != "started":
                _die(f"[ALREADY_ANSWERED] {step_id} was already answered ({rec.output})")
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
        _die("[ARGUMENT] pass exactly one of --happened RESULT_JSON and --did-not-happen")
    result: Any = None
    if happened is not None:
        try:
            result = json.loads(happened)
        except ValueError as e:
            _die(f"[INVALID_INPUT] --happened must be the tool's result as JSON: {e}")
    with _user_errors():
        store = _open_existing(journal)
        try:
            record_resolution(store, run_id, step, happened=happened is not None, result=result,
                              by=by or os.environ.get("USER", "someone"), why=why)  # fmt: skip
        finally:
            store.close()
    flag = "" if journal == DEFAULT_JOURNAL else f" --journal {journal}"
    verb = "happened" if happened is not None else "did not happen"
    out.print(f"recorded that {step} {verb}; carry the run on: remit resume {run_id}{flag}")


@app.command()
def runs(
    journal: JournalOpt = DEFAULT_JOURNAL,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.", min=0)] = 20,
) -> None:
    """List the runs of a journal."""
    with _user_errors():
        store = _open_existing(journal)
        try:
            records = store.list_runs(limit)
            # running only while a live process holds the run; else interrupted
            states = [run_state(r, store.get_lease(r.run_id)) for r in records]
        finally:
            store.close()
    if not records:
        out.print(f"no runs in {journal}")
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    rows: list[tuple[str, Text, str, str, str]] = []
    for r, state in zip(records, states, strict=True):
        sym, style = status_style(state)
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created_at))
        took = "-" if r.status == "running" else format_seconds(r.updated_at - r.created_at)
        rows.append(
            (r.run_id, Text(f"{sym} {state}", style=style), printable(r.goal), created, took)
        )
    # every column but the goal keeps its full width; the goal takes what is left
    widths = [max(len(h), *(len(str(row[i])) for row in rows)) for i, h in
              enumerate(("run id", "status", "goal", "created", "duration"))]  # fmt: skip
    goal_width = max(12, out.width - sum(widths) + widths[2] - 2 * 4)
    table.add_column("run id", no_wrap=True, min_width=widths[0])
    table.add_column("status", no_wrap=True, min_width=widths[1])
    table.add_column("goal", overflow="ellipsis", no_wrap=True, max_width=goal_width)
    table.add_column("created", no_wrap=True, min_width=widths[3])
    table.add_column("duration", justify="right", no_wrap=True, min_width=widths[4])
    for row in rows:
        table.add_row(*row)
    out.print(table)


@app.command()
def show(
    run_id: Annotated[str, typer.Argument(help="The run to show.")],
    journal: JournalOpt = DEFAULT_JOURNAL,
    as_json: Annotated[bool, typer.Option("--json", help="The whole tree as JSON.")] = False,
    show_all: Annotated[bool, typer.Option("--all", help="Every child of every task.")] = False,
    max_children: Annotated[
        int, typer.Option("--max-children", help="Children shown per task.", min=1)
    ] = 20,
    chain: Annotated[
        str | None,
        typer.Option(
            "--chain",
            help="Instead of the tree: the warrant chain principal → … → agent of this "
            "step (or task) id, with each hop's narrowing.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Show the task tree of a run: status, role decision, spend vs budget, denials."""
    if chain is not None:
        _show_chain(run_id, chain, journal, as_json)
        return
    with _user_errors():
        store = _open_existing(journal)
        try:
            tree = load(store, run_id)
        finally:
            store.close()
    if as_json:
        sys.stdout.write(json.dumps(tree.to_dict(), indent=2, ensure_ascii=False, default=str))
        sys.stdout.write("\n")
        return
    out.print(render(tree, max_children=None if show_all else max_children, width=out.width))
    counts = tree.counts()
    line = Text()
    line.append(f"{plural(tree.tasks, 'task')}: ", style="bold")
    line.append(" · ".join(f"{v:,} {k}" for k, v in counts.most_common()))
    line.append(f"   {plural(tree.steps, 'step')} · "
                f"{plural(tree.root.subtree_denied, 'denied call')} · "
                f"spent {format_spend(tree.root.spent, tree.root.budget)} · "
                f"{format_seconds(tree.seconds)}", style="dim")  # fmt: skip
    out.print(line)
    if tree.state == "interrupted":
        hint = f"remit resume {run_id}" + ("" if journal == DEFAULT_JOURNAL
                                           else f" --journal {journal}")  # fmt: skip
        out.print(Text(f"no process carries this run any more; carry it on: {hint}",
                       style="yellow"))  # fmt: skip


# --- warrants: chains, verification, keys ----------------------------------------------


def _show_chain(run_id: str, step: str, journal: Path, as_json: bool) -> None:
    with _user_errors():
        store = _open_existing(journal)
        try:
            view = chain_view(store, run_id, step)
        finally:
            store.close()
    if as_json:
        sys.stdout.write(json.dumps(view, indent=2, ensure_ascii=False) + "\n")
        return
    head = Text()
    head.append(f"warrant chain of {step}", style="bold")
    head.append(f"   run {run_id}", style="dim")
    out.print(head)
    line = Text("principal ", style="bold")
    line.append(view["principal"][:16] + "…", style="cyan")
    out.print(line)
    for hop in view["hops"]:
        t = Text("  → " + ("  " * hop["position"]))
        t.append(f"hop {hop['position']} ", style="bold")
        t.append(hop["task_id"], style="dim")
        t.append(f"  {printable(hop['goal'][:60])!r}" if hop["goal"] else "")
        t.append(f"  holder {hop['holder'][:12]}…", style="cyan")
        out.print(t)
        pad = "      " + ("  " * hop["position"])
        if hop["position"] == 0:
            out.print(Text(pad + "grants: " + printable(hop["grants"]), style="green"))
        for change in hop["narrowing"] or (["(no narrowing)"] if hop["position"] else []):
            out.print(Text(pad + "narrows: " + printable(change), style="yellow"))
    if view.get("step"):
        s = view["step"]
        t = Text("  ⇒ ")
        t.append(f"{s['kind']} {s['name']}", style="bold")
        t.append(f"  {s['status']}  signed by the last holder: ")
        t.append("yes" if s["signed"] else "no", style="green" if s["signed"] else "red")
        out.print(t)
    verdict = view["verified"]
    out.print(
        Text("chain verifies offline ✓", style="green")
        if verdict is True
        else Text(f"chain does NOT verify: {verdict}", style="red")
    )


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
    """Re-verify every tool call of a run from the journal alone: each warrant chain
    (signatures, narrowing, expiry), each holder's call proof, each call against its remit.

    Exit code 0 when everything verifies, 1 when something does not, 2 for bad input.
    """
    with _user_errors():
        pinned = None
        if principal is not None:
            pinned = hex32(principal)
            if pinned is None:
                _die("[ARGUMENT] --principal must be 64 hex digits (an Ed25519 public key)")
        store = _open_existing(journal)
        try:
            report = verify_run(store, run_id, principal_public=pinned)
        finally:
            store.close()
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
        raise typer.Exit(0 if report.ok else 1)
    source = "pinned" if report.principal_source == "given" else "as recorded in the journal"
    out.print(Text(f"run {run_id}: principal {report.principal[:16]}… ({source})"))
    summary = (
        f"{plural(report.calls, 'call')} · {plural(report.hops, 'warrant hop')} "
        f"(longest chain {report.longest_chain}) · "
        f"{plural(report.approved, 'call')} approved by a person"
    )
    if report.ok:
        out.print(Text(f"verified ✓  {summary}", style="green"))
        if report.principal_source != "given":
            out.print(Text("pin the principal with --principal KEY to prove who issued it",
                           style="dim"))  # fmt: skip
        return
    out.print(Text(f"FAILED: {plural(len(report.failures), 'step')} did not verify  "
                   f"({summary})", style="red"))  # fmt: skip
    for f in report.failures[:50]:
        out.print(
            Text(printable(f"  {f.step_id}  [{f.code}] {f.message}"), style="red"), soft_wrap=True
        )
    if len(report.failures) > 50:
        out.print(Text(f"  … and {len(report.failures) - 50} more (--json for all)"))
    raise typer.Exit(1)


key_app = typer.Typer(help="Principal keys: issue runs under your own key.", no_args_is_help=True)
app.add_typer(key_app, name="key")


@key_app.command("new")
def key_new(
    path: Annotated[Path, typer.Argument(help="Where to write the new key (mode 0600).")],
) -> None:
    """Create a principal key; prints its public key (give it to `remit verify --principal`)."""
    with _user_errors():
        if path.exists():
            _die(f"[ARGUMENT] {path} exists; refusing to overwrite a key")
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
    with _user_errors():
        out.print(load_principal_key(path).public.hex())


def main() -> None:
    """The ``remit`` console script."""
    app()


if __name__ == "__main__":
    main()
