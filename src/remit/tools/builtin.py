"""Built-in tools: files confined to one granted directory, and a calculator.

>>> ws = files("/tmp")           # read_file, list_dir, write_file, all inside /tmp
>>> [t.name for t in ws]
['read_file', 'list_dir', 'write_file']
>>> calculator("2 * (3 + 4)")
14

Paths are relative to the root; anything that resolves outside it (``..``, absolute
paths, symlinks pointing out) is refused before the file system is touched. The
remit's constraints narrow further (``within("out/")``); the root is the hard wall.
"""

from __future__ import annotations

import ast
import contextlib
import math
import operator
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from remit.errors import DeniedError, InvalidInput
from remit.tools._tool import Tool, tool

MAX_READ_BYTES = 1_000_000


def _confine(root: Path, path: str) -> Path:
    if not path or "\x00" in path:
        raise DeniedError(f"path {path!r} is empty or contains NUL")
    if os.path.isabs(path):
        raise DeniedError(f"path {path!r} is absolute; paths are relative to the workspace")
    lexical = Path(os.path.normpath(root / path))
    full = lexical.resolve()
    if full != root and root not in full.parents:
        raise DeniedError(f"path {path!r} resolves outside the workspace {str(root)!r}")
    if full != lexical:
        # the remit's constraints judge the path as written; a link would make the
        # file read or written another than the one they allowed
        raise DeniedError(
            f"path {path!r} goes through a symbolic link; the file tools do not follow links"
        )
    return full


def _umask() -> int:
    # the only portable way to read the umask is to set it; put it straight back
    mask = os.umask(0)
    os.umask(mask)
    return mask


# read once at import: os.umask is process-wide, and tools may run on threads
_UMASK = _umask()


def files(root: str | os.PathLike[str]) -> list[Tool]:
    """``read_file``, ``list_dir`` and ``write_file`` confined to ``root``."""
    base = Path(root).resolve()

    def read_file(path: str) -> str:
        """Read a UTF-8 text file (at most 1 MB) from the workspace."""
        full = _confine(base, path)
        if not full.is_file():
            raise InvalidInput(f"read_file: {path!r} is not a file in the workspace")
        data = full.read_bytes()[: MAX_READ_BYTES + 1]
        if len(data) > MAX_READ_BYTES:
            raise InvalidInput(f"read_file: {path!r} is larger than {MAX_READ_BYTES} bytes")
        return data.decode("utf-8", errors="replace")

    def list_dir(path: str = ".") -> list[dict[str, Any]]:
        """List a workspace directory: name, whether it is a directory, size in bytes."""
        full = _confine(base, path)
        if not full.is_dir():
            raise InvalidInput(f"list_dir: {path!r} is not a directory in the workspace")
        out: list[dict[str, Any]] = []
        for entry in sorted(os.scandir(full), key=lambda e: e.name):
            is_dir = entry.is_dir(follow_symlinks=False)
            size = 0 if is_dir else entry.stat(follow_symlinks=False).st_size
            out.append({"name": entry.name, "dir": is_dir, "size": size})
        return out

    def write_file(path: str, text: str) -> str:
        """Write a UTF-8 text file in the workspace (atomically; rewriting is idempotent)."""
        full = _confine(base, path)
        if full == base or full.is_dir():
            raise InvalidInput(f"write_file: {path!r} is a directory, not a file")
        full.parent.mkdir(parents=True, exist_ok=True)
        _confine(base, str(full.parent.relative_to(base)))  # a parent may be a planted link
        # a fresh temporary file (O_EXCL: never an existing file or link someone planted)
        fd, tmp = tempfile.mkstemp(prefix=f".{full.name}.", suffix=".remit-tmp", dir=full.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            # mkstemp makes 0600; give the file the mode a plain write would have
            try:
                mode = full.stat().st_mode & 0o7777
            except FileNotFoundError:
                mode = 0o666 & ~_UMASK
            os.chmod(tmp, mode)
            os.replace(tmp, full)  # replaces a link at `full` itself, never its target
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return f"wrote {len(text.encode())} bytes to {path}"

    return [
        Tool(read_file),
        Tool(list_dir),
        Tool(write_file, effect=True, idempotent=True),
    ]


# integers beyond this many bits are refused: arithmetic, not a way to exhaust memory
_MAX_BITS = 100_000

_BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}
_FUNCS: dict[str, Callable[..., Any]] = {
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
    "sqrt": math.sqrt,
    "log": math.log,
    "exp": math.exp,
}


def _eval(node: ast.AST) -> Any:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow):
            if abs(right) > 1000:
                raise InvalidInput("calculator: exponent larger than 1000")
            if isinstance(left, int) and left.bit_length() * abs(right) > _MAX_BITS:
                raise InvalidInput("calculator: result would be too large")
        if (
            isinstance(node.op, ast.Mult)
            and isinstance(left, int)
            and isinstance(right, int)
            and left.bit_length() + right.bit_length() > _MAX_BITS
        ):
            raise InvalidInput("calculator: result would be too large")
        return _BINOPS[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCS
        and not node.keywords
    ):
        return _FUNCS[node.func.id](*(_eval(a) for a in node.args))
    raise InvalidInput(f"calculator: unsupported expression element {ast.dump(node)[:60]}")


@tool
def calculator(expression: str) -> int | float:
    """Evaluate an arithmetic expression: + - * / // % **, parentheses, abs round min
    max sqrt log exp. No names, no attributes: nothing else can run."""
    if len(expression) > 1000:
        raise InvalidInput("calculator: expression longer than 1000 characters")
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as e:
        raise InvalidInput(f"calculator: cannot parse {expression!r}: {e.msg}") from None
    try:
        return _eval(tree)
    except (ZeroDivisionError, OverflowError, ValueError, TypeError) as e:
        raise InvalidInput(f"calculator: {expression!r}: {e}") from None
