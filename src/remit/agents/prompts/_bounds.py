"""Bounded answer schemas: where a JSON schema lets an answer grow without limit, and
the most tokens an answer of a bounded schema can take.

Separate from the roles because it is a property of any schema a small model is held
to by a grammar: llama.cpp's converter ignores ``minimum``/``maximum``, and an unbounded
array or string lets a small model loop until ``max_tokens``, so every array needs
``maxItems``, every string ``maxLength`` or an ``enum`` (:func:`unbounded`), and a
role's ``max_tokens`` is :func:`token_bound` of its schema.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def unbounded(schema: Any, where: str = "$") -> list[str]:
    """Where ``schema`` lets an answer grow without limit (empty: it is bounded).

    Every array needs ``maxItems``, every string ``maxLength`` or an ``enum``, every
    number an ``enum``, every object explicit ``properties`` and no extra ones.

    >>> unbounded({"type": "array", "items": {"type": "string"}})
    ['$: array without maxItems', '$[]: string without maxLength or enum']
    """
    if not isinstance(schema, Mapping):
        return [f"{where}: not a schema object"]
    s: Mapping[str, Any] = schema  # pyright: ignore[reportUnknownVariableType]
    if "enum" in s or "const" in s:
        return []
    kind = s.get("type")
    problems: list[str] = []
    if kind == "object":
        props = s.get("properties")
        if not isinstance(props, Mapping) or s.get("additionalProperties") is not False:
            problems.append(f"{where}: object without closed properties")
        for name, sub in dict(props or {}).items():
            problems += unbounded(sub, f"{where}.{name}")
    elif kind == "array":
        if not isinstance(s.get("maxItems"), int):
            problems.append(f"{where}: array without maxItems")
        problems += unbounded(s.get("items"), f"{where}[]")
    elif kind == "string":
        if not isinstance(s.get("maxLength"), int):
            problems.append(f"{where}: string without maxLength or enum")
    elif kind == "boolean" or kind == "null":
        pass
    else:
        problems.append(f"{where}: {kind or 'untyped'} value without enum")
    return problems


def token_bound(schema: Mapping[str, Any]) -> int:
    """The most tokens an answer of ``schema``'s shape can take.

    Counted in characters of the JSON as llama.cpp's grammar lets a model write it (at
    most one space around each separator), one token per character at most: true for
    ASCII text with any BPE tokenizer. ``ValueError`` if the schema is unbounded.

    >>> token_bound({"type": "object", "properties": {"n": {"enum": [1, 2]}},
    ...              "required": ["n"], "additionalProperties": False})
    12
    """
    problems = unbounded(schema)
    if problems:
        raise ValueError("schema is unbounded: " + "; ".join(problems))
    return _chars(schema)


def _chars(s: Mapping[str, Any]) -> int:
    if "enum" in s:
        return max(len(json.dumps(v)) for v in s["enum"]) + 1
    if "const" in s:
        return len(json.dumps(s["const"])) + 1
    kind = s.get("type")
    if kind == "object":
        props: Mapping[str, Any] = s["properties"]
        # '{' sp  "key" sp ':' sp value  (',' sp ...)  '}' sp
        inner = sum(len(json.dumps(k)) + 3 + _chars(v) for k, v in props.items())
        return 4 + inner + 2 * max(0, len(props) - 1)
    if kind == "array":
        n: int = s["maxItems"]
        return 4 + n * (_chars(s["items"]) + 2)
    if kind == "string":
        return int(s["maxLength"]) + 3
    return 6  # true / false / null and a space
