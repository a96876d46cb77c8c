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

The parts live in private modules, one idea each: ``_format`` (the wire format),
``_keys`` (Ed25519), ``_hop`` (one signed hop), ``_chain`` (:class:`Warrant`, :func:`issue`,
decoding), ``_verify`` (a whole chain), ``_calls`` (call proofs, nonces) and
``_verifier`` (the caching :class:`Verifier`); this module is their one public face.
"""

from __future__ import annotations

from remit.trust._calls import CallProof, MemoryNonceStore, NonceStore, call_digest, sign_call
from remit.trust._chain import Warrant, chain_token, issue
from remit.trust._format import MAX_HOPS
from remit.trust._hop import Hop, clear_memos
from remit.trust._keys import AgentKey
from remit.trust._verifier import Verifier
from remit.trust._verify import verify

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
    "clear_memos",
    "issue",
    "sign_call",
    "verify",
]
