"""Warrants: signed, offline-verifiable chains of remits (Ed25519 via pynacl). Pure: no I/O.

A warrant proves, to anyone holding only the principal's public key and the run id,
that the authority a task claims derives from the principal by narrowing alone:

- the **root grant** (position 0 in ``Warrant.hops``) is signed by the principal's key
  over (run id, root remit, purpose, expiry, first holder's public key, hop id);
- each **delegation hop** is signed by the key the hop before it named as holder, over
  (hash of the previous hop, child remit, child holder's public key, expiry, hop id).

:func:`verify` checks every signature in order, every previous-hop hash, the run,
every expiry (never later than the parent's; not yet passed), that each remit is within
its parent's (:meth:`Remit.is_within`: tools, argument constraints, budget, deadline,
depth, principal) and that no hop id is revoked, and returns the effective remit.

A signed chain alone could be cut back to a broader prefix by its last holder, so every
call also carries a :class:`CallProof`: the holder's signature over (run, chain, hop id,
call digest, nonce). Only the holder of the *last* hop can make one; a truncated prefix
names a key the child does not have. Nonces are consume-once (:class:`NonceStore`; the
runtime records them in the journal). :class:`Verifier` caches verified chains, so the
per-call check is a dict lookup plus the remit check, and it remembers authenticated
hops, so a child's chain that extends a verified parent chain costs one signature.
Hop ids must be unique within a run (the runtime uses task ids): revocation and nonces
are keyed by them.

**Counting hops.** The root grant counts as hop 1: an *n-hop chain* is the root plus
n - 1 delegations (``Warrant.depth == n``, positions 0 to n - 1; errors give the
position as ``hop_index``), and verifying it cold costs n signature checks.

>>> from remit.core.remit import Remit
>>> principal, agent, child = AgentKey.generate(), AgentKey.generate(), AgentKey.generate()
>>> root = Remit(tools={"read": {}, "write": {}}, depth=2)
>>> w = issue(principal, run_id="run-1", remit=root, purpose="audit", expires=2e9,
...           holder_public=agent.public)
>>> w2 = w.delegate(agent, root.narrow(tools={"read": {}}), child.public,
...                 expires=2e9, hop_id="t.0/0")
>>> token = w2.encode()
>>> sorted(verify(token, principal_public=principal.public, run_id="run-1", now=1e9).tools)
['read']
>>> v = Verifier(principal.public, "run-1")
>>> proof = sign_call(child, w2, "read", {"path": "a"}, nonce=b"n-0001")
>>> v.check(token, proof, "read", {"path": "a"}, now=1e9) == w2.remit
True

**Token format** (``encode()``): base64url without padding of a binary payload::

    u8 version(=1) | principal public key (32) | u8 number of hops |
    per hop: u32 body length | body | signature (64)

    root body: 0x01 | holder key (32) | f64 expires | u8 len(hop id) |
               u32 len(remit) | u16 len(run id) | u16 len(purpose) |
               hop id | remit JSON | run id | purpose
    hop body:  0x02 | previous-hop hash (32) | holder key (32) | f64 expires |
               u8 len(hop id) | u32 len(remit) | hop id | remit JSON

Integers and floats are big-endian, text is UTF-8, the remit JSON is
``Remit.to_dict()`` as compact JSON with sorted keys; the lengths must add up exactly.
A hop's signature covers ``b"remit.trust.warrant.v1\\0" + body``; the previous-hop hash is
BLAKE2b-256 of the previous body and signature. Decoding is canonical: a token that is
not exactly the encoding of its payload (padding, ``+``/``/``, stray bits in the last
character) is rejected, so every accepted token string has one payload, and flipping
any character is caught.

Verification authenticates before it interprets: no remit JSON is parsed before the
signature over it has verified. Parsed remits and parent/child comparisons are memoized
by their exact signed bytes (they are pure functions of them), so chains sharing hops
with ones seen before skip that work.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import math
import struct
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, NamedTuple, Protocol, cast

import nacl.exceptions
import nacl.signing
from nacl.bindings import (
    crypto_sign,
    crypto_sign_keypair,
    crypto_sign_open,
    crypto_sign_seed_keypair,
)

from remit.core import _json
from remit.core.remit import Remit
from remit.errors import (
    RemitFormatError,
    WarrantBrokenChain,
    WarrantDepthExceeded,
    WarrantDigestMismatch,
    WarrantExpired,
    WarrantForged,
    WarrantMalformed,
    WarrantNotHolder,
    WarrantReplay,
    WarrantRevoked,
    WarrantWidening,
    WarrantWrongRun,
)

__all__ = [
    "MAX_HOPS",
    "AgentKey",
    "CallProof",
    "Hop",
    "MemoryNonceStore",
    "NonceStore",
    "Verifier",
    "Warrant",
    "call_digest",
    "chain_token",
    "issue",
    "sign_call",
    "verify",
]

#: the longest chain accepted (root included); bounds the work a hostile token can cause
MAX_HOPS: Final = 32

_VERSION: Final = 1
_ROOT: Final = 1
_HOP: Final = 2
_KEY_LEN: Final = 32
_SIG_LEN: Final = 64
_HASH_LEN: Final = 32
_MAX_NONCE: Final = 64
# Domain separation: a hop signature can never be replayed as a call signature or v.v.
_HOP_DOMAIN: Final = b"remit.trust.warrant.v1\x00"
_CALL_DOMAIN: Final = b"remit.call.v1\x00"

_U8 = struct.Struct(">B")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_HEADER = struct.Struct(">B32sB")  # version, principal key, number of hops
# kind, holder key, expires, then lengths of: hop id, remit, run id, purpose
_ROOT_HEAD = struct.Struct(">B32sdBIHH")
# kind, previous-hop hash, holder key, expires, then lengths of: hop id, remit
_HOP_HEAD = struct.Struct(">B32s32sdBI")
_B64_TO_STD = bytes.maketrans(b"-_", b"+/")
_B64_TO_URL = bytes.maketrans(b"+/", b"-_")
_B64_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


# Copying a fresh hash object skips blake2b()'s keyword parsing (a third of a link hash).
_HASHER: Final = hashlib.blake2b(digest_size=_HASH_LEN)


def _hash(data: bytes | memoryview) -> bytes:
    h = _HASHER.copy()
    h.update(data)
    return h.digest()


# json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_canonical_text = _json.encoder(sort_keys=True, separators=(",", ":"), allow_nan=False)


def _canonical_json(value: object) -> bytes:
    return _canonical_text(value).encode("utf-8")


def _remit_bytes(remit: Remit) -> bytes:
    return _canonical_json(remit.to_dict())


def _short(key: bytes) -> str:
    return key.hex()[:12]


# --- keys ---------------------------------------------------------------------------


class AgentKey:
    """An Ed25519 signing key of the principal or of one agent; ``repr`` hides the secret.

    >>> k = AgentKey.from_seed(bytes(32))
    >>> len(k.public), len(k.sign(b"hello"))
    (32, 64)
    >>> repr(k)
    'AgentKey(public=3b6a27bcceb6...)'
    """

    __slots__ = ("_secret", "public")

    #: the 32-byte Ed25519 public key
    public: bytes

    def __init__(self, signing_key: nacl.signing.SigningKey) -> None:
        self.public, self._secret = crypto_sign_seed_keypair(bytes(signing_key))

    @classmethod
    def _raw(cls, public: bytes, secret: bytes) -> AgentKey:
        # libsodium's own key pair, without pynacl's wrapper objects: a runtime derives
        # one key per task, so this is on the hot path
        key = cls.__new__(cls)
        key.public, key._secret = public, secret
        return key

    @classmethod
    def generate(cls) -> AgentKey:
        """A fresh random key."""
        return cls._raw(*crypto_sign_keypair())

    @classmethod
    def from_seed(cls, seed: bytes) -> AgentKey:
        """The key derived from a 32-byte secret seed (deterministic)."""
        if len(seed) != 32:
            raise WarrantMalformed(f"a key seed must be 32 bytes, got {len(seed)}")
        return cls._raw(*_seed_keypair(bytes(seed)))

    def sign(self, message: bytes) -> bytes:
        """The 64-byte detached Ed25519 signature of ``message``."""
        return _sign(message, self._secret)

    def __repr__(self) -> str:
        return f"AgentKey(public={_short(self.public)}...)"


def _nacl_sign(message: bytes, secret: bytes) -> bytes:
    return crypto_sign(message, secret)[:_SIG_LEN]


def _load_sodium_signing() -> (
    tuple[Callable[[bytes, bytes], bytes], Callable[[bytes], tuple[bytes, bytes]]] | None
):
    """Libsodium's signing and key derivation called directly (a runtime signs a hop
    and a call per task: pynacl's argument checks and wrapper objects cost as much as a
    third of the C call). Our callers pass a 64-byte secret and a 32-byte seed, which
    the wrappers check; None if pynacl's cffi module is laid out differently."""
    try:
        from nacl._sodium import ffi, lib  # pyright: ignore[reportMissingModuleSource]

        c_sign, c_keypair = lib.crypto_sign, lib.crypto_sign_seed_keypair
    except (ImportError, AttributeError):  # pragma: no cover - every pynacl 1.5+ has them
        return None
    new, null, buffer = ffi.new, ffi.NULL, ffi.buffer

    def sign(message: bytes, secret: bytes) -> bytes:
        if type(secret) is not bytes or len(secret) != 64:
            raise ValueError("an Ed25519 secret key is 64 bytes")
        out = new("unsigned char[]", len(message) + _SIG_LEN)
        if c_sign(out, null, message, len(message), secret) != 0:  # pragma: no cover
            raise RuntimeError("libsodium crypto_sign failed")
        return buffer(out, _SIG_LEN)[:]

    def keypair(seed: bytes) -> tuple[bytes, bytes]:
        if type(seed) is not bytes or len(seed) != 32:
            raise ValueError("an Ed25519 seed is 32 bytes")
        pk, sk = new("unsigned char[]", _KEY_LEN), new("unsigned char[]", 64)
        if c_keypair(pk, sk, seed) != 0:  # pragma: no cover
            raise RuntimeError("libsodium crypto_sign_seed_keypair failed")
        return buffer(pk, _KEY_LEN)[:], buffer(sk, 64)[:]

    return sign, keypair


