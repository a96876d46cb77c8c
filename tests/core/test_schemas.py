"""Schema checks: a value that breaks its schema is refused naming the place; a compiled
check serves the schemas every JSON Schema draft reads alike, and never accepts what
jsonschema would refuse."""

from __future__ import annotations

import itertools
from typing import Any

import jsonschema
import pytest

from remit.core import schemas
from remit.core.schemas import validate
from remit.errors import SchemaError

SCHEMAS: list[dict[str, Any]] = [
    {"type": "integer", "minimum": 0, "maximum": 2},
    {"type": "number", "exclusiveMinimum": 0},
    {"type": "string", "maxLength": 3, "pattern": "^a"},
    {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"],
     "additionalProperties": False},
    {"type": "array", "items": {"type": "integer"}, "minItems": 1, "uniqueItems": True},
    {"enum": [1, "a", None]},
    {"const": 1},
    {"anyOf": [{"type": "string"}, {"type": "null"}]},
    {"not": {"type": "boolean"}},
]  # fmt: skip
VALUES: list[Any] = [1, 1.0, True, None, "a", "abcd", "ba", [], [1], [1, 1], [True],
                     {"a": 1}, {"a": True}, {"a": 1, "b": 2}, 0, -1, 2.5, 3]  # fmt: skip


@pytest.mark.parametrize(("schema", "value"), list(itertools.product(SCHEMAS, VALUES)))
def test_the_verdict_is_jsonschemas(schema: dict[str, Any], value: Any) -> None:
    ok = jsonschema.validators.validator_for(schema)(schema).is_valid(value)
    if ok:
        assert validate(value, schema, where="x") is value
    else:
        with pytest.raises(SchemaError, match="x violates its schema"):
            validate(value, schema, where="x")


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "string", "format": "email"},  # format asserts in one, annotates in other
        {"prefixItems": [{"type": "integer"}]},  # 2020-12 only
        {"type": "array", "additionalItems": False},  # read in draft 7 only
        {"$defs": {"n": {"type": "integer"}}, "$ref": "#/$defs/n"},
        {"type": "object", "properties": {"a": {"format": "date"}}},
    ],
)
def test_schemas_that_drafts_read_differently_are_only_checked_by_jsonschema(
    schema: dict[str, Any],
) -> None:
    assert not schemas._plain(schema)  # pyright: ignore[reportPrivateUsage]
    _, fast = schemas._checks(schema)  # pyright: ignore[reportPrivateUsage]
    assert fast is None


def test_a_plain_schema_gets_a_compiled_check_and_a_refusal_names_the_place() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    _, fast = schemas._checks(schema)  # pyright: ignore[reportPrivateUsage]
    assert fast is not None
    with pytest.raises(SchemaError, match=r"child t\.0 violates its schema at \['n'\]"):
        validate({"n": "3"}, schema, where="child t.0")


def test_a_schema_written_anew_for_each_call_is_compiled_once() -> None:
    def schema() -> dict[str, Any]:  # a dict literal in an agent's code: a new one a call
        return {"type": "object", "properties": {"m": {"enum": [1, 2]}}, "required": ["m"]}

    first, second = schema(), schema()
    assert first is not second
    v1, fast1 = schemas._checks(first)  # pyright: ignore[reportPrivateUsage]
    v2, fast2 = schemas._checks(second)  # pyright: ignore[reportPrivateUsage]
    assert fast1 is not None and fast2 is fast1 and v2 is v1
    # and a different schema is not taken for it
    other = {**schema(), "required": []}
    _, fast3 = schemas._checks(other)  # pyright: ignore[reportPrivateUsage]
    assert fast3 is not fast1
    assert validate({}, other, where="x") == {}
    with pytest.raises(SchemaError):
        validate({}, second, where="x")


def test_an_invalid_schema_is_refused_every_time_it_is_used() -> None:
    bad = {"type": "no-such-type"}
    for _ in range(2):
        with pytest.raises(SchemaError, match="invalid JSON schema"):
            validate(1, dict(bad), where="x")
