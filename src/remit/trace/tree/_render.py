"""The tree on a terminal: labels, number formats, and which children fit on screen.

Separate because only a terminal needs it: ``--json`` prints the view's own ``to_dict``.
"""

from __future__ import annotations

import math
import re
from collections import Counter

from rich.text import Text
from rich.tree import Tree

from remit.core.ledger import Usage
from remit.core.remit import Budget
from remit.trace.tree._view import RunTree, TaskView


def plural(n: int, word: str) -> str:
    """``"1 task"``, ``"2 tasks"``, ``"1,290 tasks"``."""
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def format_seconds(seconds: float | None) -> str:
    """``"12 ms"``, ``"3.4 s"``, ``"2 m 05 s"``; ``"-"`` for None."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(int(seconds), 60)
    if m < 60:
        return f"{m} m {s:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} m"


def format_spend(spent: Usage, budget: Budget | None) -> str:
    """``"3/10 calls · $0.02/$0.50"``: each spent dimension, against its limit if any."""
    b = budget or Budget()
    parts: list[str] = []
    if spent.calls or b.calls is not None:
        lim = f"/{b.calls:,}" if b.calls is not None else ""
        parts.append(f"{spent.calls:,}{lim} calls")
    tokens = spent.input_tokens + spent.output_tokens
    if tokens or b.input_tokens is not None or b.output_tokens is not None:
        tin = f"/{b.input_tokens:,}" if b.input_tokens is not None else ""
        tout = f"/{b.output_tokens:,}" if b.output_tokens is not None else ""
        parts.append(f"{spent.input_tokens:,}{tin} in + {spent.output_tokens:,}{tout} out tokens")
    if spent.cost_usd or b.cost_usd is not None:
        lim = f"/${b.cost_usd:.2f}" if b.cost_usd is not None else ""
        parts.append(f"${spent.cost_usd:.4f}{lim}")
    return " · ".join(parts) if parts else "nothing spent"


_STATUS_STYLE = {
    "done": ("✓", "green"),
    "failed": ("✗", "bold red"),
    "cancelled": ("⊘", "yellow"),
    "running": ("●", "cyan"),
    "interrupted": ("◐", "yellow"),
    "pending": ("○", "dim"),
}


#: C0 and C1 controls (tab and newline included: a label is one line) and the Unicode
#: bidirectional controls, which could make a goal display as something it is not
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` safe to print on a terminal: control and bidi characters become ``�``
    (``--json`` keeps the text as it was).

    >>> printable("pay \x1b[31mbob\u202e")
    'pay �[31mbob�'
    """
    return _UNPRINTABLE.sub("\ufffd", text)


def status_style(status: str) -> tuple[str, str]:
    """The symbol and rich style of a task or run status."""
    return _STATUS_STYLE.get(status, ("?", "magenta"))


def _label(n: TaskView, root: bool = False) -> Text:
    sym, style = status_style(n.status)
    t = Text()
    t.append(f"{sym} ", style=style)
    t.append(printable(n.goal or n.key), style="bold" if root else "")
    if n.attempt:
        t.append(f" (re-planned, attempt {n.attempt + 1})", style="yellow")
    if n.decision:
        t.append(f"  {n.decision}", style="blue")
    t.append(f"  {format_spend(n.spent, n.budget)}", style="dim")
    if n.seconds is not None:
        t.append(f"  {format_seconds(n.seconds)}", style="dim")
    if n.status not in ("done",):
        t.append(f"  {n.status}", style=style)
    return t


def _pick(children: list[TaskView], limit: int) -> tuple[list[TaskView], list[TaskView]]:
    """At most ``limit`` children to show: failed and denied ones first, then in order."""
    if len(children) <= limit:
        return children, []
    rank = sorted(
        range(len(children)),
        key=lambda i: (
            0 if children[i].subtree_failed or children[i].status in ("failed", "running") else
            1 if children[i].subtree_denied else 2,
            i,
        ),
    )  # fmt: skip
    keep = set(rank[:limit])
    shown = [c for i, c in enumerate(children) if i in keep]
    hidden = [c for i, c in enumerate(children) if i not in keep]
    return shown, hidden


#: how each kind of failure event is drawn
_EVENT_STYLE = {
    "fault": ("⚡", "magenta"),
    "retry": ("↻", "yellow"),
    "reroute": ("↪", "yellow"),
    "escalate": ("⇧", "bold yellow"),
    "breaker": ("⊘", "yellow"),
    "vote": ("⚖", "cyan"),
    "invalidated": ("✗", "red"),
}


def render(tree: RunTree, *, max_children: int | None = 20, width: int = 80) -> Tree:
    """A rich ``Tree`` of the run: per task its status, goal, role decision, spend
    against its remit's budget and duration; denied calls, errors, and how failures
    ended (injected faults, retries, reroutes, escalations, circuits) beneath the task
    that met them. With ``max_children``, each task shows at most that many children
    (failed and denied first) and a line counting the rest. Denial reasons longer than
    ``2 * width`` are cut (``to_dict`` has them whole)."""
    r = tree.run
    sym, style = status_style(tree.state)
    head = Text()
    head.append(f"{sym} run {r.run_id}", style=f"bold {style}")
    head.append(f"  {tree.state}", style=style)
    head.append(f"  {plural(tree.tasks, 'task')} · {plural(tree.steps, 'step')}", style="dim")
    out = Tree(head, guide_style="dim")
    # iterative: trees can be deeper than Python's recursion limit
    stack: list[tuple[Tree, TaskView | Text]] = [(out, tree.root)]
    while stack:
        parent_ui, item = stack.pop()
        if isinstance(item, Text):  # the "… and N more" line
            parent_ui.add(item)
            continue
        n = item
        ui = parent_ui.add(_label(n, n is tree.root))
        # (a task failed by a denied call: the denial below says it all)
        if (
            n.error is not None
            and n.status != "done"
            and not any(d.reason == n.error["message"] for d in n.denied)
        ):
            ui.add(Text(printable(f"{n.error['code']}: {n.error['message']}"), style="red"))
        for said in n.said:
            said = said if len(said) <= width * 2 else said[: width * 2 - 1] + "…"
            ui.add(Text(printable(said), style="italic dim"))
        for d in n.denied:
            line = Text()
            # "denied DENIED" says one thing twice; "denied BUDGET" says why
            code = "" if d.code == "DENIED" else f" {d.code}"
            line.append(f"denied{code} ", style="bold red")
            if not d.reason.startswith(d.name):
                # the reason does not name the call (budget, deadline): show it
                line.append(f"{d.call(width // 2)}: ", style="red")
            reason = d.reason if len(d.reason) <= width * 2 else d.reason[: width * 2 - 1] + "…"
            line.append(printable(reason), style="red")
            ui.add(line)
        for kind, text in n.events:
            sym, style = _EVENT_STYLE.get(kind, ("·", "dim"))
            text = text if len(text) <= width * 2 else text[: width * 2 - 1] + "…"
            ui.add(Text(printable(f"{sym} {text}"), style=style))
        if max_children is None:
            shown, hidden = n.children, []
        else:
            shown, hidden = _pick(n.children, max_children)
        todo: list[tuple[Tree, TaskView | Text]] = [(ui, c) for c in shown]
        if hidden:
            by_status = Counter(h.status for h in hidden)
            detail = ", ".join(f"{v:,} {k}" for k, v in by_status.most_common())
            todo.append((ui, Text(f"… and {len(hidden):,} more ({detail})", style="dim italic")))
        stack.extend(reversed(todo))
    return out
