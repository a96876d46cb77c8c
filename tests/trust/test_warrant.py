"""Warrants: signed delegation chains verified offline, holder-bound calls, and every
attack on them rejected with its stable code.

Chains here: P (principal) grants the root to A; A delegates hop "t1" to B; B delegates
hop "t2" to C. X is an attacker with a key of its own.
"""

from __future__ import annotations

import doctest
import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remit.core.remit import Budget, Remit
from remit.errors import (
    DeadlineExceeded,
    DeniedError,
    WarrantError,
    WarrantReplay,
    WarrantWidening,
    WideningError,
    error_class,
)
from remit.policy import max_len, within
from remit.trust import _calls, _chain, _format, _hop, _keys, _verifier, _verify
from remit.trust import warrant as wmod
from remit.trust.warrant import (
    MAX_HOPS,
    AgentKey,
    CallProof,
    Hop,
    MemoryNonceStore,
    Verifier,
    Warrant,
    call_digest,
    issue,
    sign_call,
    verify,
)

RUN = "run-7"
NOW = 1_800_000_000.0
EXP = NOW + 3600
P = AgentKey.from_seed(b"P" * 32)
A = AgentKey.from_seed(b"A" * 32)
B = AgentKey.from_seed(b"B" * 32)
C = AgentKey.from_seed(b"C" * 32)
X = AgentKey.from_seed(b"X" * 32)

ROOT = Remit(
    tools={
        "read_file": {},
        "write_file": {"path": within("out/"), "text": max_len(10_000)},
        "calc": {},
    },
    budget=Budget(calls=100, cost_usd=1.0),
    deadline=EXP,
    depth=3,
    principal="alice",
)
R1 = ROOT.narrow(tools={"read_file": {}, "write_file": {"path": within("out/a/")}})
R2 = R1.narrow(tools={"read_file": {}})


def chain() -> tuple[Warrant, Warrant, Warrant]:
    w0 = issue(P, run_id=RUN, remit=ROOT, purpose="audit", expires=EXP, holder_public=A.public)
    w1 = w0.delegate(A, R1, B.public, hop_id="t1")
    w2 = w1.delegate(B, R2, C.public, hop_id="t2")
    return w0, w1, w2


W0, W1, W2 = chain()


def check(token: Warrant | str, **kw: Any) -> Remit:
    kw.setdefault("principal_public", P.public)
    kw.setdefault("run_id", RUN)
    kw.setdefault("now", NOW)
    return verify(token, **kw)


def rejected(code: str, fn: Callable[[], object]) -> WarrantError:
    with pytest.raises(WarrantError) as info:
        fn()
    assert info.value.code == code, info.value.message
    return info.value


def append(
    w: Warrant,
    signer: AgentKey,
    grant: Remit,
    holder: bytes,
    *,
    hop_id: str = "evil",
    expires: float | None = None,
    prev: bytes | None = None,
) -> Warrant:
    """A hop added without delegate()'s checks: what an attacker can build."""
    last = w.hops[-1]
    hop = _hop.make_hop(
        signer,
        len(w.hops),
        hop_id=hop_id,
        holder=holder,
        expires=last.expires if expires is None else expires,
        remit_json=_format.remit_bytes(grant),
        prev=last.link_hash if prev is None else prev,
    )
    return Warrant(w.run_id, w.principal, (*w.hops, hop))


def tampered(w: Warrant, index: int, **changes: Any) -> Warrant:
    """``w`` with one field of hop ``index`` changed and its original signature kept."""
    h = w.hops[index]
    fields: dict[str, Any] = {
        "hop_id": h.hop_id,
        "holder": h.holder,
        "expires": h.expires,
        "remit_json": h.remit_json,
        "run_id": h.run_id,
        "purpose": h.purpose,
        "prev": h.prev,
    }
    fields.update(changes)
    fake = _hop.make_hop(X, index, **fields)
    hops = list(w.hops)
    hops[index] = fake._replace(signature=h.signature)
    return Warrant(w.run_id, w.principal, tuple(hops))


def replace_hop(w: Warrant, index: int, hop: Hop) -> Warrant:
    hops = list(w.hops)
    hops[index] = hop
    return Warrant(w.run_id, w.principal, tuple(hops))


# --- round trip and legitimate use -------------------------------------------------------


def test_encode_decode_round_trip() -> None:
    for w in (W0, W1, W2):
        token = w.encode()
        assert isinstance(token, str)
        assert set(token) <= set(_format.B64_ALPHABET)
        back = Warrant.decode(token)
        assert back == w
        assert back.encode() == token
    assert (W2.depth, W2.hop_id, W2.holder, W2.run_id) == (3, "t2", C.public, RUN)
    assert W2.principal == P.public and W2.purpose == "audit" and W2.expires == EXP
    assert [h.hop_id for h in W2.hops] == ["root", "t1", "t2"]
    assert W2.remit == R2 and W2.root.remit == ROOT


def test_verify_returns_the_effective_remit() -> None:
    assert check(W0) == ROOT
    assert check(W1.encode()) == R1
    assert check(W2.encode()) == R2


