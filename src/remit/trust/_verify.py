"""Verifying a whole chain: authenticate every hop first, then interpret what was signed
(revocation, expiry, depth, narrowing)."""

from __future__ import annotations

import math
from collections.abc import Container

from remit.core.remit import Remit
from remit.errors import (
    WarrantBrokenChain,
    WarrantDepthExceeded,
    WarrantExpired,
    WarrantForged,
    WarrantRevoked,
    WarrantWidening,
    WarrantWrongRun,
)
from remit.trust._chain import Warrant, decode
from remit.trust._format import (
    HOP_DOMAIN,
    short,
)
from remit.trust._hop import Hop, widening
from remit.trust._keys import signed_ok

__all__ = [
    "check_clock",
    "verify",
    "verify_chain",
]


def _where(hop: Hop) -> str:
    return f"warrant hop {hop.position} ({hop.hop_id!r})"


def verify_chain(
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
            f"{_where(root)}: token names principal {short(warrant.principal)}..., "
            f"expected {short(principal_public)}...",
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
        if hop.position >= start and not signed_ok(
            signer, b"".join((hop.signature, HOP_DOMAIN, hop.body))
        ):
            by = "the principal" if prev is None else f"the holder named by hop {prev.position}"
            raise WarrantForged(
                f"{_where(hop)}: signature does not verify under {by} "
                f"({short(signer)}...); forged or altered",
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
            dim = widening(parent, hop)
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
    check_clock(now)
    # anything but a Warrant is a token to decode: bytes, None and numbers are malformed
    warrant = (
        warrant_or_token if isinstance(warrant_or_token, Warrant) else decode(warrant_or_token)
    )
    return verify_chain(warrant, principal_public, run_id, now, revoked)


def check_clock(now: float) -> None:
    # a NaN clock compares false with every expiry and would let expired chains through
    if not isinstance(now, int | float) or not math.isfinite(now):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise ValueError(f"now must be a finite time in epoch seconds, got {now!r}")