def _nacl_signed_ok(public: bytes, signed: bytes) -> bool:
    """Through pynacl's public binding: the reference, and the fallback if its cffi
    module is laid out differently."""
    if type(public) is not bytes or len(public) != _KEY_LEN:
        return False  # the binding would hand a 33-byte key's first 32 bytes to C
    try:
        crypto_sign_open(signed, public)
    except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
        return False
    return True


def _load_sodium() -> Callable[[bytes, bytes], bool] | None:
    """Libsodium's ``crypto_sign_open`` called directly: no pynacl wrapper objects, no
    copy of the message back into Python. (pynacl's cffi module has no detached verify;
    ``crypto_sign_open`` is that plus a copy of the message into our buffer.) None if
    pynacl's cffi module is laid out differently, and the public binding is used."""
    try:
        from nacl._sodium import ffi, lib  # pyright: ignore[reportMissingModuleSource]

        sign_open = lib.crypto_sign_open
    except (ImportError, AttributeError):  # pragma: no cover - every pynacl 1.5+ has it
        return None
    new, null = ffi.new, ffi.NULL

    def verify(public: bytes, signed: bytes) -> bool:
        # C reads exactly 32 key bytes and len(signed) bytes: anything but bytes of
        # those lengths is refused here (pynacl's wrapper would pass a 33-byte key on).
        # The output buffer is real (not NULL): old libsodium releases write to it.
        if type(public) is not bytes or type(signed) is not bytes or len(public) != _KEY_LEN:
            return False
        n = len(signed)
        if n < _SIG_LEN:
            return False
        return sign_open(new("unsigned char[]", n), null, signed, n, public) == 0

    return verify


_fast_signing = _load_sodium_signing()
#: ``(message, 64-byte secret) -> signature`` and ``seed -> (public, secret)``
_sign, _seed_keypair = _fast_signing or (_nacl_sign, crypto_sign_seed_keypair)

