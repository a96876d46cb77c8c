"""How a failed HTTP answer becomes a ModelError or a ModelTransientError: the
server's own words, the key blanked out, retry hints, and refusals of the format."""

from __future__ import annotations

import email.utils
import json
import time
from typing import Any, cast

import httpx

from remit.errors import ModelError, ModelTransientError
from remit.models.openai_compat._request import RequestHeaders


class HTTPErrors(RequestHeaders):
    """Maps an HTTP error answer to the error the Gate retries, or does not."""

    model: str

    def _http_error(self, url: str, resp: httpx.Response) -> ModelError:
        status = resp.status_code
        text = self._redact(_error_text(resp))[:500]
        should = resp.headers.get("x-should-retry", "").lower()  # OpenAI's explicit hint
        refused = refuses_format(status, text)
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


def refuses_format(status: int, text: str) -> bool:
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
