"""Quotes of tool output in an answer, checked against receipts (pure).

An answer quotes a tool's output in one of two forms, anywhere in its value:

- a JSON object with exactly the keys ``quote`` (the text), ``tool`` (the tool's name)
  and optionally ``step`` (the call's step id), all strings:
  ``{"quote": "42 files", "tool": "count_files", "step": "t.0.ab:execute.0"}``;
- inside any string, the tag ``<quote tool="NAME">TEXT</quote>`` (optionally
  ``step="STEP"`` after ``tool``), as a model writes it in prose. ``TEXT`` is taken
  literally (no entities are decoded).

:func:`check_quotes` accepts a quote when its text occurs in the result of a call of
that tool (of that step, when it names one) that holds a receipt whose result digest
is still that of the journaled result; otherwise it flags the quote
``FABRICATED_QUOTE``, saying where it sits and why. "Occurs" means: after collapsing
every run of whitespace to one space, the quote is part of a string (or key) in the
result, or of the result's JSON text. Whether each receipt is genuine is for whoever
holds the key to say (:mod:`remit.trust.receipts`) before calling this.

>>> from remit.core.receipts import Receipt, digest
>>> r = Receipt("run", "t:execute.0", "read", digest("{}"), digest('"it is 42"'), "mac")
>>> [c.code for c in check_quotes(
...     [{"quote": "is 42", "tool": "read"}, "<quote tool=\\"read\\">is 43</quote>"],
...     [r], {"t:execute.0": '"it is 42"'})]
['QUOTE_OK', 'FABRICATED_QUOTE']
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from remit.core.receipts import Receipt, digest

__all__ = ["FABRICATED_QUOTE", "QUOTE_OK", "Quote", "QuoteCheck", "check_quotes", "find_quotes"]

QUOTE_OK: Final = "QUOTE_OK"
FABRICATED_QUOTE: Final = "FABRICATED_QUOTE"

_KEYS: Final = frozenset({"quote", "tool"})
_KEYS_STEP: Final = frozenset({"quote", "tool", "step"})
#: the textual form; attribute values hold no quote mark, the text no closing tag
_TAG: Final = re.compile(
    r'<quote\s+tool="([^"<>]+)"(?:\s+step="([^"<>]+)")?\s*>(.*?)</quote>', re.DOTALL
)


@dataclass(frozen=True, slots=True)
class Quote:
    """One quote found in a value: its text, the call it claims, and ``where`` it sits
    (``$`` the value, ``.key`` and ``[i]`` down from it; ``#n`` the n-th tag in a string)."""

    text: str
    tool: str
    step: str | None
    where: str

    def to_dict(self) -> dict[str, Any]:
        return {"quote": self.text, "tool": self.tool, "step": self.step, "where": self.where}


@dataclass(frozen=True, slots=True)
class QuoteCheck:
    """The verdict on one quote: ``QUOTE_OK`` (with the ``step`` whose result holds it)
    or ``FABRICATED_QUOTE`` (with the ``reason``)."""

    quote: Quote
    code: Literal["QUOTE_OK", "FABRICATED_QUOTE"]
    reason: str = ""
    step: str | None = None

    @property
    def ok(self) -> bool:
        return self.code == QUOTE_OK

    def message(self) -> str:
        """One line a person reads: what was quoted, where, and the verdict."""
        q = self.quote
        text = q.text if len(q.text) <= 60 else q.text[:57] + "..."
        head = f"{q.where}: quote {text!r} of tool {q.tool!r}"
        if q.step is not None:
            head += f" at step {q.step}"
        return f"{head}: {self.reason}" if not self.ok else f"{head}: found at step {self.step}"

    def to_dict(self) -> dict[str, Any]:
        return {**self.quote.to_dict(), "code": self.code, "reason": self.reason,
                "found_at": self.step}  # fmt: skip


def find_quotes(value: Any) -> list[Quote]:
    """Every quote in ``value`` (a JSON-shaped value), in document order.

    >>> find_quotes({"a": ['see <quote tool="ls" step="s1">x.py</quote>']})
    [Quote(text='x.py', tool='ls', step='s1', where='$.a[0]#1')]
    """
    found: list[Quote] = []
    stack: list[tuple[Any, str]] = [(value, "$")]
    while stack:
        v, where = stack.pop()
        if isinstance(v, str):
            for n, m in enumerate(_TAG.finditer(v), 1):
                found.append(Quote(m.group(3), m.group(1), m.group(2), f"{where}#{n}"))
        elif isinstance(v, Mapping):
            q = _as_quote(v, where)  # pyright: ignore[reportUnknownArgumentType]
            if q is not None:
                found.append(q)
                continue
            items = list(v.items())  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType, reportUnknownVariableType]
            stack.extend((x, f"{where}.{k}") for k, x in reversed(items))  # pyright: ignore[reportUnknownArgumentType]
        elif isinstance(v, list | tuple):
            stack.extend((x, f"{where}[{i}]") for i, x in reversed(list(enumerate(v))))  # pyright: ignore[reportUnknownArgumentType]
    return found


