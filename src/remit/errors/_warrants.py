"""Errors of remit.trust.warrant (signed delegation chains and call proofs): each names
the hop (index 0 = the root grant, and its id) where verification failed."""

from __future__ import annotations

from remit.errors._authority import AuthorityError, WideningError
from remit.errors._base import RemitError


class WarrantError(AuthorityError):
    """A warrant or call proof that must not be trusted; ``hop_index``/``hop_id`` say where."""

    code = "WARRANT"

    def __init__(
        self, message: str, *, hop_index: int | None = None, hop_id: str | None = None
    ) -> None:
        # RemitError.__init__ directly: WarrantWidening's MRO puts WideningError next,
        # whose __init__ takes (dimension, detail).
        RemitError.__init__(self, message)
        self.hop_index = hop_index
        self.hop_id = hop_id


class WarrantMalformed(WarrantError):
    """An empty, truncated or garbled token, or a value that cannot go into one."""

    code = "WARRANT_MALFORMED"


class WarrantForged(WarrantError):
    """A signature that does not verify under the key that should have made it."""

    code = "WARRANT_FORGED"


class WarrantBrokenChain(WarrantError):
    """A hop whose previous-hop hash does not match the hop before it (spliced chain)."""

    code = "WARRANT_BROKEN_CHAIN"


class WarrantWidening(WarrantError, WideningError):
    """A hop wider than its parent (remit dimension or expiry); also a WideningError."""

    code = "WARRANT_WIDENING"

    def __init__(
        self,
        message: str,
        *,
        dimension: str,
        hop_index: int | None = None,
        hop_id: str | None = None,
    ) -> None:
        WarrantError.__init__(self, message, hop_index=hop_index, hop_id=hop_id)
        self.dimension = dimension


class WarrantRootMismatch(WarrantError):
    """The run's recorded authority is not what its principal granted (the journal was
    altered): a resume refuses to act under it."""

    code = "WARRANT_ROOT_MISMATCH"


class WarrantExpired(WarrantError):
    """A hop of the chain has expired."""

    code = "WARRANT_EXPIRED"


class WarrantDepthExceeded(WarrantError):
    """A delegation below a remit with no depth left, or a chain longer than allowed."""

    code = "WARRANT_DEPTH"


class WarrantReplay(WarrantError):
    """A call proof whose nonce was already used."""

    code = "WARRANT_REPLAY"


class WarrantWrongRun(WarrantError):
    """A warrant issued for another run."""

    code = "WARRANT_WRONG_RUN"


class WarrantRevoked(WarrantError):
    """A chain containing a revoked hop (revoking a hop revokes its whole subtree)."""

    code = "WARRANT_REVOKED"


class WarrantNotHolder(WarrantError):
    """A key or call proof that is not the holder of the warrant's last hop."""

    code = "WARRANT_NOT_HOLDER"


class WarrantDigestMismatch(WarrantError):
    """A call proof signed for another tool call than the one presented."""

    code = "WARRANT_DIGEST"
