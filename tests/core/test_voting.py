"""Voting, judged without a model: first-to-ahead-by-k, red flags, canonical forms."""

from __future__ import annotations

import doctest

import pytest

from remit.core import voting
from remit.core.voting import Sample, Tally, Vote
from remit.errors import InvalidInput


def tally_of(vote: Vote, *texts: str) -> Tally:
    t = Tally()
    for text in texts:
        t.add(vote.judge(text))
    return t


def test_the_first_answer_ahead_by_k_wins() -> None:
    v = Vote(k=2)
    assert tally_of(v, "4", "5").leader(2) is None
    assert tally_of(v, "4", "5", "4").leader(2) is None
    assert tally_of(v, "4", "5", "4", "4").leader(2) == '"4"'


def test_a_tie_decides_nothing_and_says_how_many_more_samples_could() -> None:
    t = tally_of(Vote(k=3), "a", "b", "a", "b")
    assert t.lead() == ('"a"', 0) and t.leader(1) is None and t.needed(3) == 3
    assert tally_of(Vote(k=3), "a", "a").needed(3) == 1


def test_k_1_is_a_plurality_of_one() -> None:
    assert tally_of(Vote(k=1), "x").leader(1) == '"x"'


def test_answers_compare_by_canonical_form() -> None:
    v = Vote(k=2, canonical=lambda s: s.lower().rstrip("."))
    t = tally_of(v, " Paris", "paris.", "PARIS")
    assert t.counts == {'"paris"': 3} and t.values['"paris"'] == "Paris"


def test_with_a_schema_answers_are_json_and_compare_by_value_not_spelling() -> None:
    v = Vote(k=2, schema={"type": "object", "properties": {"a": {"type": "integer"}},
                          "required": ["a"]})  # fmt: skip
    t = tally_of(v, '{"a": 1}', '{ "a":1 }')
    assert t.leader(2) == '{"a":1}' and t.values['{"a":1}'] == {"a": 1}


@pytest.mark.parametrize(
    ("vote", "text", "flag"),
    [
        (Vote(schema={"type": "integer"}), "four", "malformed: not JSON"),
        (Vote(schema={"type": "integer"}), '"4"', "malformed:"),
        (Vote(max_chars=3), "12345", "overlong: 5 characters, more than 3"),
        (Vote(red_flags=(lambda s: "hedges" if "maybe" in s else None,)), "maybe 4",
         "<lambda>: hedges"),
        (Vote(red_flags=(lambda s: 1 / 0,)), "4", "<lambda> raised ZeroDivisionError"),
        (Vote(canonical=lambda v: {1, 2}), "4", "canonical: TypeError"),
    ],
)  # fmt: skip
def test_red_flagged_samples_do_not_vote_and_say_why(vote: Vote, text: str, flag: str) -> None:
    sample = vote.judge(text)
    assert sample.form is None and sample.flag is not None and sample.flag.startswith(flag)
    t = Tally()
    t.add(sample)
    assert t.samples == 1 and t.counts == {} and t.flags == [sample.flag]


def test_a_sample_cut_off_at_max_tokens_is_overlong() -> None:
    assert Vote().judge("4", truncated=True) == Sample(None, flag="overlong: stopped at max_tokens")


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"k": 0}, "k must be at least 1"),
        ({"k": 3, "max_samples": 2}, "no answer could ever win"),
        ({"parallel": 0}, "parallel must be at least 1"),
        ({"max_chars": 0}, "max_chars must be at least 1"),
        ({"on_undecided": "shrug"}, "on_undecided must be"),
    ],
)
def test_a_vote_that_cannot_work_is_refused_naming_the_field(
    kwargs: dict[str, object], words: str
) -> None:
    with pytest.raises(InvalidInput, match=words):
        Vote(**kwargs)  # type: ignore[arg-type]


def test_doctests() -> None:
    assert doctest.testmod(voting).failed == 0