def test_legitimate_calls_are_accepted() -> None:
    v = Verifier(P.public, RUN)
    args = {"path": "out/a/x.md", "text": "hi"}
    proof = sign_call(B, W1, "write_file", args, nonce=b"n1")
    assert v.check(W1.encode(), proof, "write_file", args, now=NOW) == R1
    proof = sign_call(C, W2, "read_file", {"path": "src/x"}, nonce=b"n1")
    assert v.check(W2.encode(), proof, "read_file", {"path": "src/x"}, now=NOW) == R2
    assert v.check_cached(W2.encode(), "read_file", {}, now=NOW) == R2
    assert v.verify(W0.encode(), now=NOW) == ROOT


def test_expiry_defaults_to_the_parents_and_may_be_earlier() -> None:
    w = W0.delegate(A, R1, B.public, hop_id="t1", expires=NOW + 10)
    assert w.expires == NOW + 10 and W1.expires == EXP
    assert check(w, now=NOW + 9) == R1
    rejected("WARRANT_EXPIRED", lambda: check(w, now=NOW + 10))


def test_call_proof_round_trip_and_garbage() -> None:
    proof = sign_call(C, W2, "read_file", {}, nonce=b"\x00" * 16)
    assert CallProof.decode(proof.encode()) == proof
    for bad in ("", "AAAA", proof.encode()[:-3], proof.encode() + "AA", "a+b/"):
        rejected("WARRANT_MALFORMED", lambda bad=bad: CallProof.decode(bad))


def test_agent_key_hides_its_secret_and_is_deterministic() -> None:
    assert AgentKey.from_seed(b"A" * 32).public == A.public
    assert "41414141" not in repr(A) and A.public.hex()[:12] in repr(A)
    assert len(A.sign(b"m")) == 64
    rejected("WARRANT_MALFORMED", lambda: AgentKey.from_seed(b"short"))


def test_errors_are_indexed_and_name_the_hop() -> None:
    err = rejected("WARRANT_FORGED", lambda: check(tampered(W2, 1, purpose=None, expires=1.0)))
    assert err.hop_index == 1 and err.hop_id == "t1"
    assert "hop 1 ('t1')" in err.message
    assert err.to_dict()["hop_index"] == 1
    assert error_class("WARRANT_REPLAY") is WarrantReplay
    assert issubclass(WarrantWidening, WideningError)


# --- forgery and tampering ----------------------------------------------------------------


@pytest.mark.parametrize("index", [0, 1, 2])
def test_forged_signature_rejected(index: int) -> None:
    h = W2.hops[index]
    sig = bytes([h.signature[0] ^ 1]) + h.signature[1:]
    err = rejected(
        "WARRANT_FORGED", lambda: check(replace_hop(W2, index, h._replace(signature=sig)))
    )
    assert err.hop_index == index


@pytest.mark.parametrize("index", [0, 1, 2])
def test_tampered_remit_in_any_hop_rejected(index: int) -> None:
    wider = Remit(tools={"shell": {}}, depth=5, principal="alice")
    bad = tampered(W2, index, remit_json=_format.remit_bytes(wider))
    err = rejected("WARRANT_FORGED", lambda: check(bad.encode()))
    assert err.hop_index == index


@pytest.mark.parametrize(
    ("index", "field", "value"),
    [
        (0, "hop_id", "other"),
        (1, "holder", X.public),
        (2, "expires", EXP - 1),
        (0, "purpose", "something else"),
    ],
)
def test_tampered_fields_rejected(index: int, field: str, value: object) -> None:
    rejected("WARRANT_FORGED", lambda: check(tampered(W2, index, **{field: value}).encode()))


def test_root_signed_by_another_key_rejected() -> None:
    fake = issue(X, run_id=RUN, remit=ROOT, purpose="audit", expires=EXP, holder_public=X.public)
    # claims to be from P: the signature does not verify under P
    rejected("WARRANT_FORGED", lambda: check(Warrant(RUN, P.public, fake.hops)))
    # says it is from X: not the principal this run trusts
    rejected("WARRANT_FORGED", lambda: check(fake))


def test_hop_appended_by_non_holder_rejected() -> None:
    # delegate() refuses outright...
    rejected("WARRANT_NOT_HOLDER", lambda: W1.delegate(X, R2, X.public, hop_id="x"))
    # ...and a hop built anyway, signed by X instead of B (the holder W1 names), fails.
    err = rejected("WARRANT_FORGED", lambda: check(append(W1, X, R2, X.public).encode()))
    assert err.hop_index == 2
    # the root's holder A cannot sign below B either
    rejected("WARRANT_FORGED", lambda: check(append(W1, A, R2, A.public)))


