"""A deterministic model for tests and examples: it answers from a script.

It is not a language model. It lets the engine be driven exactly, fast and offline.

>>> import asyncio
>>> m = ScriptedModel(['{"answer": 4}'])
>>> asyncio.run(m.complete([{"role": "user", "content": "2+2?"}])).content
'{"answer": 4}'
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from remit.models._base import Completion, Message

Reply = str | Mapping[str, Any] | list[Any]
Script = Sequence[Reply] | Callable[[Sequence[Message]], Reply]


class ScriptedModel:
    """Replies in order from a list, or by calling a function of the messages.

    Token usage is counted as characters / 4 (rounded up), so budgets can be tested.
    """

    def __init__(
        self,
        script: Script,
        *,
        name: str = "scripted",
        usd_per_input_token: float = 0.0,
        usd_per_output_token: float = 0.0,
    ) -> None:
        self.name = name
        self.usd_per_input_token = usd_per_input_token
        self.usd_per_output_token = usd_per_output_token
        self._script = script
        self._i = 0
        self.calls: list[Sequence[Message]] = []

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        schema: Mapping[str, Any] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        max_tokens: int = 512,
    ) -> Completion:
        self.calls.append(messages)
        if callable(self._script):
            reply = self._script(messages)
        else:
            if self._i >= len(self._script):
                raise IndexError(
                    f"ScriptedModel {self.name!r} ran out of replies after {self._i} calls"
                )
            reply = self._script[self._i]
            self._i += 1
        content = reply if isinstance(reply, str) else json.dumps(reply)
        tokens_in = sum(-(-len(str(m.get("content", ""))) // 4) for m in messages)
        tokens_out = min(max_tokens, -(-len(content) // 4))
        return Completion(
            content=content,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            cost_usd=tokens_in * self.usd_per_input_token + tokens_out * self.usd_per_output_token,
            model=self.name,
        )
