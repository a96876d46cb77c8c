"""``matches``: a regular expression that must match a string in full, in bounded time.

Python's :mod:`re` cannot be stopped: a pattern such as ``(a|aa)+$`` backtracks
exponentially and would hold a call (and the Gate) for as long as the attacker's
string makes it. So patterns are compiled by the third-party ``regex`` module, whose
matching takes a ``timeout``, and every check of a call gets one budget of
:data:`MATCH_TIMEOUT` seconds of CPU time for all its regular expressions together (all
arguments, every item of a list), opened by :func:`within_budget`. A match that runs out
raises :class:`MatchTimeout` from :meth:`Matches.locate` and the grant denies the call,
whatever its rules say; :meth:`Matches.check` returns the reason instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from time import thread_time
from typing import Any, ClassVar, TypeVar, cast

import regex

from remit.errors import RemitFormatError
from remit.policy._constraints import Constraint, Miss
from remit.policy._values import kind, show

#: seconds of CPU time that one check of a call may spend matching regular expressions
MATCH_TIMEOUT = 0.05
#: the clock budgets are kept in: this thread's CPU time, so a thread that waits for
#: the CPU does not run out
_clock = thread_time


class MatchTimeout(TimeoutError):
    """A ``matches`` ran out of time: whoever decides the call denies it."""

    def __init__(self, constraint: Constraint, value: object) -> None:
        super().__init__(f"{constraint.describe()} ran out of time")
        self.constraint = constraint
        self.value = value
        #: where in the argument the value is, as in :class:`Miss` (``"[1]"``)
        self.where = ""
        #: the reason naming the argument, once a grant knows it
        self.located: str | None = None

    @property
    def reason(self) -> str:
        return (
            f"no answer within {MATCH_TIMEOUT * 1000:g} ms of matching "
            "(a call that cannot be checked in time is denied)"
        )


class _Budget(threading.local):
    #: ``_clock()`` when the current check runs out, or None outside one
    deadline: float | None = None


_budget = _Budget()
_R = TypeVar("_R")


class within_budget:
    """One matching budget for everything checked inside; a nested one shares it."""

    __slots__ = ("_opened",)

    def __enter__(self) -> None:
        self._opened = _budget.deadline is None
        if self._opened:
            _budget.deadline = _clock() + MATCH_TIMEOUT

    def __exit__(self, *exc: object) -> None:
        if self._opened:
            _budget.deadline = None


def guarded(
    test: Callable[[Any, str | None], _R], timed_out: _R
) -> Callable[[Any, str | None], _R]:
    """A compiled test of a call with its own matching budget, answering ``timed_out``
    when a ``matches`` in it runs out of time."""

    def run(args: Any, t: str | None) -> _R:
        if _budget.deadline is not None:
            try:
                return test(args, t)
            except MatchTimeout:
                return timed_out
        _budget.deadline = _clock() + MATCH_TIMEOUT
        try:
            return test(args, t)
        except MatchTimeout:
            return timed_out
        finally:
            _budget.deadline = None

    return run


@lru_cache(maxsize=512)
def _compile(pattern: str) -> Any:
    return regex.compile(pattern)


@dataclass(frozen=True, slots=True, repr=False)
class Matches(Constraint):
    """Accepts strings that the regular expression matches in full.

    The pattern is compiled by the ``regex`` module (its default syntax is that of
    :mod:`re`); a match that runs out of time is a failure (see the module docs).

    >>> matches(r"[a-z]+").check("abc1")
    "'abc1' does not match '[a-z]+'"
    >>> matches(r"(a|aa)+$").check("a" * 40 + "b")
    'no answer within 50 ms of matching (a call that cannot be checked in time is denied)'
    """

    pattern: str
    _rx: Any = field(init=False, compare=False)
    op: ClassVar[str] = "matches"

    def __post_init__(self) -> None:
        if not isinstance(cast(object, self.pattern), str):
            raise RemitFormatError(f"matches: pattern must be a string, got {kind(self.pattern)}")
        try:
            rx = _compile(self.pattern)
        except (regex.error, ValueError, OverflowError) as e:
            raise RemitFormatError(
                f"matches: invalid regular expression {self.pattern!r}: {e}"
            ) from None
        object.__setattr__(self, "_rx", rx)

    def test(self, value: str) -> bool:
        """Whether the pattern matches ``value`` in full; raises :class:`MatchTimeout`
        when the check's budget (or, outside one, :data:`MATCH_TIMEOUT`) runs out."""
        deadline = _budget.deadline
        if deadline is None:
            timeout = MATCH_TIMEOUT
        else:
            timeout = deadline - _clock()
            if timeout <= 0:
                raise MatchTimeout(self, value)
        try:
            return self._rx.fullmatch(value, timeout=timeout) is not None
        except TimeoutError:
            raise MatchTimeout(self, value) from None

    def check(self, value: object) -> str | None:
        try:
            miss = self.locate(value, None)
        except MatchTimeout as e:
            return e.reason
        return None if miss is None else miss.reason

    def locate(self, value: object, inputs_text: str | None) -> Miss | None:
        if not isinstance(value, str):
            return Miss("", value, self, f"expected a string, got {kind(value)}")
        if not self.test(value):
            return Miss("", value, self, f"{show(value)} does not match {self.pattern!r}")
        return None

    def arg(self) -> Any:
        return self.pattern


def matches(pattern: str) -> Matches:
    r"""Accept strings ``pattern`` matches in full. ``matches(r"\d+").check("12")`` → None."""
    return Matches(pattern)
