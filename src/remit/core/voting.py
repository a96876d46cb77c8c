"""Voting: one model step sampled several times, decided first-to-ahead-by-k. Pure.

Small per-step error rates compound over long tasks; sampling a step several times and
taking the answer that first leads every other by ``k`` votes drives them down, and
discarding *red-flagged* samples first (malformed, overlong, failing a check) helps
more, because those correlate with wrong answers. A :class:`Vote` declares how; the
Gate draws the samples (each a journaled, budgeted model call) and journals the verdict
(:class:`Voted`); this module only judges.

>>> v = Vote(k=2, max_samples=6)
>>> t = Tally()
>>> for text in ["4", "5", "4", "4"]:
...     t.add(v.judge(text))
>>> t.leader(v.k), t.samples, t.counts['"4"']   # answers compare by their JSON form
('"4"', 4, 3)
>>> v.judge("x" * 50, max_chars=10).flag
'overlong: 50 characters, more than 10'
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from remit.core._json import encoder
from remit.core.schemas import validate as validate_schema
from remit.errors import InvalidInput, SchemaError

__all__ = ["RedFlag", "Sample", "Tally", "Vote", "Voted"]

#: a check on a sample's text: a reason it is red-flagged, or None to let it vote
RedFlag = Callable[[str], "str | None"]


@dataclass(frozen=True, slots=True)
class Sample:
    """One sample's verdict: its canonical ``form`` (compact JSON text) when it votes,
    or the ``flag`` that discarded it; ``value`` is the answer it stands for."""

    form: str | None
    value: Any = None
    flag: str | None = None


@dataclass(frozen=True, slots=True)
class Vote:
    """How to vote a model step: samples are drawn until one answer leads every other by
    ``k`` (first-to-ahead-by-k), at most ``max_samples`` of them; a red-flagged sample
    does not vote (it still counts against ``max_samples`` and the budget).

    - ``schema``: a sample must be JSON of this shape (else: ``malformed``); its value
      is then the parsed JSON (else the text, stripped of surrounding space);
    - ``max_chars``: a longer sample is ``overlong`` (so is one cut off at
      ``max_tokens``);
    - ``red_flags``: more checks, each ``text -> reason | None``;
    - ``canonical``: what answers are compared by (``value -> JSON-able``); default: the
      value itself;
    - ``parallel``: at most this many samples drawn at once (default ``k``); each round
      draws the fewest that could decide the vote (``k`` at first, then what the
      leader lacks), never more than the budget still allows;
    - ``on_undecided``: with no winner after ``max_samples``, the step ``"fail"``s
      (``VOTE_UNDECIDED`` back to the agent) or ``"escalate"``s (its parent re-plans,
      as for a call with no route left).

    >>> Vote(k=3).parallel_or_default
    3
    """

    k: int = 2
    max_samples: int = 10
    schema: Mapping[str, Any] | None = None
    max_chars: int | None = None
    red_flags: Sequence[RedFlag] = ()
    canonical: Callable[[Any], Any] | None = None
    parallel: int | None = None
    on_undecided: Literal["fail", "escalate"] = "fail"

    def __post_init__(self) -> None:
        if self.k < 1:
            raise InvalidInput(f"Vote: k must be at least 1, got {self.k}")
        if self.max_samples < self.k:
            raise InvalidInput(
                f"Vote: max_samples ({self.max_samples}) is less than k ({self.k}): "
                "no answer could ever win"
            )
        if self.parallel is not None and self.parallel < 1:
            raise InvalidInput(f"Vote: parallel must be at least 1, got {self.parallel}")
        if self.max_chars is not None and self.max_chars < 1:
            raise InvalidInput(f"Vote: max_chars must be at least 1, got {self.max_chars}")
        if self.on_undecided not in ("fail", "escalate"):
            raise InvalidInput(
                f"Vote: on_undecided must be 'fail' or 'escalate', got {self.on_undecided!r}"
            )

    @property
    def parallel_or_default(self) -> int:
        return self.k if self.parallel is None else self.parallel

    def judge(self, text: str, *, truncated: bool = False, max_chars: int | None = None) -> Sample:
        """A sample's verdict (``truncated``: the model stopped at its token limit)."""
        limit = self.max_chars if max_chars is None else max_chars
        if truncated:
            return Sample(None, flag="overlong: stopped at max_tokens")
        if limit is not None and len(text) > limit:
            return Sample(None, flag=f"overlong: {len(text)} characters, more than {limit}")
        value: Any = text.strip()
        if self.schema is not None:
            try:
                value = json.loads(text)
                validate_schema(value, self.schema, where="sample")
            except json.JSONDecodeError as e:
                return Sample(None, flag=f"malformed: not JSON ({e.msg} at char {e.pos})")
            except SchemaError as e:
                return Sample(None, flag=f"malformed: {e.message}")
        for check in self.red_flags:
            try:
                reason = check(text)
            except Exception as e:  # a check that breaks flags the sample, loudly
                return Sample(None, flag=f"{_name(check)} raised {type(e).__name__}: {e}")
            if reason:
                return Sample(None, flag=f"{_name(check)}: {reason}")
        try:
            key = self.canonical(value) if self.canonical is not None else value
            form = _canonical_json(key)
        except Exception as e:  # no canonical form: the sample cannot vote
            return Sample(None, flag=f"canonical: {type(e).__name__}: {e}")
        return Sample(form, value)