def test_spliced_and_relinked_hops_rejected() -> None:
    # Hop t2 re-signed by its legitimate signer B, but pointing at another parent hop.
    relinked = append(W1, B, R2, C.public, hop_id="t2", prev=b"\x00" * 32)
    err = rejected("WARRANT_BROKEN_CHAIN", lambda: check(relinked))
    assert err.hop_index == 2
    # A hop from a sibling chain under the same key spliced onto this one.
    other_w1 = W0.delegate(A, R1.narrow(tools={"read_file": {}}), B.public, hop_id="t1b")
    sibling = other_w1.delegate(B, R2.narrow(), C.public, hop_id="t2")
    spliced = replace_hop(W2, 2, sibling.hops[2])
    rejected("WARRANT_BROKEN_CHAIN", lambda: check(spliced.encode()))


def test_duplicate_hop_ids_rejected() -> None:
    rejected("WARRANT_MALFORMED", lambda: W1.delegate(B, R2, C.public, hop_id="t1"))
    dup = append(W1, B, R2, C.public, hop_id="t1")
    rejected("WARRANT_BROKEN_CHAIN", lambda: check(dup))


def test_remit_is_parsed_only_after_its_signature_verifies() -> None:
    garbage = b'{"tools": 5}'
    bad = tampered(W1, 1, remit_json=garbage)
    rejected("WARRANT_FORGED", lambda: check(bad))
    # The same garbage genuinely signed by the holder is malformed, not trusted.
    last = W0.hops[-1]
    hop = _hop.make_hop(
        A, 1, hop_id="t1", holder=B.public, expires=EXP, remit_json=garbage, prev=last.link_hash
    )
    rejected("WARRANT_MALFORMED", lambda: check(Warrant(RUN, P.public, (*W0.hops, hop))))


def test_relative_deadline_in_a_signed_remit_rejected() -> None:
    hop = _hop.make_hop(
        A,
        1,
        hop_id="t1",
        holder=B.public,
        expires=EXP,
        remit_json=b'{"deadline":"15m","depth":0,"principal":"alice"}',
        prev=W0.hops[0].link_hash,
    )
    err = rejected("WARRANT_MALFORMED", lambda: check(Warrant(RUN, P.public, (*W0.hops, hop))))
    assert "epoch seconds" in err.message


# --- widening -----------------------------------------------------------------------------

_WIDER: dict[str, Remit] = {
    "tools.calc": Remit(tools={"read_file": {}, "calc": {}}, depth=1, principal="alice"),
    "tools.write_file.path": Remit(
        tools={"write_file": {"path": within("out/"), "text": max_len(10)}},
        budget=Budget(calls=100, cost_usd=1.0),
        deadline=EXP,
        depth=1,
        principal="alice",
    ),
    "budget.calls": Remit(
        tools={"read_file": {}},
        budget=Budget(calls=101, cost_usd=1.0),
        deadline=EXP,
        depth=1,
        principal="alice",
    ),
    "deadline": Remit(
        tools={"read_file": {}},
        budget=Budget(calls=100, cost_usd=1.0),
        deadline=EXP + 1,
        depth=1,
        principal="alice",
    ),
    "depth": Remit(
        tools={"read_file": {}},
        budget=Budget(calls=100, cost_usd=1.0),
        deadline=EXP,
        depth=2,
        principal="alice",
    ),
    "principal": Remit(
        tools={"read_file": {}},
        budget=Budget(calls=100, cost_usd=1.0),
        deadline=EXP,
        depth=1,
        principal="mallory",
    ),
}


@pytest.mark.parametrize("dimension", list(_WIDER))
def test_widening_hop_rejected_in_each_dimension(dimension: str) -> None:
    wider = _WIDER[dimension]
    # Parent of the new hop is W1 (remit R1: write_file path within out/a/, depth 2).
    assert wider.is_within(R1) == dimension
    with pytest.raises(WideningError) as info:  # delegate() refuses...
        W1.delegate(B, wider, C.public, hop_id="t2")
    assert info.value.code == "WARRANT_WIDENING"
    bad = append(W1, B, wider, C.public, hop_id="t2")  # ...and a forced hop fails verify
    err = rejected("WARRANT_WIDENING", lambda: check(bad.encode()))
    assert isinstance(err, WarrantWidening) and err.dimension == dimension
    assert err.hop_index == 2


def test_expiry_later_than_parent_rejected() -> None:
    rejected("WARRANT_WIDENING", lambda: W1.delegate(B, R2, C.public, hop_id="t2", expires=EXP + 1))
    bad = append(W1, B, R2, C.public, hop_id="t2", expires=EXP + 1)
    err = rejected("WARRANT_WIDENING", lambda: check(bad))
    assert isinstance(err, WarrantWidening) and err.dimension == "expires"


# --- expiry, depth, run, revocation -------------------------------------------------------


def test_expired_hop_rejected() -> None:
    w0 = issue(P, run_id=RUN, remit=ROOT, purpose="", expires=NOW + 100, holder_public=A.public)
    w1 = w0.delegate(A, R1, B.public, hop_id="t1", expires=NOW + 50)
    assert check(w1, now=NOW + 49) == R1
    err = rejected("WARRANT_EXPIRED", lambda: check(w1, now=NOW + 60))
    assert err.hop_index == 1
    rejected("WARRANT_EXPIRED", lambda: check(w0, now=NOW + 100))


