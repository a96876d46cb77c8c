"""The markdown report a write step of :class:`~remit.agents._model.ModelAgent` writes:
the overview, a table of the files summarized and whether each summary's quote is in
the file, the steps the remit denied or that failed, and how the plan was repaired.

Separate from the agent because it is presentation only: plain data in, markdown out,
no model and no Gate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["render_report"]


def _cell(text: Any, limit: int = 200) -> str:
    s = " ".join(str(text).split()).replace("|", "\\|")
    return s if len(s) <= limit else s[: limit - 1] + "…"


def render_report(
    goal: str,
    results: Sequence[Mapping[str, Any]],
    overview: str | None,
    notes: Sequence[str] = (),
) -> str:
    """The markdown report a write step writes: overview, per-file summaries with their
    verification, the steps the remit denied, and the plan's repairs.

    >>> print(render_report("Digest a.md", [{"step": "s1", "path": "a.md", "ok": True,
    ...     "summary": "About A.", "verified": True, "quote": "all about A"}], "A.")
    ...     .splitlines()[0])
    # Digest a.md
    """
    lines = [
        f"# {goal}",
        "",
        "Written by remit's model-driven job: every summary, the overview and the plan "
        "come from the model; every call went through the remit's Gate.",
        "",
        "## Overview",
        "",
        overview or "(no overview: nothing was summarized)",
        "",
    ]
    read = [r for r in results if r.get("ok") and r.get("summary")]
    lines += ["## Files", ""]
    if read:
        lines += ["| step | file | summary | verified |", "|---|---|---|---|"]
        for r in read:
            check = (
                f'yes: "{_cell(r.get("quote"), 80)}"'
                if r.get("verified")
                else "no"
                + (f': "{_cell(r.get("quote"), 80)}" is not in the file' if r.get("quote") else "")
            )
            lines.append(
                f"| {r.get('step')} | `{r.get('path')}` | {_cell(r['summary'])} | {check} |"
            )
    else:
        lines.append("No file was read and summarized.")
    refused = [r for r in results if r.get("denied") or r.get("error")]
    if refused:
        lines += ["", "## Denied or failed", ""]
        for r in refused:
            err = r.get("denied") or r.get("error") or {}
            lines.append(
                f"- {r.get('step')} `{r.get('tool', 'read_file')} {r.get('path')}`: "
                f"{err.get('code')}: {_cell(err.get('message'), 300)}"
            )
    if notes:
        lines += ["", "## How the plan was repaired", ""]
        lines += [f"- {_cell(n, 300)}" for n in notes]
    lines.append("")
    return "\n".join(lines)
