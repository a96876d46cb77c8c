"""``remit run`` and ``remit resume``: what to run, the live progress, the outcome."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from remit.cli._common import (
    DEFAULT_JOURNAL,
    JournalOpt,
    ModelOpt,
    app,
    approval_hint,
    die,
    importable_cwd,
    interrupted,
    open_existing,
    out,
    show_hint,
    user_errors,
)
from remit.cli._failures import load_fault_plan, load_routes
from remit.cli._otel import OTEL_HELP, live_export
from remit.cli._progress import Progress, drive
from remit.core.remit import Remit, RemitFile, resolve_deadline
from remit.errors import RemitError
from remit.jobs import JOBS
from remit.journal import Durability
from remit.models import load_model
from remit.runtime._runtime import Run, Runtime, check_run_id, new_run_id
from remit.tools.mcp import McpServer
from remit.trace.tree import (
    format_seconds,
    format_spend,
    plural,
    printable,
    status_style,
)
from remit.trust.provenance import load_principal_key


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
        die(f"[INVALID_INPUT] --inputs is not valid JSON: {e}")
    if not isinstance(data, dict):
        die(f"[INVALID_INPUT] --inputs must be a JSON object, got {type(data).__name__}")
    return data  # pyright: ignore[reportUnknownVariableType]


def _what_to_run(
    goal: str | None,
    job: str | None,
    agent: str | None,
    remit_file: Path | None,
    inputs: str | None,
    workspace: Path,
    build: Callable[[Remit | None], Remit],
) -> tuple[str, str, dict[str, Any], Remit, list[McpServer]]:
    """The agent reference, goal, inputs, remit and the remit file's MCP servers of a
    ``run``; exits 2 on bad input."""
    if job is not None and agent is not None:
        die("[INVALID_INPUT] pass either --job or --agent, not both")
    if job is None and agent is None:
        die(f"[INVALID_INPUT] say what works on the goal: --job {' | --job '.join(JOBS)}, "
             "or --agent module:attr")  # fmt: skip
    if not workspace.is_dir():
        die(f"[INVALID_INPUT] --workspace {workspace} is not a directory")
    user_inputs = _parse_inputs(inputs)
    base: Remit | None = None
    if job is not None:
        spec = JOBS.get(job)
        if spec is None:
            die(f"[INVALID_INPUT] unknown job {job!r} (jobs: {', '.join(JOBS)})")
        all_inputs = {**spec.inputs, **user_inputs}
        problem = spec.check(all_inputs, workspace)
        if problem is not None:
            die(f"[INVALID_INPUT] job {job}: {problem}")
        agent_ref, goal = spec.agent, goal or spec.goal(all_inputs)
        base = spec.remit(all_inputs)
    else:
        assert agent is not None
        all_inputs, agent_ref = user_inputs, agent
        if not goal:
            die('[INVALID_INPUT] a goal is required with --agent: remit run "GOAL" ...')
    servers: list[McpServer] = []
    if remit_file is not None:
        declared = RemitFile.load(remit_file)
        base, servers = declared.remit, McpServer.from_tables(declared.mcp)
    return agent_ref, goal, all_inputs, build(base), servers


def _merge_servers(declared: list[McpServer], given: list[McpServer]) -> list[McpServer]:
    """The remit file's servers, with those given by ``--mcp`` replacing any of the
    same name (a flag overrides the file, as for the remit's fields)."""
    named = {s.name: s for s in declared}
    named.update((s.name, s) for s in given)
    return list(named.values())


def _result_summary(result: Any, limit: int = 300) -> str:
    if isinstance(result, Mapping) and isinstance(result.get("summary"), str):  # pyright: ignore[reportUnknownMemberType]
        text: str = result["summary"]  # pyright: ignore[reportUnknownVariableType]
    elif isinstance(result, str):
        text = result
    else:
        text = json.dumps(result, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _outcome(run: Run, goal: str, remit: Remit | None, journal: str, *, quiet: bool,
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
    grid.add_row("run", f"{run.id}   →  {show_hint(run.id, journal)}")
    if run.signed:
        flag = "" if journal == DEFAULT_JOURNAL else f" --journal {journal}"
        grid.add_row("audit", f"every call is signed: remit verify {run.id}{flag}")
    out.print(grid)
    return code


#: where tasks work (run and resume)
ExecutorOpt = Annotated[
    str,
    typer.Option(
        "--executor",
        help="Where tasks work: local (this process), ray (a local Ray cluster), or a Ray "
        "cluster's address (ray://host:10001, auto). Ray needs a postgresql:// journal "
        "(see docs/scale.md).",
    ),
]


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
    model: ModelOpt = None,
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
    faults: Annotated[
        Path | None,
        typer.Option(
            "--faults",
            help="A fault plan (TOML) to strike on purpose; injected faults are journaled "
            "as such (see docs/faults.md).",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    mcp: Annotated[
        list[str] | None,
        typer.Option(
            "--mcp",
            help="An MCP server whose tools the run may call as NAME.tool: NAME=COMMAND "
            "(stdio) or NAME=URL (streamable HTTP); repeat for several (see docs/mcp.md).",
            show_default=False,
        ),
    ] = None,
    routes: Annotated[
        Path | None,
        typer.Option(
            "--routes",
            help="Alternatives for capabilities, each with a cost (TOML or JSON, a "
            "[routes] table): a failing tool is routed around.",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    executor: ExecutorOpt = "local",
    otel: Annotated[bool, typer.Option("--otel", help=OTEL_HELP)] = False,
) -> None:
    """Start a run and carry it to its end."""
    if durability not in ("full", "normal"):
        die(f"[INVALID_INPUT] --durability must be 'full' or 'normal', not {durability!r}")
    durable: Durability = "full" if durability == "full" else "normal"
    with user_errors(), live_export(otel) as live:
        rid = check_run_id(run_id) if run_id else new_run_id()  # before a model loads
        agent_ref, goal, all_inputs, remit, servers = _what_to_run(
            goal, job, agent, remit_file, inputs, workspace,
            build=lambda base: build_remit(base, tools=tool, calls=calls, cost_usd=cost_usd,
                                           tokens=tokens, deadline=deadline, depth=depth),
        )  # fmt: skip
        importable_cwd()
        progress = Progress(remit)
        plan = load_fault_plan(faults) if faults is not None else None
        table = load_routes(routes) if routes is not None else None
        servers = _merge_servers(servers, [McpServer.parse(m) for m in mcp or ()])
        rt = Runtime(journal=live.tap(journal, durable) if live else journal,
                     agent=agent_ref, workspace=workspace,
                     concurrency=concurrency, durability=durable,
                     observer=progress.observe, model=load_model(model),
                     principal_key=load_principal_key(principal_key) if principal_key
                     else None, routes=table, faults=plan, mcp=servers,
                     executor=executor)  # fmt: skip
        progress.runtime = rt
        rt.on_approval = progress.on_approval(approval_hint(rid, journal))
        try:
            result = drive(progress, quiet, lambda: rt.run(goal, remit=remit, inputs=all_inputs,
                                                            run_id=rid))  # fmt: skip
        except KeyboardInterrupt as e:
            flag = "" if journal == DEFAULT_JOURNAL else f" --journal {journal}"
            interrupted(e, f"remit resume {rid}{flag}")
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
    faults: Annotated[
        Path | None,
        typer.Option(
            "--faults",
            help="A fault plan to strike during the resume (faults already struck, as the "
            "journal shows, count toward their times).",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    mcp: Annotated[
        list[str] | None,
        typer.Option(
            "--mcp",
            help="Give an MCP server again, as NAME=COMMAND or NAME=URL (by default the "
            "run's recorded servers are started, without the environment a remit file "
            "gave them: it is never recorded).",
            show_default=False,
        ),
    ] = None,
    executor: ExecutorOpt = "local",
    otel: Annotated[bool, typer.Option("--otel", help=OTEL_HELP)] = False,
) -> None:
    """Carry an interrupted run to its end; recorded steps are served, not redone."""
    with user_errors(), live_export(otel) as live:
        plan = load_fault_plan(faults) if faults is not None else None
        store = open_existing(journal)
        try:
            rec = store.get_run(run_id)
        except RemitError:
            store.close()
            raise
        try:
            remit: Remit | None = Remit.from_json(rec.remit)
        except RemitError:
            remit = None
        importable_cwd()
        progress = Progress(remit)
        # the model the run was started with (recorded in its meta by the Runtime)
        rt = Runtime(journal=live.tap(store) if live else store, observer=progress.observe,
                     model=_recorded_model(rec.meta), faults=plan,
                     mcp=[McpServer.parse(m) for m in mcp or ()],
                     executor=executor)  # fmt: skip
        progress.runtime = rt
        rt.on_approval = progress.on_approval(approval_hint(run_id, journal))
        already = rec.status != "running"
        try:
            result = drive(progress, quiet, lambda: rt.resume(run_id))
        except KeyboardInterrupt as e:
            flag = "" if journal == DEFAULT_JOURNAL else f" --journal {journal}"
            interrupted(e, f"remit resume {run_id}{flag}")
        finally:
            rt.close()
    raise typer.Exit(_outcome(result, rec.goal, remit, journal, quiet=quiet, already=already))


def _recorded_model(meta: str | None) -> Any:
    try:
        spec = json.loads(meta or "{}").get("model")
    except (ValueError, AttributeError):
        spec = None
    return load_model(spec if isinstance(spec, str) else None)
