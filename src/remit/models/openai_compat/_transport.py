"""The HTTP client (one per event loop), the POST of a chat completion with transport
failures mapped to errors, and the probe that asks a server what it is."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import httpx

from remit.errors import ModelError, ModelTransientError
from remit.models.openai_compat._errors import HTTPErrors


class Transport(HTTPErrors):
    """The HTTP calls: ``POST /chat/completions`` and the ``GET`` s of the probe."""

    base_url: str
    timeout_s: float
    _client: httpx.AsyncClient | None
    _client_loop: asyncio.AbstractEventLoop | None
    _probe_lock: asyncio.Lock | None

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


def api_base(base_url: str) -> str:
    parts = urlsplit(base_url.rstrip("/"))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"base_url must be an http(s) URL like http://host:port/v1; got {base_url!r}"
        )
    path = parts.path or "/v1"  # every server we know mounts the API at /v1
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def _server_root(base_url: str) -> str:
    return base_url[: -len("/v1")] if base_url.endswith("/v1") else base_url
