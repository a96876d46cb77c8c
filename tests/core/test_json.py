"""remit.core._json: encoders built once write exactly what json.dumps writes."""

from __future__ import annotations

import doctest
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import remit.core._json
from remit.core._json import encoder

VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
OPTIONS = [
    {},
    {"sort_keys": True, "separators": (",", ":"), "allow_nan": False},
]


@pytest.mark.parametrize("options", OPTIONS)
@settings(max_examples=200, deadline=None)
@given(value=VALUES)
def test_an_encoder_writes_what_json_dumps_writes(options: dict[str, Any], value: Any) -> None:
    try:
        expected = json.dumps(value, ensure_ascii=False, **options)
    except ValueError:  # NaN or infinity where allow_nan is False
        with pytest.raises(ValueError):
            encoder(**options)(value)
        return
    assert encoder(**options)(value) == expected


def test_what_json_cannot_hold_is_refused() -> None:
    encode = encoder()
    with pytest.raises(TypeError, match="object is not JSON serializable"):
        encode({"x": object()})
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(RecursionError):
        encode(loop)


def test_module_examples_run() -> None:
    result = doctest.testmod(remit.core._json)
    assert result.attempted > 0 and result.failed == 0
