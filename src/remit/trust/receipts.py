"""Making and checking tool receipts under a run's receipt key (see :mod:`remit.core.receipts`).

The MAC is keyed BLAKE2b-256 (RFC 7693's keyed mode, a MAC by design, as the run's
root seal is) over :func:`~remit.core.receipts.receipt_message`: one C call per tool
call, about half what HMAC-SHA256 costs in Python. The key is derived from the run's
secret (:meth:`remit.trust.provenance.RunKeys.receipt_key`) and lives only here and in
the Gate: never on a Context, in a prompt or in the journal. An agent gets verdicts.

>>> keys = Receipter(b"k" * 32)
>>> r = keys.make("run-1", "t.0.ab:execute.0", "step", '{"i": 2}', "4")
>>> keys.genuine(r), Receipter(b"x" * 32).genuine(r)
(True, False)
>>> from dataclasses import replace
>>> keys.genuine(replace(r, result=r.args))
False
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Iterator
from typing import Any

from remit.core.receipts import RECEIPT_TAG, Receipt, receipt_message
from remit.journal import StepRecord

__all__ = ["Receipter", "receipted_calls"]

_sha256 = hashlib.sha256
_blake2b = hashlib.blake2b


class Receipter:
    """Holds a run's receipt key; makes receipts and says whether one is genuine.

    ``key=None``: a fresh random key, good for this process only (a run with no
    secret: ``Runtime(sign=False)``); its receipts cannot be checked once it ends.
    """

    __slots__ = ("__key", "durable")

    def __init__(self, key: bytes | None = None) -> None:
        if key is not None and len(key) != 32:
            raise ValueError(f"a receipt key is 32 bytes, got {len(key)}")
        self.__key = key if key is not None else secrets.token_bytes(32)
        #: the key outlives this process (derived from the run's secret, itself from the journal's)
        self.durable = key is not None

    def make(self, run: str, step: str, tool: str, args: str | None, result: str | None) -> Receipt:
        """The receipt of a call whose journaled input is ``args`` and output ``result``."""
        if "\x00" in tool or "\x00" in step or "\x00" in run:
            raise ValueError(f"a receipt cannot name {tool!r} at {step!r}: NUL in a name")
        da = _sha256((args or "").encode()).digest()
        dr = _sha256((result or "").encode()).digest()
        # the bytes receipt_message builds, without a round trip through hex
        msg = b"%s%s\x00%s\x00%s\x00%s%s" % (
            RECEIPT_TAG, run.encode(), step.encode(), tool.encode(), da, dr,
        )  # fmt: skip
        mac = _blake2b(msg, key=self.__key, digest_size=32).hexdigest()
        return Receipt(run, step, tool, da.hex(), dr.hex(), mac)

    def genuine(self, receipt: Receipt) -> bool:
        """Whether ``receipt``'s MAC was made with this key (then nobody altered it)."""
        try:
            msg = receipt_message(
                receipt.run, receipt.step, receipt.tool, receipt.args, receipt.result
            )
        except ValueError:  # a name with NUL, a digest that is not hex: not ours
            return False
        mac = _blake2b(msg, key=self.__key, digest_size=32).hexdigest()
        return hmac.compare_digest(mac, receipt.mac)

    def __repr__(self) -> str:  # never the key
        return f"Receipter(durable={self.durable})"

    def __reduce__(self) -> tuple[Any, ...]:  # nor through pickle
        raise TypeError("a Receipter holds a run's receipt key and cannot be pickled")


def receipted_calls(steps: Iterable[StepRecord]) -> Iterator[StepRecord]:
    """The rows a receipt is made for: tool calls that recorded a result.

    Routed alternatives (``<step>@<alternative>``) are calls of their own and count;
    retries, reroutes and the route's outcome row are not tool rows.
    """
    for s in steps:
        if s.kind == "tool" and s.status == "ok":
            yield s
