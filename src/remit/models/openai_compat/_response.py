"""A server's answer read as a Completion: content and tool calls, token usage and its
cost (or the worst case when usage is missing), and repair of raw control characters."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal, cast

from remit.core.ledger import Usage
from remit.errors import ModelError
from remit.models._base import Completion, Message

# the adapter's logger, whichever of its modules logs
log = logging.getLogger("remit.models.openai_compat")


class ResponseParser:
    """Turns a chat completion body into a :class:`~remit.models.Completion`."""

    base_url: str
    model: str
    name: str
    missing_usage: Literal["error", "worst_case"]
    usd_per_input_token: float
    usd_per_output_token: float

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


def _usage_tokens(usage: Any) -> tuple[int, int] | None:
    if not isinstance(usage, Mapping):
        return None
    u = cast(Mapping[str, Any], usage)
    pin, pout = u.get("prompt_tokens"), u.get("completion_tokens")
    if type(pin) is not int or type(pout) is not int or pin < 0 or pout < 0:
        return None
    return pin, pout


def escape_raw_controls(content: str) -> str:
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
