"""JSON encoders built once per process (pure).

``json.dumps`` with options, and ``JSONEncoder.encode``, build a new C encoder on every
call: for the small values a runtime journals and signs, that build is a third or more
of the cost. :func:`encoder` builds it once. It is the one place that knows the
positional signature of ``json``'s private ``c_make_encoder``, with the plain
``json.dumps`` as the fallback where the C accelerator is missing.

>>> encode = encoder(sort_keys=True, separators=(",", ":"))
>>> encode({"b": 1, "a": [True, None]})
'{"a":[true,null],"b":1}'

The circular-reference check is skipped: a cycle raises RecursionError, which callers
treat as unencodable, like a value nested too deeply.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

__all__ = ["encoder"]


def _not_json(value: object) -> object:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def encoder(
    *,
    sort_keys: bool = False,
    separators: tuple[str, str] = (", ", ": "),
    allow_nan: bool = True,
    default: Callable[[Any], Any] = _not_json,
) -> Callable[[Any], str]:
    """``json.dumps(value, ensure_ascii=False, ...)`` with these options, as a function
    whose C encoder is built once."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # an interpreter without json's C accelerator
        return functools.partial(
            json.dumps, ensure_ascii=False, sort_keys=sort_keys, separators=separators,
            allow_nan=allow_nan, default=default,
        )  # fmt: skip
    item_sep, key_sep = separators
    # markers, default, encode str, indent, key sep, item sep, sort_keys, skipkeys, allow_nan
    c_encode = make(None, default, json.encoder.encode_basestring, None, key_sep, item_sep,
                    sort_keys, False, allow_nan)  # fmt: skip
    join = "".join
    encode_str = json.encoder.encode_basestring
    int_repr = int.__repr__

    def encode(value: Any) -> str:
        # the commonest journaled values, written as json writes them, without the join
        kind = type(value)
        if kind is int:
            return int_repr(value)
        if kind is str:
            return encode_str(value)
        return join(c_encode(value, 0))

    return encode
