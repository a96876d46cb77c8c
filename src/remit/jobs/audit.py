"""The audit job: measure a directory tree under a remit, and write a markdown report.

``remit run --job audit`` audits ``src/`` of the current directory and writes
``out/audit.md``. The work is real and every effect goes through the Gate:

- the root task plans one subtask per entry of the target directory; a subdirectory
  becomes a task that plans over its own entries, a file becomes a leaf;
- each directory task gets a remit narrowed to its directory (``list_dir`` and
  ``read_file`` only ``within`` it, no ``write_file``); each file leaf gets
  ``read_file`` for *its own path only*, one call of budget, and no delegation depth;
- a leaf reads its file and returns its statistics (lines, code, comments, blanks,
  TODO/FIXME markers, longest line; for Python, functions, classes and the largest
  function, via :mod:`ast`), validated against :data:`FILE_SCHEMA`;
- directory tasks merge their children's statistics (a failed child is reported, not
  fatal: ``on_failure="aggregate"``); a directory reached with no depth left is walked
  in one task (the depth cap forces execution);
- the root merges everything and writes the report with ``write_file``, the only
  effect, granted only ``within("out/")``.

The default remit (:func:`audit_remit`, spelled as a file in ``examples/audit.toml``)
grants ``read_file`` only for text source files: anything else a leaf meets (a binary,
a file without an extension) is denied by the Gate, a symlink leading out of the
workspace is refused by the file tool's own confinement, and the report lists each
denial with its reason. The agent never filters what it is not allowed to read; the
remit does.

The agent and the job's defaults are here; its pure parts sit beside it, a module each:
``_audit_measure`` (one file's statistics), ``_audit_results`` (the schemas of what
tasks return, and merging) and ``_audit_report`` (the markdown).

>>> stats = measure("a.py", "def f():\\n    return 1  # FIXME: one\\n")
>>> stats["functions"], stats["todo"], stats["comment"]
(1, 1, 0)
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from remit.agents._agent import Agent, Context
from remit.core.remit import Budget, Remit
from remit.core.tasks import ChildResult, Plan, Subtask
from remit.errors import AuthorityError
from remit.jobs._audit_measure import measure
from remit.jobs._audit_report import render_report
from remit.jobs._audit_results import (
    DIR_SCHEMA,
    FILE_SCHEMA,
    KEEP_LIST,
    KEEP_TOP,
    add_dir,
    add_file,
    empty,
    merge,
    trim,
)
from remit.jobs._audit_results import Row as Row

__all__ = [
    "DEFAULT_INPUTS",
    "DIR_SCHEMA",
    "FILE_SCHEMA",
    "IGNORED",
    "KEEP_LIST",
    "KEEP_TOP",
    "READABLE",
    "AuditAgent",
    "audit_check",
    "audit_goal",
    "audit_remit",
    "measure",
    "render_report",
]

#: what ``remit run --job audit`` works on unless ``--inputs`` says otherwise
DEFAULT_INPUTS: Mapping[str, Any] = {"target": "src", "report": "out/audit.md"}

#: entries the planner does not delegate at all (build and cache artefacts)
IGNORED = frozenset({"__pycache__", ".git", ".venv", "node_modules", ".mypy_cache",
                     ".pytest_cache", ".ruff_cache"})  # fmt: skip

#: the files the default remit lets a leaf read: text sources, by extension
READABLE = r".+\.(py|pyi|typed|md|rst|txt|toml|cfg|ini|json|yaml|yml|sh)"


def audit_goal(inputs: Mapping[str, Any]) -> str:
    """The root goal for ``inputs``: ``"Audit src/ and write out/audit.md"``."""
    target = _dir(str(inputs.get("target", DEFAULT_INPUTS["target"])))
    return f"Audit {target}/ and write {inputs.get('report', DEFAULT_INPUTS['report'])}"


def audit_check(inputs: Mapping[str, Any], workspace: str | os.PathLike[str]) -> str | None:
    """Why the job cannot start on ``inputs`` in ``workspace`` (None if it can).

    The CLI asks before starting a run, so that a wrong target is bad input (exit 2),
    not a failed run.
    """
    data = {**DEFAULT_INPUTS, **inputs}
    target, report = data.get("target"), data.get("report")
    if not isinstance(target, str) or not target:
        return "inputs.target must be a directory path relative to the workspace"
    if not isinstance(report, str) or not report:
        return "inputs.report must be a file path relative to the workspace"
    if not (Path(workspace) / target).is_dir():
        return (
            f"the audit target {target!r} is not a directory in the workspace "
            f"{str(Path(workspace).resolve())!r}; choose another with "
            '--inputs \'{"target": "DIR"}\' or --workspace'
        )
    return None


def audit_remit(
    inputs: Mapping[str, Any] | None = None,
    *,
    calls: int = 1000,
    deadline: str = "5m",
    depth: int = 3,
) -> Remit:
    """The job's default remit (``examples/audit.toml`` is the same, as a file).

    ``list_dir`` within the target, ``read_file`` within the target *and* only for
    text sources (:data:`READABLE`), ``write_file`` within the report's directory.
    """
    data = {**DEFAULT_INPUTS, **(inputs or {})}
    target = _dir(str(data["target"])) + "/"
    out = posixpath.dirname(str(data["report"])) or "."
    return Remit(
        tools={
            "list_dir": {"path": {"within": target}},
            "read_file": {"path": [{"within": target}, {"matches": READABLE}]},
            "write_file": {"path": {"within": out.rstrip("/") + "/"}},
        },
        budget=Budget(calls=calls),
        deadline=deadline,
        depth=depth,
    )


def _dir(path: str) -> str:
    p = posixpath.normpath(path.strip() or ".")
    return p.rstrip("/") or "."


def _join(parent: str, name: str) -> str:
    return name if parent in ("", ".") else f"{parent}/{name}"


# --- the agent ---------------------------------------------------------------------


class AuditAgent(Agent):
    """Audits a directory tree: one task per directory, one leaf per file.

    Inputs: ``target`` (a workspace-relative directory, default ``src``) and
    ``report`` (where the root writes the markdown, default ``out/audit.md``). Tasks
    below the root carry ``path`` and ``kind`` (``"dir"``, ``"file"`` or ``"empty"``).
    """

    def atomize(self, ctx: Context) -> str:
        return "execute" if ctx.inputs.get("kind") in ("file", "empty") else "plan"

    async def plan(self, ctx: Context) -> Plan:
        path = self._path(ctx)
        entries: list[dict[str, Any]] = await ctx.call("list_dir", path=path)
        subtasks: list[Subtask] = []
        for entry in entries:
            name = str(entry["name"])
            if name in IGNORED:
                continue
            child = _join(path, name)
            if entry.get("dir"):
                subtasks.append(Subtask(
                    name + "/", f"audit {child}/",
                    inputs={"path": child, "kind": "dir"},
                    output_schema=DIR_SCHEMA,
                    # a directory task may look only inside its own directory, and
                    # cannot write anything
                    remit={"tools": {"list_dir": {"path": {"within": child + "/"}},
                                     "read_file": {"path": {"within": child + "/"}}}},
                ))  # fmt: skip
            else:
                subtasks.append(Subtask(
                    name, f"measure {child}",
                    inputs={"path": child, "kind": "file"},
                    output_schema=FILE_SCHEMA,
                    # a leaf may read its own file, once, and delegate nothing
                    remit={"tools": {"read_file": {"path": {"equals": child}}},
                           "budget": {"calls": 1}, "depth": 0},
                ))  # fmt: skip
        if not subtasks:
            subtasks.append(Subtask(
                "(empty)", f"note that {path}/ has nothing to audit",
                inputs={"path": path, "kind": "empty"}, output_schema=DIR_SCHEMA,
                remit={"tools": {}, "budget": {"calls": 0}, "depth": 0},
            ))  # fmt: skip
        return Plan(subtasks, on_failure="aggregate")

    async def execute(self, ctx: Context) -> dict[str, Any]:
        kind = ctx.inputs.get("kind")
        path = self._path(ctx)
        if kind == "empty":
            return empty(path)
        if kind == "file":
            return await self._measure(ctx, path)
        # a directory reached with no delegation depth left: walk it in this task
        merged = await self._walk(ctx, path)
        return merged if kind is not None else await self._report(ctx, merged)

    async def aggregate(self, ctx: Context, results: list[ChildResult]) -> dict[str, Any]:
        path = self._path(ctx)
        keys = {r.key: _join(path, r.key.rstrip("/")) for r in results}
        merged = merge(path, results, keys)
        return merged if ctx.inputs.get("kind") is not None else await self._report(ctx, merged)

    # --- helpers ---------------------------------------------------------------

    async def _report(self, ctx: Context, merged: dict[str, Any]) -> dict[str, Any]:
        """The root's last act: write the report (the job's only effect), summarize."""
        path = merged["path"]
        report = str(ctx.inputs.get("report", DEFAULT_INPUTS["report"]))
        text = render_report(merged, task_id=ctx.task_id)
        await ctx.call("write_file", path=report, text=text)
        t = merged["totals"]
        return {
            "report": report,
            "target": path,
            "totals": t,
            "denied": merged["count"]["denied"],
            "failed": merged["count"]["failed"],
            "summary": (
                f"audited {t['files']:,} files ({t['lines']:,} lines, {t['functions']:,} "
                f"functions, {t['todo']:,} TODO/FIXME) under {path}/; "
                f"{merged['count']['denied']:,} denied, {merged['count']['failed']:,} failed; "
                f"report written to {report}"
            ),
        }

    @staticmethod
    def _path(ctx: Context) -> str:
        if "path" in ctx.inputs:
            return str(ctx.inputs["path"])
        return _dir(str(ctx.inputs.get("target", DEFAULT_INPUTS["target"])))

    @staticmethod
    async def _measure(ctx: Context, path: str) -> dict[str, Any]:
        try:
            text: str = await ctx.call("read_file", path=path)
        except AuthorityError as e:
            # denied by the remit (or refused by the tool's own confinement): reported,
            # not fatal; the journal holds the denied step with the same reason
            return {"path": path, "denied": {"path": path, "code": e.code, "reason": e.message}}
        return measure(path, text)

    async def _walk(self, ctx: Context, path: str) -> dict[str, Any]:
        acc = empty(path)
        try:
            entries: list[dict[str, Any]] = await ctx.call("list_dir", path=path)
        except AuthorityError as e:
            acc["denied"].append({"path": path + "/", "code": e.code, "reason": e.message})
            acc["count"]["denied"] += 1
            return acc
        for entry in entries:
            name = str(entry["name"])
            if name in IGNORED:
                continue
            child = _join(path, name)
            if entry.get("dir"):
                add_dir(acc, await self._walk(ctx, child))
            else:
                add_file(acc, await self._measure(ctx, child))
        return trim(acc)
