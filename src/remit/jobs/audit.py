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

>>> stats = measure("a.py", "def f():\\n    return 1  # FIXME: one\\n")
>>> stats["functions"], stats["todo"], stats["comment"]
(1, 1, 0)
"""

from __future__ import annotations

import ast
import os
import posixpath
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from remit.agents._agent import Agent, Context
from remit.core.remit import Budget, Remit
from remit.core.tasks import ChildResult, Plan, Subtask
from remit.errors import AuthorityError

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

_COMMENT_PREFIXES: Mapping[str, tuple[str, ...]] = {
    ".py": ("#",), ".pyi": ("#",), ".toml": ("#",), ".cfg": ("#", ";"), ".ini": ("#", ";"),
    ".sh": ("#",), ".yaml": ("#",), ".yml": ("#",), ".c": ("//", "/*", "*"),
    ".h": ("//", "/*", "*"), ".js": ("//",), ".ts": ("//",), ".go": ("//",), ".rs": ("//",),
}  # fmt: skip
_WORDS = r"(?:TODO|FIXME|XXX|HACK)\b"
#: a marker counts where a comment starts with it, or, in files without comments
#: (markdown, text), where it is followed by a colon
_PLAIN_MARKER = re.compile(r"\b" + _WORDS + ":")


def _marker(prefixes: tuple[str, ...]) -> re.Pattern[str]:
    if not prefixes:
        return _PLAIN_MARKER
    return re.compile("(?:" + "|".join(map(re.escape, prefixes)) + r")\s*" + _WORDS)


_COUNTS = ("files", "lines", "code", "comment", "blank", "todo", "functions", "classes", "bytes")
_INT = {"type": "integer", "minimum": 0}
_WHERE = {"type": ["object", "null"]}

#: what a file leaf returns (the engine validates it before the parent sees it)
FILE_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "required": ["path"],
    "properties": {
        "path": {"type": "string"},
        **{k: _INT for k in _COUNTS if k != "files"},
        "longest_line": _WHERE,
        "largest_function": _WHERE,
        "denied": {"type": "object", "required": ["path", "code", "reason"]},
        "note": {"type": "string"},
    },
}

#: how many entries of each list a directory result keeps: results stay small however
#: big the tree (a parent's input is bounded; the journal holds one copy per level)
KEEP_TOP = 10
KEEP_LIST = 50
_LISTS = ("files", "marked", "notes", "dirs", "denied", "failed")

#: what a directory task returns: totals, and the top entries of each list with the
#: full count of each in ``count``
DIR_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "required": ["path", "totals", "count", *_LISTS],
    "properties": {
        "path": {"type": "string"},
        "totals": {"type": "object", "required": list(_COUNTS)},
        "count": {"type": "object", "required": ["dirs", "denied", "failed", "notes"]},
        **{k: {"type": "array", "maxItems": KEEP_LIST} for k in _LISTS},
    },
}


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


# --- measuring one file (pure) ----------------------------------------------------


def measure(path: str, text: str) -> dict[str, Any]:
    """The statistics of one file's text (what a leaf returns, minus denials)."""
    ext = posixpath.splitext(path)[1].lower()
    prefixes = _COMMENT_PREFIXES.get(ext, ())
    marker = _marker(prefixes)
    lines = text.splitlines()
    blank = comment = todo = 0
    longest: dict[str, Any] | None = None
    for n, line in enumerate(lines, 1):
        stripped = line.strip()
        if not stripped:
            blank += 1
        elif prefixes and stripped.startswith(prefixes):
            comment += 1
        todo += len(marker.findall(line))
        if longest is None or len(line) > longest["length"]:
            longest = {"path": path, "line": n, "length": len(line)}
    stats: dict[str, Any] = {
        "path": path,
        "bytes": len(text.encode("utf-8")),
        "lines": len(lines),
        "code": len(lines) - blank - comment,
        "comment": comment,
        "blank": blank,
        "todo": todo,
        "functions": 0,
        "classes": 0,
        "longest_line": longest,
        "largest_function": None,
    }
    if ext in (".py", ".pyi"):
        _measure_python(path, text, stats)
    return stats


_BLOCKS = (ast.stmt, ast.excepthandler, ast.match_case)


def _measure_python(path: str, text: str, stats: dict[str, Any]) -> None:
    try:
        tree = ast.parse(text, filename=path)
    except SyntaxError as e:
        stats["note"] = f"not valid Python (line {e.lineno}: {e.msg})"
        return
    largest: dict[str, Any] | None = None
    # functions and classes are statements: walk statement bodies only, never into
    # expressions (several times faster than ast.walk on real code)
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.ClassDef):
            stats["classes"] += 1
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            stats["functions"] += 1
            size = (node.end_lineno or node.lineno) - node.lineno + 1
            if (
                largest is None
                or size > largest["lines"]
                or (size == largest["lines"] and node.lineno < largest["line"])
            ):
                largest = {"path": path, "name": node.name, "line": node.lineno, "lines": size}
        stack.extend(c for c in ast.iter_child_nodes(node) if isinstance(c, _BLOCKS))
    stats["largest_function"] = largest


# --- merging (pure) -----------------------------------------------------------------