#: ``(public key, signature + message) -> bool``: one Ed25519 verification. libsodium
#: rejects non-canonical signatures and small-order keys, so a signature cannot be
#: altered into another valid one (every byte flip is caught).
_signed_ok: Callable[[bytes, bytes], bool] = _load_sodium() or _nacl_signed_ok


def _sig_ok(public: bytes, message: bytes, signature: bytes) -> bool:
    return _signed_ok(public, signature + message)


# --- memo of pure functions of signed bytes -------------------------------------------

_NEG_INF: Final = -math.inf

_MEMO_MAX: Final = 4096
_REMITS: dict[bytes, Remit] = {}
_WIDENING: dict[tuple[bytes, bytes], str | None] = {}


# Siblings usually share one child Remit object (the engine narrows once per distinct
# subtask spec), so delegating to a thousand children serializes and compares it once.
# Keyed by identity, holding the objects themselves so an id is never reused meanwhile.
_BYTES_BY_ID: dict[int, tuple[Remit, bytes]] = {}
_WITHIN_BY_ID: dict[tuple[int, int], tuple[Remit, Remit, str | None]] = {}


def _remit_bytes_memo(remit: Remit) -> bytes:
    hit = _BYTES_BY_ID.get(id(remit))
    if hit is not None and hit[0] is remit:
        return hit[1]
    data = _remit_bytes(remit)
    _memo_put(_BYTES_BY_ID, id(remit), (remit, data))
    return data


def _within_memo(child: Remit, parent: Remit) -> str | None:
    key = (id(child), id(parent))
    hit = _WITHIN_BY_ID.get(key)
    if hit is not None and hit[0] is child and hit[1] is parent:
        return hit[2]
    dim = child.is_within(parent)
    _memo_put(_WITHIN_BY_ID, key, (child, parent, dim))
    return dim


def _memo_put(memo: dict[Any, Any], key: object, value: object) -> None:
    if len(memo) >= _MEMO_MAX:
        memo.pop(next(iter(memo)), None)  # oldest first: bounded whatever tokens arrive
    memo[key] = value


def clear_memos() -> None:
    """Forget memoized remit parses (benchmarks use this to measure a fully cold verify)."""
    _REMITS.clear()
    _WIDENING.clear()
    _BYTES_BY_ID.clear()
    _WITHIN_BY_ID.clear()


def _parse_remit(raw: bytes, index: int, hop_id: str) -> Remit:
    remit = _REMITS.get(raw)
    if remit is not None:
        return remit
    try:
        data = json.loads(raw)
        # A relative deadline ("15m") would be resolved against the verifier's clock:
        # a signed remit must carry an absolute one.
        deadline = data.get("deadline") if isinstance(data, dict) else None
        if deadline is not None and (
            isinstance(deadline, bool) or not isinstance(deadline, int | float)
        ):
            raise RemitFormatError("remit.deadline: must be epoch seconds in a warrant")
        remit = Remit.from_dict(data)
    except (ValueError, RemitFormatError) as e:
        raise WarrantMalformed(
            f"warrant hop {index} ({hop_id!r}): unreadable remit: {e}",
            hop_index=index,
            hop_id=hop_id,
        ) from None
    _memo_put(_REMITS, raw, remit)
    return remit


def _widening(parent: Hop, child: Hop) -> str | None:
    key = (parent.remit_json, child.remit_json)
    try:
        return _WIDENING[key]
    except KeyError:
        pass
    dim = child.remit.is_within(parent.remit)
    _memo_put(_WIDENING, key, dim)
    return dim


# --- the chain ----------------------------------------------------------------------


class Hop(NamedTuple):
    """One signed link of a warrant: the root grant (position 0) or a delegation.

    ``body`` is exactly what was signed (after a domain prefix); the other fields are
    read from it. ``remit`` parses ``remit_json`` on first use. Nothing here is trusted
    until :func:`verify` has checked the whole chain. (A named tuple, not a dataclass:
    decoding builds one per hop on the cold path, and tuples are built fastest.)
    """

    position: int
    hop_id: str
    #: public key of the agent this hop grants to (who signs the next hop and the calls)
    holder: bytes
    #: epoch seconds after which this hop (and everything below it) is void
    expires: float
    remit_json: bytes
    #: the run id (root only)
    run_id: str | None
    #: the stated purpose (root only)
    purpose: str | None
    #: BLAKE2b-256 of the previous hop's body and signature (None for the root)
    prev: bytes | None
    body: bytes
    signature: bytes
    #: BLAKE2b-256 of this hop's body and signature: what the next hop and calls bind to
    link_hash: bytes

    @property
    def remit(self) -> Remit:
        """The remit this hop grants (as signed; trust it only after :func:`verify`)."""
        return _parse_remit(self.remit_json, self.position, self.hop_id)

    def frame(self) -> str:
        """This hop alone, as it stands in a token (u32 body length, body, signature),
        base64url: how a journal stores one hop; :func:`chain_token` joins them."""
        return _b64encode(_U32.pack(len(self.body)) + self.body + self.signature)


def _fits(data: bytes, limit: int, what: str, hop_id: str | None = None) -> bytes:
    if len(data) > limit:
        raise WarrantMalformed(f"{what} is {len(data)} bytes, at most {limit} fit", hop_id=hop_id)
    return data


def _lp(data: bytes, prefix: struct.Struct, what: str) -> bytes:
    return prefix.pack(len(_fits(data, (1 << (8 * prefix.size)) - 1, what))) + data


def _check_fields(hop_id: str, holder: bytes, expires: float) -> None:
    if not isinstance(hop_id, str) or not hop_id:  # pyright: ignore[reportUnnecessaryIsInstance]
        raise WarrantMalformed(f"hop id must be a non-empty string, got {hop_id!r}")
    if len(holder) != _KEY_LEN:
        raise WarrantMalformed(
            f"holder public key must be {_KEY_LEN} bytes, got {len(holder)}", hop_id=hop_id
        )
    if isinstance(expires, bool) or not math.isfinite(expires):
        raise WarrantMalformed(f"expires must be finite epoch seconds, got {expires!r}")


