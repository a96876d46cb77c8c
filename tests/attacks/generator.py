"""A seeded, deterministic generator of attacks on warrants, and of legitimate calls.

:func:`generate` builds random *scenarios* from ``random.Random(seed)``: a principal key,
a run id, a root remit over up to six tools (simple argument constraints, and a
``send_money`` tool with ordered forbid/allow rules including ``in_inputs``), and a
chain of 1 to 5 hops, each delegation narrowing the remit at random (tools dropped,
paths and URLs confined further, lengths and amounts lowered, payees removed or
forbidden, fallbacks made stricter, budget, deadline, depth and expiry lowered), with
an agent key per hop. Every scenario also has a *leaf*: one more hop with no
delegation depth left and an early remit deadline.

From each scenario it derives :class:`Attack` cases, one or more per category in
:data:`CATEGORIES`, each a thunk that makes the attempt through the public API
(:func:`~remit.trust.warrant.verify`, :class:`~remit.trust.warrant.Verifier`,
:meth:`~remit.trust.warrant.Warrant.decode`, :meth:`~remit.trust.warrant.Warrant.delegate`,
:func:`~remit.trust.warrant.sign_call`, :meth:`~remit.trust.warrant.CallProof.decode`) together
with the error code it must be refused with (and, where the library promises one, the
hop index, hop id or widened dimension); and :class:`Legit` cases, calls that must be
accepted with the expected effective remit.

What a hop allows is tracked by an :class:`Authority` model kept here, independently of
:meth:`Remit.check`: legitimate arguments and confused-deputy arguments are derived from
the model, so the verifier is checked against an oracle of its own.

Forged tokens are built the way an attacker would: on the bytes. :class:`RawChain` and
:class:`Fields` re-implement the token format documented in :mod:`remit.trust.warrant`
(the suite checks that they reproduce the library's tokens and proofs byte for byte,
so a rejection is never an artefact of a faulty forgery).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import random
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from remit.core.remit import Budget, Remit
from remit.errors import DeniedError, RemitError
from remit.policy import (
    Fallback,
    ToolGrant,
    allow,
    between,
    equals,
    forbid,
    in_inputs,
    matches,
    max_len,
    one_of,
    url_prefix,
    within,
)
from remit.trust.warrant import (
    MAX_HOPS,
    AgentKey,
    CallProof,
    MemoryNonceStore,
    Verifier,
    Warrant,
    call_digest,
    issue,
    sign_call,
    verify,
)

__all__ = [
    "CATEGORIES",
    "KNOWN_ISSUES",
    "LEGIT_CATEGORIES",
    "NOW",
    "Attack",
    "Authority",
    "Fields",
    "Legit",
    "Outcome",
    "RawChain",
    "RawHop",
    "Suite",
    "fingerprint",
    "forge_proof",
    "generate",
    "run_attack",
    "run_legit",
    "run_suite",
    "summarize",
]

#: the instant legitimate calls are made around (they use NOW to NOW + 600)
NOW = 1_800_000_000.0
#: every hop expires and every remit deadline (except the leaf's) falls after this
_FAR = NOW + 20_000
#: send_money's root layer forbids amounts from this one up
FORBID_AT = 1000

CATEGORIES: tuple[str, ...] = (
    "forged_signature",
    "tampered_remit",
    "tampered_field",
    "truncated_chain",
    "appended_by_non_holder",
    "broken_chain",
    "widening_tools",
    "widening_argument",
    "widening_budget",
    "widening_deadline",
    "widening_depth",
    "widening_rules",
    "widening_fallback",
    "widening_expires",
    "widening_principal",
    "expired_hop",
    "deadline_passed",
    "depth_exceeded",
    "replayed_nonce",
    "wrong_run",
    "revoked_hop",
    "confused_deputy",
    "foreign_proof",
    "wrong_digest",
    "empty_token",
    "garbage_token",
)

LEGIT_CATEGORIES: tuple[str, ...] = (
    "legit_holder",
    "legit_cold",
    "legit_leaf",
    "legit_nonce_per_hop",
    "legit_toolkit",
)

#: cases the library is known to get wrong, by key (none now: the three found by this
#: suite, non-str tokens to verify(), unhashable tokens to the Verifier and a NaN clock,
#: are fixed and tested in test_attacks.py)
KNOWN_ISSUES: dict[str, str] = {}

# --- the attacker's toolkit: the token format, re-implemented ----------------------------

HOP_DOMAIN = b"remit.trust.warrant.v1\x00"
CALL_DOMAIN = b"remit.call.v1\x00"
_ROOT_HEAD = struct.Struct(">B32sdBIHH")
_HOP_HEAD = struct.Struct(">B32s32sdBI")
_B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def b64(data: bytes) -> str:
    """Canonical base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def remit_bytes(remit: Remit) -> bytes:
    """A remit as signed: ``to_dict()`` as compact JSON with sorted keys."""
    return json.dumps(
        remit.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


@dataclass(frozen=True, slots=True)
class RawHop:
    """One hop as bytes: the signed body and its 64-byte signature."""

    body: bytes
    sig: bytes

    @property
    def link(self) -> bytes:
        """BLAKE2b-256 of body and signature: what the next hop and calls bind to."""
        return hashlib.blake2b(self.body + self.sig, digest_size=32).digest()

    def fields(self, *, root: bool) -> Fields:
        return Fields.parse(self.body, root=root)

    def resigned(self, key: AgentKey) -> RawHop:
        return RawHop(self.body, key.sign(HOP_DOMAIN + self.body))


@dataclass(frozen=True, slots=True)
class Fields:
    """The fields of a hop body (``prev`` is None for the root grant)."""

    holder: bytes
    expires: float
    hop_id: str
    remit_json: bytes
    prev: bytes | None = None
    run_id: str = ""
    purpose: str = ""

    def body(self) -> bytes:
        hid = self.hop_id.encode("utf-8")
        if self.prev is None:
            run, why = self.run_id.encode("utf-8"), self.purpose.encode("utf-8")
            head = _ROOT_HEAD.pack(
                1, self.holder, self.expires, len(hid), len(self.remit_json), len(run), len(why)
            )
            return head + hid + self.remit_json + run + why
        head = _HOP_HEAD.pack(
            2, self.prev, self.holder, self.expires, len(hid), len(self.remit_json)
        )
        return head + hid + self.remit_json

    def signed(self, key: AgentKey) -> RawHop:
        body = self.body()
        return RawHop(body, key.sign(HOP_DOMAIN + body))

    def with_sig(self, sig: bytes) -> RawHop:
        return RawHop(self.body(), sig)

    def but(self, **changes: Any) -> Fields:
        return dataclasses.replace(self, **changes)

    @classmethod
    def parse(cls, body: bytes, *, root: bool) -> Fields:
        if root:
            _, holder, expires, n_hid, n_remit, n_run, _ = _ROOT_HEAD.unpack_from(body)
            pos = _ROOT_HEAD.size
            hop_id = body[pos : pos + n_hid].decode()
            remit_json = body[pos + n_hid : pos + n_hid + n_remit]
            rest = body[pos + n_hid + n_remit :]
            return cls(
                holder,
                expires,
                hop_id,
                remit_json,
                None,
                rest[:n_run].decode(),
                rest[n_run:].decode(),
            )
        _, prev, holder, expires, n_hid, n_remit = _HOP_HEAD.unpack_from(body)
        pos = _HOP_HEAD.size
        hop_id = body[pos : pos + n_hid].decode()
        return cls(holder, expires, hop_id, body[pos + n_hid : pos + n_hid + n_remit], prev)


@dataclass(frozen=True, slots=True)
class RawChain:
    """A token as bytes: the principal key the token names and its hops."""

    principal: bytes
    hops: tuple[RawHop, ...]

    @classmethod
    def of(cls, token: str | Warrant) -> RawChain:
        data = unb64(token.encode() if isinstance(token, Warrant) else token)
        assert data[0] == 1, "not a version-1 token"
        principal, count, pos = data[1:33], data[33], 34
        hops: list[RawHop] = []
        for _ in range(count):
            (n,) = struct.unpack_from(">I", data, pos)
            hops.append(RawHop(data[pos + 4 : pos + 4 + n], data[pos + 4 + n : pos + 68 + n]))
            pos += 68 + n
        assert pos == len(data), "trailing bytes"
        return cls(principal, tuple(hops))

    def payload(self, *, count: int | None = None, version: int = 1) -> bytes:
        n = len(self.hops) if count is None else count
        parts = [bytes([version]), self.principal, bytes([n])]
        for h in self.hops:
            parts += (struct.pack(">I", len(h.body)), h.body, h.sig)
        return b"".join(parts)

    def token(self, *, count: int | None = None, version: int = 1) -> str:
        return b64(self.payload(count=count, version=version))

    def fields(self, k: int) -> Fields:
        return self.hops[k].fields(root=k == 0)

    def replace(self, k: int, hop: RawHop) -> RawChain:
        hops = list(self.hops)
        hops[k] = hop
        return RawChain(self.principal, tuple(hops))

    def prefix(self, n: int) -> RawChain:
        return RawChain(self.principal, self.hops[:n])

    def plus(self, *hops: RawHop) -> RawChain:
        return RawChain(self.principal, (*self.hops, *hops))

    def without(self, k: int) -> RawChain:
        return RawChain(self.principal, self.hops[:k] + self.hops[k + 1 :])


def call_message(run_id: str, link: bytes, hop_id: str, digest: bytes, nonce: bytes) -> bytes:
    """What a call proof signs (see ``remit.trust.warrant``): run, chain, hop, call, nonce."""
    run, hid = run_id.encode("utf-8"), hop_id.encode("utf-8")
    return b"".join(
        (
            CALL_DOMAIN,
            struct.pack(">H", len(run)),
            run,
            link,
            bytes([len(hid)]),
            hid,
            digest,
            bytes([len(nonce)]),
            nonce,
        )
    )


def forge_proof(
    key: AgentKey,
    run_id: str,
    chain: RawChain,
    tool: str,
    args: Mapping[str, object],
    nonce: bytes,
    *,
    hop_id: str | None = None,
) -> CallProof:
    """A call proof for ``chain``'s last hop signed by ``key``, whoever holds the hop."""
    last = chain.hops[-1]
    hid = chain.fields(len(chain.hops) - 1).hop_id if hop_id is None else hop_id
    digest = call_digest(tool, args)
    signature = key.sign(call_message(run_id, last.link, hid, digest, nonce))
    return CallProof(hid, digest, nonce, signature)


# --- cases and outcomes ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attack:
    """One attempt that must be refused with ``code`` (and the details that are not None)."""

    category: str
    variant: str
    attempt: Callable[[], object]
    code: str
    hop_index: int | None = None
    hop_id: str | None = None
    dimension: str | None = None
    #: a key of KNOWN_ISSUES if the library is known to get this case wrong
    known_issue: str | None = None


@dataclass(frozen=True, slots=True)
class Legit:
    """One legitimate call: ``attempt()`` must return ``expect`` (the effective remit)."""

    category: str
    variant: str
    attempt: Callable[[], Remit]
    expect: Remit


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one case did. ``verdict`` for an attack: ``right`` (refused with the expected
    code and details), ``wrong_detail`` (right code, another hop index/id/dimension),
    ``wrong_code`` (refused otherwise, or crashed) or ``accepted``; for a legitimate call:
    ``accepted`` or ``refused``."""

    category: str
    variant: str
    verdict: str
    expected: str
    seen: str
    detail: str = ""
    known_issue: str | None = None


def run_attack(case: Attack) -> Outcome:
    def out(verdict: str, seen: str, detail: str = "") -> Outcome:
        return Outcome(
            case.category, case.variant, verdict, case.code, seen, detail, case.known_issue
        )

    try:
        case.attempt()
    except RemitError as e:
        if e.code != case.code:
            return out("wrong_code", e.code, e.message)
        wrong = [
            f"{name}={got!r} (expected {want!r})"
            for name, want in (
                ("hop_index", case.hop_index),
                ("hop_id", case.hop_id),
                ("dimension", case.dimension),
            )
            if want is not None and (got := getattr(e, name, None)) != want
        ]
        if wrong:
            return out("wrong_detail", e.code, "; ".join(wrong) + f": {e.message}")
        return out("right", e.code)
    except Exception as e:  # a crash is never the right refusal
        return out("wrong_code", f"CRASH:{type(e).__name__}", repr(e))
    return out("accepted", "ACCEPTED")


def run_legit(case: Legit) -> Outcome:
    try:
        got = case.attempt()
    except Exception as e:
        seen = e.code if isinstance(e, RemitError) else f"CRASH:{type(e).__name__}"
        return Outcome(case.category, case.variant, "refused", "ACCEPTED", seen, str(e))
    if got != case.expect:
        return Outcome(case.category, case.variant, "refused", "ACCEPTED", "OTHER_REMIT", repr(got))
    return Outcome(case.category, case.variant, "accepted", "ACCEPTED", "ACCEPTED")


@dataclass
class Suite:
    seed: int
    scenarios: int
    attacks: list[Attack]
    legit: list[Legit]


def fingerprint(suite: Suite) -> str:
    """SHA-256 over every case's description: equal for equal generator arguments."""
    h = hashlib.sha256()
    for a in suite.attacks:
        h.update(repr((a.category, a.variant, a.code, a.hop_index, a.hop_id, a.dimension)).encode())
    for c in suite.legit:
        h.update(repr((c.category, c.variant, c.expect.to_dict())).encode())
    return h.hexdigest()


def run_suite(suite: Suite) -> tuple[list[Outcome], list[Outcome]]:
    return [run_attack(a) for a in suite.attacks], [run_legit(c) for c in suite.legit]


def summarize(outcomes: Iterable[Outcome]) -> dict[str, dict[str, int]]:
    """Per category: ``total`` and a count per verdict."""
    table: dict[str, dict[str, int]] = {}
    for o in outcomes:
        row = table.setdefault(o.category, {"total": 0})
        row["total"] += 1
        row[o.verdict] = row.get(o.verdict, 0) + 1
    return table


# --- the model of what a hop allows ------------------------------------------------------

ROOT_TOOLS = ("calc", "http_get", "read_file", "search", "send_money", "write_file")
_CORE = frozenset({"calc", "send_money", "write_file"})
_PAYEES = (
    "acme-corp",
    "bob@example.com",
    "carol@example.org",
    "dave.ltd",
    "erin@x.io",
    "frank",
    "grace@bank.example",
)
_EXPR = r"[0-9+*/() .-]+"


@dataclass(frozen=True, slots=True)
class Authority:
    """What one hop's remit allows, as this suite understands it (its own oracle)."""

    tools: frozenset[str]
    read_prefix: str
    write_prefix: str
    text_max: int
    calc_max: int
    search_max: int
    url: str
    payees: frozenset[str]
    blocked: frozenset[str]
    amount_max: int
    fallback: Fallback
    calls: int
    cost: float
    tokens: int
    deadline: float
    depth: int

    @property
    def usable_payees(self) -> list[str]:
        return sorted(self.payees - self.blocked)

    @property
    def amount_cap(self) -> int:
        """The largest amount a call may send (the root layer forbids FORBID_AT and up)."""
        return min(self.amount_max, FORBID_AT - 1)


def _root_remit(a: Authority, blocked_reason: str) -> Remit:
    tools: dict[str, Any] = {
        "read_file": {"path": within(a.read_prefix)},
        "write_file": {"path": within(a.write_prefix), "text": max_len(a.text_max)},
        "calc": {"expression": [max_len(a.calc_max), matches(_EXPR)]},
        "search": {"query": max_len(a.search_max)},
        "http_get": {"url": url_prefix(a.url)},
        "send_money": ToolGrant(
            "send_money",
            rules=[
                forbid(
                    {"amount": between(FORBID_AT, None)}, reason="large transfers need a person"
                ),
                forbid({"recipient": one_of(*sorted(a.blocked))}, reason=blocked_reason),
                allow({"recipient": in_inputs(), "amount": between(0, a.amount_max)}),
                allow({"recipient": one_of(*sorted(a.payees)), "amount": between(0, a.amount_max)}),
            ],
            fallback=a.fallback,
        ),
    }
    return Remit(
        tools={name: spec for name, spec in tools.items() if name in a.tools},
        budget=Budget(calls=a.calls, cost_usd=a.cost, input_tokens=a.tokens),
        deadline=a.deadline,
        depth=a.depth,
        principal="alice",
    )


def _words(rng: random.Random, n: int) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz      éü"
    return "".join(rng.choice(alphabet) for _ in range(n))


def _expression(rng: random.Random, n: int) -> str:
    """An arithmetic expression of exactly ``n`` (>= 1) characters matching _EXPR."""
    out = [rng.choice("0123456789")]
    while len(out) < n:
        out.append(rng.choice("0123456789+-*/ ()."))
    return "".join(out)


def legit_args(
    a: Authority, rng: random.Random, tool: str | None = None
) -> tuple[str, dict[str, Any]]:
    """A call the model says ``a`` allows (``tool`` or a random granted tool)."""
    tool = rng.choice(sorted(a.tools)) if tool is None else tool
    name = rng.choice(["a.md", "notes.txt", "x/y.json", "deep/er/file", "./z.csv"])
    args: dict[str, Any]
    if tool == "read_file":
        args = {"path": a.read_prefix + name}
    elif tool == "write_file":
        args = {
            "path": a.write_prefix + name,
            "text": _words(rng, rng.randint(0, min(a.text_max, 60))),
        }
    elif tool == "calc":
        args = {"expression": _expression(rng, rng.randint(1, min(a.calc_max, 30)))}
    elif tool == "search":
        args = {"query": _words(rng, rng.randint(0, min(a.search_max, 40)))}
    elif tool == "http_get":
        args = {"url": a.url + rng.choice(["", "items/7", "a/b?q=1"])}
    elif tool == "send_money":
        args = {"recipient": rng.choice(a.usable_payees), "amount": rng.randint(0, a.amount_cap)}
    else:
        raise AssertionError(tool)
    if rng.random() < 0.2:
        args["note"] = _words(rng, 5)  # an unconstrained argument
    return tool, args


def deputy_args(
    anc: Authority, last: Authority, rng: random.Random
) -> tuple[str, str, dict[str, Any]] | None:
    """(what, tool, args): a call ``anc`` allows and ``last`` does not, else None."""
    options: list[tuple[str, str, dict[str, Any]]] = []
    for tool in sorted(anc.tools - last.tools):
        options.append(("tool_not_granted", *legit_args(anc, rng, tool)))
    granted = anc.tools & last.tools
    if "write_file" in granted:
        if last.write_prefix != anc.write_prefix:
            _, args = legit_args(last, rng, "write_file")
            args["path"] = anc.write_prefix + rng.choice(["zz/x.md", "zz", "zz/q/r.txt"])
            options.append(("write_path", "write_file", args))
        if last.text_max < anc.text_max:
            _, args = legit_args(last, rng, "write_file")
            args["text"] = "t" * rng.randint(
                last.text_max + 1, min(anc.text_max, last.text_max + 80)
            )
            options.append(("write_text_length", "write_file", args))
    if "read_file" in granted and last.read_prefix != anc.read_prefix:
        options.append(("read_path", "read_file", {"path": anc.read_prefix + "zz/secret"}))
    if "calc" in granted and last.calc_max < anc.calc_max:
        n = rng.randint(last.calc_max + 1, min(anc.calc_max, last.calc_max + 40))
        options.append(("calc_length", "calc", {"expression": _expression(rng, n)}))
    if "search" in granted and last.search_max < anc.search_max:
        n = rng.randint(last.search_max + 1, min(anc.search_max, last.search_max + 40))
        options.append(("search_length", "search", {"query": "q" * n}))
    if "http_get" in granted and last.url != anc.url:
        options.append(("url", "http_get", {"url": anc.url + "zz/1"}))
    if "send_money" in granted:
        others = sorted(set(anc.usable_payees) - set(last.usable_payees))
        if others:
            args = {"recipient": rng.choice(others), "amount": rng.randint(0, last.amount_cap)}
            options.append(("payee", "send_money", args))
        if last.amount_cap < anc.amount_cap:
            amount = rng.randint(last.amount_cap + 1, anc.amount_cap)
            args = {"recipient": rng.choice(last.usable_payees), "amount": amount}
            options.append(("amount", "send_money", args))
    return rng.choice(options) if options else None


# --- scenarios ---------------------------------------------------------------------------


class Scenario:
    """A principal, a run, a chain of ``n`` hops (prefixes ``warrants[0..n-1]``) with
    a key, a remit and an :class:`Authority` per hop, and a leaf hop below the last."""

    def __init__(self, rng: random.Random, index: int) -> None:
        self.rng = rng
        self.index = index
        self.run_id = (
            rng.choice(["run-", "r/", "job:", "ŕun-"]) + str(index) + "-" + rng.randbytes(3).hex()
        )
        self.other_run = self.run_id + rng.choice(["x", "-2", " "])
        self.purpose = rng.choice(["audit src/", "pay the invoices", "", "résumé ✓"])
        self.principal = AgentKey.from_seed(rng.randbytes(32))
        self.attacker = AgentKey.from_seed(rng.randbytes(32))
        self.n = rng.randint(1, 5)
        self.keys = [AgentKey.from_seed(rng.randbytes(32)) for _ in range(self.n)]
        root_id = rng.choice(["root", f"r{index}", f"task-{index}"])
        self.hop_ids = [root_id] + [f"t{index}.{i}" for i in range(1, self.n)]
        self._ids = 0
        self._nonces = 0

        a = self._root_authority()
        self.root_reason = rng.choice(["blocked payee", "sanctioned"])
        self.models = [a]
        self.remits = [_root_remit(a, self.root_reason)]
        root_exp = NOW + rng.randint(30_000, 200_000)
        self.warrants = [
            issue(
                self.principal,
                run_id=self.run_id,
                remit=self.remits[0],
                purpose=self.purpose,
                expires=root_exp,
                holder_public=self.keys[0].public,
                hop_id=root_id,
            )
        ]
        for i in range(1, self.n):
            model, remit, expires = self._narrow(i, self.models[-1], self.remits[-1])
            w = self.warrants[-1].delegate(
                self.keys[i - 1],
                remit,
                self.keys[i].public,
                expires=expires,
                hop_id=self.hop_ids[i],
            )
            self.models.append(model)
            self.remits.append(remit)
            self.warrants.append(w)
        self.tokens = [w.encode() for w in self.warrants]
        self.raw = RawChain.of(self.tokens[-1])
        self.expiries = [h.expires for h in self.warrants[-1].hops]
        self._leaf: tuple[Warrant, AgentKey, Authority] | None = None
        self._leaf_remit: Remit | None = None
        self._other: Warrant | None = None

    # --- building -------------------------------------------------------------------------

    def _root_authority(self) -> Authority:
        rng = self.rng
        tools = set(_CORE) | {t for t in ROOT_TOOLS if t not in _CORE and rng.random() < 0.75}
        payees = frozenset(rng.sample(_PAYEES, rng.randint(3, 6)))
        return Authority(
            tools=frozenset(tools),
            read_prefix=rng.choice(["src/", "docs/", "data/in/"]),
            write_prefix=rng.choice(["out/", "build/out/", "tmp/job/"]),
            text_max=rng.randint(200, 5000),
            calc_max=rng.randint(40, 300),
            search_max=rng.randint(50, 500),
            url=rng.choice(["https://api.example.com/v1/", "https://data.example.org/"]),
            payees=payees,
            blocked=frozenset({rng.choice(_PAYEES)}),
            amount_max=rng.randint(300, 5000),
            fallback=rng.choice(("tell", "stop")),
            calls=rng.randint(50, 1000),
            cost=round(rng.uniform(0.5, 20.0), 2),
            tokens=rng.randint(10_000, 1_000_000),
            deadline=NOW + rng.randint(40_000, 200_000),
            depth=self.n + rng.randint(0, 2),
        )

    def _narrow(self, i: int, p: Authority, parent: Remit) -> tuple[Authority, Remit, float | None]:
        """Delegation ``i``: a random narrowing of ``p`` that leaves depth for the rest."""
        rng = self.rng
        kept = {t for t in sorted(p.tools) if t in _CORE or rng.random() < 0.75}
        specs: dict[str, Any] = {t: {} for t in kept}
        changes: dict[str, Any] = {"tools": frozenset(kept)}
        if "read_file" in kept and rng.random() < 0.5:
            changes["read_prefix"] = p.read_prefix + f"m{rng.randrange(8)}/"
            specs["read_file"] = {"path": within(changes["read_prefix"])}
        write: dict[str, Any] = {}
        if rng.random() < 0.6:
            changes["write_prefix"] = p.write_prefix + f"d{rng.randrange(8)}/"
            write["path"] = within(changes["write_prefix"])
        if p.text_max > 40 and rng.random() < 0.5:
            changes["text_max"] = rng.randint(p.text_max // 2, p.text_max - 1)
            write["text"] = max_len(changes["text_max"])
        specs["write_file"] = write
        if p.calc_max > 10 and rng.random() < 0.4:
            changes["calc_max"] = rng.randint(max(10, p.calc_max // 2), p.calc_max - 1)
            specs["calc"] = {"expression": max_len(changes["calc_max"])}
        if "search" in kept and p.search_max > 10 and rng.random() < 0.4:
            changes["search_max"] = rng.randint(max(10, p.search_max // 2), p.search_max - 1)
            specs["search"] = {"query": max_len(changes["search_max"])}
        if "http_get" in kept and rng.random() < 0.4:
            changes["url"] = p.url + f"r{rng.randrange(8)}/"
            specs["http_get"] = {"url": url_prefix(changes["url"])}
        rules: list[Any] = []
        usable = p.usable_payees
        if rng.random() < 0.6:
            subset = rng.sample(usable, rng.randint(1, len(usable)))
            amount = rng.randint(max(1, p.amount_max // 3), p.amount_max)
            if len(subset) >= 2 and rng.random() < 0.4:
                banned = rng.choice(subset)
                rules.append(forbid({"recipient": equals(banned)}, reason="not this one"))
                changes["blocked"] = p.blocked | {banned}
            rules.append(allow({"recipient": one_of(*subset), "amount": between(0, amount)}))
            changes["payees"] = p.payees & frozenset(subset)
            changes["amount_max"] = amount
        fallback: Fallback | None = None
        if p.fallback == "tell" and rng.random() < 0.3:
            fallback = changes["fallback"] = "stop"
        if rules or fallback:
            specs["send_money"] = ToolGrant("send_money", rules=rules or None, fallback=fallback)
        if not any(k in changes for k in ("read_prefix", "write_prefix", "text_max", "payees")):
            changes["write_prefix"] = p.write_prefix + f"d{rng.randrange(8)}/"
            write["path"] = within(changes["write_prefix"])
        budget = None
        if rng.random() < 0.6:
            changes["calls"] = rng.randint(p.calls // 2, p.calls)
            changes["cost"] = round(rng.uniform(p.cost / 2, p.cost), 2)
            changes["tokens"] = rng.randint(p.tokens // 2, p.tokens)
            budget = Budget(
                calls=changes["calls"], cost_usd=changes["cost"], input_tokens=changes["tokens"]
            )
        deadline = None
        if rng.random() < 0.5:
            deadline = changes["deadline"] = float(rng.randint(int(_FAR), int(p.deadline)))
        remaining = (self.n - 1) - i
        changes["depth"] = rng.randint(remaining + 1, p.depth - 1)
        remit = parent.narrow(tools=specs, budget=budget, deadline=deadline, depth=changes["depth"])
        expires = None
        if rng.random() < 0.5:
            expires = float(rng.randint(int(_FAR), int(self.warrants[-1].expires)))
        return dataclasses.replace(p, **changes), remit, expires

    # --- helpers ----------------------------------------------------------------------------

    def new_id(self, stem: str = "x") -> str:
        self._ids += 1
        return f"{stem}{self.index}.{self._ids}"

    def nonce(self) -> bytes:
        self._nonces += 1
        return b"n" + self._nonces.to_bytes(4, "big") + self.rng.randbytes(self.rng.randint(0, 20))

    def legit_now(self) -> float:
        return NOW + self.rng.uniform(0, 600)

    def verifier(self, **kw: Any) -> Verifier:
        return Verifier(self.principal.public, self.run_id, **kw)

    @property
    def leaf(self) -> tuple[Warrant, AgentKey, Authority]:
        """The full chain plus one hop with depth 0, an early deadline and a narrower path."""
        if self._leaf is None:
            last = self.models[-1]
            deadline = NOW + self.rng.randint(1_000, 10_000)
            prefix = last.write_prefix + "leaf/"
            remit = self.remits[-1].narrow(
                tools={
                    t: ({"path": within(prefix)} if t == "write_file" else {}) for t in last.tools
                },
                deadline=deadline,
                depth=0,
            )
            key = AgentKey.from_seed(self.rng.randbytes(32))
            w = self.warrants[-1].delegate(
                self.keys[-1], remit, key.public, hop_id=f"t{self.index}.leaf"
            )
            model = dataclasses.replace(last, depth=0, deadline=deadline, write_prefix=prefix)
            self._leaf, self._leaf_remit = (w, key, model), remit
        return self._leaf

    def remit(self, j: int) -> Remit:
        """The remit granted by hop ``j`` as built (j == n: the leaf's)."""
        if j < self.n:
            return self.remits[j]
        _ = self.leaf
        assert self._leaf_remit is not None
        return self._leaf_remit

    @property
    def other_run_root(self) -> Warrant:
        """A root grant by the same principal to the same first holder, for another run."""
        if self._other is None:
            self._other = issue(
                self.principal,
                run_id=self.other_run,
                remit=self.remits[0],
                purpose=self.purpose,
                expires=self.expiries[0],
                holder_public=self.keys[0].public,
                hop_id=self.hop_ids[0],
            )
        return self._other

    def chain(self, j: int) -> tuple[Warrant, str, AgentKey, Authority]:
        """Prefix ``j`` (0..n-1) or the leaf (j == n): warrant, token, holder key, model."""
        if j == self.n:
            w, key, model = self.leaf
            return w, w.encode(), key, model
        return self.warrants[j], self.tokens[j], self.keys[j], self.models[j]


# --- attacks -----------------------------------------------------------------------------


class _Attacks:
    """Builds the attack cases of one scenario."""

    def __init__(self, sc: Scenario) -> None:
        self.sc = sc
        self.rng = sc.rng
        self.p = sc.principal.public
        self.out: list[Attack] = []

    def add(
        self, category: str, variant: str, attempt: Callable[[], object], code: str, **kw: Any
    ) -> None:
        self.out.append(Attack(category, variant, attempt, code, **kw))

    def entry(
        self,
        token: str,
        *,
        proof: CallProof | None,
        tool: str,
        args: Mapping[str, object],
        now: float | None = None,
        kinds: tuple[str, ...] = ("verify", "check", "verifier", "cached"),
        warm: str | None = None,
        run_id: str | None = None,
    ) -> tuple[str, Callable[[], object]]:
        """A random way to present ``token``: verify(), Verifier.check/verify/check_cached;
        ``warm``: a token the verifier has verified before (its hops trusted)."""
        sc = self.sc
        kind = self.rng.choice(
            [
                k
                for k in kinds
                if (proof is not None or k != "check") and (warm is None or k != "verify")
            ]
        )
        at = sc.legit_now() if now is None else now
        run = sc.run_id if run_id is None else run_id
        p = self.p

        def go() -> object:
            v = Verifier(p, run)
            if warm is not None:
                v.verify(warm, now=NOW)
            if kind == "decode":
                return Warrant.decode(token)
            if kind == "verify":
                return verify(token, principal_public=p, run_id=run, now=at)
            if kind == "verifier":
                return v.verify(token, now=at)
            if kind == "cached":
                return v.check_cached(token, tool, args, now=at)
            assert proof is not None
            return v.check(token, proof, tool, args, now=at)

        return (kind if warm is None else f"warm_{kind}"), go

    # --- signatures and tampering ----------------------------------------------------------

    def forged_signature(self) -> None:
        sc, rng = self.sc, self.rng
        k = rng.randrange(sc.n)
        h = sc.raw.hops[k]
        signer = sc.principal if k == 0 else sc.keys[k - 1]
        variant = rng.choice(
            [
                "bit_flip",
                "attacker_key",
                "wrong_legit_key",
                "random_sig",
                "zero_sig",
                "root_by_attacker",
            ]
        )
        principal = sc.raw.principal
        if variant == "bit_flip":
            sig = bytearray(h.sig)
            sig[rng.randrange(64)] ^= 1 << rng.randrange(8)
            hop = RawHop(h.body, bytes(sig))
        elif variant == "attacker_key":
            hop = h.resigned(sc.attacker)
        elif variant == "wrong_legit_key":
            others = [key for key in [sc.principal, *sc.keys] if key.public != signer.public]
            hop = h.resigned(rng.choice(others))
        elif variant == "random_sig":
            hop = RawHop(h.body, rng.randbytes(64))
        elif variant == "zero_sig":
            hop = RawHop(h.body, bytes(64))
        else:  # the attacker issues its own root, naming itself or the real principal
            k, hop = 0, sc.raw.hops[0].resigned(sc.attacker)
            if rng.random() < 0.5:
                principal = sc.attacker.public
        chain = RawChain(principal, sc.raw.hops).replace(k, hop)
        tool, args = legit_args(sc.models[-1], rng)
        proof = forge_proof(sc.keys[-1], sc.run_id, chain, tool, args, sc.nonce())
        warm = sc.tokens[k - 1] if k > 0 and k == sc.n - 1 and rng.random() < 0.5 else None
        how, go = self.entry(chain.token(), proof=proof, tool=tool, args=args, warm=warm)
        self.add("forged_signature", f"{variant}/{how}", go, "WARRANT_FORGED", hop_index=k)

    def tampered_remit(self) -> None:
        sc, rng = self.sc, self.rng
        k = rng.randrange(sc.n)
        f = sc.raw.fields(k)
        remit = sc.remits[k]
        d = json.loads(remit_bytes(remit))
        variant = rng.choice(
            ["wider", "narrower", "reformatted", "garbage", "principal", "unrelated"]
        )
        if variant == "wider":
            d["tools"]["shell"] = {}
            d["depth"] = d["depth"] + 5
            d["budget"] = {}
            new = json.dumps(d, sort_keys=True, separators=(",", ":")).encode()
        elif variant == "narrower":
            d["tools"] = {name: spec for name, spec in d["tools"].items() if name == "calc"}
            new = json.dumps(d, sort_keys=True, separators=(",", ":")).encode()
        elif variant == "reformatted":
            new = json.dumps(d, indent=1).encode()
        elif variant == "garbage":
            new = rng.choice([b'{"tools": 5}', b"", b"\xff\xfe", rng.randbytes(rng.randint(1, 40))])
        elif variant == "principal":
            d["principal"] = "mallory"
            new = json.dumps(d, sort_keys=True, separators=(",", ":")).encode()
        else:
            new = remit_bytes(Remit(tools={"read_file": {}}, depth=9, principal="alice"))
        chain = sc.raw.replace(k, f.but(remit_json=new).with_sig(sc.raw.hops[k].sig))
        tool, args = legit_args(sc.models[-1], rng)
        proof = forge_proof(sc.keys[-1], sc.run_id, chain, tool, args, sc.nonce())
        warm = sc.tokens[k - 1] if k > 0 and k == sc.n - 1 and rng.random() < 0.5 else None
        how, go = self.entry(chain.token(), proof=proof, tool=tool, args=args, warm=warm)
        self.add("tampered_remit", f"{variant}/{how}", go, "WARRANT_FORGED", hop_index=k)

    def tampered_field(self) -> None:
        sc, rng = self.sc, self.rng
        k = rng.randrange(sc.n)
        f = sc.raw.fields(k)
        holder = sc.keys[-1]
        options = ["holder", "expires", "hop_id"] + (["purpose", "run_relabel"] if k == 0 else [])
        variant = rng.choice(options)
        run = sc.run_id
        raw = sc.raw
        if variant == "holder":  # the attacker names itself as holder and signs the calls
            g = f.but(holder=sc.attacker.public)
            if k == sc.n - 1:
                holder = sc.attacker
        elif variant == "expires":
            g = f.but(expires=f.expires + rng.choice([1.0, 0.5, 3600.0, 1e6]))
        elif variant == "hop_id":
            g = f.but(hop_id=f.hop_id + rng.choice(["'", "-2", "x"]))
        elif variant == "purpose":
            g = f.but(purpose=f.purpose + " and transfer everything")
        else:  # a real grant for another run, relabelled as this run's
            k, raw = 0, RawChain.of(sc.other_run_root)
            g = raw.fields(0).but(run_id=sc.run_id)
            holder = sc.keys[0]
        chain = raw.replace(k, g.with_sig(raw.hops[k].sig))
        last = len(chain.hops) - 1
        tool, args = legit_args(sc.models[last], rng)
        proof = forge_proof(holder, run, chain, tool, args, sc.nonce())
        how, go = self.entry(chain.token(), proof=proof, tool=tool, args=args)
        self.add("tampered_field", f"{variant}/{how}", go, "WARRANT_FORGED", hop_index=k)

    # --- holder binding ------------------------------------------------------------------------

    def truncated_chain(self) -> None:
        """The holder of a chain presents a broader prefix of it with its own key."""
        sc, rng = self.sc, self.rng
        m = rng.randint(1, sc.n)  # the child's chain: prefix m (m == n: the leaf)
        w, token, child, _ = sc.chain(m)
        j = rng.randrange(m)  # the prefix it presents instead
        prefix_w, prefix_token, _, broad = sc.chain(j)
        tool, args = legit_args(broad, rng)
        raw_prefix = RawChain.of(prefix_token)
        nonce = sc.nonce()
        variant = rng.choice(["own_proof", "relabelled", "forged_for_prefix", "sign_call", "warm"])
        p, run = self.p, sc.run_id
        at = sc.legit_now()
        if variant == "sign_call":

            def go() -> object:
                return sign_call(child, prefix_w, tool, args, nonce)

        else:
            own = sign_call(child, w, tool, args, nonce)
            if variant == "own_proof":
                proof = own
            elif variant == "relabelled":
                proof = CallProof(sc.chain(j)[0].hop_id, own.digest, own.nonce, own.signature)
            else:
                proof = forge_proof(child, run, raw_prefix, tool, args, nonce)
            ctool, cargs = legit_args(sc.chain(m)[3], rng)
            first = sign_call(child, w, ctool, cargs, sc.nonce())

            def go() -> object:
                v = Verifier(p, run)
                if variant == "warm":  # the child has used its own chain before
                    v.check(token, first, ctool, cargs, now=at)
                return v.check(prefix_token, proof, tool, args, now=at)

        self.add(
            "truncated_chain",
            f"{variant}/prefix_{j}_of_{m}",
            go,
            "WARRANT_NOT_HOLDER",
            hop_index=j,
        )

    def appended_by_non_holder(self) -> None:
        sc, rng = self.sc, self.rng
        j = rng.randrange(sc.n)
        w, token, _, _ = sc.chain(j)
        child_remit = sc.remits[j].narrow()
        new_holder = rng.choice([sc.attacker, AgentKey.from_seed(rng.randbytes(32))])
        signers = [
            ("attacker", sc.attacker),
            ("principal", sc.principal),
            ("new_holder", new_holder),
        ]
        signers += [(f"holder_{i}", k) for i, k in enumerate(sc.keys) if i != j]
        who, signer = rng.choice(signers)
        hop_id = sc.new_id()
        if rng.random() < 0.25:

            def go() -> object:
                return w.delegate(signer, child_remit, new_holder.public, hop_id=hop_id)

            self.add(
                "appended_by_non_holder",
                f"delegate_by_{who}",
                go,
                "WARRANT_NOT_HOLDER",
                hop_index=j + 1,
            )
            return
        raw = RawChain.of(token)
        f = Fields(
            holder=new_holder.public,
            expires=w.expires,
            hop_id=hop_id,
            remit_json=remit_bytes(child_remit),
            prev=raw.hops[-1].link,
        )
        chain = raw.plus(f.signed(signer))
        tool, args = legit_args(sc.models[j], rng)
        proof = forge_proof(new_holder, sc.run_id, chain, tool, args, sc.nonce())
        warm = token if rng.random() < 0.4 else None
        how, go = self.entry(chain.token(), proof=proof, tool=tool, args=args, warm=warm)
        self.add(
            "appended_by_non_holder",
            f"signed_by_{who}/{how}",
            go,
            "WARRANT_FORGED",
            hop_index=j + 1,
        )

    def broken_chain(self) -> None:
        sc, rng = self.sc, self.rng
        n = sc.n
        options = ["duplicate_id"]
        if n >= 2:
            options += ["prev_resigned", "prev_unsigned", "grafted_root", "warm_tamper", "splice"]
        if n >= 3:
            options += ["drop_middle", "swap"]
        variant = rng.choice(options)
        raw = sc.raw
        holder = sc.keys[-1]
        if variant == "duplicate_id":  # validly signed by the holder, reusing an ancestor's id
            k = n
            f = Fields(
                holder=sc.attacker.public,
                expires=sc.expiries[-1],
                hop_id=rng.choice(sc.hop_ids),
                remit_json=remit_bytes(sc.remits[-1].narrow()),
                prev=raw.hops[-1].link,
            )
            chain = raw.plus(f.signed(sc.keys[-1]))
            holder = sc.attacker
        elif variant in ("prev_resigned", "prev_unsigned"):
            k = rng.randint(1, n - 1)
            f = raw.fields(k).but(prev=rng.randbytes(32))
            if variant == "prev_resigned":  # its legitimate signer re-signs the altered link
                hop = f.signed(sc.keys[k - 1])
            else:
                hop = f.with_sig(raw.hops[k].sig)
            chain = raw.replace(k, hop)
        elif variant == "grafted_root":  # the real delegations under another root by P
            k = 1
            root = raw.fields(0).but(hop_id=sc.hop_ids[0] + "-b", purpose="other")
            chain = raw.replace(0, root.signed(sc.principal))
        elif variant == "warm_tamper":  # a verifier trusting the real chain sees hop k altered
            k0 = rng.randrange(n - 1)
            k = k0 + 1
            f = raw.fields(k0).but(remit_json=remit_bytes(Remit(tools={"shell": {}}, depth=9)))
            chain = raw.replace(k0, f.with_sig(raw.hops[k0].sig))
        elif variant == "splice":
            # A sibling chain forks at hop k0 + 1 (same holders, another grant); the hop
            # below the sibling's is put below this chain's hop k0 + 1.
            k0 = rng.randrange(n - 1)
            k = k0 + 2
            sibling = Fields(
                holder=sc.keys[k0 + 1].public,
                expires=sc.expiries[k0],
                hop_id=sc.new_id("s"),
                remit_json=remit_bytes(sc.remits[k0].narrow()),
                prev=raw.hops[k0].link,
            ).signed(sc.keys[k0])
            below = Fields(
                holder=sc.attacker.public,
                expires=sc.expiries[k0],
                hop_id=sc.new_id("s"),
                remit_json=remit_bytes(sc.remits[k0 + 1].narrow()),
                prev=sibling.link,
            ).signed(sc.keys[k0 + 1])
            chain = raw.prefix(k0 + 2).plus(below)
            holder = sc.attacker
        elif variant == "drop_middle":
            k = rng.randint(1, n - 2)
            chain = raw.without(k)
        else:  # swap two adjacent delegations
            k = rng.randint(1, n - 2)
            hops = list(raw.hops)
            hops[k], hops[k + 1] = hops[k + 1], hops[k]
            chain = RawChain(raw.principal, tuple(hops))
        last = min(len(chain.hops) - 1, n - 1)
        tool, args = legit_args(sc.models[last], rng)
        proof = forge_proof(holder, sc.run_id, chain, tool, args, sc.nonce())
        warm = sc.tokens[-1] if variant == "warm_tamper" else None
        how, go = self.entry(chain.token(), proof=proof, tool=tool, args=args, warm=warm)
        self.add("broken_chain", f"{variant}/{how}", go, "WARRANT_BROKEN_CHAIN", hop_index=k)

    # --- widening ------------------------------------------------------------------------------

    def _wider(self, dim: str, k: int) -> tuple[Remit, float | None, str, str]:
        """(remit, expires, dimension, how): a hop at position k wider than hop k - 1 in dim."""
        sc, rng = self.sc, self.rng
        parent, model = sc.remits[k - 1], sc.models[k - 1]
        base = parent.narrow()  # within the parent in every dimension
        d = json.loads(remit_bytes(base))
        expires = None
        if dim == "tools":
            name = rng.choice(
                ["shell", "delete_everything", *[t for t in ROOT_TOOLS if t not in model.tools]]
            )
            d["tools"][name] = rng.choice([{}, {"cmd": {"max_len": 10}}])
            dimension, how = f"tools.{name}", name
        elif dim == "argument":
            options: list[tuple[str, str, Any]] = []
            if "write_file" in model.tools:
                options += [
                    (
                        "write_file",
                        "path",
                        {
                            "within": rng.choice(
                                ["/", ".", model.write_prefix.split("/")[0] + "/.."]
                            )
                        },
                    ),
                    ("write_file", "path", None),
                    ("write_file", "text", {"max_len": model.text_max + rng.randint(1, 10**6)}),
                    ("write_file", "text", None),
                ]
            if "calc" in model.tools:
                options.append(("calc", "expression", {"max_len": model.calc_max}))
            if "read_file" in model.tools:
                options.append(("read_file", "path", {"within": "/"}))
            if "http_get" in model.tools:
                host_root = "/".join(model.url.split("/")[:3]) + "/"
                urls = ["https://evil.example/", "http" + model.url.removeprefix("https")]
                urls += [host_root] if host_root != model.url else []
                options.append(("http_get", "url", {"url_prefix": rng.choice(urls)}))
            if "search" in model.tools:
                options.append(("search", "query", {"max_len": model.search_max + 1}))
            tool, arg, spec = rng.choice(options)
            if spec is None:
                del d["tools"][tool][arg]
            else:
                d["tools"][tool][arg] = spec
            dimension, how = f"tools.{tool}.{arg}", f"{tool}.{arg}" + ("" if spec else "_dropped")
        elif dim == "budget":
            name = rng.choice(["calls", "cost_usd", "input_tokens"])
            if rng.random() < 0.3:
                del d["budget"][name]
                how = f"{name}_unlimited"
            else:
                d["budget"][name] = d["budget"][name] + rng.choice([1, 2, 1000])
                how = name
            dimension = f"budget.{name}"
        elif dim == "deadline":
            if rng.random() < 0.3:
                del d["deadline"]
                how = "none"
            else:
                d["deadline"] = d["deadline"] + rng.choice([0.5, 1, 3600, 10**6])
                how = "later"
            dimension = "deadline"
        elif dim == "depth":
            d["depth"] = parent.depth + rng.randint(0, 5)
            dimension, how = "depth", f"+{d['depth'] - base.depth}"
        elif dim == "rules":
            spec = d["tools"]["send_money"]
            layers = spec.pop("layers", None) or [spec.pop("rules")]
            how = rng.choice(
                ["drop_forbid", "allow_all", "raise_threshold"]
                + (["drop_child_layer"] if len(layers) > 1 else [])
            )
            if how == "drop_forbid":
                layers[0] = layers[0][1:]
            elif how == "allow_all":
                layers = [[{"allow": {}}]]
            elif how == "raise_threshold":
                layers[0][0] = {"forbid": {"amount": {"between": {"min": FORBID_AT * 10}}}}
            else:  # the newest layer (no older layer is within it, or it was not added)
                del layers[-1]
            spec["layers"] = layers
            dimension = "tools.send_money.rules"
        elif dim == "fallback":
            laxer = {"tell": ["ask"], "stop": ["ask", "tell"]}[model.fallback]
            d["tools"]["send_money"]["fallback"] = how = rng.choice(laxer)
            dimension = "tools.send_money.fallback"
        elif dim == "expires":
            expires = sc.expiries[k - 1] + rng.choice([0.001, 1.0, 86_400.0])
            dimension, how = "expires", "later"
        else:
            d["principal"] = how = rng.choice(["mallory", "Alice", "alice ", "root"])
            dimension = "principal"
        return Remit.from_dict(d), expires, dimension, how

    def widening(self, dim: str) -> None:
        sc, rng = self.sc, self.rng
        k = rng.randint(1, sc.n)  # position of the wider hop; its parent is hop k - 1
        wider, expires, dimension, how = self._wider(dim, k)
        signer = sc.keys[k - 1]
        child = AgentKey.from_seed(rng.randbytes(32))
        hop_id = sc.new_id("w")
        category = f"widening_{dim}"
        if rng.random() < 0.4:  # delegate() refuses to sign it
            w = sc.warrants[k - 1]

            def go() -> object:
                return w.delegate(signer, wider, child.public, expires=expires, hop_id=hop_id)

            self.add(
                category,
                f"delegate/{how}",
                go,
                "WARRANT_WIDENING",
                hop_index=k,
                dimension=dimension,
            )
            return
        # the holder of hop k - 1 signs the wider hop itself; the chain may go on below it
        raw = sc.raw.prefix(k)
        f = Fields(
            holder=child.public,
            expires=sc.expiries[k - 1] if expires is None else expires,
            hop_id=hop_id,
            remit_json=remit_bytes(wider),
            prev=raw.hops[-1].link,
        )
        chain = raw.plus(f.signed(signer))
        holder = child
        if wider.depth >= 1 and rng.random() < 0.3:  # laundered through a narrowing below
            holder = AgentKey.from_seed(rng.randbytes(32))
            below = Fields(
                holder=holder.public,
                expires=f.expires,
                hop_id=sc.new_id("w"),
                remit_json=remit_bytes(wider.narrow()),
                prev=chain.hops[-1].link,
            )
            chain = chain.plus(below.signed(child))
            how += "+laundered"
        tool, args = legit_args(sc.models[k - 1], rng)
        proof = forge_proof(holder, sc.run_id, chain, tool, args, sc.nonce())
        warm = sc.tokens[k - 1] if rng.random() < 0.3 else None
        entry, go = self.entry(chain.token(), proof=proof, tool=tool, args=args, warm=warm)
        self.add(
            category,
            f"signed/{how}/{entry}",
            go,
            "WARRANT_WIDENING",
            hop_index=k,
            dimension=dimension,
        )

    # --- time, depth, run ---------------------------------------------------------------------

    def expired_hop(self) -> None:
        sc, rng = self.sc, self.rng
        j = rng.randrange(sc.n)
        w, token, holder, model = sc.chain(j)
        exps = sc.expiries[: j + 1]
        t = rng.randrange(j + 1)
        now = exps[t] + rng.choice([0.0, 0.0, 1e-3, rng.uniform(0, 50_000)])
        first = min(i for i, e in enumerate(exps) if e <= now)
        tool, args = legit_args(model, rng)
        proof = sign_call(holder, w, tool, args, sc.nonce())
        if rng.random() < 0.3:  # cached while valid, then time passes
            p, run = self.p, sc.run_id
            early = sign_call(holder, w, tool, args, sc.nonce())

            def go() -> object:
                v = Verifier(p, run)
                v.check(token, early, tool, args, now=NOW)
                return v.check(token, proof, tool, args, now=now)

            self.add("expired_hop", "cached", go, "WARRANT_EXPIRED")
            return
        how, go = self.entry(token, proof=proof, tool=tool, args=args, now=now)
        self.add("expired_hop", how, go, "WARRANT_EXPIRED", hop_index=first)

    def deadline_passed(self) -> None:
        sc, rng = self.sc, self.rng
        w, key, model = sc.leaf
        token = w.encode()

        now = model.deadline + rng.choice([0.0, 1e-3, rng.uniform(0, 5_000)])
        tool, args = legit_args(model, rng)
        proof = sign_call(key, w, tool, args, sc.nonce())
        early = sign_call(key, w, tool, args, sc.nonce())
        warm = rng.random() < 0.3
        kind = rng.choice(["check", "cached"])
        p, run = self.p, sc.run_id

        def go() -> object:
            v = Verifier(p, run)
            if warm:
                v.check(token, early, tool, args, now=NOW)
            if kind == "cached":
                return v.check_cached(token, tool, args, now=now)
            return v.check(token, proof, tool, args, now=now)

        self.add("deadline_passed", ("warm_" if warm else "") + kind, go, "DEADLINE")

    def depth_exceeded(self) -> None:
        sc, rng = self.sc, self.rng
        w, key, model = sc.leaf  # depth 0
        k = len(w.hops)
        variant = rng.choice(["delegate", "signed", "signed", "count_lie", "root_depth_0"])
        child = AgentKey.from_seed(rng.randbytes(32))
        hop_id = sc.new_id("d")
        if variant == "delegate":
            remit = w.remit

            def go() -> object:
                return w.delegate(key, remit, child.public, hop_id=hop_id)

            self.add("depth_exceeded", variant, go, "WARRANT_DEPTH", hop_index=k)
            return
        if variant == "count_lie":  # a header claiming more hops than MAX_HOPS
            count = rng.randint(MAX_HOPS + 1, 255)
            token = RawChain.of(w).token(count=count)
            tool, args = legit_args(model, rng)
            proof = sign_call(key, w, tool, args, sc.nonce())
            kinds = ("verify", "check", "verifier", "cached", "decode")
            how, go = self.entry(token, proof=proof, tool=tool, args=args, kinds=kinds)
            self.add("depth_exceeded", f"{variant}/{how}", go, "WARRANT_DEPTH", hop_index=MAX_HOPS)
            return
        if variant == "root_depth_0":  # a root grant with no depth, delegated from anyway
            d = json.loads(remit_bytes(sc.remits[0]))
            d["depth"] = 0
            root_remit = Remit.from_dict(d)
            root = issue(
                sc.principal,
                run_id=sc.run_id,
                remit=root_remit,
                purpose=sc.purpose,
                expires=sc.expiries[0],
                holder_public=sc.keys[0].public,
                hop_id=sc.new_id("root"),
            )
            raw, signer, parent_remit, k, model = (
                RawChain.of(root),
                sc.keys[0],
                root_remit,
                1,
                sc.models[0],
            )
        else:
            raw, signer, parent_remit = RawChain.of(w), key, w.remit
        f = Fields(
            holder=child.public,
            expires=raw.fields(len(raw.hops) - 1).expires,
            hop_id=hop_id,
            remit_json=remit_bytes(parent_remit),  # depth 0 as well: only depth is wrong
            prev=raw.hops[-1].link,
        )
        chain = raw.plus(f.signed(signer))
        tool, args = legit_args(model, rng)
        proof = forge_proof(child, sc.run_id, chain, tool, args, sc.nonce())
        how, go = self.entry(chain.token(), proof=proof, tool=tool, args=args, now=NOW)
        self.add("depth_exceeded", f"{variant}/{how}", go, "WARRANT_DEPTH", hop_index=k)

    def wrong_run(self) -> None:
        sc, rng = self.sc, self.rng
        variant = rng.choice(["verify_other_run", "verifier_other_run", "other_runs_token"])
        p = self.p
        if variant == "other_runs_token":  # P's real grant for another run, shown to this run
            w, token, holder, model = (
                sc.other_run_root,
                sc.other_run_root.encode(),
                sc.keys[0],
                sc.models[0],
            )
            run = sc.run_id
        else:
            j = rng.randint(0, sc.n)
            w, token, holder, model = sc.chain(j)
            run = sc.other_run
        tool, args = legit_args(model, rng)
        proof = sign_call(holder, w, tool, args, sc.nonce())
        if variant == "verify_other_run":
            at = sc.legit_now()

            def go() -> object:
                return verify(token, principal_public=p, run_id=run, now=at)

            how = "verify"
        else:
            how, go = self.entry(token, proof=proof, tool=tool, args=args, run_id=run)
        self.add("wrong_run", f"{variant}/{how}", go, "WARRANT_WRONG_RUN", hop_index=0)

    def revoked_hop(self) -> None:
        sc, rng = self.sc, self.rng
        j = rng.randint(0, sc.n)  # chain presented (n: the leaf)
        w, token, holder, model = sc.chain(j)
        t = rng.randint(0, j)  # hop revoked
        hop_id = w.hops[t].hop_id
        tool, args = legit_args(model, rng)
        proof = sign_call(holder, w, tool, args, sc.nonce())
        early = sign_call(holder, w, tool, args, sc.nonce())
        variant = rng.choice(
            ["verify", "verifier_cold", "revoke_after_cache", "shared_set", "descendant"]
        )
        p, run, at = self.p, sc.run_id, sc.legit_now()
        index: int | None = t
        if variant == "verify":

            def go() -> object:
                return verify(token, principal_public=p, run_id=run, now=at, revoked={hop_id})

        elif variant == "verifier_cold":

            def go() -> object:
                return Verifier(p, run, revoked={hop_id}).check(token, proof, tool, args, now=at)

        elif variant in ("revoke_after_cache", "shared_set"):
            index = None  # a cached chain's refusal names the hop id only

            def go() -> object:
                revoked: set[str] = set()
                v = Verifier(p, run, revoked=revoked)
                v.check(token, early, tool, args, now=NOW)
                if variant == "shared_set":
                    revoked.add(hop_id)
                else:
                    v.revoke(hop_id)
                return v.check(token, proof, tool, args, now=at)

        else:  # an ancestor's chain verified and cached, then revoked; a descendant shows up
            ancestor = sc.chain(t)[1]

            def go() -> object:
                v = Verifier(p, run)
                v.verify(ancestor, now=NOW)
                v.revoke(hop_id)
                return v.check(token, proof, tool, args, now=at)

        self.add(
            "revoked_hop",
            f"{variant}/hop_{t}_of_{j}",
            go,
            "WARRANT_REVOKED",
            hop_index=index,
            hop_id=hop_id,
        )

    # --- calls ------------------------------------------------------------------------------

    def replayed_nonce(self) -> None:
        sc, rng = self.sc, self.rng
        j = rng.randint(0, sc.n)
        w, token, holder, model = sc.chain(j)
        tool, args = legit_args(model, rng)
        nonce = sc.nonce()
        proof = sign_call(holder, w, tool, args, nonce)
        tool2, args2 = legit_args(model, rng)
        again = sign_call(holder, w, tool2, args2, nonce)  # another call, the same nonce
        variant = rng.choice(
            ["same_proof", "same_nonce_new_call", "shared_store", "after_denial", "after_eviction"]
        )
        p, run, at = self.p, sc.run_id, sc.legit_now()
        other = sc.tokens[0] if j > 0 else sc.leaf[0].encode()
        denied = sign_call(holder, w, "shell", {"cmd": "rm -rf /"}, nonce)

        def go() -> object:
            store = MemoryNonceStore()
            v = Verifier(
                p, run, nonces=store, max_entries=1 if variant == "after_eviction" else 10_000
            )
            if variant == "after_denial":  # a refused call spends its nonce too
                try:
                    v.check(token, denied, "shell", {"cmd": "rm -rf /"}, now=at)
                except DeniedError:
                    pass
                else:
                    raise AssertionError("setup: a call to an ungranted tool was accepted")
            else:
                v.check(token, proof, tool, args, now=at)
            if variant == "shared_store":  # e.g. after a restart, on the same journal
                v = Verifier(p, run, nonces=store)
            elif variant == "after_eviction":  # the chain left the cache; nonces did not
                v.verify(other, now=at)
            if variant == "same_nonce_new_call":
                return v.check(token, again, tool2, args2, now=at)
            return v.check(token, proof, tool, args, now=at)

        self.add("replayed_nonce", variant, go, "WARRANT_REPLAY", hop_index=j, hop_id=w.hop_id)

    def confused_deputy(self) -> None:
        sc, rng = self.sc, self.rng
        j = rng.randint(1, sc.n)
        w, token, holder, model = sc.chain(j)
        anc = rng.randrange(j)
        found = deputy_args(sc.chain(anc)[3], model, rng)
        if found is None:
            j, anc = sc.n, rng.randrange(sc.n)  # the leaf always narrows the write path
            w, token, holder, model = sc.chain(j)
            found = deputy_args(sc.chain(anc)[3], model, rng)
            assert found is not None
        what, tool, args = found
        proof = sign_call(holder, w, tool, args, sc.nonce())
        ltool, largs = legit_args(model, rng)
        early = sign_call(holder, w, ltool, largs, sc.nonce())
        kind = rng.choice(["check", "check", "cached", "warm_check"])
        p, run, at = self.p, sc.run_id, sc.legit_now()

        def go() -> object:
            v = Verifier(p, run)
            if kind == "warm_check":  # its own legitimate call first
                v.check(token, early, ltool, largs, now=at)
            if kind == "cached":
                return v.check_cached(token, tool, args, now=at)
            return v.check(token, proof, tool, args, now=at)

        self.add("confused_deputy", f"{what}/hop_{anc}_of_{j}/{kind}", go, "DENIED")

    def foreign_proof(self) -> None:
        sc, rng = self.sc, self.rng
        j = rng.randint(0, sc.n)
        w, token, holder, model = sc.chain(j)
        raw = RawChain.of(token)
        tool, args = legit_args(model, rng)
        nonce = sc.nonce()
        others = [("attacker", sc.attacker), ("principal", sc.principal)]
        others += [(f"holder_{i}", k) for i, k in enumerate(sc.keys) if k.public != holder.public]
        variant = rng.choice(
            [
                "signed_by_other",
                "signed_by_other",
                "other_run",
                "bad_nonce_length",
                "random_sig",
                "ancestor_hop_id",
            ]
        )
        if variant == "signed_by_other":
            who, key = rng.choice(others)
            proof = forge_proof(key, sc.run_id, raw, tool, args, nonce)
            variant = f"signed_by_{who}"
        elif variant == "other_run":
            if j == 0 and rng.random() < 0.5:  # made for the same holder's grant in another run
                proof = sign_call(holder, sc.other_run_root, tool, args, nonce)
            else:
                proof = forge_proof(holder, sc.other_run, raw, tool, args, nonce)
        elif variant == "bad_nonce_length":  # rightly signed, but a nonce of 0 or 65 bytes
            bad = rng.choice([b"", b"n" * 65, bytes(200)])
            digest = call_digest(tool, args)
            sig = holder.sign(
                call_message(sc.run_id, raw.hops[-1].link, w.hop_id, digest, bad[:255])
            )
            proof = CallProof(w.hop_id, digest, bad, sig)
        elif variant == "random_sig":
            good = sign_call(holder, w, tool, args, nonce)
            proof = CallProof(good.hop_id, good.digest, good.nonce, rng.randbytes(64))
        else:
            if j == 0:
                proof = CallProof("not-" + w.hop_id, call_digest(tool, args), nonce, bytes(64))
            else:
                proof = forge_proof(
                    holder,
                    sc.run_id,
                    raw,
                    tool,
                    args,
                    nonce,
                    hop_id=w.hops[rng.randrange(j)].hop_id,
                )
        _, go = self.entry(token, proof=proof, tool=tool, args=args, kinds=("check",))
        self.add("foreign_proof", variant, go, "WARRANT_NOT_HOLDER", hop_index=j, hop_id=w.hop_id)

    def wrong_digest(self) -> None:
        sc, rng = self.sc, self.rng
        j = rng.randint(0, sc.n)
        w, token, holder, model = sc.chain(j)
        tool, args = legit_args(model, rng)
        variant = rng.choice(
            ["other_args", "other_tool", "type_confusion", "extra_arg", "not_json", "unicode_form"]
        )
        index: int | None = j
        call_tool, call_args = tool, dict(args)
        if variant == "other_args":
            while call_args == args:
                call_tool, call_args = legit_args(model, rng, tool)
        elif variant == "other_tool":
            call_tool = rng.choice(sorted(set(ROOT_TOOLS) - {tool}))
        elif variant == "type_confusion":
            tool, args = "send_money", {"recipient": "bob", "amount": rng.choice([0, 1, 5])}
            call_tool = tool
            call_args = dict(
                args,
                amount=rng.choice(
                    [float(args["amount"]), str(args["amount"])]
                    + ([bool(args["amount"])] if args["amount"] in (0, 1) else [])
                ),
            )
        elif variant == "extra_arg":
            call_args["extra"] = rng.choice([None, "", 0, [], {}])
        elif variant == "not_json":
            index = None  # refused while digesting the call, before any hop is consulted
            call_args["blob"] = rng.choice([b"bytes", float("nan"), {1, 2}, object(), float("inf")])
        else:
            tool, args = "search", {"query": "café"}
            call_tool, call_args = tool, {"query": "cafe\u0301"}
        proof = sign_call(holder, w, tool, args, sc.nonce())
        _, go = self.entry(token, proof=proof, tool=call_tool, args=call_args, kinds=("check",))
        self.add("wrong_digest", variant, go, "WARRANT_DIGEST", hop_index=index)

    # --- junk ------------------------------------------------------------------------------

    def empty_token(self) -> None:
        sc, rng = self.sc, self.rng
        kind = rng.choice(["decode", "verify", "check", "verifier", "cached", "proof_decode"])
        tool, args = legit_args(sc.models[-1], rng)
        proof = sign_call(sc.keys[-1], sc.warrants[-1], tool, args, sc.nonce())
        if kind == "proof_decode":

            def go() -> object:
                return CallProof.decode("")

        else:
            _, go = self.entry("", proof=proof, tool=tool, args=args, kinds=(kind,))
        self.add("empty_token", kind, go, "WARRANT_MALFORMED")

    def garbage_token(self) -> None:
        sc, rng = self.sc, self.rng
        j = rng.randint(0, sc.n)
        w, token, holder, model = sc.chain(j)
        data = unb64(token)
        variant = rng.choice(
            [
                "noise_text",
                "random_bytes",
                "header_then_noise",
                "zero_hops",
                "cut_text",
                "cut_bytes",
                "extra_bytes",
                "padding",
                "std_alphabet",
                "stray_bits",
                "version",
                "json",
                "jwt",
                "length_fields",
                "kind_byte",
                "non_finite_expiry",
                "empty_hop_id",
                "non_utf8_hop_id",
                "non_str",
                "proof_noise",
            ]
        )
        bad: Any
        if variant == "noise_text":
            junk = "".join(
                rng.choice(_B64URL + "!@#$%^&*() .=+/\n\t~é✓") for _ in range(rng.randint(1, 200))
            )
            bad = junk + rng.choice(["!", " ", "=", "+", "/", ".", "é"])
            pos = rng.randrange(len(bad))
            bad = bad[pos:] + bad[:pos]
        elif variant == "random_bytes":
            raw = bytearray(rng.randbytes(rng.randint(1, 400)))
            raw[0] = rng.choice([b for b in range(256) if b != 1])
            bad = b64(bytes(raw))
        elif variant == "header_then_noise":
            tail = bytearray(rng.randbytes(rng.randint(4, 300)))
            tail[0] = rng.randint(1, 255)  # the first hop claims >= 16 MiB
            bad = b64(
                bytes([1]) + sc.principal.public + bytes([rng.randint(1, MAX_HOPS)]) + bytes(tail)
            )
        elif variant == "zero_hops":
            bad = b64(
                bytes([1]) + sc.principal.public + bytes([0]) + rng.randbytes(rng.randint(0, 30))
            )
        elif variant == "cut_text":
            bad = token[: rng.randrange(len(token))]
            if not bad:
                bad = token[:1]
        elif variant == "cut_bytes":
            bad = b64(data[: rng.randrange(1, len(data))])
        elif variant == "extra_bytes":
            bad = b64(data + rng.randbytes(rng.randint(1, 70)))
        elif variant == "padding":
            bad = token + rng.choice(["=", "==", "===", "A=", "AA=="])
        elif variant == "std_alphabet" and ("-" in token or "_" in token):
            bad = token.replace("-", "+").replace("_", "/")
        elif variant in ("stray_bits", "std_alphabet"):
            variant = "stray_bits"
            t = token if len(token) % 4 in (2, 3) else b64(data + b"\x00")  # a partial last group
            last = _B64URL.index(t[-1])
            mask = 0x0F if len(t) % 4 == 2 else 0x03
            bad = t[:-1] + _B64URL[last | (1 << rng.randrange(mask.bit_length()))]
        elif variant == "version":
            bad = b64(bytes([rng.choice([0, 2, 3, 255])]) + data[1:])
        elif variant == "json":
            bad = b64(json.dumps({"principal": "alice", "tools": {"shell": {}}}).encode())
        elif variant == "jwt":
            bad = "eyJhbGciOiJub25lIn0." + b64(b'{"sub":"admin"}') + "."
        elif variant in (
            "length_fields",
            "kind_byte",
            "non_finite_expiry",
            "empty_hop_id",
            "non_utf8_hop_id",
        ):
            raw_chain = RawChain.of(token)
            k = rng.randrange(len(raw_chain.hops))
            h = raw_chain.hops[k]
            body = bytearray(h.body)
            head = _ROOT_HEAD if k == 0 else _HOP_HEAD
            f = raw_chain.fields(k)
            if variant == "length_fields":  # the remit length no longer adds up
                at = head.size - (8 if k == 0 else 4)
                body[at : at + 4] = struct.pack(">I", len(f.remit_json) + rng.choice([1, -1, 1000]))
            elif variant == "kind_byte":
                body[0] = rng.choice([0, 3, 255, 2 if k == 0 else 1])
            elif variant == "non_finite_expiry":
                at = 1 + 32 + (0 if k == 0 else 32)
                body[at : at + 8] = struct.pack(
                    ">d", rng.choice([float("nan"), float("inf"), float("-inf")])
                )
            elif variant == "empty_hop_id":
                body = bytearray(f.but(hop_id="").body())
            else:
                hid = f.hop_id.encode()
                bad_hid = b"\xff" + hid[1:]
                start = head.size
                body[start : start + len(hid)] = bad_hid
            bad = raw_chain.replace(k, RawHop(bytes(body), h.sig)).token()
        elif variant == "non_str":  # e.g. bytes read off the wire and not decoded
            bad = rng.choice([token.encode(), None, 42, 3.5, [token], bytearray(token.encode())])
        else:
            bad = None
        tool, args = legit_args(model, rng)
        proof = sign_call(holder, w, tool, args, sc.nonce())
        if variant == "proof_noise":
            junk = bytearray(rng.randbytes(rng.randint(1, 150)))
            if len(junk) > 33 and 1 + junk[0] + 32 + 1 + 64 <= len(junk):
                junk[0] = 0xFF  # a random payload whose hop id length would not fit
            noise = rng.choice(
                [
                    "",
                    "AAAA",
                    proof.encode()[:-3],
                    proof.encode() + "AA",
                    b64(bytes(junk)),
                    "a+b/",
                    proof.encode() + "=",
                ]
            )

            def decode_proof() -> object:
                return CallProof.decode(noise)

            self.add("garbage_token", variant, decode_proof, "WARRANT_MALFORMED")
            return
        kinds = ("decode", "verify", "check", "verifier", "cached")
        how, go = self.entry(bad, proof=proof, tool=tool, args=args, kinds=kinds)
        self.add("garbage_token", f"{variant}/{how}", go, "WARRANT_MALFORMED")

    # --- all of them -------------------------------------------------------------------------

    def build(self) -> list[Attack]:
        for name in CATEGORIES:
            if name.startswith("widening_"):
                self.widening(name.removeprefix("widening_"))
            else:
                getattr(self, name)()
        return self.out


# --- legitimate calls ------------------------------------------------------------------------


def _legit(sc: Scenario, calls_per_hop: int) -> list[Legit]:
    rng = sc.rng
    out: list[Legit] = []
    p, run = sc.principal.public, sc.run_id
    shared = sc.verifier()  # one verifier per run, as the runtime keeps one

    def call(
        category: str,
        variant: str,
        j: int,
        verifier: Verifier | None,
        tool: str,
        args: dict[str, Any],
        proof: CallProof,
    ) -> None:
        token = sc.chain(j)[1]
        at = sc.legit_now()

        def go() -> Remit:
            v = Verifier(p, run) if verifier is None else verifier
            return v.check(token, proof, tool, args, now=at)

        out.append(Legit(category, variant, go, sc.remit(j)))

    for j in range(sc.n + 1):
        w, _, key, model = sc.chain(j)
        category = "legit_leaf" if j == sc.n else "legit_holder"
        for _ in range(calls_per_hop if j < sc.n else 2):
            tool, args = legit_args(model, rng)
            cold = rng.random() < 0.2
            proof = sign_call(key, w, tool, args, sc.nonce())
            call(
                "legit_cold" if cold else category,
                f"{tool}/hop_{j}",
                j,
                None if cold else shared,
                tool,
                args,
                proof,
            )
    # nonces are per hop: every holder may use the same nonce once
    nonce = sc.nonce()
    for j in rng.sample(range(sc.n + 1), min(2, sc.n + 1)):
        w, _, key, model = sc.chain(j)
        tool, args = legit_args(model, rng)
        call(
            "legit_nonce_per_hop",
            f"{tool}/hop_{j}",
            j,
            shared,
            tool,
            args,
            sign_call(key, w, tool, args, nonce),
        )
    # a chain and proof built entirely with this suite's own encoder are accepted too
    a0, a1 = sc.keys[0], AgentKey.from_seed(rng.randbytes(32))
    root = Fields(
        holder=a0.public,
        expires=sc.expiries[0],
        hop_id=sc.new_id("raw"),
        remit_json=remit_bytes(sc.remits[0]),
        run_id=run,
        purpose=sc.purpose,
    ).signed(sc.principal)
    child_remit = sc.remits[0].narrow()
    hop = Fields(
        holder=a1.public,
        expires=sc.expiries[0],
        hop_id=sc.new_id("raw"),
        remit_json=remit_bytes(child_remit),
        prev=root.link,
    ).signed(a0)
    chain = RawChain(sc.principal.public, (root, hop))
    token = chain.token()
    tool, args = legit_args(sc.models[0], rng)
    proof = forge_proof(a1, run, chain, tool, args, sc.nonce())
    at = sc.legit_now()
    out.append(
        Legit(
            "legit_toolkit",
            tool,
            lambda: Verifier(p, run).check(token, proof, tool, args, now=at),
            child_remit,
        )
    )
    return out


# --- the generator -----------------------------------------------------------------------------


def generate(
    seed: int,
    *,
    min_per_category: int = 60,
    min_attacks: int = 1000,
    min_legit: int = 1000,
    calls_per_hop: int = 3,
    max_scenarios: int = 10_000,
) -> Suite:
    """Scenarios from ``random.Random(seed)`` until every attack category has at least
    ``min_per_category`` cases and the totals reach ``min_attacks`` and ``min_legit``.
    The same arguments always give the same cases, in the same order."""
    rng = random.Random(seed)
    attacks: list[Attack] = []
    legit: list[Legit] = []
    counts = dict.fromkeys(CATEGORIES, 0)
    index = 0
    while index < max_scenarios and (
        min(counts.values()) < min_per_category
        or len(attacks) < min_attacks
        or len(legit) < min_legit
    ):
        sc = Scenario(rng, index)
        index += 1
        for case in _Attacks(sc).build():
            counts[case.category] += 1
            attacks.append(case)
        legit += _legit(sc, calls_per_hop)
    return Suite(seed, index, attacks, legit)
