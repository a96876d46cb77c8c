"""Chat completions from any OpenAI-compatible HTTP server.

One adapter for OpenAI itself, vLLM, Ollama, llama.cpp's ``llama-server`` and
llama-cpp-python's ``python -m llama_cpp.server``. The servers agree on the shape of a
chat completion and disagree on how to ask for structured output, so the way a JSON
schema is sent is a per-backend setting (``schema_mode``) with detection for ``"auto"``.

>>> model = OpenAICompatModel("http://127.0.0.1:8080/v1", "smollm2")
>>> model.name, model.retries
('smollm2', 3)
>>> # inside a coroutine:
>>> # c = await model.complete([{"role": "user", "content": "Hi"}], max_tokens=16)
>>> # c.content, c.input_tokens, c.output_tokens, c.cost_usd
>>> # await model.aclose()

The adapter makes exactly one attempt per call (plus at most one schema-format
fallback, below); retrying is the Gate's job. It raises
:class:`~remit.errors.ModelTransientError` for what may pass (429, 408, 409, 5xx,
timeouts, dropped connections) and :class:`~remit.errors.ModelError` for what will not
(other 4xx, a body that is not a chat completion, a response without token usage).
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import json
import logging
import os
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal, cast
from urllib.parse import urlsplit, urlunsplit

import httpx

from remit.core.ledger import Usage
from remit.errors import ModelError, ModelTransientError
from remit.models._base import Completion, Message

__all__ = [
    "PRICES_PER_MILLION",
    "OpenAICompatModel",
    "SchemaMode",
    "price_per_token",
    "schema_to_gbnf",
]

log = logging.getLogger(__name__)

SchemaMode = Literal["auto", "json_schema", "json_object", "grammar", "none"]
_MODES: tuple[str, ...] = ("auto", "json_schema", "json_object", "grammar", "none")

#: USD per 1M (input, output) tokens of a few hosted models, from the providers' public
#: price lists (mid 2025). Prices change: pass ``usd_per_input_token`` /
#: ``usd_per_output_token`` to override, or edit this dict. A model not listed here
#: (every local model) costs 0 unless told otherwise; token budgets still apply to it.
PRICES_PER_MILLION: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-3.5-turbo": (0.50, 1.50),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
}

# "gpt-4o-2024-08-06" is priced as "gpt-4o"; nothing looser than a dated snapshot
# suffix is matched, because a prefix match could price "gpt-4o-audio" as "gpt-4o"
_DATED = re.compile(r"-\d{4}-\d{2}-\d{2}$")


def price_per_token(model: str) -> tuple[float, float] | None:
    """USD per (input, output) token of a listed hosted model, or ``None`` if unlisted.

    >>> price_per_token("gpt-4o-mini-2024-07-18")
    (1.5e-07, 6e-07)
    >>> price_per_token("smollm2") is None
    True
    """
    per_million = PRICES_PER_MILLION.get(model) or PRICES_PER_MILLION.get(_DATED.sub("", model))
    if per_million is None:
        return None
    return per_million[0] / 1e6, per_million[1] / 1e6


class OpenAICompatModel:
    """A :class:`~remit.models.Model` that calls ``POST {base_url}/chat/completions``.

    ``base_url`` includes the API prefix, as with the official client
    (``"https://api.openai.com/v1"``, ``"http://127.0.0.1:8080/v1"``); a bare
    ``http://host:port`` gets ``/v1`` appended. The API key is ``api_key`` or, when that
    is ``None``, read from the environment variable ``api_key_env`` at each call; with
    neither, no ``Authorization`` header is sent (local servers need none). The key never
    appears in a message or repr, and is blanked out of error text a server echoes.

    **Structured output** (``complete(..., schema=...)``), by ``schema_mode``:

    - ``"json_schema"``: ``response_format={"type": "json_schema", "json_schema":
      {"name", "schema", "strict"}}``: OpenAI, vLLM, Ollama, recent llama.cpp.
      ``strict`` is true only when every object in the schema already meets OpenAI's
      strict rules (all properties required, ``additionalProperties: false``), since
      OpenAI rejects a strict schema that does not.
    - ``"json_object"``: ``response_format={"type": "json_object", "schema": ...}``:
      llama.cpp's server and llama-cpp-python constrain output to the schema; servers
      that ignore ``schema`` still return some JSON object.
    - ``"grammar"``: a GBNF grammar built from the schema (:func:`schema_to_gbnf`) in the
      request's ``grammar`` field (llama.cpp-family servers).
    - ``"none"``: nothing is sent; the prompt must ask for the JSON.
    - ``"auto"`` (default): on the first call with a schema, ask the server what it is:
      ``GET {base_url}/models`` (``owned_by`` is ``"llamacpp"`` for llama.cpp's server,
      ``"me"`` for llama-cpp-python's) and, if that does not tell, ``GET /props`` (only
      llama.cpp's server has it). A llama.cpp-family server starts with
      ``"json_object"``, anything else with ``"json_schema"``. If a ``"json_schema"``
      request is then refused as a request-format error (HTTP 400/422/500 whose text
      names ``response_format`` or ``json_schema``), the same request is sent once more
      with ``"json_object"``; the mode that first succeeds is kept for this instance and
      never probed again. If the fallback fails too, both server messages are raised in
      one :class:`~remit.errors.ModelError`, and nothing is remembered.

    Whatever the mode, the Gate validates the returned JSON against the schema (raw
    control characters inside its strings, which llama.cpp's grammars let through, are
    escaped first). A refusal of the request format is never retried, even when the
    server sends it as a 500.

    **Tools.** ``tools`` (OpenAI function-tool dicts) are sent as given, with
    ``tool_choice`` if set (``"auto"``, ``"required"``, or ``{"type": "function",
    "function": {"name": ...}}``; llama-cpp-python only calls a tool it is forced to);
    the tool calls of the answer come back whole in ``Completion.tool_calls``.

    **Other options.** ``temperature`` (``None`` omits it; reasoning models refuse it),
    ``seed``, ``headers`` (sent with every request), ``max_tokens_param`` (OpenAI's
    reasoning models want ``"max_completion_tokens"``), ``extra_body`` (merged into every
    request, e.g. ``{"top_k": 1}``), ``name`` (the journal's name for the model; default
    ``model``).

    **Usage and cost.** ``usage.prompt_tokens`` / ``usage.completion_tokens`` of each
    response become ``Completion.input_tokens`` / ``output_tokens``; the cost is those
    times ``usd_per_input_token`` / ``usd_per_output_token`` (default: from
    :data:`PRICES_PER_MILLION`, else 0). A response without usage raises a
    ``ModelError`` whose ``spent`` is the call's worst case (so the ledger charges an
    upper bound), unless ``missing_usage="worst_case"``, which returns the completion and
    charges that worst case: input characters (they bound tokens from above) and
    ``max_tokens``.

    One ``httpx.AsyncClient`` per event loop is created on first use and reused;
    ``await model.aclose()`` (or ``async with model:``) closes it. Concurrent calls on
    one loop share its connection pool.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        api_key_env: str | None = "OPENAI_API_KEY",
        schema_mode: SchemaMode = "auto",
        timeout_s: float = 60.0,
        retries: int = 3,
        usd_per_input_token: float | None = None,
        usd_per_output_token: float | None = None,
        temperature: float | None = 0.0,
        seed: int | None = None,
        name: str | None = None,
        headers: Mapping[str, str] | None = None,
        max_tokens_param: str = "max_tokens",
        missing_usage: Literal["error", "worst_case"] = "error",
        extra_body: Mapping[str, Any] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
    ) -> None:
        if schema_mode not in _MODES:
            raise ValueError(f"schema_mode must be one of {', '.join(_MODES)}; got {schema_mode!r}")
        if missing_usage not in ("error", "worst_case"):
            raise ValueError(
                f"missing_usage must be 'error' or 'worst_case'; got {missing_usage!r}"
            )
        if retries < 0 or timeout_s <= 0:
            raise ValueError("retries must be >= 0 and timeout_s > 0")
        self.base_url = _api_base(base_url)
        self.model = model
        self.name = name or model
        self.schema_mode: SchemaMode = schema_mode
        self.timeout_s = timeout_s
        self.retries = retries
        listed = price_per_token(model) or (0.0, 0.0)
        self.usd_per_input_token = (
            listed[0] if usd_per_input_token is None else float(usd_per_input_token)
        )
        self.usd_per_output_token = (
            listed[1] if usd_per_output_token is None else float(usd_per_output_token)
        )
        self.temperature = temperature
        self.seed = seed
        self.max_tokens_param = max_tokens_param
        self.missing_usage = missing_usage
        #: what ``auto`` found out: "llamacpp", "llama-cpp-python", another ``owned_by``
        #: value, or "unknown"; ``None`` until probed
        self.server_kind: str | None = None
        self._api_key = api_key
        self._api_key_env = api_key_env
        self._headers = dict(headers or {})
        self._extra_body = dict(extra_body or {})
        self.tool_choice = tool_choice
        # auto mode: the mode to try next, and whether a request in it has succeeded
        self._mode: str | None = None if schema_mode == "auto" else schema_mode
        self._mode_confirmed = schema_mode != "auto"
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._probe_lock: asyncio.Lock | None = None

    def __repr__(self) -> str:
        return (
            f"OpenAICompatModel({self.base_url!r}, {self.model!r}, name={self.name!r}, "
            f"schema_mode={self.schema_mode!r})"
        )

    @property
    def effective_schema_mode(self) -> str | None:
        """The mode structured calls use now (``None`` while ``auto`` has not probed)."""
        return self._mode

    # --- the Model protocol ----------------------------------------------------------

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        schema: Mapping[str, Any] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        max_tokens: int = 512,
    ) -> Completion:
        """One chat completion; see the class docstring for modes, errors and usage."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [dict(m) for m in messages],
            self.max_tokens_param: max_tokens,
        }
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if self.seed is not None:
            body["seed"] = self.seed
        if tools:
            body["tools"] = [dict(t) for t in tools]
            if self.tool_choice is not None:
                body["tool_choice"] = self.tool_choice
        body.update(self._extra_body)
        if schema is None:
            return self._parse(await self._post(body), messages, max_tokens)

        mode = self._mode if self._mode is not None else await self.detect_schema_mode()
        try:
            data = await self._post(_with_schema(body, mode, schema))
        except ModelError as first:
            server_text = first.message.partition(f"HTTP {first.status}: ")[2]
            refused = _refuses_format(first.status or 0, server_text)
            if not (mode == "json_schema" and not self._mode_confirmed and refused):
                raise
            # the server does not take json_schema: ask once in the llama.cpp dialect
            log.info("%s: %s refused json_schema; trying json_object", self.name, self.base_url)
            try:
                data = await self._post(_with_schema(body, "json_object", schema))
            except ModelError as second:
                err = type(second)(
                    f"{first.message}; the json_object fallback failed too: {second.message}; "
                    "set schema_mode= to what this server accepts",
                    status=second.status,
                )
                raise err from second
            self._mode = "json_object"
        self._mode_confirmed = True
        c = self._parse(data, messages, max_tokens)
        fixed = _escape_raw_controls(c.content)
        return c if fixed is c.content else dataclasses.replace(c, content=fixed)

    async def detect_schema_mode(self) -> str:
        """The schema mode to try first on this server (what ``auto`` does, once).

        Probe failures are not errors: an unreachable ``/models`` just means
        ``"json_schema"`` with the fallback described in the class docstring.
        """
        if self._mode is not None:
            return self._mode
        lock = self._loop_state()[1]
        async with lock:
            if self._mode is None:
                self.server_kind = kind = await self._probe_server()
                self._mode = (
                    "json_object" if kind in ("llamacpp", "llama-cpp-python") else ("json_schema")
                )
                log.info(
                    "%s: server at %s is %s; schema mode %s",
                    self.name,
                    self.base_url,
                    kind,
                    self._mode,
                )
        return self._mode

    async def aclose(self) -> None:
        """Close the HTTP client of the running loop (a new one is made if used again)."""
        client, self._client = self._client, None
        self._client_loop = None
        if client is not None:
            await client.aclose()

    async def __aenter__(self) -> OpenAICompatModel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- HTTP -------------------------------------------------------------------------

    def _loop_state(self) -> tuple[httpx.AsyncClient, asyncio.Lock]:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop or self._probe_lock is None:
            # a client's pooled connections belong to the loop that opened them, and
            # Runtime.run starts a new loop per run: a model reused across runs needs a
            # client per loop (the old loop is gone, so its client cannot be closed)
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(self.timeout_s))
            self._client_loop = loop
            self._probe_lock = asyncio.Lock()
        return self._client, self._probe_lock

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

    async def _post(self, body: Mapping[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}/chat/completions"
        client = self._loop_state()[0]
        try:
            resp = await client.post(url, json=body, headers=self._request_headers())
        except httpx.TimeoutException as e:
            raise ModelTransientError(
                f"model {self.model!r} at {url}: no answer within {self.timeout_s}s "
                f"({type(e).__name__})"
            ) from None
        except (httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError) as e:
            detail = self._redact(str(e))[:200] or "no detail"
            raise ModelTransientError(
                f"model {self.model!r} at {url}: connection failed ({type(e).__name__}: {detail})"
            ) from None
        except httpx.HTTPError as e:  # a bad URL or scheme: no retry will fix it
            raise ModelError(
                f"model {self.model!r} at {url}: request failed ({type(e).__name__}: "
                f"{self._redact(str(e))[:200]})"
            ) from None
        if resp.status_code >= 400:
            raise self._http_error(url, resp)
        try:
            data = resp.json()
        except ValueError:
            raise ModelError(
                f"model {self.model!r} at {url}: HTTP {resp.status_code} with a body that is "
                f"not JSON: {self._redact(resp.text)[:300]!r}",
                status=resp.status_code,
            ) from None
        if not isinstance(data, dict):
            raise ModelError(
                f"model {self.model!r} at {url}: expected a JSON object, got {type(data).__name__}",
                status=resp.status_code,
            )
        return cast(dict[str, Any], data)

    def _http_error(self, url: str, resp: httpx.Response) -> ModelError:
        status = resp.status_code
        text = self._redact(_error_text(resp))[:500]
        should = resp.headers.get("x-should-retry", "").lower()  # OpenAI's explicit hint
        refused = _refuses_format(status, text)
        transient = (status in (408, 409, 429) or status >= 500) and not refused
        if should in ("true", "false"):
            transient = should == "true"
        message = f"model {self.model!r} at {url}: HTTP {status}: {text}"
        if not transient:
            return ModelError(message, status=status)
        retry_after = _retry_after(resp.headers)
        if retry_after is not None:
            message += f" (server asks to retry after {retry_after:g}s)"
        err = ModelTransientError(message, status=status)
        # journaled with the error; the Gate's backoff does not read it (yet)
        setattr(err, "retry_after_s", retry_after)  # noqa: B010
        return err

    def _redact(self, text: str) -> str:
        key = self._key()
        return text.replace(key, "***") if key and len(key) >= 4 else text

    async def _probe_server(self) -> str:
        client = self._loop_state()[0]
        headers = self._request_headers()
        timeout = min(self.timeout_s, 10.0)
        owners: set[str] = set()
        try:
            resp = await client.get(f"{self.base_url}/models", headers=headers, timeout=timeout)
            listing: Any = resp.json() if resp.status_code == 200 else None
            entries: Any = listing.get("data") if isinstance(listing, dict) else None
            for entry in entries if isinstance(entries, list) else ():
                if isinstance(entry, dict) and isinstance(entry.get("owned_by"), str):
                    owners.add(cast(str, entry["owned_by"]))
        except (httpx.HTTPError, ValueError):
            pass
        if "llamacpp" in owners:
            return "llamacpp"
        if "me" in owners:  # what llama-cpp-python's server calls itself
            return "llama-cpp-python"
        known = sorted(owners)
        if owners & {"openai", "system", "openai-internal", "vllm", "library", "ollama"}:
            return known[0]
        # /props is llama.cpp's own endpoint, at the server root (not under /v1)
        try:
            resp = await client.get(f"{_server_root(self.base_url)}/props", timeout=timeout)
            props = resp.json() if resp.status_code == 200 else None
            if isinstance(props, dict) and (
                "default_generation_settings" in props or "build_info" in props
            ):
                return "llamacpp"
        except (httpx.HTTPError, ValueError):
            pass
        return known[0] if known else "unknown"

    # --- responses --------------------------------------------------------------------

    def _parse(
        self, data: Mapping[str, Any], messages: Sequence[Message], max_tokens: int
    ) -> Completion:
        url = f"{self.base_url}/chat/completions"
        try:
            message = data["choices"][0]["message"]
            content = message.get("content") or ""
            tool_calls = message.get("tool_calls") or ()
            if not isinstance(content, str) or not isinstance(tool_calls, list | tuple):
                raise TypeError("content must be a string and tool_calls a list")
        except (KeyError, IndexError, TypeError, AttributeError) as e:
            raise ModelError(
                f"model {self.model!r} at {url}: the response is not a chat completion "
                f"({type(e).__name__}: {e}): {json.dumps(data)[:300]}",
                status=200,
            ) from None
        usage = data.get("usage")
        tokens = _usage_tokens(usage)
        if tokens is None:
            worst_in = sum(len(str(m.get("content", ""))) + 8 for m in messages)
            worst = Usage(1, worst_in, max_tokens, self._cost(worst_in, max_tokens))
            if self.missing_usage == "error":
                err = ModelError(
                    f"model {self.model!r} at {url}: the response reports no token usage "
                    f"(usage={json.dumps(usage)[:100]}), so its spend cannot be charged; the "
                    "worst case was charged instead. Pass missing_usage='worst_case' to "
                    "accept such responses and always charge their worst case",
                    status=200,
                )
                err.spent = worst
                raise err
            log.warning("%s: no usage in a response; charging its worst case", self.name)
            tokens = (worst.input_tokens, worst.output_tokens)
        return Completion(
            content=content,
            input_tokens=tokens[0],
            output_tokens=tokens[1],
            cost_usd=self._cost(*tokens),
            model=str(data.get("model") or self.model),
            tool_calls=tuple(cast(list[Mapping[str, Any]], tool_calls)),
        )

    def _cost(self, input_tokens: int, output_tokens: int) -> float:
        return input_tokens * self.usd_per_input_token + output_tokens * self.usd_per_output_token


# --- helpers -----------------------------------------------------------------------------


def _api_base(base_url: str) -> str:
    parts = urlsplit(base_url.rstrip("/"))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"base_url must be an http(s) URL like http://host:port/v1; got {base_url!r}"
        )
    path = parts.path or "/v1"  # every server we know mounts the API at /v1
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def _server_root(base_url: str) -> str:
    return base_url[: -len("/v1")] if base_url.endswith("/v1") else base_url


def _usage_tokens(usage: Any) -> tuple[int, int] | None:
    if not isinstance(usage, Mapping):
        return None
    u = cast(Mapping[str, Any], usage)
    pin, pout = u.get("prompt_tokens"), u.get("completion_tokens")
    if type(pin) is not int or type(pout) is not int or pin < 0 or pout < 0:
        return None
    return pin, pout


def _error_text(resp: httpx.Response) -> str:
    """The server's own words: OpenAI's ``error.message``, FastAPI's ``detail``, or text."""
    try:
        data: Any = resp.json()
    except ValueError:
        return resp.text.strip() or resp.reason_phrase
    if isinstance(data, dict):
        d = cast(dict[str, Any], data)
        err = d.get("error")
        if isinstance(err, dict) and "message" in err:
            return str(cast(dict[str, Any], err)["message"])
        if err is not None:
            return str(err)
        if "detail" in d:
            return json.dumps(d["detail"])
        if "message" in d:
            return str(d["message"])
    return json.dumps(data)