def _make_hop(
    signer: AgentKey,
    index: int,
    *,
    hop_id: str,
    holder: bytes,
    expires: float,
    remit_json: bytes,
    run_id: str | None = None,
    purpose: str | None = None,
    prev: bytes | None = None,
) -> Hop:
    _check_fields(hop_id, holder, expires)
    hid = _fits(hop_id.encode("utf-8"), 0xFF, "hop id", hop_id)
    _fits(remit_json, 0xFFFFFFFF, "remit", hop_id)
    if prev is None:
        assert run_id is not None and purpose is not None
        run = _fits(run_id.encode("utf-8"), 0xFFFF, "run id", hop_id)
        why = _fits(purpose.encode("utf-8"), 0xFFFF, "purpose", hop_id)
        head = _ROOT_HEAD.pack(
            _ROOT, holder, expires, len(hid), len(remit_json), len(run), len(why)
        )
        body = b"".join((head, hid, remit_json, run, why))
    else:
        head = _HOP_HEAD.pack(_HOP, prev, holder, expires, len(hid), len(remit_json))
        body = b"".join((head, hid, remit_json))
    signature = signer.sign(_HOP_DOMAIN + body)
    return Hop(
        position=index,
        hop_id=hop_id,
        holder=bytes(holder),
        expires=float(expires),
        remit_json=remit_json,
        run_id=run_id,
        purpose=purpose,
        prev=prev,
        body=body,
        signature=signature,
        link_hash=_hash(body + signature),
    )


@dataclass(frozen=True, slots=True)
class Warrant:
    """A signed delegation chain: the root grant followed by delegation hops.

    Build one with :func:`issue` and :meth:`delegate`; ship it as :meth:`encode`'s
    string; trust it only through :func:`verify` or a :class:`Verifier`.

    >>> from remit.core.remit import Remit
    >>> p, a = AgentKey.generate(), AgentKey.generate()
    >>> w = issue(p, run_id="r", remit=Remit(depth=1), purpose="demo", expires=2e9,
    ...           holder_public=a.public)
    >>> Warrant.decode(w.encode()) == w, w.depth, w.hop_id
    (True, 1, 'root')
    """

    run_id: str
    #: the principal's public key, as the token claims it (verify compares it)
    principal: bytes
    hops: tuple[Hop, ...]

    @property
    def root(self) -> Hop:
        """The root grant (hop 0)."""
        return self.hops[0]

    @property
    def purpose(self) -> str:
        """The purpose stated in the root grant."""
        return self.hops[0].purpose or ""

    @property
    def holder(self) -> bytes:
        """Public key of the last hop's holder: the only key that can use this warrant."""
        return self.hops[-1].holder

    @property
    def hop_id(self) -> str:
        """Id of the last hop."""
        return self.hops[-1].hop_id

    @property
    def depth(self) -> int:
        """Number of hops, root included (an n-hop chain is the root + n - 1 delegations)."""
        return len(self.hops)

    @property
    def expires(self) -> float:
        """When the last hop expires (never later than any hop above it, once verified)."""
        return self.hops[-1].expires

    @property
    def remit(self) -> Remit:
        """The last hop's remit as signed; trust it only after :func:`verify`."""
        return self.hops[-1].remit

    def delegate(
        self,
        holder_key: AgentKey,
        child_remit: Remit,
        child_public: bytes,
        *,
        expires: float | None = None,
        hop_id: str,
    ) -> Warrant:
        """This warrant extended by one hop granting ``child_remit`` to ``child_public``.

        ``holder_key`` must be the current holder's key. ``expires`` defaults to this
        warrant's expiry and may not be later. Derive ``child_remit`` with
        :meth:`Remit.narrow`; anything wider raises :class:`~remit.errors.WarrantWidening`
        (a :class:`~remit.errors.WideningError`), a remit with no depth left raises
        :class:`~remit.errors.WarrantDepthExceeded`. Hop ids must be unique in the run
        (the runtime uses task ids): revocation and nonces are keyed by them.

        >>> from remit.core.remit import Remit
        >>> p, a, b = AgentKey.generate(), AgentKey.generate(), AgentKey.generate()
        >>> w = issue(p, run_id="r", remit=Remit(tools={"x": {}}, depth=1), purpose="",
        ...           expires=2e9, holder_public=a.public)
        >>> w.delegate(a, Remit(tools={"y": {}}), b.public, hop_id="c")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        remit.errors.WarrantWidening: cannot delegate hop 1 ('c'): child remit is wider ...
        """
        index = len(self.hops)
        last = self.hops[-1]
        if holder_key.public != last.holder:
            raise WarrantNotHolder(
                f"cannot delegate hop {index} ({hop_id!r}): key {_short(holder_key.public)}... "
                f"is not the holder of hop {last.position} ({last.hop_id!r}), "
                f"{_short(last.holder)}...",
                hop_index=index,
                hop_id=hop_id,
            )
        if index >= MAX_HOPS:
            raise WarrantDepthExceeded(
                f"cannot delegate hop {index} ({hop_id!r}): chains are limited to {MAX_HOPS} hops",
                hop_index=index,
                hop_id=hop_id,
            )
        parent = last.remit
        if parent.depth <= 0:
            raise WarrantDepthExceeded(
                f"cannot delegate hop {index} ({hop_id!r}): the remit of hop {last.position} "
                f"({last.hop_id!r}) has no delegation depth left",
                hop_index=index,
                hop_id=hop_id,
            )
        dim = _within_memo(child_remit, parent)
        if dim is not None:
            raise WarrantWidening(
                f"cannot delegate hop {index} ({hop_id!r}): child remit is wider than its "
                f"parent's in {dim}",
                dimension=dim,
                hop_index=index,
                hop_id=hop_id,
            )
        if expires is None:
            expires = last.expires
        elif expires > last.expires:
            raise WarrantWidening(
                f"cannot delegate hop {index} ({hop_id!r}): expires {expires} is later than "
                f"the parent's {last.expires}",
                dimension="expires",
                hop_index=index,
                hop_id=hop_id,
            )
        if any(h.hop_id == hop_id for h in self.hops):
            raise WarrantMalformed(
                f"cannot delegate hop {index}: hop id {hop_id!r} is already in the chain",
                hop_index=index,
                hop_id=hop_id,
            )
        hop = _make_hop(
            holder_key,
            index,
            hop_id=hop_id,
            holder=child_public,
            expires=expires,
            remit_json=_remit_bytes_memo(child_remit),
            prev=last.link_hash,
        )
        return Warrant(self.run_id, self.principal, (*self.hops, hop))

    def encode(self) -> str:
        """The compact token: base64url (no padding) of the binary payload."""
        parts = [_U8.pack(_VERSION), self.principal, _U8.pack(len(self.hops))]
        for hop in self.hops:
            parts += (_U32.pack(len(hop.body)), hop.body, hop.signature)
        return _b64encode(b"".join(parts))

    @classmethod
    def decode(cls, token: str) -> Warrant:
        """Read :meth:`encode`'s token (structure only: :func:`verify` decides trust).

        Raises :class:`~remit.errors.WarrantMalformed` for an empty, garbled, truncated
        or non-canonical token.

        >>> Warrant.decode("")
        Traceback (most recent call last):
        ...
        remit.errors.WarrantMalformed: warrant token is empty
        """
        return _decode(token)