def _empty(path: str) -> dict[str, Any]:
    return {"path": path, "totals": dict.fromkeys(_COUNTS, 0), "longest_line": None,
            "largest_function": None, "count": dict.fromkeys(("dirs", "denied", "failed",
                                                              "notes"), 0),
            **{k: [] for k in _LISTS}}  # fmt: skip


def _bigger(a: Any, b: Any, key: str) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    return b if (b[key], a["path"]) > (a[key], b["path"]) else a


Row = dict[str, Any]


def _by_path(r: Row) -> Any:
    return r["path"]


#: how each list is ranked when it is cut to its size
_RANK: Mapping[str, tuple[int, Callable[[Row], Any]]] = {
    "files": (KEEP_TOP, lambda f: (-f["lines"], f["path"])),
    "marked": (KEEP_TOP, lambda f: (-f["todo"], f["path"])),
    "notes": (KEEP_LIST, _by_path),
    "dirs": (KEEP_LIST, lambda d: (-d["totals"]["lines"], d["path"])),
    "denied": (KEEP_LIST, _by_path),
    "failed": (KEEP_LIST, _by_path),
}


def _trim(acc: dict[str, Any]) -> dict[str, Any]:
    for name, (n, key) in _RANK.items():
        acc[name] = sorted(acc[name], key=key)[:n]
    return acc


def _add_file(acc: dict[str, Any], stats: Mapping[str, Any]) -> None:
    if "denied" in stats:
        acc["denied"].append(dict(stats["denied"]))
        acc["count"]["denied"] += 1
        return
    totals = acc["totals"]
    totals["files"] += 1
    for k in _COUNTS[1:]:
        totals[k] += int(stats.get(k, 0))
    acc["longest_line"] = _bigger(acc["longest_line"], stats.get("longest_line"), "length")
    acc["largest_function"] = _bigger(acc["largest_function"], stats.get("largest_function"),
                                      "lines")  # fmt: skip
    row = {k: stats.get(k, 0) for k in ("path", "lines", "code", "comment", "blank", "todo",
                                         "functions", "classes")}  # fmt: skip
    acc["files"].append(row)
    if row["todo"]:
        acc["marked"].append({"path": row["path"], "todo": row["todo"]})
    if stats.get("note"):
        acc["notes"].append({"path": row["path"], "note": stats["note"]})
        acc["count"]["notes"] += 1
    if len(acc["files"]) > 4 * KEEP_LIST:  # a big directory: keep the lists small as we go
        _trim(acc)


def _add_dir(acc: dict[str, Any], sub: Mapping[str, Any]) -> None:
    totals = acc["totals"]
    for k in _COUNTS:
        totals[k] += int(sub["totals"][k])
    for k, v in sub["count"].items():
        acc["count"][k] += int(v)
    acc["count"]["dirs"] += 1
    acc["longest_line"] = _bigger(acc["longest_line"], sub.get("longest_line"), "length")
    acc["largest_function"] = _bigger(acc["largest_function"], sub.get("largest_function"),
                                      "lines")  # fmt: skip
    for k in _LISTS:
        acc[k].extend(sub[k])
    acc["dirs"].append({"path": sub["path"], "totals": dict(sub["totals"])})
    _trim(acc)


def _merge(path: str, results: Iterable[ChildResult], paths: Mapping[str, str]) -> dict[str, Any]:
    acc = _empty(path)
    for r in results:
        if not r.ok:
            acc["failed"].append({"path": paths.get(r.key, r.key), "code": r.code or "FAILED",
                                  "message": _cell(r.error or "", 300)})  # fmt: skip
            acc["count"]["failed"] += 1
        elif isinstance(r.value, Mapping) and "totals" in r.value:
            _add_dir(acc, r.value)  # pyright: ignore[reportUnknownArgumentType]
        elif isinstance(r.value, Mapping):
            _add_file(acc, r.value)  # pyright: ignore[reportUnknownArgumentType]
    return _trim(acc)


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
            return _empty(path)
        if kind == "file":
            return await self._measure(ctx, path)
        # a directory reached with no delegation depth left: walk it in this task
        merged = await self._walk(ctx, path)
        return merged if kind is not None else await self._report(ctx, merged)

    async def aggregate(self, ctx: Context, results: list[ChildResult]) -> dict[str, Any]:
        path = self._path(ctx)
        keys = {r.key: _join(path, r.key.rstrip("/")) for r in results}
        merged = _merge(path, results, keys)
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
        acc = _empty(path)
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
                _add_dir(acc, await self._walk(ctx, child))
            else:
                _add_file(acc, await self._measure(ctx, child))
        return _trim(acc)


# --- the report (pure) ----------------------------------------------------------------


def _table(headers: list[str], rows: Iterable[Iterable[Any]]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row in rows:
        out.append("| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |")
    return out


def _cell(text: str, limit: int = 160) -> str:
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
                        ([f"`{d['path']}`", d["code"], _cell(d["reason"])]
                         for d in merged["denied"]))  # fmt: skip
    else:
        lines.append("Nothing: every entry was inside the remit.")
    if merged["failed"]:
        lines += ["", f"## Failed ({_of(len(merged['failed']), count['failed'])})", ""]
        lines += _table(["path", "code", "message"],
                        ([f"`{f['path']}`", f["code"], _cell(f["message"])]
                         for f in merged["failed"]))  # fmt: skip
    lines.append("")
    return "\n".join(lines)