def test_depth_exceeded_rejected() -> None:
    leaf = R2.narrow(depth=0)
    w3 = W2.delegate(C, leaf, X.public, hop_id="t3")
    assert w3.remit.depth == 0
    rejected("WARRANT_DEPTH", lambda: w3.delegate(X, leaf, A.public, hop_id="t4"))
    forced = append(w3, X, leaf, A.public, hop_id="t4")
    err = rejected("WARRANT_DEPTH", lambda: check(forced.encode()))
    assert err.hop_index == 4


def test_overlong_chain_rejected_before_any_signature() -> None:
    payload = bytes([1]) + P.public + bytes([MAX_HOPS + 1])
    token = Warrant(RUN, P.public, W0.hops).encode()  # valid token, then lie about the count
    raw = _format.b64decode(token)
    data = payload + raw[len(payload) :]
    rejected("WARRANT_DEPTH", lambda: check(_b64(data)))


def _b64(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_wrong_run_rejected() -> None:
    rejected("WARRANT_WRONG_RUN", lambda: check(W2, run_id="run-8"))
    v = Verifier(P.public, "run-8")
    rejected("WARRANT_WRONG_RUN", lambda: v.check_cached(W2.encode(), "read_file", {}, now=NOW))


def test_revoked_hop_revokes_its_subtree() -> None:
    revoked = {"t1"}
    assert check(W0, revoked=revoked) == ROOT
    err = rejected("WARRANT_REVOKED", lambda: check(W1, revoked=revoked))
    assert err.hop_id == "t1"
    err = rejected("WARRANT_REVOKED", lambda: check(W2.encode(), revoked=revoked))
    assert err.hop_id == "t1"
    rejected("WARRANT_REVOKED", lambda: check(W2, revoked={"root"}))


# --- holder binding -----------------------------------------------------------------------


def test_truncated_chain_cannot_be_used_with_the_childs_key() -> None:
    v = Verifier(P.public, RUN)
    args = {"path": "out/secret.md", "text": "x"}  # allowed by R0/R1 prefixes, not by R2
    # C holds W2; the broader prefix W1 names B as holder, so C cannot sign for it.
    rejected("WARRANT_NOT_HOLDER", lambda: sign_call(C, W1, "write_file", args, b"n"))
    # A proof C signs for its own hop does not match the prefix's last hop...
    own = sign_call(C, W2, "write_file", args, b"n")
    err = rejected(
        "WARRANT_NOT_HOLDER", lambda: v.check(W1.encode(), own, "write_file", args, now=NOW)
    )
    assert "proof is for hop 't2'" in err.message and "last hop is 1 ('t1')" in err.message
    # ...and relabelling it for hop t1 breaks the signature.
    relabelled = CallProof("t1", own.digest, own.nonce, own.signature)
    rejected(
        "WARRANT_NOT_HOLDER", lambda: v.check(W1.encode(), relabelled, "write_file", args, now=NOW)
    )
    # Same for the root prefix.
    relabelled = CallProof("root", own.digest, own.nonce, own.signature)
    rejected(
        "WARRANT_NOT_HOLDER", lambda: v.check(W0.encode(), relabelled, "write_file", args, now=NOW)
    )


def test_proof_signed_by_a_non_holder_rejected() -> None:
    v = Verifier(P.public, RUN)
    forged = sign_call(C, W2, "read_file", {}, b"n")
    by_x = CallProof("t2", forged.digest, forged.nonce, X.sign(b"anything"))
    rejected("WARRANT_NOT_HOLDER", lambda: v.check(W2.encode(), by_x, "read_file", {}, now=NOW))
    rejected("WARRANT_NOT_HOLDER", lambda: sign_call(X, W2, "read_file", {}, b"n"))


def test_proof_for_another_call_rejected() -> None:
    v = Verifier(P.public, RUN)
    proof = sign_call(C, W2, "read_file", {"path": "a"}, b"n")
    rejected(
        "WARRANT_DIGEST", lambda: v.check(W2.encode(), proof, "read_file", {"path": "b"}, now=NOW)
    )
    rejected("WARRANT_DIGEST", lambda: v.check(W2.encode(), proof, "calc", {"path": "a"}, now=NOW))
    # the nonce was not burnt by the rejected attempts
    assert v.check(W2.encode(), proof, "read_file", {"path": "a"}, now=NOW) == R2


def test_proof_is_bound_to_its_run() -> None:
    other = issue(
        P, run_id="run-8", remit=ROOT, purpose="audit", expires=EXP, holder_public=A.public
    )
    proof = sign_call(A, other, "calc", {}, b"n")  # same key, same hop id "root", other run
    rejected(
        "WARRANT_NOT_HOLDER",
        lambda: Verifier(P.public, RUN).check(W0.encode(), proof, "calc", {}, now=NOW),
    )


def test_replayed_nonce_rejected() -> None:
    v = Verifier(P.public, RUN)
    proof = sign_call(C, W2, "read_file", {}, b"once")
    v.check(W2.encode(), proof, "read_file", {}, now=NOW)
    err = rejected("WARRANT_REPLAY", lambda: v.check(W2.encode(), proof, "read_file", {}, now=NOW))
    assert err.hop_id == "t2"
    again = sign_call(C, W2, "read_file", {}, b"twice")
    assert v.check(W2.encode(), again, "read_file", {}, now=NOW) == R2


def test_nonce_store_is_shared_and_pluggable() -> None:
    seen: list[tuple[str, bytes]] = []

    class Store:
        def consume(self, hop_id: str, nonce: bytes) -> bool:
            if (hop_id, nonce) in seen:
                return False
            seen.append((hop_id, nonce))
            return True

    proof = sign_call(C, W2, "read_file", {}, b"n")
    Verifier(P.public, RUN, nonces=Store()).check(W2.encode(), proof, "read_file", {}, now=NOW)
    assert seen == [("t2", b"n")]
    # a second verifier on the same store (e.g. after a restart) still refuses the replay
    v2 = Verifier(P.public, RUN, nonces=Store())
    rejected("WARRANT_REPLAY", lambda: v2.check(W2.encode(), proof, "read_file", {}, now=NOW))
    rejected("WARRANT_MALFORMED", lambda: sign_call(C, W2, "read_file", {}, b""))
    rejected("WARRANT_MALFORMED", lambda: sign_call(C, W2, "read_file", {}, b"n" * 65))


def test_confused_deputy_denied() -> None:
    v = Verifier(P.public, RUN)
    # C's remit (R2) has only read_file; its parents may write. C asks for a write.
    args = {"path": "out/a/x.md", "text": "x"}
    proof = sign_call(C, W2, "write_file", args, b"n")
    with pytest.raises(DeniedError):
        v.check(W2.encode(), proof, "write_file", args, now=NOW)
    rejected("WARRANT_REPLAY", lambda: v.check(W2.encode(), proof, "write_file", args, now=NOW))
    # B may write, but only under out/a/: out/b/ is its parent's (A's) authority.
    args = {"path": "out/b/x.md", "text": "x"}
    proof = sign_call(B, W1, "write_file", args, b"n")
    with pytest.raises(DeniedError) as info:
        v.check(W1.encode(), proof, "write_file", args, now=NOW)
    assert info.value.code == "DENIED"
    with pytest.raises(DeniedError):
        v.check_cached(W1.encode(), "write_file", args, now=NOW)


def test_remit_deadline_enforced_by_check() -> None:
    w = issue(
        P,
        run_id=RUN,
        remit=R2.narrow(deadline=NOW + 5, depth=0),
        purpose="",
        expires=EXP,
        holder_public=C.public,
    )
    v = Verifier(P.public, RUN)
    with pytest.raises(DeadlineExceeded):
        v.check_cached(w.encode(), "read_file", {}, now=NOW + 6)


def test_non_json_arguments_rejected() -> None:
    rejected("WARRANT_DIGEST", lambda: call_digest("t", {"x": object()}))
    assert call_digest("t", {"a": (1, 2)}) == call_digest("t", {"a": [1, 2]})
    assert call_digest("t", {"a": 1}) != call_digest("u", {"a": 1})


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(tool=st.text(max_size=20), args=st.dictionaries(st.text(), _JSON, max_size=5))
def test_a_call_digest_is_blake2b_of_the_calls_canonical_json(
    tool: str, args: dict[str, Any]
) -> None:
    """The digest is fixed by the format, not by the encoder: proofs journaled by any
    version verify with any other."""
    text = json.dumps(
        [tool, args], sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    assert call_digest(tool, args) == hashlib.blake2b(text.encode(), digest_size=32).digest()


def test_a_cyclic_argument_is_rejected_as_undigestable() -> None:
    loop: list[Any] = []
    loop.append(loop)
    rejected("WARRANT_DIGEST", lambda: call_digest("t", {"x": loop}))
    rejected("WARRANT_DIGEST", lambda: call_digest("t", {"x": float("nan")}))


# --- the cache ------------------------------------------------------------------------------


def test_cache_hit_still_enforces_revocation_expiry_and_nonces() -> None:
    v = Verifier(P.public, RUN)
    token = W2.encode()
    p1 = sign_call(C, W2, "read_file", {}, b"1")
    v.check(token, p1, "read_file", {}, now=NOW)  # cold: now cached
    rejected("WARRANT_REPLAY", lambda: v.check(token, p1, "read_file", {}, now=NOW))
    v.revoke("t1")
    rejected("WARRANT_REVOKED", lambda: v.check_cached(token, "read_file", {}, now=NOW))
    p2 = sign_call(C, W2, "read_file", {}, b"2")
    rejected("WARRANT_REVOKED", lambda: v.check(token, p2, "read_file", {}, now=NOW))
    assert v.check_cached(W0.encode(), "read_file", {}, now=NOW) == ROOT


def test_revocation_through_the_shared_set_reaches_cached_chains() -> None:
    revoked: set[str] = set()
    v = Verifier(P.public, RUN, revoked=revoked)
    token = W2.encode()
    v.check_cached(token, "read_file", {}, now=NOW)
    revoked.add("root")  # e.g. the runtime revoking a subtree from elsewhere
    rejected("WARRANT_REVOKED", lambda: v.check_cached(token, "read_file", {}, now=NOW))


def test_cached_chain_expires() -> None:
    v = Verifier(P.public, RUN)
    w = W1.delegate(B, R2, C.public, hop_id="t2", expires=NOW + 1)
    v.check_cached(w.encode(), "read_file", {}, now=NOW)
    rejected("WARRANT_EXPIRED", lambda: v.check_cached(w.encode(), "read_file", {}, now=NOW + 1))


def test_cache_is_bounded() -> None:
    v = Verifier(P.public, RUN, max_entries=2)
    for w in (W0, W1, W2):
        v.verify(w.encode(), now=NOW)
    assert len(v._cache) == 2


def test_verifier_checks_only_new_signatures_of_an_extended_chain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[bytes] = []
    real = _verify.signed_ok

    def counting(public: bytes, signed: bytes) -> bool:
        calls.append(public)
        return real(public, signed)

    monkeypatch.setattr(_verify, "signed_ok", counting)
    v = Verifier(P.public, RUN)
    assert v.verify(W1.encode(), now=NOW) == R1
    assert calls == [P.public, A.public]
    calls.clear()
    assert v.verify(W2.encode(), now=NOW) == R2  # root and t1 already authenticated
    assert calls == [B.public]
    calls.clear()
    w3 = W2.delegate(C, R2.narrow(depth=0), X.public, hop_id="t3")
    assert v.verify(w3.encode(), now=NOW) == w3.remit
    assert calls == [C.public]
    # a forged hop below a trusted prefix is still caught
    bad = append(W2, X, R2.narrow(depth=0), X.public, hop_id="t3")
    rejected("WARRANT_FORGED", lambda: v.verify(bad.encode(), now=NOW))


def test_trusted_hop_cannot_be_given_invented_ancestors() -> None:
    v = Verifier(P.public, RUN)
    v.verify(W2.encode(), now=NOW)  # every hop of W2 is now trusted
    # The attacker keeps the real t1 and t2 but puts its own root above them (other id,
    # so revoking "root" would miss it; other expiry).
    fake_root = tampered(W2, 0, hop_id="elsewhere", expires=EXP + 999).hops[0]
    fake = replace_hop(W2, 0, fake_root)
    err = rejected("WARRANT_BROKEN_CHAIN", lambda: v.verify(fake.encode(), now=NOW))
    assert err.hop_index == 1


def test_revoking_a_trusted_hop_still_revokes_new_chains_below_it() -> None:
    v = Verifier(P.public, RUN)
    v.verify(W1.encode(), now=NOW)
    v.revoke("t1")
    rejected("WARRANT_REVOKED", lambda: v.verify(W2.encode(), now=NOW))
    v2 = Verifier(P.public, RUN)
    v2.verify(W1.encode(), now=NOW)
    rejected("WARRANT_EXPIRED", lambda: v2.verify(W2.encode(), now=EXP))


def test_memory_nonce_store() -> None:
    s = MemoryNonceStore()
    assert s.consume("h", b"1") and not s.consume("h", b"1") and s.consume("g", b"1")


# --- malformed tokens -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    ["", "A", "AAAA", "!!!!", "not a token", "====", W2.encode() + "=", W2.encode()[:-1] + "+"],
)
def test_empty_and_garbage_tokens_rejected(token: str) -> None:
    rejected("WARRANT_MALFORMED", lambda: Warrant.decode(token))
    rejected("WARRANT_MALFORMED", lambda: check(token))


def test_non_string_token_rejected() -> None:
    rejected("WARRANT_MALFORMED", lambda: Warrant.decode(b"AAAA"))  # type: ignore[arg-type]


def test_truncated_and_extended_tokens_rejected() -> None:
    token = W2.encode()
    for cut in range(1, len(token), 7):
        rejected("WARRANT_MALFORMED", lambda cut=cut: check(token[:cut]))
    raw = _format.b64decode(token)
    rejected("WARRANT_MALFORMED", lambda: check(_b64(raw + b"\x00")))
    rejected("WARRANT_MALFORMED", lambda: check(_b64(raw[:-1])))
    rejected("WARRANT_MALFORMED", lambda: check(_b64(b"\x02" + raw[1:])))  # version


def test_non_canonical_base64_rejected() -> None:
    token = W0.encode()
    assert len(token) % 4 in (2, 3)  # the last character carries unused bits
    alphabet = _format.B64_ALPHABET
    last = alphabet.index(token[-1])
    stray = alphabet[last | 1]
    assert stray != token[-1]
    rejected("WARRANT_MALFORMED", lambda: check(token[:-1] + stray))


def test_body_shorter_than_its_head_rejected_even_with_bytes_after_it() -> None:
    # The decoder reads each head in place from the whole payload: a body length
    # shorter than the head must be refused, not read on into the signature.
    raw = bytearray(_format.b64decode(W1.encode()))
    pos = _format.HEADER.size
    (n,) = _format.U32.unpack_from(raw, pos)
    for short in (0, 1, _format.ROOT_HEAD.size - 1):
        data = bytes(raw[:pos]) + _format.U32.pack(short) + bytes(raw[pos + 4 :])
        err = rejected("WARRANT_MALFORMED", lambda data=data: check(_b64(data)))
        assert err.hop_index == 0
    assert n >= _format.ROOT_HEAD.size


def test_decoded_hops_carry_exactly_the_signed_fields() -> None:
    decoded = Warrant.decode(W2.encode())
    for hop, orig in zip(decoded.hops, W2.hops, strict=True):
        assert type(hop) is Hop and hop == orig
        assert hop.link_hash == _format.blake2b_256(hop.body + hop.signature)
    assert decoded.hops[0].run_id == RUN and decoded.hops[0].purpose == "audit"
    assert all(h.run_id is None and h.purpose is None for h in decoded.hops[1:])


# --- the direct libsodium path ----------------------------------------------------------------


def _signed(key: AgentKey, message: bytes) -> bytes:
    return key.sign(message) + message


def test_direct_libsodium_verify_is_in_use() -> None:
    # pynacl's cffi module is present in every supported pynacl: the fast path must be live
    assert _keys.signed_ok is not _keys._nacl_signed_ok


def test_direct_libsodium_verify_accepts_only_the_signers_signature() -> None:
    msg = _format.HOP_DOMAIN + W1.hops[1].body
    good = _signed(A, msg)
    assert _keys.signed_ok(A.public, good)
    assert not _keys.signed_ok(B.public, good)  # another key
    assert not _keys.signed_ok(A.public, _signed(X, msg))  # forged by another key
    assert not _keys.signed_ok(A.public, good + b"x")  # message extended
    assert not _keys.signed_ok(A.public, good[:-1])  # message cut
    assert not _keys.signed_ok(A.public, bytes(64) + msg)  # zero signature
    assert not _keys.signed_ok(A.public, good[:63])  # shorter than a signature
    assert not _keys.signed_ok(A.public, b"")
    # keys of the wrong length or type are never handed to C unchecked
    assert not _keys.signed_ok(A.public[:31], good)
    assert not _keys.signed_ok(A.public + b"\x00", good)
    assert not _keys.signed_ok(bytearray(A.public), good)  # type: ignore[arg-type]
    assert not _keys.signed_ok("a" * 32, good)  # type: ignore[arg-type]
    assert not _keys.signed_ok(A.public, bytearray(good))  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 64 + 17 + 40 - 1), st.integers(1, 255))