# --- decoding -----------------------------------------------------------------------


def _b64encode(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).translate(_B64_TO_URL).rstrip(b"=").decode()


def chain_token(principal: bytes, frames: Iterable[str]) -> str:
    """The token of the chain whose hops are ``frames`` (each a :meth:`Hop.frame`), root
    first, under ``principal``'s key. Structure only: :func:`verify` decides trust.

    >>> from remit.core.remit import Remit
    >>> p, a = AgentKey.generate(), AgentKey.generate()
    >>> w = issue(p, run_id="r", remit=Remit(), purpose="", expires=2e9,
    ...           holder_public=a.public)
    >>> chain_token(p.public, [h.frame() for h in w.hops]) == w.encode()
    True
    """
    parts = [_b64decode(f, "hop frame") for f in frames]
    if not 0 < len(parts) <= MAX_HOPS:
        raise WarrantMalformed(f"a chain of {len(parts)} hops cannot be a warrant")
    return _b64encode(b"".join((_U8.pack(_VERSION), principal, _U8.pack(len(parts)), *parts)))


def _b64decode(token: str, what: str = "warrant token") -> bytes:
    if not isinstance(token, str):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise WarrantMalformed(f"{what} must be a str, got {type(token).__name__}")
    if not token:
        raise WarrantMalformed(f"{what} is empty")
    n = len(token) % 4
    # Canonical form only, so one payload has exactly one token: no padding, no '+' or
    # '/', and the unused low bits of the last character zero (a2b_base64 ignores them).
    if n == 1 or "=" in token or "+" in token or "/" in token:
        raise WarrantMalformed(f"{what} is not canonical base64url")
    if n:
        last = _B64_ALPHABET.find(token[-1])
        if last < 0 or last & (0x0F if n == 2 else 0x03):
            raise WarrantMalformed(f"{what} is not canonical base64url")
    try:
        data = token.encode("ascii").translate(_B64_TO_STD) + b"=" * (-len(token) % 4)
        return binascii.a2b_base64(data, strict_mode=True)
    except (UnicodeEncodeError, binascii.Error) as e:
        raise WarrantMalformed(f"{what} is not base64url: {e}") from None


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


def _garbled(where: str, what: str, index: int | None = None) -> WarrantMalformed:
    return WarrantMalformed(
        f"warrant token is truncated or garbled: {where}: {what}", hop_index=index
    )


def _decode(token: str) -> Warrant:
    data = _b64decode(token)
    size = len(data)
    try:
        version, principal, count = _HEADER.unpack_from(data)
    except struct.error:
        raise _garbled("header", f"{size} bytes are too few for a warrant") from None
    if version != _VERSION:
        raise WarrantMalformed(f"warrant token version {version} is not supported (expected 1)")
    if count == 0:
        raise _garbled("header", "no hops")
    if count > MAX_HOPS:
        raise WarrantDepthExceeded(
            f"warrant has {count} hops, at most {MAX_HOPS} are accepted", hop_index=MAX_HOPS
        )
    # One pass over the payload, every field read in place by offset: per hop one
    # unpack of the fixed head, the slices that become Hop fields, and one hash.
    pos = _HEADER.size
    hops: list[Hop] = []
    view = memoryview(data)
    unpack_len = _U32.unpack_from
    root_head, hop_head = _ROOT_HEAD, _HOP_HEAD
    new_hash = _HASHER.copy
    make = tuple.__new__
    run_id = purpose = prev = None
    for index in range(count):
        if pos + 4 > size:
            raise _garbled(f"hop {index}", "missing (token cut short)", index)
        (n,) = unpack_len(data, pos)
        start = pos + 4
        end = start + n
        pos = end + _SIG_LEN
        if pos > size:
            raise _garbled(f"hop {index}", f"body of {n} bytes runs past the end", index)
        if index == 0:
            if n < root_head.size:
                raise _garbled(f"hop {index}", f"body of {n} bytes is too short", index)
            kind, holder, expires, n_hid, n_remit, n_run, n_why = root_head.unpack_from(data, start)
            at = start + root_head.size
            expected = _ROOT
        else:
            if n < hop_head.size:
                raise _garbled(f"hop {index}", f"body of {n} bytes is too short", index)
            kind, prev, holder, expires, n_hid, n_remit = hop_head.unpack_from(data, start)
            at = start + hop_head.size
            n_run = n_why = 0
            expected = _HOP
        if kind != expected:
            what = "a root grant" if index == 0 else "a delegation hop"
            raise _garbled(f"hop {index}", f"expected {what}, kind is {kind}", index)
        if at + n_hid + n_remit + n_run + n_why != end:
            raise _garbled(f"hop {index}", "field lengths do not add up to the body length", index)
        if not math.isfinite(expires):
            raise _garbled(f"hop {index}", f"expiry {expires!r} is not finite", index)
        if n_hid == 0:
            raise _garbled(f"hop {index}", "empty hop id", index)
        try:
            hop_id = data[at : at + n_hid].decode("utf-8")
            at += n_hid
            remit_json = data[at : at + n_remit]
            if index == 0:
                at += n_remit
                run_id = data[at : at + n_run].decode("utf-8")
                purpose = data[at + n_run : end].decode("utf-8")
        except UnicodeDecodeError:
            raise _garbled(f"hop {index}", "a text field is not UTF-8", index) from None
        link = new_hash()
        link.update(view[start:pos])
        # tuple.__new__ skips the named tuple's Python-level __new__ (same fields, in order)
        hops.append(
            make(
                Hop,
                (
                    index,
                    hop_id,
                    holder,
                    expires,
                    remit_json,
                    run_id,
                    purpose,
                    prev,
                    data[start:end],
                    data[end:pos],
                    link.digest(),
                ),
            )
        )
        run_id = purpose = None
    if pos != size:
        raise _garbled("end", f"{size - pos} unexpected bytes after the last hop")
    root = hops[0]
    assert root.run_id is not None
    return Warrant(root.run_id, principal, tuple(hops))


