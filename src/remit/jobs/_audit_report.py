"""The markdown report the audit's root writes: totals, the largest entries, every denial.

Separate because it is pure: a merged result in, text out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def _table(headers: list[str], rows: Iterable[Iterable[Any]]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row in rows:
        out.append("| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |")
    return out


def cell(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _of(shown: int, total: int) -> str:
    return f"{total:,}" if shown == total else f"{shown:,} of {total:,}"


def render_report(merged: Mapping[str, Any], *, task_id: str = "") -> str:
    """The markdown report for a merged audit of one directory tree."""
    t, count = merged["totals"], merged["count"]
    path = merged["path"]
    lines = [f"# Audit of `{path}/`", ""]
    if task_id:
        lines += [f"Written by remit's audit job (task `{task_id}`); every file was read by "
                  "its own leaf task under a remit that grants it that one file.", ""]  # fmt: skip
    lines += ["## Totals", ""]
    lines += _table(
        ["files", "lines", "code", "comments", "blank", "TODO/FIXME", "functions", "classes",
         "bytes"],
        [[f"{t['files']:,}", f"{t['lines']:,}", f"{t['code']:,}", f"{t['comment']:,}",
          f"{t['blank']:,}", f"{t['todo']:,}", f"{t['functions']:,}", f"{t['classes']:,}",
          f"{t['bytes']:,}"]],
    )  # fmt: skip
    ll, lf = merged.get("longest_line"), merged.get("largest_function")
    lines.append("")
    if ll:
        lines.append(f"- Longest line: `{ll['path']}:{ll['line']}` ({ll['length']} characters)")
    if lf:
        lines.append(f"- Largest function: `{lf['name']}` in `{lf['path']}:{lf['line']}` "
                     f"({lf['lines']} lines)")  # fmt: skip
    dirs = sorted(merged["dirs"], key=lambda d: d["path"])
    if dirs:
        what = "Directories" if len(dirs) == count["dirs"] else "Largest directories"
        lines += ["", f"## {what} ({_of(len(dirs), count['dirs'])})", ""]
        lines += _table(["directory", "files", "lines", "code", "TODO/FIXME", "functions"],
                        ([f"`{d['path']}/`", f"{d['totals']['files']:,}",
                          f"{d['totals']['lines']:,}", f"{d['totals']['code']:,}",
                          f"{d['totals']['todo']:,}", f"{d['totals']['functions']:,}"]
                         for d in dirs))  # fmt: skip
    files = merged["files"]
    if files:
        lines += ["", f"## Largest files (top {_of(len(files), t['files'])})", ""]
        lines += _table(["file", "lines", "code", "comments", "blank", "TODO/FIXME",
                         "functions", "classes"],
                        ([f"`{f['path']}`", f"{f['lines']:,}", f"{f['code']:,}",
                          f"{f['comment']:,}", f"{f['blank']:,}", f["todo"], f["functions"],
                          f["classes"]] for f in files))  # fmt: skip
    if merged["marked"]:
        lines += ["", "## Most TODO/FIXME markers", ""]
        lines += _table(["file", "markers"],
                        ([f"`{f['path']}`", f["todo"]] for f in merged["marked"]))  # fmt: skip
    if merged["notes"]:
        lines += ["", f"## Notes ({_of(len(merged['notes']), count['notes'])})", ""]
        lines += [f"- `{f['path']}`: {f['note']}" for f in merged["notes"]]
    lines += ["", f"## Denied by the remit ({count['denied']:,})", ""]
    if merged["denied"]:
        lines.append("These entries were not read: the task that met them was not granted "
                     "the call. The journal records each denial with its reason"
                     + (f"; the first {len(merged['denied'])} are listed here"
                        if len(merged["denied"]) < count["denied"] else "") + ".")  # fmt: skip
        lines.append("")
        lines += _table(["path", "code", "reason"],
                        ([f"`{d['path']}`", d["code"], cell(d["reason"])]
                         for d in merged["denied"]))  # fmt: skip
    else:
        lines.append("Nothing: every entry was inside the remit.")
    if merged["failed"]:
        lines += ["", f"## Failed ({_of(len(merged['failed']), count['failed'])})", ""]
        lines += _table(["path", "code", "message"],
                        ([f"`{f['path']}`", f["code"], cell(f["message"])]
                         for f in merged["failed"]))  # fmt: skip
    lines.append("")
    return "\n".join(lines)
