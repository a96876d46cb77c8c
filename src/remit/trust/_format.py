"""The warrant token's wire format: sizes, domain prefixes, struct layouts, the link hash,
canonical JSON and canonical base64url. Shared by every other part of the chain."""

from __future__ import annotations

import binascii
import hashlib
import struct
from typing import Final

from remit.core import _json
from remit.core.remit import Remit
from remit.errors import (
    WarrantMalformed,
)

__all__ = [
    "B64_ALPHABET",
    "CALL_DOMAIN",
    "HASHER",
    "HASH_LEN",
    "HEADER",
    "HOP",
    "HOP_DOMAIN",
    "HOP_HEAD",
    "KEY_LEN",
    "MAX_HOPS",
    "MAX_NONCE",
    "ROOT",
    "ROOT_HEAD",
    "SIG_LEN",
    "U8",
    "U16",
    "U32",
    "VERSION",
    "b64decode",
    "b64encode",
    "blake2b_256",
    "canonical_json",
    "fits",
    "lp",
    "remit_bytes",
    "short",
]


#: the longest chain accepted (root included); bounds the work a hostile token can cause
MAX_HOPS: Final = 32

VERSION: Final = 1
ROOT: Final = 1
HOP: Final = 2
KEY_LEN: Final = 32
SIG_LEN: Final = 64
HASH_LEN: Final = 32
MAX_NONCE: Final = 64
# Domain separation: a hop signature can never be replayed as a call signature or v.v.
HOP_DOMAIN: Final = b"remit.trust.warrant.v1\x00"
CALL_DOMAIN: Final = b"remit.call.v1\x00"

U8 = struct.Struct(">B")
U16 = struct.Struct(">H")
U32 = struct.Struct(">I")
HEADER = struct.Struct(">B32sB")  # version, principal key, number of hops
# kind, holder key, expires, then lengths of: hop id, remit, run id, purpose
ROOT_HEAD = struct.Struct(">B32sdBIHH")
# kind, previous-hop hash, holder key, expires, then lengths of: hop id, remit
HOP_HEAD = struct.Struct(">B32s32sdBI")
# base64url to the standard alphabet; '+', '/' and '=' (never in a canonical token) to a
# byte strict decoding refuses, so one pass both translates and rejects them
_B64_TO_STD = bytes.maketrans(b"-_+/=", b"+/!!!")
_B64_TO_URL = bytes.maketrans(b"+/", b"-_")
B64_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


# Copying a fresh hash object skips blake2b()'s keyword parsing (a third of a link hash).
HASHER: Final = hashlib.blake2b(digest_size=HASH_LEN)


def blake2b_256(data: bytes | memoryview) -> bytes:
    h = HASHER.copy()
    h.update(data)
    return h.digest()


# json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_canonical_text = _json.encoder(sort_keys=True, separators=(",", ":"), allow_nan=False)


def canonical_json(value: object) -> bytes:
    return _canonical_text(value).encode("utf-8")


def remit_bytes(remit: Remit) -> bytes:
    return canonical_json(remit.to_dict())


def short(key: bytes) -> str:
    return key.hex()[:12]


def fits(data: bytes, limit: int, what: str, hop_id: str | None = None) -> bytes:
    if len(data) > limit:
        raise WarrantMalformed(f"{what} is {len(data)} bytes, at most {limit} fit", hop_id=hop_id)
    return data


def lp(data: bytes, prefix: struct.Struct, what: str) -> bytes:
    return prefix.pack(len(fits(data, (1 << (8 * prefix.size)) - 1, what))) + data


def b64encode(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).translate(_B64_TO_URL).rstrip(b"=").decode()


def b64decode(token: str, what: str = "warrant token") -> bytes:
    if not isinstance(token, str):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise WarrantMalformed(f"{what} must be a str, got {type(token).__name__}")
    if not token:
        raise WarrantMalformed(f"{what} is empty")
    n = len(token) % 4
    # Canonical form only, so one payload has exactly one token: no padding, no '+' or
    # '/' (the translation turns them into a byte the strict decode refuses), and the
    # unused low bits of the last character zero (a2b_base64 ignores them).
    if n == 1:
        raise WarrantMalformed(f"{what} is not canonical base64url")
    if n:
        last = B64_ALPHABET.find(token[-1])
        if last < 0 or last & (0x0F if n == 2 else 0x03):
            raise WarrantMalformed(f"{what} is not canonical base64url")
    try:
        data = token.encode("ascii").translate(_B64_TO_STD) + b"=" * (-len(token) % 4)
        return binascii.a2b_base64(data, strict_mode=True)
    except (UnicodeEncodeError, binascii.Error) as e:
        raise WarrantMalformed(f"{what} is not base64url: {e}") from None
