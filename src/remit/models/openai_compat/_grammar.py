"""JSON schema to GBNF, for the ``grammar`` schema mode: a self-contained translator
that knows nothing of HTTP."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, cast

from remit.errors import ModelError

_GBNF_BASE = r"""
ws ::= " "?
char ::= [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})
string ::= "\"" char* "\""
integer ::= "-"? ("0" | [1-9] [0-9]{0,15})
number ::= integer ("." [0-9]{1,15})? ([eE] [-+]? [0-9]{1,3})?
boolean ::= "true" | "false"
null ::= "null"
value ::= object | array | string | number | boolean | null
object ::= "{" ws ( string ws ":" ws value ( ws "," ws string ws ":" ws value )* )? ws "}"
array ::= "[" ws ( value ( ws "," ws value )* )? ws "]"
""".strip()

_IGNORED = frozenset(
    {
        "title",
        "description",
        "default",
        "examples",
        "$schema",
        "$id",
        "$comment",
        "format",
        "pattern",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "additionalProperties",
        "required",
        "$defs",
        "definitions",
        "uniqueItems",
    }
)


def schema_to_gbnf(schema: Mapping[str, Any]) -> str:
    """A GBNF grammar (llama.cpp's grammar format) for JSON valid against ``schema``.

    Covers what structured output needs: ``type`` (one or a list), ``properties``,
    ``items`` with ``minItems``/``maxItems``, strings with ``minLength``/``maxLength``,
    ``enum``, ``const``, ``anyOf``/``oneOf`` and local ``$ref`` s. Every listed property
    is emitted, in order (present optional properties are still valid). Numeric bounds,
    ``pattern`` and ``format`` are left to the Gate's validation of the output. Anything
    else raises :class:`~remit.errors.ModelError`, rather than a grammar that admits
    invalid output silently.

    >>> print(schema_to_gbnf({"enum": ["red", "green"]}).splitlines()[0])
    root ::= "\\"red\\"" | "\\"green\\""
    """
    return _Grammar(schema).build()


class _Grammar:
    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.root = schema
        self.rules: dict[str, str] = {}
        self.n = 0

    def build(self) -> str:
        root = self.rule(self.root)
        return "\n".join(
            [f"root ::= {root}", *(f"{k} ::= {v}" for k, v in self.rules.items()), _GBNF_BASE]
        )

    def add(self, expr: str) -> str:
        self.n += 1
        name = f"r{self.n}"
        self.rules[name] = expr
        return name

    def rule(self, schema: Any) -> str:
        """An expression for ``schema`` (a rule name or an inline alternative)."""
        if schema is True or schema == {}:
            return "value"
        if not isinstance(schema, Mapping):
            raise ModelError(f"grammar mode: {schema!r} is not a JSON schema")
        s = cast(Mapping[str, Any], schema)
        if "$ref" in s:
            return self.ref(str(s["$ref"]))
        if "const" in s:
            return _literal(json.dumps(s["const"], ensure_ascii=False))
        if "enum" in s:
            return " | ".join(_literal(json.dumps(v, ensure_ascii=False)) for v in s["enum"])
        for key in ("anyOf", "oneOf"):
            if key in s:
                return " | ".join(self.named(sub) for sub in s[key])
        unknown = (
            set(s)
            - _IGNORED
            - {"type", "properties", "items", "minItems", "maxItems", "minLength", "maxLength"}
        )
        if unknown:
            raise ModelError(
                f"grammar mode cannot express schema keyword(s) {sorted(unknown)}; "
                "use schema_mode='json_object' or 'json_schema'"
            )
        types = s.get("type")
        if types is None:
            types = "object" if "properties" in s else "array" if "items" in s else None
        if types is None:
            return "value"
        if isinstance(types, list):
            return " | ".join(self.named({**s, "type": t}) for t in cast(list[Any], types))
        return self.typed(str(types), s)

    def named(self, schema: Any) -> str:
        expr = self.rule(schema)
        return expr if re.fullmatch(r"[a-z0-9-]+", expr) else self.add(expr)

    def ref(self, ref: str) -> str:
        m = re.fullmatch(r"#/(\$defs|definitions)/([^/]+)", ref)
        if m is None:
            raise ModelError(f"grammar mode supports only local $refs (#/$defs/...); got {ref!r}")
        name = "d-" + re.sub(r"[^a-zA-Z0-9]", "-", m.group(2)).lower()
        if name not in self.rules:
            target = cast(Mapping[str, Any], self.root.get(m.group(1)) or {}).get(m.group(2))
            if target is None:
                raise ModelError(f"grammar mode: $ref {ref!r} points nowhere")
            self.rules[name] = "value"  # a placeholder, so a recursive schema terminates
            self.rules[name] = self.rule(target)
        return name

    def typed(self, t: str, s: Mapping[str, Any]) -> str:
        if t in ("integer", "number", "boolean", "null"):
            minimum = s.get("minimum", s.get("exclusiveMinimum"))
            if t in ("integer", "number") and isinstance(minimum, int | float) and minimum >= 0:
                digits = '("0" | [1-9] [0-9]{0,14})'
                return digits if t == "integer" else f'{digits} ("." [0-9]{{1,15}})?'
            return t
        if t == "string":
            lo, hi = int(s.get("minLength", 0)), s.get("maxLength")
            reps = f"{{{lo},{int(hi)}}}" if hi is not None else f"{{{lo},}}" if lo else "*"
            return f'"\\"" char{reps} "\\""'
        if t == "array":
            item = self.named(s.get("items", True))
            lo, hi = int(s.get("minItems", 0)), s.get("maxItems")
            if hi is not None and int(hi) == 0:
                return '"[" ws "]"'
            more = (
                f"{{{max(lo - 1, 0)},{int(hi) - 1}}}"
                if hi is not None
                else (f"{{{lo - 1},}}" if lo > 1 else "*")
            )
            items = f'{item} ( ws "," ws {item} ){more}'
            return f'"[" ws {items} ws "]"' if lo else f'"[" ws ( {items} )? ws "]"'
        if t == "object":
            props = cast(Mapping[str, Any], s.get("properties") or {})
            if not props:
                return "object"
            parts = [
                f'{_literal(json.dumps(k, ensure_ascii=False))} ws ":" ws {self.named(v)}'
                for k, v in props.items()
            ]
            return '"{" ws ' + ' ws "," ws '.join(parts) + ' ws "}"'
        raise ModelError(f"grammar mode: unknown JSON schema type {t!r}")


def _literal(text: str) -> str:
    """``text`` as a GBNF string literal."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{escaped}"'
