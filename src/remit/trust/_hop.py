"""One signed hop: :class:`Hop`, how a hop is made and signed, and the memos of pure
functions of signed bytes (parsed remits, parent/child comparisons)."""

from __future__ import annotations

import json
import math
from typing import Any, Final, NamedTuple

from remit.core.remit import Remit
from remit.errors import (
    RemitFormatError,
    WarrantMalformed,
)
from remit.trust._format import (
    HOP,
    HOP_DOMAIN,
    HOP_HEAD,
    KEY_LEN,
    ROOT,
    ROOT_HEAD,
    U32,
    b64encode,
    blake2b_256,
    fits,
    remit_bytes,
)
from remit.trust._keys import AgentKey

__all__ = [
    "Hop",
    "clear_memos",
    "make_hop",
    "remit_bytes_memo",
    "widening",
    "within_memo",
]


_MEMO_MAX: Final = 4096
_REMITS: dict[bytes, Remit] = {}
_WIDENING: dict[tuple[bytes, bytes], str | None] = {}


# Siblings usually share one child Remit object (the engine narrows once per distinct
# subtask spec), so delegating to a thousand children serializes and compares it once.
# Keyed by identity, holding the objects themselves so an id is never reused meanwhile.
_BYTES_BY_ID: dict[int, tuple[Remit, bytes]] = {}
_WITHIN_BY_ID: dict[tuple[int, int], tuple[Remit, Remit, str | None]] = {}


def remit_bytes_memo(remit: Remit) -> bytes:
    hit = _BYTES_BY_ID.get(id(remit))
    if hit is not None and hit[0] is remit:
        return hit[1]
    data = remit_bytes(remit)
    _memo_put(_BYTES_BY_ID, id(remit), (remit, data))
    return data


def within_memo(child: Remit, parent: Remit) -> str | None:
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


def widening(parent: Hop, child: Hop) -> str | None:
    key = (parent.remit_json, child.remit_json)
    try:
        return _WIDENING[key]
    except KeyError:
        pass
    dim = child.remit.is_within(parent.remit)
    _memo_put(_WIDENING, key, dim)
    return dim


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
        return b64encode(U32.pack(len(self.body)) + self.body + self.signature)


def _check_fields(hop_id: str, holder: bytes, expires: float) -> None:
    if not isinstance(hop_id, str) or not hop_id:  # pyright: ignore[reportUnnecessaryIsInstance]
        raise WarrantMalformed(f"hop id must be a non-empty string, got {hop_id!r}")
    if len(holder) != KEY_LEN:
        raise WarrantMalformed(
            f"holder public key must be {KEY_LEN} bytes, got {len(holder)}", hop_id=hop_id
        )
    if isinstance(expires, bool) or not math.isfinite(expires):
        raise WarrantMalformed(f"expires must be finite epoch seconds, got {expires!r}")


def make_hop(
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
    hid = fits(hop_id.encode("utf-8"), 0xFF, "hop id", hop_id)
    fits(remit_json, 0xFFFFFFFF, "remit", hop_id)
    if prev is None:
        assert run_id is not None and purpose is not None
        run = fits(run_id.encode("utf-8"), 0xFFFF, "run id", hop_id)
        why = fits(purpose.encode("utf-8"), 0xFFFF, "purpose", hop_id)
        head = ROOT_HEAD.pack(ROOT, holder, expires, len(hid), len(remit_json), len(run), len(why))
        body = b"".join((head, hid, remit_json, run, why))
    else:
        head = HOP_HEAD.pack(HOP, prev, holder, expires, len(hid), len(remit_json))
        body = b"".join((head, hid, remit_json))
    signature = signer.sign(HOP_DOMAIN + body)
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
        link_hash=blake2b_256(body + signature),
    )
