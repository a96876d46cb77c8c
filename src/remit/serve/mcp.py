"""remit as an MCP server: an assistant hands remit a goal and gets back a bounded,
journaled, verifiable task tree.

Three tools:

- ``delegate(goal, remit?, output_schema?, inputs?)`` runs a task tree under the
  server's remit, or under a narrower one the client asks for: a client can only
  narrow (:meth:`Remit.restrict`), never widen, and a wider ask is refused before a
  run is recorded. It answers with the run's id, status, result and spend, and reports
  progress (tasks done of tasks known) while the tree works.
- ``status(run_id)`` and ``show(run_id)`` read the journal: the run's state and counts,
  and its whole tree in the form of ``remit show --json`` (docs/schemas/show.json).

This module needs the ``mcp`` extra (``pip install 'remit[mcp]'``). Each delegated run
is an ordinary run in the server's journal: ``remit show``,
``remit verify`` and ``remit resume`` work on it as on any other.

>>> server = RemitServer(Remit(tools={"calculator": {}}, depth=1), journal="remit.db")
>>> server.narrowed({"tools": ["calculator"], "budget": {"calls": 3}}).budget.calls
3
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

from remit.agents import Agent
from remit.core.remit import Remit, RemitFile
from remit.errors import RemitError, RemitFormatError, RunNotFound, WideningError
from remit.journal import open_journal
from remit.models import Model
from remit.runtime._runtime import Runtime, new_run_id
from remit.tools.mcp import McpServer
from remit.trace.tree import load

__all__ = ["RemitServer"]

#: what a client may say about the remit it wants (the server's principal stays)
_ASKABLE = ("tools", "budget", "deadline", "depth", "principal")

INSTRUCTIONS = """\
remit runs a goal as a recursive task tree under a bounded authority (a remit: the tools
it may call and with which arguments, a budget, a deadline, a delegation depth). Call
`delegate` with a goal; pass `remit` to narrow what the run may do (it can never be wider
than this server's). Every step is journaled: `status` and `show` read a run back."""


class RemitServer:
    """The MCP server's state: its remit (the most any delegated run may do: a Remit, or
    a remit file read again for each run), the journal its runs go to, and what works on
    them (an agent, a model, tools)."""

    def __init__(
        self,
        remit: Remit | str | os.PathLike[str],
        *,
        journal: str | os.PathLike[str],
        agent: Agent | str = "remit:ModelAgent",
        model: Model | None = None,
        workspace: str | os.PathLike[str] = ".",
        mcp: Sequence[McpServer] = (),
        concurrency: int = 64,
    ) -> None:
        #: a remit file is read again for every delegated run, so that a relative
        #: deadline in it ("15m") counts from each delegation, not from start-up
        self._remit_file = None if isinstance(remit, Remit) else Path(remit)
        self._remit = remit if isinstance(remit, Remit) else RemitFile.load(remit).remit
        self.journal = Path(journal)
        self.agent = agent
        self.model = model
        self.workspace = Path(workspace)
        self.mcp = list(mcp)
        self.concurrency = concurrency
        #: called as (run id, approval step id) when a call of a run waits for a person
        self.on_approval: Callable[[str, str], None] | None = None

    # --- what the tools do (plain methods, so they read and test without a session) ----

    @property
    def remit(self) -> Remit:
        """The most a delegated run may do, as of now (see ``remit`` in the constructor)."""
        if self._remit_file is not None:
            self._remit = RemitFile.load(self._remit_file).remit
        return self._remit

    def narrowed(self, asked: Mapping[str, Any] | None) -> Remit:
        """The remit of a delegated run: ours, or the narrower one ``asked`` for.

        ``asked`` has a remit's shape (``tools``: a table of tool name to argument
        constraints, or a list of names; ``budget``; ``deadline``; ``depth``).
        Raises :class:`~remit.errors.WideningError` for anything wider than ours.
        """
        base = self.remit
        if not asked:
            return base
        for key in asked:
            if key not in _ASKABLE:
                raise RemitFormatError(
                    f"remit.{key}: unknown field (expected one of {', '.join(_ASKABLE)})"
                )
        principal = asked.get("principal", base.principal)
        if principal != base.principal:
            raise WideningError(
                "principal", f"runs here act for {base.principal!r}, not {principal!r}"
            )
        tools = asked.get("tools")
        if isinstance(tools, list):
            tools = {str(name): {} for name in cast(list[object], tools)}
        return base.restrict(
            tools=cast(Any, tools),
            budget=asked.get("budget"),
            deadline=asked.get("deadline"),
            depth=asked.get("depth"),
        )

    async def delegate(
        self,
        goal: str,
        remit: Mapping[str, Any] | None = None,
        output_schema: Mapping[str, Any] | None = None,
        inputs: Mapping[str, Any] | None = None,
        on_progress: Any = None,
    ) -> dict[str, Any]:
        """Run ``goal`` to its end under :meth:`narrowed` and say how it went."""
        if not goal.strip():
            raise RemitFormatError("goal: must say what to do")
        granted = self.narrowed(remit)
        counts = {"known": 1, "done": 0}

        def observe(event: str, node: Any) -> None:
            if event == "plan":
                counts["known"] += len(node.children or ())
            elif event in ("done", "failed", "replayed"):
                counts["done"] += 1

        rt = Runtime(
            journal=self.journal, agent=self.agent, model=self.model,
            workspace=self.workspace, mcp=self.mcp, observer=observe,
            concurrency=self.concurrency,
        )  # fmt: skip
        rid = new_run_id()
        told = self.on_approval
        if told is not None:
            rt.on_approval = lambda step_id, _node: told(rid, step_id)
        try:
            running = rt.arun(
                goal, remit=granted, inputs=inputs, output_schema=output_schema, run_id=rid
            )
            work = asyncio.ensure_future(running)
            while on_progress is not None and not work.done():
                await on_progress(counts["done"], counts["known"])
                await asyncio.wait([work], timeout=0.5)
            run = await work
        finally:
            rt.close()
        return {
            "run_id": run.id,
            "status": run.status,
            "result": run.result,
            "error": run.error,
            "spent": run.spent.to_dict(),
            "budget": granted.budget.to_dict(),
            "tasks": run.tasks,
            "steps": {"executed": run.executed, "denied": run.denied},
            "seconds": round(run.seconds, 3),
            "signed": run.signed,
            "journal": str(self.journal),
            "verify": f"remit verify {run.id} --journal {self.journal}",
        }

    def status(self, run_id: str) -> dict[str, Any]:
        """A run's state, its tasks by status and its spend against its budget."""
        with self._tree(run_id) as tree:
            return {
                "run_id": run_id,
                "goal": tree.run.goal,
                "status": tree.run.status,
                "state": tree.state,
                "tasks": dict(tree.counts()),
                "spent": tree.root.spent.to_dict(),
                "budget": tree.remit.budget.to_dict() if tree.remit is not None else None,
                "seconds": round(tree.seconds, 3),
                "error": tree.root.error,
            }

    def show(self, run_id: str) -> dict[str, Any]:
        """A run's whole tree, as ``remit show --json`` prints it."""
        with self._tree(run_id) as tree:
            return tree.to_dict()

    @contextlib.contextmanager
    def _tree(self, run_id: str) -> Any:
        if not self.journal.exists():
            raise RunNotFound(f"no run {run_id!r}: the journal {self.journal} holds no runs yet")
        store = open_journal(self.journal)
        try:
            yield load(store, run_id)
        finally:
            store.close()

    # --- the MCP server -----------------------------------------------------------------

    def build(self) -> MCPServer:
        """The SDK's ``MCPServer`` with the three tools, ready to ``run("stdio")``."""
        server = MCPServer("remit", instructions=INSTRUCTIONS)

        def refused(e: RemitError) -> ToolError:
            return ToolError(f"[{e.code}] {e.message}")

        @server.tool(annotations=ToolAnnotations(read_only_hint=False, open_world_hint=True))
        async def delegate(
            goal: str,
            ctx: Context,
            remit: dict[str, Any] | None = None,
            output_schema: dict[str, Any] | None = None,
            inputs: dict[str, Any] | None = None,
        ) -> dict[str, Any]:
            """Run a goal as a journaled task tree under this server's remit, or a
            narrower one (`remit`: tools, budget, deadline, depth; never wider). The
            result must match `output_schema` when one is given. Answers with the run
            id, status, result and spend."""
            try:
                return await self.delegate(goal, remit, output_schema, inputs,
                                           on_progress=ctx.report_progress)  # fmt: skip
            except RemitError as e:
                raise refused(e) from None

        @server.tool(annotations=ToolAnnotations(read_only_hint=True))
        def status(run_id: str) -> dict[str, Any]:
            """A run's state, its tasks by status and its spend against its budget."""
            try:
                return self.status(run_id)
            except RemitError as e:
                raise refused(e) from None

        @server.tool(annotations=ToolAnnotations(read_only_hint=True))
        def show(run_id: str) -> dict[str, Any]:
            """A run's whole task tree from its journal (the form of `remit show --json`)."""
            try:
                return self.show(run_id)
            except RemitError as e:
                raise refused(e) from None

        return server