def test_direct_libsodium_verify_rejects_any_byte_flip_like_pynacl(pos: int, mask: int) -> None:
    good = _signed(A, _format.HOP_DOMAIN + b"a hop body of forty bytes, give or take")
    bad = bytearray(good)
    bad[pos % len(good)] ^= mask
    assert not _keys.signed_ok(A.public, bytes(bad))
    assert not _keys._nacl_signed_ok(A.public, bytes(bad))


def test_forged_hop_rejected_through_the_direct_path_in_verify_and_verifier() -> None:
    forged = append(W1, X, R2, C.public, hop_id="t2")  # signed by X, not by B
    rejected("WARRANT_FORGED", lambda: check(forged.encode()))
    rejected("WARRANT_FORGED", lambda: Verifier(P.public, RUN).verify(forged.encode(), now=NOW))


# --- the cached per-call fast path ------------------------------------------------------------


@pytest.mark.parametrize("now", [float("nan"), float("inf"), float("-inf"), "1e9", None])
def test_cached_check_refuses_a_bad_clock(now: object) -> None:
    v = Verifier(P.public, RUN)
    token = W2.encode()
    assert v.check_cached(token, "read_file", {}, now=NOW) == R2  # cached from here on
    with pytest.raises(ValueError):
        v.check_cached(token, "read_file", {}, now=now)  # type: ignore[arg-type]


