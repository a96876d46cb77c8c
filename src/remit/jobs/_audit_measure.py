"""What one file leaf measures: lines, comments, markers, and for Python its functions and classes.

Separate because it is pure text in, statistics out: no remit, no Gate, no tree.
"""

from __future__ import annotations

import ast
import posixpath
import re
from collections.abc import Mapping
from typing import Any

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