# --- issuing and verifying ------------------------------------------------------------


def issue(
    principal_key: AgentKey,
    *,
    run_id: str,
    remit: Remit,
    purpose: str,
    expires: float,
    holder_public: bytes,
    hop_id: str = "root",
) -> Warrant:
    """The root grant: the principal gives ``remit`` to ``holder_public`` for ``run_id``.

    >>> from remit.core.remit import Remit
    >>> p, a = AgentKey.generate(), AgentKey.generate()
    >>> w = issue(p, run_id="r", remit=Remit(), purpose="x", expires=2e9,
    ...           holder_public=a.public)
    >>> w.holder == a.public, w.principal == p.public
    (True, True)
    """
    hop = _make_hop(
        principal_key,
        0,
        hop_id=hop_id,
        holder=holder_public,
        expires=expires,
        remit_json=_remit_bytes(remit),
        run_id=run_id,
        purpose=purpose,
    )
    return Warrant(run_id, principal_key.public, (hop,))


def _where(hop: Hop) -> str:
    return f"warrant hop {hop.position} ({hop.hop_id!r})"


def _verify_chain(
    warrant: Warrant,
    principal_public: bytes,
    run_id: str,
    now: float,
    revoked: Container[str],
    trusted: Container[bytes] = (),
) -> Remit:
    """Verify ``warrant``; ``trusted``: link hashes of hops already authenticated for this
    principal and run (a hop's link hash commits to every hop above it through the
    previous-hop hashes), whose signatures need not be checked again."""
    hops = warrant.hops
    root = hops[0]
    if warrant.principal != principal_public:
        raise WarrantForged(
            f"{_where(root)}: token names principal {_short(warrant.principal)}..., "
            f"expected {_short(principal_public)}...",
            hop_index=0,
            hop_id=root.hop_id,
        )
    if root.run_id != run_id:
        raise WarrantWrongRun(
            f"{_where(root)}: issued for run {root.run_id!r}, not {run_id!r}",
            hop_index=0,
            hop_id=root.hop_id,
        )
    # Authenticate first, hop by hop: each hop is signed by the key its parent named.
    # Signatures of a trusted prefix are skipped, but its previous-hop links are still
    # checked: they are what ties the token's earlier hops to the trusted one.
    start = 0
    if trusted:
        for hop in reversed(hops):
            if hop.link_hash in trusted:
                start = hop.position + 1
                break
    signer = principal_public
    prev: Hop | None = None
    seen: set[str] = set()
    for hop in hops:
        if prev is not None and hop.prev != prev.link_hash:
            raise WarrantBrokenChain(
                f"{_where(hop)}: previous-hop hash does not match hop {prev.position} "
                f"({prev.hop_id!r}); hops were spliced or altered",
                hop_index=hop.position,
                hop_id=hop.hop_id,
            )
        if hop.position >= start and not _signed_ok(
            signer, b"".join((hop.signature, _HOP_DOMAIN, hop.body))
        ):
            by = "the principal" if prev is None else f"the holder named by hop {prev.position}"
            raise WarrantForged(
                f"{_where(hop)}: signature does not verify under {by} "
                f"({_short(signer)}...); forged or altered",
                hop_index=hop.position,
                hop_id=hop.hop_id,
            )
        if hop.hop_id in seen:
            raise WarrantBrokenChain(
                f"{_where(hop)}: hop id appears twice in the chain",
                hop_index=hop.position,
                hop_id=hop.hop_id,
            )
        seen.add(hop.hop_id)
        signer = hop.holder
        prev = hop
    # Then interpret what was signed.
    parent: Hop | None = None
    for hop in hops:
        if hop.hop_id in revoked:
            raise WarrantRevoked(
                f"{_where(hop)} is revoked (revoking a hop revokes everything below it)",
                hop_index=hop.position,
                hop_id=hop.hop_id,
            )
        if parent is not None and hop.expires > parent.expires:
            raise WarrantWidening(
                f"{_where(hop)}: expires {hop.expires} is later than hop {parent.position}'s "
                f"{parent.expires}",
                dimension="expires",
                hop_index=hop.position,
                hop_id=hop.hop_id,
            )
        if now >= hop.expires:
            raise WarrantExpired(
                f"{_where(hop)} expired {now - hop.expires:.1f}s ago",
                hop_index=hop.position,
                hop_id=hop.hop_id,
            )
        if parent is not None:
            if parent.remit.depth <= 0:
                raise WarrantDepthExceeded(
                    f"{_where(hop)}: delegated below hop {parent.position} ({parent.hop_id!r}), "
                    "whose remit has no delegation depth left",
                    hop_index=hop.position,
                    hop_id=hop.hop_id,
                )
            dim = _widening(parent, hop)
            if dim is not None:
                raise WarrantWidening(
                    f"{_where(hop)}: remit is wider than hop {parent.position}'s in {dim}",
                    dimension=dim,
                    hop_index=hop.position,
                    hop_id=hop.hop_id,
                )
        parent = hop
    return hops[-1].remit


