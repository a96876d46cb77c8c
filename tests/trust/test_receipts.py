"""Receipts under a run's key: who can make one, and what a forged one looks like."""

from __future__ import annotations

import dataclasses
import hashlib
import pickle

import pytest

from remit.core.receipts import Receipt, receipt_message
from remit.journal import StepRecord
from remit.trust.provenance import RunKeys
from remit.trust.receipts import Receipter, receipted_calls

KEY = b"k" * 32


def made() -> Receipt:
    return Receipter(KEY).make("run-1", "t.0.ab:execute.0", "read", '{"p": 1}', '"text"')


def test_the_mac_is_keyed_blake2b_over_the_documented_bytes() -> None:
    r = made()
    expected = hashlib.blake2b(r.message(), key=KEY, digest_size=32).hexdigest()
    assert r.mac == expected
    assert r.message() == receipt_message(r.run, r.step, r.tool, r.args, r.result)


def test_a_receipt_is_a_pure_function_of_the_row_and_the_key() -> None:
    assert made() == made()
    assert (
        Receipter(b"x" * 32).make("run-1", "t.0.ab:execute.0", "read", '{"p": 1}', '"text"')
        != made()
    )


def test_a_receipt_made_with_the_key_is_genuine() -> None:
    assert Receipter(KEY).genuine(made())


@pytest.mark.parametrize("field", ["run", "step", "tool", "args", "result", "mac"])
def test_a_receipt_with_any_field_changed_is_not_genuine(field: str) -> None:
    r = made()
    changed = "0" * 64 if field in ("args", "result", "mac") else getattr(r, field) + "x"
    assert not Receipter(KEY).genuine(dataclasses.replace(r, **{field: changed}))


def test_a_receipt_made_with_another_key_is_not_genuine() -> None:
    assert not Receipter(b"x" * 32).genuine(made())


def test_a_receipt_whose_digest_is_not_hex_is_not_genuine() -> None:
    assert not Receipter(KEY).genuine(dataclasses.replace(made(), args="not hex"))


def test_the_key_shows_in_no_repr_and_cannot_be_pickled() -> None:
    keys = Receipter(KEY)
    assert KEY.hex() not in repr(keys) and "k" * 32 not in repr(keys)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(keys)


def test_without_a_key_a_process_gets_one_of_its_own() -> None:
    a, b = Receipter(), Receipter()
    assert not a.durable and Receipter(KEY).durable
    r = a.make("r", "s", "t", None, "1")
    assert a.genuine(r) and not b.genuine(r)


def test_the_receipt_key_is_derived_from_the_run_secret_and_is_no_other_key() -> None:
    keys = RunKeys(b"s" * 32)
    assert keys.receipt_key == RunKeys(b"s" * 32).receipt_key
    assert keys.receipt_key != RunKeys(b"t" * 32).receipt_key
    # a derivation of its own (BLAKE2b keyed by the secret, personalised "receipt"):
    # not the secret, and no key that signs anything
    derived = hashlib.blake2b(b"", key=b"s" * 32, person=b"receipt", digest_size=32).digest()
    assert keys.receipt_key == derived != b"s" * 32


def test_only_tool_calls_with_a_result_are_receipted() -> None:
    rows = [
        StepRecord("r", "t:execute.0", "t", 0, "tool", "read", "ok", "{}", '"x"'),
        StepRecord("r", "t:execute.1", "t", 1, "tool", "read", "error", "{}", None, "{}"),
        StepRecord("r", "t:execute.2", "t", 2, "tool", "read", "started", "{}"),
        StepRecord("r", "t:execute.3", "t", 3, "model", "m", "ok", "{}", "{}"),
        StepRecord("r", "t:execute.4@alt", "t", 4, "tool", "alt", "ok", "{}", "1"),
    ]
    assert [s.step_id for s in receipted_calls(rows)] == ["t:execute.0", "t:execute.4@alt"]
