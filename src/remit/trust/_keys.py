"""Ed25519 keys and signatures: :class:`AgentKey`, and libsodium called directly on the hot
path (a runtime signs a hop and a call per task), with pynacl's public binding as fallback."""

from __future__ import annotations

from collections.abc import Callable

import nacl.exceptions
import nacl.signing
from nacl.bindings import (
    crypto_sign,
    crypto_sign_keypair,
    crypto_sign_open,
    crypto_sign_seed_keypair,
)

from remit.errors import (
    WarrantMalformed,
)
from remit.trust._format import (
    KEY_LEN,
    SIG_LEN,
    short,
)

__all__ = [
    "AgentKey",
    "sig_ok",
    "signed_ok",
]


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
        return f"AgentKey(public={short(self.public)}...)"


def _nacl_sign(message: bytes, secret: bytes) -> bytes:
    return crypto_sign(message, secret)[:SIG_LEN]


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
        out = new("unsigned char[]", len(message) + SIG_LEN)
        if c_sign(out, null, message, len(message), secret) != 0:  # pragma: no cover
            raise RuntimeError("libsodium crypto_sign failed")
        return buffer(out, SIG_LEN)[:]

    def keypair(seed: bytes) -> tuple[bytes, bytes]:
        if type(seed) is not bytes or len(seed) != 32:
            raise ValueError("an Ed25519 seed is 32 bytes")
        pk, sk = new("unsigned char[]", KEY_LEN), new("unsigned char[]", 64)
        if c_keypair(pk, sk, seed) != 0:  # pragma: no cover
            raise RuntimeError("libsodium crypto_sign_seed_keypair failed")
        return buffer(pk, KEY_LEN)[:], buffer(sk, 64)[:]

    return sign, keypair


def _nacl_signed_ok(public: bytes, signed: bytes) -> bool:
    """Through pynacl's public binding: the reference, and the fallback if its cffi
    module is laid out differently."""
    if type(public) is not bytes or len(public) != KEY_LEN:
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
        if type(public) is not bytes or type(signed) is not bytes or len(public) != KEY_LEN:
            return False
        n = len(signed)
        if n < SIG_LEN:
            return False
        return sign_open(new("unsigned char[]", n), null, signed, n, public) == 0

    return verify


_fast_signing = _load_sodium_signing()
#: ``(message, 64-byte secret) -> signature`` and ``seed -> (public, secret)``
_sign, _seed_keypair = _fast_signing or (_nacl_sign, crypto_sign_seed_keypair)

#: ``(public key, signature + message) -> bool``: one Ed25519 verification. libsodium
#: rejects non-canonical signatures and small-order keys, so a signature cannot be
#: altered into another valid one (every byte flip is caught).
signed_ok: Callable[[bytes, bytes], bool] = _load_sodium() or _nacl_signed_ok


def sig_ok(public: bytes, message: bytes, signature: bytes) -> bool:
    return signed_ok(public, signature + message)
