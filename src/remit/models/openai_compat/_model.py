"""OpenAICompatModel, the class users make: its options, the Model protocol's
``complete`` with the schema mode's detection and fallback, and closing the client."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import httpx

from remit.errors import ModelError
from remit.models._base import Completion, Message
from remit.models.openai_compat._errors import refuses_format
from remit.models.openai_compat._prices import price_per_token
from remit.models.openai_compat._request import MODES, SchemaMode, with_schema
from remit.models.openai_compat._response import ResponseParser, escape_raw_controls
from remit.models.openai_compat._transport import Transport, api_base

# the adapter's logger, whichever of its modules logs
log = logging.getLogger("remit.models.openai_compat")


class OpenAICompatModel(Transport, ResponseParser):
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
        if schema_mode not in MODES:
            raise ValueError(f"schema_mode must be one of {', '.join(MODES)}; got {schema_mode!r}")
        if missing_usage not in ("error", "worst_case"):
            raise ValueError(
                f"missing_usage must be 'error' or 'worst_case'; got {missing_usage!r}"
            )
        if retries < 0 or timeout_s <= 0:
            raise ValueError("retries must be >= 0 and timeout_s > 0")
        self.base_url = api_base(base_url)
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
            data = await self._post(with_schema(body, mode, schema))
        except ModelError as first:
            server_text = first.message.partition(f"HTTP {first.status}: ")[2]
            refused = refuses_format(first.status or 0, server_text)
            if not (mode == "json_schema" and not self._mode_confirmed and refused):
                raise
            # the server does not take json_schema: ask once in the llama.cpp dialect
            log.info("%s: %s refused json_schema; trying json_object", self.name, self.base_url)
            try:
                data = await self._post(with_schema(body, "json_object", schema))
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
        fixed = escape_raw_controls(c.content)
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