def _as_quote(v: Mapping[str, Any], where: str) -> Quote | None:
    keys = frozenset(v)
    if keys != _KEYS and keys != _KEYS_STEP:
        return None
    text, tool, step = v["quote"], v["tool"], v.get("step")
    if not isinstance(text, str) or not isinstance(tool, str):
        return None
    if step is not None and not isinstance(step, str):
        return None
    return Quote(text, tool, step, where)


def check_quotes(
    value: Any, receipts: Iterable[Receipt], results: Mapping[str, str | None]
) -> list[QuoteCheck]:
    """A verdict for every quote in ``value``.

    ``receipts``: the genuine receipts of the calls the quotes may cite; ``results``:
    the journaled result (output text) of each receipted call, by step id. A receipt
    whose call's result is missing from ``results`` or no longer matches it is no
    evidence for anything.
    """
    quotes = find_quotes(value)
    if not quotes:
        return []
    by_tool: dict[str, list[Receipt]] = {}
    by_step: dict[str, Receipt] = {}
    for r in receipts:
        text = results.get(r.step)
        if text is not None and digest(text) == r.result:
            by_tool.setdefault(r.tool, []).append(r)
            by_step[r.step] = r
    texts: dict[str, list[str]] = {}
    return [_check(q, by_tool, by_step, results, texts) for q in quotes]


def _check(
    q: Quote,
    by_tool: Mapping[str, list[Receipt]],
    by_step: Mapping[str, Receipt],
    results: Mapping[str, str | None],
    texts: dict[str, list[str]],
) -> QuoteCheck:
    needle = _squash(q.text)
    if not needle:
        return QuoteCheck(q, FABRICATED_QUOTE, "it quotes nothing")
    if q.step is not None:
        r = by_step.get(q.step)
        if r is None:
            return QuoteCheck(q, FABRICATED_QUOTE, f"step {q.step} holds no receipted call")
        if r.tool != q.tool:
            return QuoteCheck(
                q, FABRICATED_QUOTE, f"step {q.step} is a call of tool {r.tool!r}, not {q.tool!r}"
            )
        candidates = [r]
    else:
        candidates = by_tool.get(q.tool, [])
        if not candidates:
            return QuoteCheck(q, FABRICATED_QUOTE, f"tool {q.tool!r} made no receipted call")
    for r in candidates:
        hay = texts.get(r.step)
        if hay is None:
            hay = texts[r.step] = _searchable(results.get(r.step) or "null")
        if any(needle in h for h in hay):
            return QuoteCheck(q, QUOTE_OK, step=r.step)
    where = f"the result of step {q.step}" if q.step is not None else (
        f"any result of the {len(candidates)} receipted call(s) of {q.tool!r}"
    )  # fmt: skip
    return QuoteCheck(q, FABRICATED_QUOTE, f"its text occurs nowhere in {where}")


def _squash(text: str) -> str:
    return " ".join(text.split())


def _searchable(result_text: str) -> list[str]:
    """The texts a quote of this result may be part of: its strings and keys, and its
    JSON text (for numbers and structure), whitespace collapsed."""
    out = [_squash(result_text)]
    try:
        value = json.loads(result_text)
    except ValueError:
        return out
    out.extend(_squash(s) for s in _strings(value))
    return out


def _strings(value: Any) -> Iterator[str]:
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            yield v
        elif isinstance(v, Mapping):
            for k, x in v.items():  # pyright: ignore[reportUnknownVariableType]
                yield str(k)  # pyright: ignore[reportUnknownArgumentType]
                stack.append(x)
        elif isinstance(v, list):
            stack.extend(v)  # pyright: ignore[reportUnknownArgumentType]
