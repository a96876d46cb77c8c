"""The live view of a run on the terminal: counters fed by the runtime, drawn by rich."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.console import Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from remit.cli._common import err
from remit.core.ledger import Usage
from remit.core.remit import Budget, Remit
from remit.gate import Gate
from remit.runtime._runtime import Run, Runtime
from remit.trace.tree import format_seconds, format_spend

__all__ = ["Progress", "drive"]


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
        #: tasks whose call waits for a person's answer (``remit approve`` or the web view)
        self.asking: set[str] = set()
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
            self.asking.discard(node.id)
        elif event == "failed":
            self.failed += 1
            self.asking.discard(node.id)
        elif event == "replayed":
            self.replayed += 1
            if node.parent is None:
                self.root = node
            if getattr(node.status, "value", node.status) == "done":
                self.done += 1
            else:
                self.failed += 1

    def on_approval(self, hint: Callable[[str, Any], None]) -> Callable[[str, Any], None]:
        """``hint`` (what tells the person how to answer), counting the task as waiting."""

        def asked(step_id: str, node: Any) -> None:
            self.asking.add(node.id)
            hint(step_id, node)

        return asked

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
        # known but not started: waiting for their dependencies or a free worker
        top.append(f" · {max(0, self.known - finished - running):,} waiting", style="dim")
        if self.asking:
            top.append(f" · {len(self.asking):,} await a person", style="bold yellow")
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


def drive(progress: Progress, quiet: bool, work: Callable[[], Run]) -> Run:
    """Run ``work()`` with the live display (on a terminal, unless quiet)."""
    if quiet or not err.is_terminal:
        return work()
    with Live(progress, console=err, refresh_per_second=10, transient=True):
        return work()
