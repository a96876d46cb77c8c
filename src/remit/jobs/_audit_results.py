"""What audit tasks return (the schemas the engine checks) and how a directory merges its
children's results, kept small however big the tree.

Separate because a directory task merges and a depth-capped walk merges the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from remit.core.tasks import ChildResult
from remit.jobs._audit_report import cell

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


def empty(path: str) -> dict[str, Any]:
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


def trim(acc: dict[str, Any]) -> dict[str, Any]:
    for name, (n, key) in _RANK.items():
        acc[name] = sorted(acc[name], key=key)[:n]
    return acc


def add_file(acc: dict[str, Any], stats: Mapping[str, Any]) -> None:
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
        trim(acc)


def add_dir(acc: dict[str, Any], sub: Mapping[str, Any]) -> None:
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
    trim(acc)


def merge(path: str, results: Iterable[ChildResult], paths: Mapping[str, str]) -> dict[str, Any]:
    acc = empty(path)
    for r in results:
        if not r.ok:
            acc["failed"].append({"path": paths.get(r.key, r.key), "code": r.code or "FAILED",
                                  "message": cell(r.error or "", 300)})  # fmt: skip
            acc["count"]["failed"] += 1
        elif isinstance(r.value, Mapping) and "totals" in r.value:
            add_dir(acc, r.value)  # pyright: ignore[reportUnknownArgumentType]
        elif isinstance(r.value, Mapping):
            add_file(acc, r.value)  # pyright: ignore[reportUnknownArgumentType]
    return trim(acc)