def test_cached_check_accepts_int_and_bool_clocks_like_the_slow_path() -> None:
    v = Verifier(P.public, RUN)
    token = W2.encode()
    assert v.check_cached(token, "read_file", {}, now=int(NOW)) == R2
    assert v.check_cached(token, "read_file", {}, now=int(NOW)) == R2  # cached
    # a bool clock is a (tiny) number to the slow path: the remit deadline is far off
    assert v.check_cached(token, "read_file", {}, now=True) == R2


def test_cached_check_expires_exactly_at_the_chains_expiry() -> None:
    v = Verifier(P.public, RUN)
    token = W2.encode()
    v.check_cached(token, "read_file", {}, now=NOW)
    rejected("WARRANT_EXPIRED", lambda: v.check_cached(token, "read_file", {}, now=EXP))


def test_cached_check_with_a_str_subclass_token() -> None:
    class Token(str):
        __slots__ = ()

    v = Verifier(P.public, RUN)
    token = W2.encode()
    v.check_cached(token, "read_file", {}, now=NOW)
    assert v.check_cached(Token(token), "read_file", {}, now=NOW) == R2
    rejected("WARRANT_MALFORMED", lambda: v.check_cached(b"x", "read_file", {}, now=NOW))  # type: ignore[arg-type]


def test_cached_check_still_denies_by_the_remit() -> None:
    v = Verifier(P.public, RUN)
    token = W1.encode()
    v.check_cached(token, "write_file", {"path": "out/a/x", "text": "t"}, now=NOW)
    with pytest.raises(DeniedError) as info:
        v.check_cached(token, "write_file", {"path": "out/b/x", "text": "t"}, now=NOW)
    assert "'out/b/x' is not within 'out/a/'" in info.value.message


