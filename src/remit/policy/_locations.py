"""Constraints on where a value points: file paths (``within``, ``glob``) and URLs
(``url_prefix``), with the lexical path helpers they share.

Paths are compared after :func:`posixpath.normpath`, without touching the file system
(the policy does no I/O); the compiled checks reuse :func:`normpath` and
:func:`is_under` for their fast path.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, ClassVar, cast
from urllib.parse import SplitResult, urlsplit, urlunsplit

from remit.errors import RemitFormatError
from remit.policy._constraints import Constraint
from remit.policy._values import kind, show


@lru_cache(maxsize=512)
def compile_regex(pattern: str) -> re.Pattern[str]:
    # fnmatch makes every * an atomic group: globs cannot backtrack catastrophically
    return re.compile(pattern)


def normpath(path: str) -> str:
    # Fast path for the common already-normal path: nothing normpath would change.
    if path and path[0] != "." and path[-1] != "/" and "//" not in path and "/." not in path:
        return path
    norm = posixpath.normpath(path)
    # POSIX keeps exactly two leading slashes; treat them as one root like the kernel does.
    return "/" + norm.lstrip("/") if norm.startswith("//") else norm


def is_under(norm: str, prefix: str) -> bool:
    """Whether normalized ``norm`` is ``prefix`` or below it (both normalized)."""
    if prefix == ".":
        if norm == ".":
            return True
        if norm.startswith("/"):
            return False
        rest = norm
    elif prefix == "/":
        if not norm.startswith("/"):
            return False
        rest = norm[1:]
    elif norm == prefix:
        return True
    elif norm.startswith(prefix) and norm[len(prefix)] == "/":
        rest = norm[len(prefix) + 1 :]
    else:
        return False
    # ``..`` survives normalization only at the start, so a prefix made of ``..``
    # followed by more ``..`` would climb out of it.
    return not (rest == ".." or rest.startswith("../"))


def _shown_dir(prefix: str) -> str:
    return prefix if prefix in ("/", ".") else prefix + "/"


@dataclass(frozen=True, slots=True, repr=False)
class Within(Constraint):
    """Accepts path strings at or below a directory, compared after normalization.

    The prefix is stored normalized, so ``within("out/") == within("./out")``.

    >>> within("out/").check("/etc/passwd")
    "'/etc/passwd' is not within 'out/'"
    """

    prefix: str
    op: ClassVar[str] = "within"

    def __post_init__(self) -> None:
        p = cast(object, self.prefix)
        if not isinstance(p, str) or not p or "\x00" in p or "\\" in p:
            raise RemitFormatError(f"within: prefix must be a non-empty path, got {show(p)}")
        object.__setattr__(self, "prefix", normpath(p))

    def check(self, value: object) -> str | None:
        if not isinstance(value, str):
            return f"expected a path string, got {kind(value)}"
        if "\x00" in value or "\\" in value:
            return f"{show(value)} contains a NUL byte or a backslash"
        norm = normpath(value)
        if is_under(norm, self.prefix):
            return None
        reason = f"{show(value)} is not within {_shown_dir(self.prefix)!r}"
        if norm != value.rstrip("/") and norm != value:
            reason += f" (normalizes to {show(norm)})"
        return reason

    def arg(self) -> Any:
        return _shown_dir(self.prefix)

    def implies(self, other: Constraint) -> bool:
        if isinstance(other, Within):
            return is_under(self.prefix, other.prefix)
        return Constraint.implies(self, other)


def _split_url(value: str) -> SplitResult | None:
    if "://" not in value:
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    return parts if parts.scheme and parts.netloc else None


@dataclass(frozen=True, slots=True, repr=False)
class Glob(Constraint):
    """Accepts paths or URLs matching an fnmatch pattern (case-sensitive).

    Paths are normalized first (for URLs, the path part), so ``out/../x.md`` is seen
    as ``x.md``. As in fnmatch, ``*`` also matches ``/``; combine with :func:`within`
    to confine paths to a directory.

    >>> glob("*.md").check("notes.txt")
    "'notes.txt' does not match glob '*.md'"
    """

    pattern: str
    _rx: re.Pattern[str] = field(init=False, compare=False)
    op: ClassVar[str] = "glob"

    def __post_init__(self) -> None:
        if not isinstance(cast(object, self.pattern), str) or not self.pattern:
            raise RemitFormatError(
                f"glob: pattern must be a non-empty string, got {show(self.pattern)}"
            )
        object.__setattr__(self, "_rx", compile_regex(fnmatch.translate(self.pattern)))

    def check(self, value: object) -> str | None:
        if not isinstance(value, str):
            return f"expected a path or URL string, got {kind(value)}"
        if "\x00" in value:
            return f"{show(value)} contains a NUL byte"
        parts = _split_url(value)
        if parts is None:
            norm = normpath(value)
        else:
            path = normpath(parts.path) if parts.path else ""
            norm = urlunsplit(parts._replace(path=path))
        if self._rx.match(norm) is None:
            return f"{show(value)} does not match glob {self.pattern!r}"
        return None

    def arg(self) -> Any:
        return self.pattern


@dataclass(frozen=True, slots=True, repr=False)
class UrlPrefix(Constraint):
    """Accepts URLs with the same scheme and host[:port] whose path is under the prefix's.

    The host part must match exactly (no user-info, no other port); paths are
    normalized; backslashes and percent-encoded dots or slashes in the path are
    rejected because servers disagree on how to decode them.

    >>> url_prefix("https://api.example.com/v1/").check("https://api.example.com.evil.io/v1/")
    "'https://api.example.com.evil.io/v1/' is not under 'https://api.example.com/v1/'"
    """

    prefix: str
    _scheme: str = field(init=False, compare=False)
    _netloc: str = field(init=False, compare=False)
    _path: str = field(init=False, compare=False)
    op: ClassVar[str] = "url_prefix"

    def __post_init__(self) -> None:
        p = cast(object, self.prefix)
        parts = _split_url(p) if isinstance(p, str) else None
        if (
            parts is None
            or parts.query
            or parts.fragment
            or "\\" in self.prefix
            or "\x00" in self.prefix
        ):
            raise RemitFormatError(
                f"url_prefix: expected an absolute URL like 'https://host/path/', got {show(p)}"
            )
        object.__setattr__(self, "_scheme", parts.scheme.lower())
        object.__setattr__(self, "_netloc", parts.netloc.lower())
        object.__setattr__(self, "_path", normpath(parts.path or "/"))

    def check(self, value: object) -> str | None:
        if not isinstance(value, str):
            return f"expected a URL string, got {kind(value)}"
        parts = _split_url(value) if "\\" not in value and "\x00" not in value else None
        if (
            parts is None
            or parts.scheme.lower() != self._scheme
            or parts.netloc.lower() != self._netloc
        ):
            return f"{show(value)} is not under {self.prefix!r}"
        low = parts.path.lower()
        if "%2e" in low or "%2f" in low or "%5c" in low:
            return f"{show(value)} has an encoded dot or slash in its path"
        if not is_under(normpath(parts.path or "/"), self._path):
            return f"{show(value)} is not under {self.prefix!r}"
        return None

    def arg(self) -> Any:
        return self.prefix

    def implies(self, other: Constraint) -> bool:
        if isinstance(other, UrlPrefix):
            return (
                self._scheme == other._scheme
                and self._netloc == other._netloc
                and is_under(self._path, other._path)
            )
        return Constraint.implies(self, other)


# --- constructors -------------------------------------------------------------


def within(prefix: str) -> Within:
    """Accept paths at or below ``prefix``. ``within("out/").check("out/a.md")`` → None."""
    return Within(prefix)


def glob(pattern: str) -> Glob:
    """Accept normalized paths/URLs matching ``pattern``. ``glob("*.md").check("a.md")`` → None."""
    return Glob(pattern)


def url_prefix(prefix: str) -> UrlPrefix:
    """Accept URLs under ``prefix``: ``url_prefix("https://h/v1/")`` accepts ``https://h/v1/x``."""
    return UrlPrefix(prefix)
