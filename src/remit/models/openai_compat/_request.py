"""What a request carries besides the messages: the headers (with the API key, read at
each call) and how a JSON schema is sent in each schema mode."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, Literal, cast

from remit.models.openai_compat._grammar import schema_to_gbnf

SchemaMode = Literal["auto", "json_schema", "json_object", "grammar", "none"]
MODES: tuple[str, ...] = ("auto", "json_schema", "json_object", "grammar", "none")


class RequestHeaders:
    """The headers every request sends: the configured ones and the API key, if any."""

    _headers: dict[str, str]
    _api_key: str | None
    _api_key_env: str | None

    def _request_headers(self) -> dict[str, str]:
        headers = dict(self._headers)
        key = self._key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _key(self) -> str | None:
        if self._api_key is not None:
            return self._api_key
        return os.environ.get(self._api_key_env) if self._api_key_env else None


def with_schema(body: Mapping[str, Any], mode: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(body)
    if mode == "json_schema":
        name = re.sub(r"[^a-zA-Z0-9_-]", "_", str(schema.get("title") or "output"))[:64]
        out["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": name, "schema": dict(schema), "strict": _strict_ok(schema)},
        }
    elif mode == "json_object":
        out["response_format"] = {"type": "json_object", "schema": dict(schema)}
    elif mode == "grammar":
        out["grammar"] = schema_to_gbnf(schema)
    return out


def _strict_ok(schema: Any) -> bool:
    """Whether OpenAI's strict mode accepts the schema as it is (it rejects it otherwise)."""
    if isinstance(schema, list):
        return all(_strict_ok(s) for s in cast(list[Any], schema))
    if not isinstance(schema, Mapping):
        return True
    s = cast(Mapping[str, Any], schema)
    props = s.get("properties")
    if s.get("type") == "object" or isinstance(props, Mapping):
        if s.get("additionalProperties") is not False:
            return False
        names = set(cast(Mapping[str, Any], props or {}))
        if set(s.get("required") or ()) != names:
            return False
    return all(_strict_ok(v) for k, v in s.items() if k not in ("enum", "const", "default"))
