"""Quotes of tool output: how an answer quotes, and which quotes a receipt backs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from remit.core.quotes import (
    FABRICATED_QUOTE,
    QUOTE_OK,
    Quote,
    QuoteCheck,
    check_quotes,
    find_quotes,
)
from remit.core.receipts import Receipt

READ = "t.0.ab/0.cd:execute.0"
COUNT = "t.0.ab/1.ef:execute.0"
OUTPUTS = {
    READ: json.dumps({"text": "The  report says\nrevenue rose 12%", "lines": 2}),
    COUNT: json.dumps(42),
}
RECEIPTS = [
    Receipt.of_row("run", READ, "read_file", '{"path": "r.md"}', OUTPUTS[READ], mac="m1"),
    Receipt.of_row("run", COUNT, "count", "{}", OUTPUTS[COUNT], mac="m2"),
]


def verdicts(value: Any, outputs: dict[str, str | None] | None = None) -> list[QuoteCheck]:
    return check_quotes(value, RECEIPTS, OUTPUTS if outputs is None else outputs)


# --- the two forms ---------------------------------------------------------------------


def test_a_quote_object_is_found_with_where_it_sits() -> None:
    value = {"summary": ["x", {"quote": "rose 12%", "tool": "read_file", "step": READ}]}
    assert find_quotes(value) == [Quote("rose 12%", "read_file", READ, "$.summary[1]")]


def test_a_quote_tag_in_prose_is_found_with_its_place_in_the_string() -> None:
    text = 'We found <quote tool="count">42</quote> and <quote tool="read_file" step="s">x</quote>.'
    assert find_quotes({"a": text}) == [
        Quote("42", "count", None, "$.a#1"),
        Quote("x", "read_file", "s", "$.a#2"),
    ]


@pytest.mark.parametrize(
    "obj",
    [
        {"quote": "42", "tool": "count", "note": "more keys: not a quote"},
        {"quote": 42, "tool": "count"},
        {"quote": "42"},
        {"quote": "42", "tool": "count", "step": 3},
    ],
)
def test_an_object_that_is_not_exactly_a_quote_is_not_one(obj: dict[str, Any]) -> None:
    assert find_quotes(obj) == []


# --- verdicts ----------------------------------------------------------------------------


def test_a_real_quote_is_accepted_with_the_step_that_returned_it() -> None:
    [c] = verdicts({"quote": "revenue rose 12%", "tool": "read_file"})
    assert (c.code, c.step, c.ok) == (QUOTE_OK, READ, True)


def test_a_real_quote_naming_its_step_is_accepted() -> None:
    [c] = verdicts({"quote": "42", "tool": "count", "step": COUNT})
    assert c.code == QUOTE_OK


def test_whitespace_is_compared_collapsed() -> None:
    [c] = verdicts('<quote tool="read_file">The report says revenue</quote>')
    assert c.code == QUOTE_OK


def test_a_quote_whose_text_no_result_holds_is_fabricated() -> None:
    [c] = verdicts({"answer": {"quote": "revenue rose 15%", "tool": "read_file"}})
    assert c.code == FABRICATED_QUOTE
    assert c.quote.where == "$.answer"
    assert "occurs nowhere" in c.reason
    assert "'revenue rose 15%'" in c.message() and "$.answer" in c.message()


def test_a_quote_of_a_tool_never_called_is_fabricated() -> None:
    [c] = verdicts({"quote": "42", "tool": "web_search"})
    assert c.code == FABRICATED_QUOTE
    assert "made no receipted call" in c.reason


def test_a_quote_naming_a_step_of_another_tool_is_fabricated() -> None:
    [c] = verdicts({"quote": "42", "tool": "read_file", "step": COUNT})
    assert c.code == FABRICATED_QUOTE
    assert "a call of tool 'count', not 'read_file'" in c.reason


def test_a_quote_naming_a_step_with_no_call_is_fabricated() -> None:
    [c] = verdicts({"quote": "42", "tool": "count", "step": "t.0.ab:execute.9"})
    assert c.code == FABRICATED_QUOTE
    assert "holds no receipted call" in c.reason


def test_a_quote_of_text_from_another_step_of_the_same_tool_is_fabricated() -> None:
    other = "t.0.ab/2.aa:execute.0"
    receipts = [*RECEIPTS, Receipt.of_row("run", other, "count", "{}", "7", mac="m3")]
    [c] = check_quotes(
        {"quote": "42", "tool": "count", "step": other}, receipts, {**OUTPUTS, other: "7"}
    )
    assert c.code == FABRICATED_QUOTE


def test_an_empty_quote_is_fabricated() -> None:
    [c] = verdicts({"quote": "  ", "tool": "count"})
    assert (c.code, c.reason) == (FABRICATED_QUOTE, "it quotes nothing")


def test_a_result_that_no_longer_matches_its_receipt_backs_no_quote() -> None:
    altered = {**OUTPUTS, READ: json.dumps({"text": "revenue rose 15%"})}
    [c] = verdicts({"quote": "revenue rose 15%", "tool": "read_file"}, altered)
    assert c.code == FABRICATED_QUOTE
    [c] = verdicts({"quote": "revenue rose 12%", "tool": "read_file"}, altered)
    assert c.code == FABRICATED_QUOTE


def test_a_value_without_quotes_has_no_verdicts() -> None:
    assert verdicts({"answer": "42", "items": [1, 2]}) == []