#: a canonical form's text: sorted keys, no spaces (the encoder built once)
_canonical_json = encoder(sort_keys=True, separators=(",", ":"))


def _name(check: Callable[..., Any]) -> str:
    return getattr(check, "__name__", type(check).__name__)


@dataclass(slots=True)
class Tally:
    """Votes so far: samples drawn, red flags, and votes per canonical form (in the
    order forms first appeared, so a tie breaks the same way on every replay)."""

    samples: int = 0
    #: each sample's canonical form in the order drawn (None: red-flagged)
    forms: list[str | None] = field(default_factory=list[str | None])
    counts: dict[str, int] = field(default_factory=dict[str, int])
    values: dict[str, Any] = field(default_factory=dict[str, Any])
    flags: list[str] = field(default_factory=list[str])

    def add(self, sample: Sample) -> None:
        self.samples += 1
        self.forms.append(sample.form)
        if sample.form is None:
            self.flags.append(sample.flag or "flagged")
            return
        self.counts[sample.form] = self.counts.get(sample.form, 0) + 1
        self.values.setdefault(sample.form, sample.value)

    def lead(self) -> tuple[str | None, int]:
        """The form with most votes and its lead over the next (first seen wins a tie)."""
        top: str | None = None
        first = second = 0
        for form, n in self.counts.items():
            if n > first:
                top, first, second = form, n, first
            elif n > second:
                second = n
        return top, first - second

    def leader(self, k: int) -> str | None:
        """The form ahead of every other by ``k`` votes, if one is."""
        top, lead = self.lead()
        return top if lead >= k else None

    def needed(self, k: int) -> int:
        """The fewest more samples that could decide the vote."""
        return max(1, k - self.lead()[1])


@dataclass(frozen=True, slots=True)
class Voted:
    """A decided vote: the winning answer and how it won.

    ``value``: the answer (parsed JSON with a schema, else text); ``content``: the text
    of its first sample; ``samples``: drawn in all (``flagged`` of them red-flagged);
    ``tally``: votes per canonical form; ``lead``: the winner's margin; ``steps``: the
    journal's step ids of the samples, in order; ``forms``: each sample's canonical form
    (None where red-flagged), in the same order.
    """

    value: Any
    content: str
    samples: int
    flagged: int
    tally: Mapping[str, int]
    lead: int
    steps: tuple[str, ...]
    forms: tuple[str | None, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "content": self.content,
            "samples": self.samples,
            "flagged": self.flagged,
            "tally": dict(self.tally),
            "lead": self.lead,
            "steps": list(self.steps),
            "forms": list(self.forms),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Voted:
        return cls(
            data["value"],
            str(data["content"]),
            int(data["samples"]),
            int(data["flagged"]),
            dict(data["tally"]),
            int(data["lead"]),
            tuple(data["steps"]),
            tuple(data.get("forms", ())),
        )
