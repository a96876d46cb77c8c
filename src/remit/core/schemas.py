"""JSON Schema checks for model outputs and child results.

>>> validate({"n": 3}, {"type": "object", "required": ["n"]}, where="child t.0")
{'n': 3}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import fastjsonschema

from remit.errors import SchemaError

#: by the schema's text: its validator, and a compiled check when the schema uses only
#: keywords every draft reads alike (a schema written out anew for each call, as a dict
#: literal in an agent's code is, is compiled once, not once a call: about 0.2 ms)
_CACHE: dict[str, tuple[Any, Any]] = {}
#: the same by the schema object itself (kept, so its id is not reused): no encoding
_BY_ID: dict[int, tuple[Mapping[str, Any], Any, Any]] = {}
#: keywords that mean the same in draft 7 (what the compiled check implements) and in
#: 2020-12 (what jsonschema reads an unmarked schema as); a schema with any other (a
#: $ref, prefixItems, format, ...) is only ever checked by jsonschema
_SAME_IN_EVERY_DRAFT = frozenset({
    "type", "properties", "required", "additionalProperties", "items", "enum", "const",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
    "minLength", "maxLength", "pattern", "minItems", "maxItems", "uniqueItems",
    "minProperties", "maxProperties", "anyOf", "oneOf", "allOf", "not", "title",
    "description", "default", "examples",
})  # fmt: skip


def _plain(schema: Any) -> bool:
    """Whether ``schema`` (and every schema inside it) keeps to those keywords."""
    if isinstance(schema, bool):
        return True
    if not isinstance(schema, Mapping):
        return False
    for key, value in schema.items():  # pyright: ignore[reportUnknownVariableType]
        if key not in _SAME_IN_EVERY_DRAFT:
            return False
        if key == "properties":
            inner: list[Any] = list(value.values()) if isinstance(value, Mapping) else [None]  # pyright: ignore[reportUnknownArgumentType, reportUnknownMemberType]
        elif key in ("additionalProperties", "not", "items"):
            inner = [value]  # an array of item schemas means another thing by draft
        elif key in ("anyOf", "oneOf", "allOf"):
            inner = list(value) if isinstance(value, list) else [None]  # pyright: ignore[reportUnknownArgumentType]
        else:
            continue
        if not all(_plain(v) for v in inner):
            return False
    return True


def _checks(schema: Mapping[str, Any]) -> tuple[Any, Any]:
    """The validator of ``schema`` and its compiled check (None if it has none)."""
    entry = _BY_ID.get(id(schema))
    if entry is not None and entry[0] is schema:
        return entry[1], entry[2]
    key = json.dumps(schema, sort_keys=True)
    cached = _CACHE.get(key)
    if cached is None:
        cached = _validator(schema), _compiled(schema)
        if len(_CACHE) > 1024:
            _CACHE.clear()
        _CACHE[key] = cached
    if len(_BY_ID) > 1024:
        _BY_ID.clear()
    _BY_ID[id(schema)] = (schema, *cached)
    return cached


def _validator(schema: Mapping[str, Any]) -> Any:
    # jsonschema (with its format checkers and referencing) takes 0.13 s to import: only
    # code that checks a schema pays for it, not every `remit show` or `remit verify`
    import jsonschema.exceptions
    import jsonschema.validators

    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(dict(schema))
    except jsonschema.exceptions.SchemaError as e:
        raise SchemaError(f"invalid JSON schema: {e.message}") from None
    return cls(dict(schema))


def _compiled(schema: Mapping[str, Any]) -> Any:
    """The compiled check of a schema every draft reads alike (else None)."""
    if not _plain(schema):
        return None
    try:
        return fastjsonschema.compile(dict(schema))
    except Exception:  # a schema it cannot compile is checked the slow way
        return None


def validate(value: Any, schema: Mapping[str, Any], *, where: str) -> Any:
    """Return ``value`` if it satisfies ``schema``; else ``SchemaError`` saying where and why."""
    v, fast = _checks(schema)
    if fast is not None:
        try:
            fast(value)
            return value
        except fastjsonschema.JsonSchemaException:
            pass  # jsonschema has the last word, and the message that names the place
    import jsonschema.exceptions  # imported by _validator already: a dictionary look-up

    err = jsonschema.exceptions.best_match(v.iter_errors(value))
    if err is not None:
        path = "".join(f"[{p!r}]" for p in err.absolute_path) or "(root)"
        raise SchemaError(f"{where} violates its schema at {path}: {err.message}")
    return value
