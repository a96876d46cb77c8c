"""The chain: :class:`Warrant` (delegate, encode, decode), :func:`issue` for the root grant,
and the one-pass decoder of a token."""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from remit.core.remit import Remit
from remit.errors import (
    WarrantDepthExceeded,
    WarrantMalformed,
    WarrantNotHolder,
    WarrantWidening,
)
from remit.trust._format import (
    HASHER,
    HEADER,
    HOP,
    HOP_HEAD,
    MAX_HOPS,
    ROOT,
    ROOT_HEAD,
    SIG_LEN,
    U8,
    U32,
    VERSION,
    b64decode,
    b64encode,
    remit_bytes,
    short,
)
from remit.trust._hop import Hop, make_hop, remit_bytes_memo, within_memo
from remit.trust._keys import AgentKey

__all__ = [
    "Warrant",
    "chain_token",
    "decode",
    "issue",
]


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
                f"cannot delegate hop {index} ({hop_id!r}): key {short(holder_key.public)}... "
                f"is not the holder of hop {last.position} ({last.hop_id!r}), "
                f"{short(last.holder)}...",
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
        dim = within_memo(child_remit, parent)
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
        hop = make_hop(
            holder_key,
            index,
            hop_id=hop_id,
            holder=child_public,
            expires=expires,
            remit_json=remit_bytes_memo(child_remit),
            prev=last.link_hash,
        )
        return Warrant(self.run_id, self.principal, (*self.hops, hop))

    def encode(self) -> str:
        """The compact token: base64url (no padding) of the binary payload."""
        parts = [U8.pack(VERSION), self.principal, U8.pack(len(self.hops))]
        for hop in self.hops:
            parts += (U32.pack(len(hop.body)), hop.body, hop.signature)
        return b64encode(b"".join(parts))

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
        return decode(token)


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
    parts = [b64decode(f, "hop frame") for f in frames]
    if not 0 < len(parts) <= MAX_HOPS:
        raise WarrantMalformed(f"a chain of {len(parts)} hops cannot be a warrant")
    return b64encode(b"".join((U8.pack(VERSION), principal, U8.pack(len(parts)), *parts)))


def _garbled(where: str, what: str, index: int | None = None) -> WarrantMalformed:
    return WarrantMalformed(
        f"warrant token is truncated or garbled: {where}: {what}", hop_index=index
    )


def decode(token: str) -> Warrant:
    data = b64decode(token)
    size = len(data)
    try:
        version, principal, count = HEADER.unpack_from(data)
    except struct.error:
        raise _garbled("header", f"{size} bytes are too few for a warrant") from None
    if version != VERSION:
        raise WarrantMalformed(f"warrant token version {version} is not supported (expected 1)")
    if count == 0:
        raise _garbled("header", "no hops")
    if count > MAX_HOPS:
        raise WarrantDepthExceeded(
            f"warrant has {count} hops, at most {MAX_HOPS} are accepted", hop_index=MAX_HOPS
        )
    # One pass over the payload, every field read in place by offset: per hop one
    # unpack of the fixed head, the slices that become Hop fields, and one hash.
    pos = HEADER.size
    hops: list[Hop] = []
    view = memoryview(data)
    unpack_len = U32.unpack_from
    root_head, hop_head = ROOT_HEAD, HOP_HEAD
    new_hash = HASHER.copy
    make = tuple.__new__
    run_id = purpose = prev = None
    for index in range(count):
        if pos + 4 > size:
            raise _garbled(f"hop {index}", "missing (token cut short)", index)
        (n,) = unpack_len(data, pos)
        start = pos + 4
        end = start + n
        pos = end + SIG_LEN
        if pos > size:
            raise _garbled(f"hop {index}", f"body of {n} bytes runs past the end", index)
        if index == 0:
            if n < root_head.size:
                raise _garbled(f"hop {index}", f"body of {n} bytes is too short", index)
            kind, holder, expires, n_hid, n_remit, n_run, n_why = root_head.unpack_from(data, start)
            at = start + root_head.size
            expected = ROOT
        else:
            if n < hop_head.size:
                raise _garbled(f"hop {index}", f"body of {n} bytes is too short", index)
            kind, prev, holder, expires, n_hid, n_remit = hop_head.unpack_from(data, start)
            at = start + hop_head.size
            n_run = n_why = 0
            expected = HOP
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
    hop = make_hop(
        principal_key,
        0,
        hop_id=hop_id,
        holder=holder_public,
        expires=expires,
        remit_json=remit_bytes(remit),
        run_id=run_id,
        purpose=purpose,
    )
    return Warrant(run_id, principal_key.public, (hop,))