def _retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return max(float(value) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _escape_raw_controls(content: str) -> str:
    """Structured output whose strings hold raw control characters, re-encoded escaped.

    llama.cpp-family schema grammars let a string contain a raw newline or tab, which
    strict JSON forbids; the model meant the character, so it is escaped rather than the
    answer rejected. Anything else (valid JSON, or not JSON at all) is returned as is.
    """
    try:
        json.loads(content)
        return content
    except ValueError:
        pass
    try:
        value = json.loads(content, strict=False)
    except ValueError:
        return content
    return json.dumps(value, ensure_ascii=False)


def _refuses_format(status: int, text: str) -> bool:
    """Whether an error answer refuses the request's *format* (not the model or the load).

    llama.cpp answers 500 ``response_format type must be one of "text" or
    "json_object"``; llama-cpp-python answers 500 with a validation error naming
    ``response_format``; FastAPI-based servers answer 422. Sending the same request again
    cannot help, whatever the status says. An OpenAI "Invalid schema" 400 is a real
    error about the schema, not about the format type.
    """
    text = text.lower()
    return (
        status in (400, 422, 500)
        and ("response_format" in text or "json_schema" in text)
        and "invalid schema" not in text
    )


def _with_schema(body: Mapping[str, Any], mode: str, schema: Mapping[str, Any]) -> dict[str, Any]:
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


# --- JSON schema -> GBNF -------------------------------------------------------------------

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
