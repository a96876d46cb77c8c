"""The attack suite: thousands of generated attacks on warrants, each refused with its
stable error code, and thousands of legitimate calls, each accepted.

The cases come from :mod:`.generator` for two fixed seeds (see its docstring for the
scenarios and categories). Failures are reported per category: how many cases, and for
the first few that went wrong, the variant, the code expected and what happened instead.
``benchmarks/attacks.py`` prints the same figures as a table.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from remit.core.remit import Remit
from remit.errors import RemitError, WarrantMalformed
from remit.trust.warrant import AgentKey, Verifier, issue, sign_call, verify

from .generator import (
    CATEGORIES,
    KNOWN_ISSUES,
    LEGIT_CATEGORIES,
    NOW,
    Outcome,
    RawChain,
    Scenario,
    Suite,
    fingerprint,
    forge_proof,
    generate,
    legit_args,
    remit_bytes,
    run_suite,
)

SEEDS = (20_260_509, 7)
MIN_PER_CATEGORY = 60
MIN_TOTAL = 1000

Results = tuple[Suite, list[Outcome], list[Outcome]]


@pytest.fixture(scope="module", params=SEEDS, ids=[f"seed{s}" for s in SEEDS])
def results(request: pytest.FixtureRequest) -> Results:
    suite = generate(request.param, min_per_category=MIN_PER_CATEGORY)
    attacks, legit = run_suite(suite)
    return suite, attacks, legit


def _report(outcomes: list[Outcome], failed: list[Outcome], examples: int = 4) -> str:
    totals = Counter(o.category for o in outcomes)
    lines = [f"{len(failed)} of {len(outcomes)} cases went wrong:"]
    by_category: dict[str, list[Outcome]] = {}
    for o in failed:
        by_category.setdefault(o.category, []).append(o)
    for category, bad in sorted(by_category.items()):
        seen = Counter(o.seen for o in bad)
        lines.append(
            f"  {category}: {len(bad)} of {totals[category]} wrong; expected {bad[0].expected}, "
            f"seen {dict(seen)}"
        )
        for o in bad[:examples]:
            lines.append(f"    - {o.variant}: {o.verdict}, {o.seen}: {o.detail[:300]}")
    return "\n".join(lines)


def test_every_attack_is_rejected_with_its_code(results: Results) -> None:
    _, attacks, _ = results
    failed = [o for o in attacks if o.verdict != "right" and o.known_issue is None]
    assert not failed, _report(attacks, failed)


def test_every_legitimate_call_is_accepted(results: Results) -> None:
    _, _, legit = results
    failed = [o for o in legit if o.verdict != "accepted"]
    assert not failed, _report(legit, failed)


def test_known_issues_fail_only_as_known(results: Results) -> None:
    """Cases flagged as known library issues crash as described (or are fixed), and are few."""
    _, attacks, _ = results
    known = [o for o in attacks if o.known_issue is not None]
    assert all(o.known_issue in KNOWN_ISSUES for o in known)
    unexpected = [o for o in known if o.verdict == "accepted"]
    assert not unexpected, _report(attacks, unexpected)
    assert len(known) < 20


def test_totals_and_every_category_represented(results: Results) -> None:
    suite, attacks, legit = results
    assert len(attacks) >= MIN_TOTAL and len(legit) >= MIN_TOTAL
    per_category = Counter(o.category for o in attacks)
    assert set(per_category) == set(CATEGORIES)
    thin = {c: n for c, n in per_category.items() if n < MIN_PER_CATEGORY}
    assert not thin, thin
    assert set(Counter(o.category for o in legit)) == set(LEGIT_CATEGORIES)
    # both ways of attempting a widening (delegate() and a hop signed anyway) occur
    for category in (c for c in CATEGORIES if c.startswith("widening_")):
        ways = {o.variant.split("/")[0] for o in attacks if o.category == category}
        assert ways == {"delegate", "signed"}, (category, ways)
    assert suite.scenarios >= MIN_PER_CATEGORY


# --- the generator itself ---------------------------------------------------------------


def test_generator_is_deterministic() -> None:
    small = {"min_per_category": 3, "min_attacks": 0, "min_legit": 0}
    a, b = generate(11, **small), generate(11, **small)
    assert fingerprint(a) == fingerprint(b)
    assert fingerprint(generate(12, **small)) != fingerprint(a)


def test_generator_does_not_depend_on_hash_randomization() -> None:
    here = Path(__file__).resolve().parent
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from attacks.generator import fingerprint, generate;"
        "print(fingerprint(generate(11, min_per_category=3, min_attacks=0, min_legit=0)))"
    )
    prints = set()
    for hash_seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        out = subprocess.run(
            [sys.executable, "-c", code, str(here.parent)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        prints.add(out.stdout.strip())
    assert len(prints) == 1, prints


def test_toolkit_reproduces_library_tokens_and_proofs() -> None:
    """The suite forges on bytes with its own encoder: it must encode exactly like the
    library, so that every rejection is due to the attack, never to a faulty forgery."""
    import random

    rng = random.Random(3)
    for index in range(12):
        sc = Scenario(rng, index)
        w, token = sc.warrants[-1], sc.tokens[-1]
        raw = RawChain.of(token)
        assert raw.token() == token and raw.principal == sc.principal.public
        signers = [sc.principal, *sc.keys]
        for k, hop in enumerate(w.hops):
            f = raw.fields(k)
            assert f.body() == hop.body and raw.hops[k].link == hop.link_hash
            assert f.signed(signers[k]).sig == hop.signature  # Ed25519 is deterministic
            assert f.remit_json == remit_bytes(sc.remits[k]) == hop.remit_json
            assert (f.hop_id, f.expires, f.holder) == (hop.hop_id, hop.expires, hop.holder)
        assert raw.fields(0).run_id == sc.run_id and raw.fields(0).purpose == sc.purpose
        tool, args = legit_args(sc.models[-1], rng)
        mine = forge_proof(sc.keys[-1], sc.run_id, raw, tool, args, b"nonce")
        assert mine == sign_call(sc.keys[-1], w, tool, args, b"nonce")
        assert sc.remits[-1].allows(tool, args, now=NOW)


# --- known library issues: minimal repros (strict: they fail until the library is fixed) ---

_P, _A = AgentKey.from_seed(b"p" * 32), AgentKey.from_seed(b"a" * 32)
_W = issue(
    _P,
    run_id="r",
    remit=Remit(tools={"t": {}}, deadline=100.0),
    purpose="",
    expires=100.0,
    holder_public=_A.public,
)


@pytest.mark.parametrize("token", [_W.encode().encode(), None, 42])
def test_verify_refuses_a_token_that_is_not_a_str(token: object) -> None:
    with pytest.raises(WarrantMalformed):
        verify(token, principal_public=_P.public, run_id="r", now=50.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("token", [[_W.encode()], bytearray(b"AAAA")])
def test_verifier_refuses_an_unhashable_token(token: object) -> None:
    with pytest.raises(WarrantMalformed):
        Verifier(_P.public, "r").verify(token, now=50.0)  # type: ignore[arg-type]


def test_a_nan_clock_is_refused_not_taken_for_a_valid_time() -> None:
    nan = float("nan")
    with pytest.raises((RemitError, ValueError)):  # any refusal would do; accepting is the bug
        verify(_W, principal_public=_P.public, run_id="r", now=nan)
