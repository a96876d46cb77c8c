"""Holder binding: a :class:`CallProof` is the last holder's signature over one call, so a
child cannot present a broader prefix of its own chain; nonces are consumed once."""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, cast

from remit.errors import (
    WarrantDigestMismatch,
    WarrantMalformed,
    WarrantNotHolder,
)
from remit.trust._chain import Warrant
from remit.trust._format import (
    CALL_DOMAIN,
    HASH_LEN,
    MAX_NONCE,
    SIG_LEN,
    U8,
    U16,
    b64decode,
    b64encode,
    blake2b_256,
    canonical_json,
    lp,
    short,
)
from remit.trust._keys import AgentKey

__all__ = [
    "CallProof",
    "MemoryNonceStore",
    "NonceStore",
    "call_digest",
    "call_message",
    "sign_call",
]


class _Reader:
    """Sequential reader for the (rare, small) call-proof encoding."""

    __slots__ = ("data", "label", "pos")

    def __init__(self, data: bytes, label: str) -> None:
        self.data = data
        self.label = label
        self.pos = 0

    def fail(self, what: str) -> WarrantMalformed:
        return WarrantMalformed(
            f"{self.label} is truncated or garbled: {what} (byte {self.pos} of {len(self.data)})"
        )

    def take(self, n: int, what: str) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise self.fail(f"{what} runs past the end")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def uint(self, fmt: struct.Struct, what: str) -> int:
        return cast(int, fmt.unpack(self.take(fmt.size, what))[0])

    def text(self, fmt: struct.Struct, what: str) -> str:
        raw = self.take(self.uint(fmt, what), what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail(f"{what} is not UTF-8") from None


def call_digest(tool: str, args: Mapping[str, object]) -> bytes:
    """BLAKE2b-256 of the call as canonical JSON ``[tool, args]`` (sorted keys, compact).

    Arguments are bound by their JSON form (a tuple digests like a list).

    >>> call_digest("read", {"b": 1, "a": 2}) == call_digest("read", {"a": 2, "b": 1})
    True
    """
    try:
        data = canonical_json([tool, dict(args)])
    except (TypeError, ValueError, RecursionError) as e:
        raise WarrantDigestMismatch(
            f"call to {tool!r}: arguments cannot be digested (not JSON): {e}"
        ) from None
    return blake2b_256(data)


def call_message(run_id: str, link_hash: bytes, hop_id: str, digest: bytes, nonce: bytes) -> bytes:
    # Bound to the run and to the exact chain (the last hop's hash), not only the hop id.
    return b"".join(
        (
            CALL_DOMAIN,
            lp(run_id.encode("utf-8"), U16, "run id"),
            link_hash,
            lp(hop_id.encode("utf-8"), U8, "hop id"),
            digest,
            U8.pack(len(nonce)),
            nonce,
        )
    )


@dataclass(frozen=True, slots=True)
class CallProof:
    """The holder's signature over one call: (run, chain, hop id, call digest, nonce).

    >>> CallProof.decode(CallProof("h", bytes(32), b"n", bytes(64)).encode()).hop_id
    'h'
    """

    hop_id: str
    digest: bytes
    nonce: bytes
    signature: bytes

    def encode(self) -> str:
        """Compact base64url form, for carrying a proof across a process boundary."""
        raw = b"".join(
            (
                lp(self.hop_id.encode("utf-8"), U8, "hop id"),
                self.digest,
                U8.pack(len(self.nonce)),
                self.nonce,
                self.signature,
            )
        )
        return b64encode(raw)

    @classmethod
    def decode(cls, text: str) -> CallProof:
        """Read :meth:`encode`'s form; :class:`~remit.errors.WarrantMalformed` if garbled."""
        r = _Reader(b64decode(text), "call proof")
        hop_id = r.text(U8, "proof hop id")
        digest = r.take(HASH_LEN, "proof digest")
        nonce = r.take(r.uint(U8, "nonce length"), "nonce")
        signature = r.take(SIG_LEN, "proof signature")
        if r.pos != len(r.data):
            raise r.fail("unexpected bytes after the call proof")
        return cls(hop_id, digest, nonce, signature)


def _check_nonce(nonce: bytes) -> None:
    if not 1 <= len(nonce) <= MAX_NONCE:
        raise WarrantMalformed(f"call nonce must be 1 to {MAX_NONCE} bytes, got {len(nonce)}")


def sign_call(
    holder_key: AgentKey,
    warrant: Warrant,
    tool: str,
    args: Mapping[str, object],
    nonce: bytes,
) -> CallProof:
    """A proof that the holder of ``warrant``'s last hop makes this call.

    ``nonce`` (1 to 64 bytes) must never repeat for this hop: verifiers accept it once.

    >>> from remit.core.remit import Remit
    >>> p, a = AgentKey.generate(), AgentKey.generate()
    >>> w = issue(p, run_id="r", remit=Remit(), purpose="", expires=2e9,
    ...           holder_public=a.public)
    >>> sign_call(a, w, "t", {}, b"n1").hop_id
    'root'
    """
    if holder_key.public != warrant.holder:
        raise WarrantNotHolder(
            f"key {short(holder_key.public)}... is not the holder of hop "
            f"{warrant.depth - 1} ({warrant.hop_id!r}); only that holder can sign its calls",
            hop_index=warrant.depth - 1,
            hop_id=warrant.hop_id,
        )
    _check_nonce(nonce)
    digest = call_digest(tool, args)
    message = call_message(
        warrant.run_id, warrant.hops[-1].link_hash, warrant.hop_id, digest, nonce
    )
    return CallProof(warrant.hop_id, digest, bytes(nonce), holder_key.sign(message))


class NonceStore(Protocol):
    """Where used call nonces are recorded (the runtime backs this with the journal)."""

    def consume(self, hop_id: str, nonce: bytes) -> bool:
        """Record ``nonce`` for ``hop_id``; False if it was already recorded."""
        ...


class MemoryNonceStore:
    """An in-memory :class:`NonceStore` (grows with every call; for one process's run).

    >>> s = MemoryNonceStore()
    >>> s.consume("h", b"1"), s.consume("h", b"1"), s.consume("g", b"1")
    (True, False, True)
    """

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: set[tuple[str, bytes]] = set()

    def consume(self, hop_id: str, nonce: bytes) -> bool:
        """Record ``nonce`` for ``hop_id``; False if it was already recorded."""
        key = (hop_id, nonce)
        if key in self._seen:
            return False
        self._seen.add(key)
        return True
