""":class:`Verifier`: a run's verifier that caches verified chains, so the per-call check is a
dict lookup plus the remit check, and re-checks only new hops of a child's chain."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final

from remit.core.remit import Remit
from remit.errors import (
    WarrantDigestMismatch,
    WarrantExpired,
    WarrantMalformed,
    WarrantNotHolder,
    WarrantReplay,
    WarrantRevoked,
)
from remit.trust._calls import (
    CallProof,
    MemoryNonceStore,
    NonceStore,
    call_digest,
    call_message,
)
from remit.trust._chain import Warrant, decode
from remit.trust._format import (
    MAX_NONCE,
    short,
)
from remit.trust._keys import sig_ok
from remit.trust._verify import check_clock, verify_chain

__all__ = [
    "Verifier",
]


_NEG_INF: Final = -math.inf


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
        warrant = decode(token)
        links = self._links
        remit = verify_chain(warrant, self.principal_public, self.run_id, now, self.revoked, links)
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
        check_clock(now)
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
        if not 1 <= len(proof.nonce) <= MAX_NONCE or not sig_ok(
            entry.holder,
            call_message(self.run_id, entry.link_hash, entry.hop_id, digest, proof.nonce),
            proof.signature,
        ):
            raise WarrantNotHolder(
                f"call proof is not signed by the holder of hop {entry.position} "
                f"({entry.hop_id!r}), {short(entry.holder)}...",
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
