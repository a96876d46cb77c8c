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

The package is the adapter's layers, a module each: ``_prices`` (what hosted models
cost), ``_grammar`` (JSON schema to GBNF), ``_request`` (headers and the schema mode's
dialect in the body), ``_errors`` (HTTP failures as ModelErrors), ``_transport`` (the
HTTP client per loop, the POST and the server probe), ``_response`` (a chat completion
and its usage as a Completion) and ``_model`` (OpenAICompatModel, built on them).
"""

from __future__ import annotations

from remit.models.openai_compat._grammar import schema_to_gbnf
from remit.models.openai_compat._model import OpenAICompatModel
from remit.models.openai_compat._prices import PRICES_PER_MILLION, price_per_token
from remit.models.openai_compat._request import SchemaMode

__all__ = [
    "PRICES_PER_MILLION",
    "OpenAICompatModel",
    "SchemaMode",
    "price_per_token",
    "schema_to_gbnf",
]