def verify(
    warrant_or_token: Warrant | str,
    *,
    principal_public: bytes,
    run_id: str,
    now: float,
    revoked: Container[str] = (),
) -> Remit:
    """Check a whole chain and return its effective (last) remit.

    Needs only the principal's public key and the run id. Checks, in order: structure,
    principal and run, each hop's previous-hop hash and signature (by the key its parent
    named), then per hop: not revoked, expiry not later than the parent's and not
    passed at ``now``, remit within the parent's (depth decreasing). Raises a
    :class:`~remit.errors.WarrantError` subclass naming the hop that failed.

    >>> from remit.core.remit import Remit
    >>> p, a = AgentKey.generate(), AgentKey.generate()
    >>> w = issue(p, run_id="r", remit=Remit(), purpose="", expires=100.0,
    ...           holder_public=a.public)
    >>> verify(w, principal_public=p.public, run_id="r", now=200.0)
    Traceback (most recent call last):
    ...
    remit.errors.WarrantExpired: warrant hop 0 ('root') expired 100.0s ago
    """
    _check_clock(now)
    # anything but a Warrant is a token to decode: bytes, None and numbers are malformed
    warrant = (
        warrant_or_token if isinstance(warrant_or_token, Warrant) else _decode(warrant_or_token)
    )
    return _verify_chain(warrant, principal_public, run_id, now, revoked)


def _check_clock(now: float) -> None:
    # a NaN clock compares false with every expiry and would let expired chains through
    if not isinstance(now, int | float) or not math.isfinite(now):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise ValueError(f"now must be a finite time in epoch seconds, got {now!r}")


# --- holder binding: call proofs --------------------------------------------------------


def call_digest(tool: str, args: Mapping[str, object]) -> bytes:
    """BLAKE2b-256 of the call as canonical JSON ``[tool, args]`` (sorted keys, compact).

    Arguments are bound by their JSON form (a tuple digests like a list).

    >>> call_digest("read", {"b": 1, "a": 2}) == call_digest("read", {"a": 2, "b": 1})
    True
    """
    try:
        data = _canonical_json([tool, dict(args)])
    except (TypeError, ValueError, RecursionError) as e:
        raise WarrantDigestMismatch(
            f"call to {tool!r}: arguments cannot be digested (not JSON): {e}"
        ) from None
    return _hash(data)


def _call_message(run_id: str, link_hash: bytes, hop_id: str, digest: bytes, nonce: bytes) -> bytes:
    # Bound to the run and to the exact chain (the last hop's hash), not only the hop id.
    return b"".join(
        (
            _CALL_DOMAIN,
            _lp(run_id.encode("utf-8"), _U16, "run id"),
            link_hash,
            _lp(hop_id.encode("utf-8"), _U8, "hop id"),
            digest,
            _U8.pack(len(nonce)),
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
                _lp(self.hop_id.encode("utf-8"), _U8, "hop id"),
                self.digest,
                _U8.pack(len(self.nonce)),
                self.nonce,
                self.signature,
            )
        )
        return _b64encode(raw)

    @classmethod
    def decode(cls, text: str) -> CallProof:
        """Read :meth:`encode`'s form; :class:`~remit.errors.WarrantMalformed` if garbled."""
        r = _Reader(_b64decode(text), "call proof")
        hop_id = r.text(_U8, "proof hop id")
        digest = r.take(_HASH_LEN, "proof digest")
        nonce = r.take(r.uint(_U8, "nonce length"), "nonce")
        signature = r.take(_SIG_LEN, "proof signature")
        if r.pos != len(r.data):
            raise r.fail("unexpected bytes after the call proof")
        return cls(hop_id, digest, nonce, signature)