# --- properties -----------------------------------------------------------------------------

_TOOLS = ("read_file", "write_file", "calc", "search")


@st.composite
def _chains(draw: st.DrawFn) -> tuple[Warrant, list[AgentKey], Remit]:
    depth = draw(st.integers(1, 5))
    root = Remit(
        tools={
            "read_file": {},
            "write_file": {"path": within("out/")},
            "calc": {"expression": max_len(200)},
            "search": {},
        },
        budget=Budget(calls=draw(st.integers(10, 1000)), cost_usd=draw(st.floats(0.1, 10))),
        deadline=EXP,
        depth=depth,
        principal="alice",
    )
    keys = [AgentKey.from_seed(bytes([i]) * 32) for i in range(1, depth + 2)]
    w = issue(P, run_id=RUN, remit=root, purpose="p", expires=EXP, holder_public=keys[0].public)
    remit_now = root
    for i in range(draw(st.integers(0, depth))):
        names = (
            draw(st.sets(st.sampled_from(sorted(remit_now.tools)))) if remit_now.tools else set()
        )
        tools: dict[str, Any] = {n: {} for n in names}
        if "write_file" in tools and draw(st.booleans()):
            tools["write_file"] = {"path": within(f"out/{'d/' * (i + 1)}")}
        calls = remit_now.budget.calls
        assert calls is not None
        child = remit_now.narrow(
            tools=tools if draw(st.booleans()) else None,
            budget=Budget(calls=draw(st.integers(0, calls))),
            deadline=draw(st.floats(NOW + 10, remit_now.deadline or EXP)),
        )
        w = w.delegate(
            keys[i],
            child,
            keys[i + 1].public,
            expires=draw(st.floats(NOW + 1, w.expires)),
            hop_id=f"t.{i}",
        )
        remit_now = child
    return w, keys, remit_now


