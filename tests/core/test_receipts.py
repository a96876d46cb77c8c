"""Receipts as values: what a receipt names, and the bytes its MAC covers."""

from __future__ import annotations

import hashlib

import pytest

from remit.core.receipts import RECEIPT_TAG, Receipt, digest, receipt_message


def test_a_receipt_names_the_digests_of_the_journaled_texts() -> None:
    r = Receipt.of_row("run-1", "t.0.ab:execute.0", "read", '{"path": "a"}', '"hi"', mac="m")
    assert r.args == hashlib.sha256(b'{"path": "a"}').hexdigest()
    assert r.result == hashlib.sha256(b'"hi"').hexdigest()
    assert r.covers('{"path": "a"}', '"hi"')
    assert not r.covers('{"path": "a"}', '"ho"')
    assert not r.covers('{"path": "b"}', '"hi"')


def test_a_missing_input_digests_as_the_empty_text() -> None:
    assert digest(None) == digest("") == hashlib.sha256(b"").hexdigest()


def test_the_mac_message_is_the_documented_byte_form() -> None:
    args, result = digest("{}"), digest("42")
    expected = (
        b"remit.receipt.v1\x00"
        + b"run-1\x00t.0.ab:execute.0\x00calc\x00"
        + bytes.fromhex(args)
        + bytes.fromhex(result)
    )
    assert RECEIPT_TAG == b"remit.receipt.v1\x00"
    assert receipt_message("run-1", "t.0.ab:execute.0", "calc", args, result) == expected
    r = Receipt("run-1", "t.0.ab:execute.0", "calc", args, result, "m")
    assert r.message() == expected


def test_a_name_with_nul_cannot_be_receipted() -> None:
    with pytest.raises(ValueError, match="NUL"):
        receipt_message("run-1", "s", "to\x00ol", digest(""), digest(""))


def test_a_receipt_round_trips_through_its_json_form() -> None:
    r = Receipt.of_row("run-1", "s", "t", None, "1", mac="ab")
    assert Receipt.from_dict(r.to_dict()) == r


@pytest.mark.parametrize(
    "data",
    [
        {"run": "r", "step": "s", "tool": "t", "args": "a", "result": "b"},
        {"run": "r", "step": "s", "tool": "t", "args": "a", "result": "b", "mac": 1},
        {"run": "r", "step": "s", "tool": "t", "args": "a", "result": "b", "mac": "m", "x": ""},
    ],
)
def test_what_is_not_a_receipt_is_refused(data: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="not a receipt"):
        Receipt.from_dict(data)
