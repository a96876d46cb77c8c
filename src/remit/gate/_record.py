"""Phase 6, record: a step's intent and its result or error, as journal rows; a task's end."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import pydantic

from remit.core import _json
from remit.core.ledger import Usage
from remit.errors import (
    OutputTooLarge,
    RemitError,
    StepFailed,
)
from remit.gate._node import Node
from remit.gate._receipts import Receipting
from remit.gate._state import MISS
from remit.journal import StepRecord

#: the error an unfinished step's row carries when the run stopped while it ran
INTERRUPTED = json.dumps(
    {
        "code": "INTERRUPTED",
        "message": "the run stopped while this step ran; a resume runs it again",
    }
)

PRIMITIVES = (str, int, float, bool, type(None))


def json_default(value: Any) -> Any:
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)  # pyright: ignore[reportUnknownArgumentType]
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    raise TypeError(f"{type(value).__name__} is not JSON-serializable")


# results and arguments, as json.dumps(ensure_ascii=False) writes them
encode_json = _json.encoder(default=json_default)


def spent_text(spent: tuple[float, ...]) -> str | None:
    """The ``spent`` column for a (calls, input, output, cost) vector (memoized:
    spends repeat)."""
    text = SPENT_CACHE.get(spent, MISS)
    if text is MISS:
        u = Usage(int(spent[0]), int(spent[1]), int(spent[2]), float(spent[3]))
        text = None if u.is_zero() else json.dumps(u.to_dict())
        if len(SPENT_CACHE) < 4096:
            SPENT_CACHE[spent] = text
    return text


SPENT_CACHE: dict[tuple[float, ...], str | None] = {}


def spent_json(u: Usage) -> str | None:
    return spent_text((u.calls, u.input_tokens, u.output_tokens, u.cost_usd))


class Recording(Receipting):
    """Writes the rows of steps (one shape for every row of a step)."""

    def end(self, node: Node, ok: bool, result: Any, error: RemitError | None) -> Any:
        """Record how a task ended, with what its subtree spent; returns the result as a
        replay will read it."""
        now = time.time()
        step_id = f"{node.id}:end"
        if self.generations:  # a task an invalidation re-runs ends in its generation
            step_id = self.current_id(step_id)
        text: str | None = None
        if ok:
            last_value, last_text = self._last
            # the result is usually the last role step's output: encode it once
            if last_value is result:
                text = last_text
            else:
                text = self._encode(result, step_id)
                if type(result) not in PRIMITIVES:
                    # the parent sees exactly what a resumed run will (lists, not tuples)
                    result = json.loads(text)
        self.writer.add(
            StepRecord(
                self.run_id,
                step_id,
                node.id,
                1_000_000,
                "task",
                "done" if ok else "failed",
                "ok" if ok else "error",
                None,
                text,
                json.dumps(error.to_dict()) if error is not None else None,
                spent_text(tuple(node.account.spent_vec)),
                node.started_at or now,
                now,
            )
        )
        return result

    def _record_ok(
        self,
        node: Node,
        step_id: str,
        kind: str,
        name: str,
        args: Any,
        value: Any,
        spent: Usage,
        started: float,
        normalize: bool,
        text: str | None = None,
        input_text: str | None = None,
    ) -> Any:
        """Record a step's result (with its input when no intent row holds it);
        ``text``: the result already encoded; ``input_text``: the arguments encoded (a
        tool call's as its intent row holds them, for its receipt)."""
        self.executed += 1
        if text is None:
            try:
                text = self._encode(value, step_id)
            except RemitError as err:
                self._record_error(node, step_id, kind, name, err, spent, started, "error", args)
                raise
        row_input = None
        if kind == "tool" and args is not None:  # no intent row: this row holds them
            input_text = row_input = self._encode_input(args)
        elif args is not None:  # no intent row: this row holds them, maybe encoded already
            row_input = input_text
        self._record(node, step_id, kind, name, "ok", args, text, None, spent, started,
                     input_text=row_input)  # fmt: skip
        if kind == "tool":
            self._receipt(node, step_id, name, input_text, text)
        if normalize and type(value) not in PRIMITIVES:
            # the caller sees exactly what a replay will see (tuples become lists, ...)
            value = json.loads(text)
        self._last = (value, text)
        return value

    def _record_error(
        self,
        node: Node,
        step_id: str,
        kind: str,
        name: str,
        err: RemitError,
        spent: Usage,
        started: float,
        status: str,
        args: Any = None,
    ) -> None:
        self._record(node, step_id, kind, name, status, args, None, json.dumps(err.to_dict()),
                     spent, started)  # fmt: skip

    def _record(
        self,
        node: Node,
        step_id: str,
        kind: str,
        name: str,
        status: str,
        args: Any,
        output: str | None,
        error: str | None,
        spent: Usage,
        started: float,
        ended: bool = True,
        *,
        input_text: str | None = None,
    ) -> None:
        """Queue one step record of ``node`` (the one shape every row of a step takes);
        ``input_text``: ``args`` already encoded."""
        if input_text is None and args is not None:
            input_text = self._encode_input(args)
        self.writer.add(
            StepRecord(
                self.run_id,
                step_id,
                node.id,
                node.scope_n,
                kind,
                name,
                status,  # pyright: ignore[reportArgumentType]
                input_text,
                output,
                error,
                spent_json(spent),
                started,
                time.time() if ended else None,
                self._proofs.pop(step_id, None) if self._proofs else None,
            )
        )

    def _encode(self, value: Any, where: str) -> str:
        try:
            text = encode_json(value)
        except RecursionError:
            raise StepFailed(
                f"step {where}: result cannot be journaled as JSON: it refers to itself"
                " (or nests too deeply)"
            ) from None
        except (TypeError, ValueError) as e:
            raise StepFailed(f"step {where}: result cannot be journaled as JSON: {e}") from None
        if len(text) > self.max_output_bytes:
            raise OutputTooLarge(
                f"step {where}: output of {len(text)} bytes exceeds the limit of "
                f"{self.max_output_bytes}; return less, or write it to a file with a tool"
            )
        return text

    def _encode_input(self, args: Any) -> str | None:
        if args is None:
            return None
        try:
            text = encode_json(args)
        except (TypeError, ValueError, RecursionError):
            text = json.dumps(repr(args))
        return text if len(text) <= self.max_output_bytes else json.dumps(text[:1000] + "...")
