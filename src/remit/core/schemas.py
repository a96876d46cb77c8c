"""JSON Schema checks for model outputs and child results.

>>> validate({"n": 3}, {"type": "object", "required": ["n"]}, where="child t.0")
{'n': 3}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import jsonschema
import jsonschema.exceptions
import jsonschema.validators

from remit.errors import SchemaError

_CACHE: dict[str, Any] = {}


def _validator(schema: Mapping[str, Any]) -> Any:
    key = json.dumps(schema, sort_keys=True)
    v = _CACHE.get(key)
    if v is None:
        cls = jsonschema.validators.validator_for(schema)
        try:
            cls.check_schema(dict(schema))
        except jsonschema.exceptions.SchemaError as e:
            raise SchemaError(f"invalid JSON schema: {e.message}") from None
        v = cls(dict(schema))
        if len(_CACHE) > 1024:
            _CACHE.clear()
        _CACHE[key] = v
    return v


def validate(value: Any, schema: Mapping[str, Any], *, where: str) -> Any:
    """Return ``value`` if it satisfies ``schema``; else ``SchemaError`` saying where and why."""
    err = jsonschema.exceptions.best_match(_validator(schema).iter_errors(value))
    if err is not None:
        path = "".join(f"[{p!r}]" for p in err.absolute_path) or "(root)"
        raise SchemaError(f"{where} violates its schema at {path}: {err.message}")
    return value
