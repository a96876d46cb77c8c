"""Tool receipts: what the Gate attests about each tool call it recorded (pure values).

A :class:`Receipt` names one tool call (run, step, tool), the SHA-256 digests of its
arguments and of its result *as journaled* (the ``input`` and ``output`` text of the
call's row), and a MAC over all five under a key only the runtime holds
(:mod:`remit.trust.receipts` makes and checks it). A receipt is a pure function of the
journaled row and the key, so a call served from the journal on resume gets the very
receipt the first process made.

The MAC covers the bytes :func:`receipt_message` builds, which any language can
rebuild: ``b"remit.receipt.v1\\x00" + run + b"\\x00" + step + b"\\x00" + tool + b"\\x00"
+ sha256(input) + sha256(output)`` (names UTF-8, digests the 32 raw bytes; a missing
input is the empty string). Run ids and step ids never hold NUL; a tool name that does
cannot be receipted (``ValueError``).

>>> r = Receipt.of_row("run-1", "t.0.ab:execute.0", "step", '{"i": 2}', "4", mac="00")
>>> r.result == digest("4"), Receipt.from_dict(r.to_dict()) == r
(True, True)
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["RECEIPT_FIELDS", "RECEIPT_TAG", "Receipt", "digest", "receipt_message"]

#: the domain tag every receipt's MAC starts with (a new tag for a new byte form)
RECEIPT_TAG: Final = b"remit.receipt.v1\x00"
#: the keys of a receipt's JSON form (:meth:`Receipt.to_dict`), exactly
RECEIPT_FIELDS: Final = frozenset({"run", "step", "tool", "args", "result", "mac"})

_sha256 = hashlib.sha256


def digest(text: str | None) -> str:
    """The hex SHA-256 of a journaled text (None, no text, digests as the empty string).

    >>> digest(None) == digest("")
    True
    """
    return _sha256((text or "").encode()).hexdigest()


def receipt_message(run: str, step: str, tool: str, args: str, result: str) -> bytes:
    """The bytes a receipt's MAC covers (``args``, ``result``: hex digests).

    >>> receipt_message("r", "s", "t", "00" * 32, "11" * 32)[:23]
    b'remit.receipt.v1\\x00r\\x00s\\x00t\\x00'
    """
    if "\x00" in tool or "\x00" in step or "\x00" in run:
        raise ValueError(f"a receipt cannot name {tool!r} at {step!r}: NUL in a name")
    return b"%s%s\x00%s\x00%s\x00%s%s" % (
        RECEIPT_TAG,
        run.encode(),
        step.encode(),
        tool.encode(),
        bytes.fromhex(args),
        bytes.fromhex(result),
    )


@dataclass(frozen=True, slots=True)
class Receipt:
    """The runtime's attestation that tool ``tool`` was called at ``step`` of ``run``
    with arguments digesting to ``args`` and returned a result digesting to ``result``.

    ``mac`` is hex; only a holder of the run's receipt key can make or check it. A
    receipt says nothing by itself about a value that quotes the call: see
    :mod:`remit.core.quotes`.
    """

    run: str
    step: str
    tool: str
    #: hex SHA-256 of the call's arguments as journaled (its row's ``input``)
    args: str
    #: hex SHA-256 of the call's result as journaled (its row's ``output``)
    result: str
    mac: str

    @classmethod
    def of_row(
        cls, run: str, step: str, tool: str, args: str | None, result: str | None, *, mac: str
    ) -> Receipt:
        """The receipt of a call whose journaled texts are ``args`` and ``result``."""
        return cls(run, step, tool, digest(args), digest(result), mac)

    def message(self) -> bytes:
        """What :attr:`mac` is a MAC of (see :func:`receipt_message`)."""
        return receipt_message(self.run, self.step, self.tool, self.args, self.result)

    def covers(self, args: str | None, result: str | None) -> bool:
        """Whether journaled texts ``args`` and ``result`` are what this receipt names."""
        return digest(result) == self.result and digest(args) == self.args

    def to_dict(self) -> dict[str, str]:
        return {
            "run": self.run,
            "step": self.step,
            "tool": self.tool,
            "args": self.args,
            "result": self.result,
            "mac": self.mac,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Receipt:
        """A receipt from its JSON form; ``ValueError`` if it is not one."""
        if frozenset(data) != RECEIPT_FIELDS or not all(isinstance(v, str) for v in data.values()):
            raise ValueError(f"not a receipt: expected string fields {sorted(RECEIPT_FIELDS)}")
        return cls(
            data["run"], data["step"], data["tool"], data["args"], data["result"], data["mac"]
        )