@settings(max_examples=60, deadline=None)
@given(_chains())
def test_random_narrowing_chains_are_accepted(case: tuple[Warrant, list[AgentKey], Remit]) -> None:
    w, keys, effective = case
    token = w.encode()
    assert check(token) == effective
    assert Warrant.decode(token) == w
    holder = keys[w.depth - 1]
    v = Verifier(P.public, RUN)
    for tool in effective.tools:
        args = {"path": "out/d/d/d/d/d/x", "expression": "1+1"}
        if effective.allows(tool, args, now=NOW):
            proof = sign_call(holder, w, tool, args, nonce=tool.encode())
            assert v.check(token, proof, tool, args, now=NOW) == effective


_FLIP_TOKEN = W2.encode()
_FLIP_PAYLOAD = _format.b64decode(_FLIP_TOKEN)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, len(_FLIP_TOKEN) - 1),
    st.sampled_from(_format.B64_ALPHABET + "=+/!. \n"),
)
def test_any_character_flip_in_a_token_is_rejected(pos: int, char: str) -> None:
    if _FLIP_TOKEN[pos] == char:
        return
    bad = _FLIP_TOKEN[:pos] + char + _FLIP_TOKEN[pos + 1 :]
    with pytest.raises(WarrantError):
        check(bad)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(_FLIP_PAYLOAD) - 1), st.integers(1, 255))
def test_any_byte_flip_in_a_payload_is_rejected(pos: int, mask: int) -> None:
    data = bytearray(_FLIP_PAYLOAD)
    data[pos] ^= mask
    with pytest.raises(WarrantError):
        check(_b64(bytes(data)))


def test_module_doctests() -> None:
    # the examples are written against the public module: run each part's in its namespace
    for module in (wmod, _format, _keys, _hop, _chain, _verify, _calls, _verifier):
        assert doctest.testmod(module, extraglobs=vars(wmod)).failed == 0, module.__name__


def test_direct_libsodium_signing_equals_pynacls() -> None:
    """AgentKey signs and derives keys through libsodium directly; Ed25519 is
    deterministic, so every byte must equal what pynacl's public API produces."""
    import nacl.signing

    assert _keys._fast_signing is not None  # pyright: ignore[reportPrivateUsage]
    for i in range(20):
        seed = bytes([i]) * 32
        reference = nacl.signing.SigningKey(seed)
        key = AgentKey.from_seed(seed)
        assert key.public == bytes(reference.verify_key)
        message = b"hop body %d" % i * (i + 1)
        assert key.sign(message) == reference.sign(message).signature
    sign, keypair = _keys._fast_signing  # pyright: ignore[reportPrivateUsage]
    with pytest.raises(ValueError, match="64 bytes"):
        sign(b"m", b"short")
    with pytest.raises(ValueError, match="32 bytes"):
        keypair(b"x" * 31)