def _check_nonce(nonce: bytes) -> None:
    if not 1 <= len(nonce) <= _MAX_NONCE:
        raise WarrantMalformed(f"call nonce must be 1 to {_MAX_NONCE} bytes, got {len(nonce)}")


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
            f"key {_short(holder_key.public)}... is not the holder of hop "
            f"{warrant.depth - 1} ({warrant.hop_id!r}); only that holder can sign its calls",
            hop_index=warrant.depth - 1,
            hop_id=warrant.hop_id,
        )
    _check_nonce(nonce)
    digest = call_digest(tool, args)
    message = _call_message(
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


# --- the verifier with its cache ----------------------------------------------------------


class _Entry:
    __slots__ = ("expires", "holder", "hop_id", "hop_ids", "link_hash", "position", "remit")

    def __init__(self, warrant: Warrant, remit: Remit) -> None:
        last = warrant.hops[-1]
        self.remit = remit
        self.holder = last.holder
        self.hop_id = last.hop_id
        self.position = last.position
        self.link_hash = last.link_hash
        self.hop_ids = frozenset(h.hop_id for h in warrant.hops)
        # Expiries are non-increasing down a verified chain: the last one is the minimum.
        self.expires = min(h.expires for h in warrant.hops)


class Verifier:
    """Verifies warrants for one run and caches verified chains for cheap per-call checks.

    A chain seen for the first time is verified in full, except that the signatures of
    hops this verifier has already authenticated (the parent's part of a child's chain)
    are not checked again; revocation, expiry and widening are checked on every hop.

    ``revoked`` is kept by reference: ids added to that set (or through :meth:`revoke`)
    take effect on the next check, cached or not. ``nonces`` defaults to a
    :class:`MemoryNonceStore`. Not safe to share across threads without a lock around
    :meth:`check` (the nonce store is the only shared effect).

    >>> from remit.core.remit import Remit
    >>> p, a = AgentKey.generate(), AgentKey.generate()
    >>> w = issue(p, run_id="r", remit=Remit(tools={"t": {}}), purpose="", expires=2e9,
    ...           holder_public=a.public)
    >>> v = Verifier(p.public, "r")
    >>> v.check_cached(w.encode(), "t", {}, now=1e9) == w.remit
    True
    """

    def __init__(
        self,
        principal_public: bytes,
        run_id: str,
        *,
        nonces: NonceStore | None = None,
        revoked: set[str] | None = None,
        max_entries: int = 10_000,
    ) -> None:
        self.principal_public = bytes(principal_public)
        self.run_id = run_id
        self.nonces: NonceStore = MemoryNonceStore() if nonces is None else nonces
        self.revoked: set[str] = set() if revoked is None else revoked
        self._max = max_entries
        self._cache: dict[str, _Entry] = {}
        # Link hashes of hops authenticated by this verifier: a child's chain repeats its
        # parent's hops, so only its new hops need their signatures checked.
        self._links: dict[bytes, None] = {}

    def _cold(self, token: str, now: float) -> _Entry:
        warrant = _decode(token)
        links = self._links
        remit = _verify_chain(warrant, self.principal_public, self.run_id, now, self.revoked, links)
        entry = _Entry(warrant, remit)
        if len(self._cache) >= self._max:
            self._cache.pop(next(iter(self._cache)), None)
        self._cache[token] = entry
        for hop in warrant.hops:
            if hop.link_hash not in links:
                if len(links) >= self._max:
                    links.pop(next(iter(links)), None)
                links[hop.link_hash] = None
        return entry

    def _stale(self, token: str, entry: _Entry, now: float) -> None:
        # A cached chain that is now revoked or expired: drop it and say why.
        del self._cache[token]
        for hop_id in sorted(entry.hop_ids & self.revoked):
            raise WarrantRevoked(
                f"warrant hop {hop_id!r} is revoked (revoking a hop revokes everything below it)",
                hop_id=hop_id,
            )
        raise WarrantExpired(
            f"warrant hop {entry.position} ({entry.hop_id!r}) chain expired "
            f"{now - entry.expires:.1f}s ago",
            hop_index=entry.position,
            hop_id=entry.hop_id,
        )

    def _entry(self, token: str, now: float) -> _Entry:
        _check_clock(now)
        if not isinstance(token, str):  # pyright: ignore[reportUnnecessaryIsInstance]
            # before the cache lookup: a list or bytearray is not even hashable
            raise WarrantMalformed(f"warrant token must be a str, got {type(token).__name__}")
        entry = self._cache.get(token)
        if entry is None:
            return self._cold(token, now)
        revoked = self.revoked
        if now >= entry.expires or (revoked and not revoked.isdisjoint(entry.hop_ids)):
            self._stale(token, entry, now)
        return entry

    def verify(self, token: str, *, now: float) -> Remit:
        """The effective remit of ``token`` (cached after the first full verification)."""
        return self._entry(token, now).remit

    def check_cached(
        self, token: str, tool: str, args: Mapping[str, object], *, now: float
    ) -> Remit:
        """Chain (cached) + revocation + expiry + the remit's own check; no call proof.

        For callers that bind the chain to its holder some other way (the runtime does,
        for a task it runs itself). Raises :class:`~remit.errors.DeniedError` or
        :class:`~remit.errors.DeadlineExceeded` if the remit refuses the call.
        """
        # The common case inline: a cached chain, a finite clock before its expiry (NaN
        # and infinities fail the comparison), nothing revoked. Anything else, including
        # odd types, goes through _entry, which checks and explains.
        entry = self._cache.get(token) if type(token) is str else None
        revoked = self.revoked
        if (
            entry is None
            or (type(now) is not float and type(now) is not int)
            or not _NEG_INF < now < entry.expires
            or (revoked and not revoked.isdisjoint(entry.hop_ids))
        ):
            entry = self._entry(token, now)
        remit = entry.remit
        decision = remit.check(tool, args, now=now)
        if not decision.allowed:
            decision.raise_if_denied()
        return remit

    def check(
        self,
        token: str,
        proof: CallProof,
        tool: str,
        args: Mapping[str, object],
        *,
        now: float,
    ) -> Remit:
        """The full per-call check: chain, holder's proof, nonce, then the remit.

        The proof must be for the chain's last hop and signed by its holder, so a child
        cannot present a broader prefix of its own chain. Its digest must match this
        call, and its nonce is consumed only once the signature has verified (so nobody
        but the holder can burn the holder's nonces), before the remit check (a denied
        call's proof is spent too). A call only a parent's remit allows (a confused
        deputy) is refused by the remit check with :class:`~remit.errors.DeniedError`.
        """
        entry = self._entry(token, now)
        if proof.hop_id != entry.hop_id:
            raise WarrantNotHolder(
                f"call proof is for hop {proof.hop_id!r}, but the warrant's last hop is "
                f"{entry.position} ({entry.hop_id!r})",
                hop_index=entry.position,
                hop_id=entry.hop_id,
            )
        digest = call_digest(tool, args)
        if proof.digest != digest:
            raise WarrantDigestMismatch(
                f"call proof for hop {entry.position} ({entry.hop_id!r}) was signed for another "
                f"call than {tool!r} with these arguments",
                hop_index=entry.position,
                hop_id=entry.hop_id,
            )
        if not 1 <= len(proof.nonce) <= _MAX_NONCE or not _sig_ok(
            entry.holder,
            _call_message(self.run_id, entry.link_hash, entry.hop_id, digest, proof.nonce),
            proof.signature,
        ):
            raise WarrantNotHolder(
                f"call proof is not signed by the holder of hop {entry.position} "
                f"({entry.hop_id!r}), {_short(entry.holder)}...",
                hop_index=entry.position,
                hop_id=entry.hop_id,
            )
        if not self.nonces.consume(entry.hop_id, proof.nonce):
            raise WarrantReplay(
                f"call proof nonce {proof.nonce.hex()} was already used for hop "
                f"{entry.position} ({entry.hop_id!r})",
                hop_index=entry.position,
                hop_id=entry.hop_id,
            )
        decision = entry.remit.check(tool, args, now=now)
        if not decision.allowed:
            decision.raise_if_denied()
        return entry.remit

    def revoke(self, hop_id: str) -> None:
        """Revoke ``hop_id`` and, with it, every chain that passes through it."""
        self.revoked.add(hop_id)
        for token in [t for t, e in self._cache.items() if hop_id in e.hop_ids]:
            del self._cache[token]
